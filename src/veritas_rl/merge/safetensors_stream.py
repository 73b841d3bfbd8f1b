"""Read and write safetensors files one tensor at a time.

The safetensors format is an 8-byte little-endian header length, a JSON header
(``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``) and the raw
tensor bytes. Knowing every output shape and dtype up front, the writer emits the header first and
then each tensor as it is produced, so a merge never holds more than one tensor of the model in
memory. The reader uses plain ``seek`` + ``read`` (no ``mmap``), so the pages of tensors already
processed do not stay mapped into the process either.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: safetensors dtype code -> torch dtype name (resolved lazily so this module imports without torch)
_CODE_TO_TORCH = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}
_TORCH_TO_CODE = {v: k for k, v in _CODE_TO_TORCH.items()}
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
             "F8_E4M3": 1, "F8_E5M2": 1}


def dtype_code(dtype) -> str:
    """safetensors code of a torch dtype (``torch.bfloat16`` -> ``"BF16"``)."""
    name = str(dtype).removeprefix("torch.")
    try:
        return _TORCH_TO_CODE[name]
    except KeyError:
        raise ValueError(f"dtype {dtype} cannot be stored in safetensors; known: {', '.join(_TORCH_TO_CODE)}") from None


def torch_dtype(code: str):
    import torch

    try:
        return getattr(torch, _CODE_TO_TORCH[code])
    except KeyError:
        raise ValueError(f"unsupported safetensors dtype {code!r}; known: {', '.join(_CODE_TO_TORCH)}") from None


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors code, e.g. "F32"
    shape: tuple[int, ...]
    begin: int
    end: int


class SafetensorsReader:
    """Random access to the tensors of one ``.safetensors`` file without mapping it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh: BinaryIO = open(self.path, "rb")
        (length,) = struct.unpack("<Q", self._fh.read(8))
        header = json.loads(self._fh.read(length))
        self.data_start = 8 + length
        self.metadata: dict[str, str] = header.pop("__metadata__", None) or {}
        # keep the file's own order: writing in the same order reproduces the base layout
        items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
        self.tensors: dict[str, TensorInfo] = {
            name: TensorInfo(name, v["dtype"], tuple(v["shape"]), *v["data_offsets"]) for name, v in items
        }

    def keys(self) -> list[str]:
        return list(self.tensors)

    def get(self, name: str):
        """A fresh, writable CPU tensor (a copy of the bytes on disk)."""
        import torch

        info = self.tensors[name]
        self._fh.seek(self.data_start + info.begin)
        buf = bytearray(info.end - info.begin)  # read straight into the tensor's memory: one copy, not two
        if self._fh.readinto(buf) != len(buf):
            raise ValueError(f"{self.path}: truncated data for tensor {name!r}")
        dtype = torch_dtype(info.dtype)
        if not buf:
            return torch.empty(info.shape, dtype=dtype)
        return torch.frombuffer(buf, dtype=dtype).reshape(info.shape)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "SafetensorsReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SafetensorsWriter:
    """Write a ``.safetensors`` file whose tensors (names, dtypes, shapes, order) are declared up front."""

    def __init__(self, path: str | Path, layout: list[tuple[str, str, tuple[int, ...]]], metadata: dict | None = None):
        self.path = Path(path)
        header: dict = {}
        offset = 0
        self._expected: list[tuple[str, str, tuple[int, ...], int]] = []
        for name, code, shape in layout:
            nbytes = _ITEMSIZE[code]
            for dim in shape:
                nbytes *= dim
            header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            self._expected.append((name, code, tuple(shape), nbytes))
            offset += nbytes
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # the reference implementation aligns the data section to 8 bytes
        self.total_bytes = offset
        self._fh: BinaryIO = open(self.path, "wb")
        self._fh.write(struct.pack("<Q", len(raw)))
        self._fh.write(raw)
        self._next = 0

    def write(self, name: str, tensor) -> None:
        """Append the next tensor; it must match the declared layout exactly."""
        if self._next >= len(self._expected):
            raise ValueError(f"{self.path}: tensor {name!r} was not declared")
        want_name, want_code, want_shape, nbytes = self._expected[self._next]
        code = dtype_code(tensor.dtype)
        if (name, code, tuple(tensor.shape)) != (want_name, want_code, want_shape):
            raise ValueError(
                f"{self.path}: expected tensor {want_name!r} {want_code}{list(want_shape)}, "
                f"got {name!r} {code}{list(tensor.shape)}"
            )
        self._fh.write(_tensor_bytes(tensor.detach().cpu().contiguous()))
        self._next += 1

    def close(self) -> None:
        missing = [e[0] for e in self._expected[self._next:]]
        self._fh.close()
        if missing:
            raise ValueError(f"{self.path}: {len(missing)} declared tensors were never written, first {missing[0]!r}")

    def __enter__(self) -> "SafetensorsWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self._fh.close()


def _tensor_bytes(tensor) -> memoryview:
    import torch

    flat = tensor.reshape(-1)
    if flat.numel() == 0:
        return memoryview(b"")
    return memoryview(flat.view(torch.uint8).numpy())

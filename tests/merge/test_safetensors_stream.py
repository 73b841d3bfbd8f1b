"""The streaming safetensors reader/writer against the reference safetensors library."""

from __future__ import annotations

import pytest

from veritas_rl.merge.safetensors_stream import SafetensorsReader, SafetensorsWriter


def _tensors():
    import torch

    g = torch.Generator().manual_seed(0)
    return {
        "b.weight": torch.randn(3, 5, generator=g).to(torch.bfloat16),
        "a.weight": torch.randn(7, generator=g),
        "c.ids": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "d.empty": torch.empty(0, 4, dtype=torch.float16),
        "e.mask": torch.tensor([True, False, True]),
    }


def test_written_file_reads_back_with_the_reference_library(tmp_path):
    import torch
    from safetensors import safe_open

    tensors = _tensors()
    layout = [(name, {"torch.bfloat16": "BF16", "torch.float32": "F32", "torch.int64": "I64", "torch.float16": "F16",
                      "torch.bool": "BOOL"}[str(t.dtype)], tuple(t.shape)) for name, t in tensors.items()]
    with SafetensorsWriter(tmp_path / "x.safetensors", layout, {"format": "pt"}) as writer:
        for name, t in tensors.items():
            writer.write(name, t)
    with safe_open(str(tmp_path / "x.safetensors"), "pt") as f:
        assert f.metadata() == {"format": "pt"}
        assert set(f.keys()) == set(tensors)
        for name, t in tensors.items():
            got = f.get_tensor(name)
            assert got.dtype == t.dtype and torch.equal(got, t), name


def test_reader_matches_the_reference_writer_and_keeps_file_order(tmp_path):
    import torch
    from safetensors.torch import save_file

    tensors = _tensors()
    save_file(tensors, str(tmp_path / "y.safetensors"), metadata={"format": "pt", "k": "v"})
    with SafetensorsReader(tmp_path / "y.safetensors") as reader:
        assert reader.metadata == {"format": "pt", "k": "v"}
        offsets = [reader.tensors[n].begin for n in reader.keys()]
        assert offsets == sorted(offsets)
        for name, t in tensors.items():
            got = reader.get(name)
            assert got.dtype == t.dtype and torch.equal(got, t), name


def test_writer_refuses_what_was_not_declared(tmp_path):
    import torch

    with pytest.raises(ValueError, match=r"expected tensor 'a' F32\[2\], got 'a' F32\[3\]"):
        with SafetensorsWriter(tmp_path / "z.safetensors", [("a", "F32", (2,))]) as writer:
            writer.write("a", torch.zeros(3))
    writer = SafetensorsWriter(tmp_path / "w.safetensors", [("a", "F32", (2,)), ("b", "F32", (1,))])
    writer.write("a", torch.zeros(2))
    with pytest.raises(ValueError, match="never written, first 'b'"):
        writer.close()

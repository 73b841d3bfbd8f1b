"""How far a measured step is from what the GPU could do: the decode and update bounds beside the figures.

Two bounds, each the simplest one that a measurement cannot beat:

- **decode** (memory bandwidth, or compute at large batches): every decode step of a batch reads the weights
  once and the live sequences' KV cache once. At ``seqs`` sequences with a mean context of ``ctx`` tokens
  that is ``weight_bytes + seqs * ctx * kv_bytes_per_token`` per step, so generated tokens/s <=
  ``seqs * HBM bytes/s / bytes per step``; and each token costs ``2 * params`` FLOPs forward, so also <=
  ``peak FLOP/s / (2 * params)``. The bound is the smaller (at 512 sequences of a 0.5B model on an H200 the
  two are within 20% of each other).
- **update** (bf16 FLOP/s): a training token costs about ``6 * params`` FLOPs forward + backward
  (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", sec. 2.1; attention's extra term left
  out, so the bound is optimistic), so trained tokens/s <= ``peak FLOP/s / (6 * params)``; the achieved share
  is the model FLOPs utilisation (MFU).

Device figures are NVIDIA's datasheet values (dense bf16, no sparsity): H200 SXM 4.8 TB/s and 989 TFLOP/s;
H100 SXM 3.35 TB/s and 989 TFLOP/s; H100 PCIe 2.0 TB/s and 756 TFLOP/s; A100 80GB SXM 2.039 TB/s and 312
TFLOP/s. An unknown device has no bound (``None``), not a guessed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Device:
    name: str
    hbm_bytes_per_s: float
    bf16_flops: float


#: (substrings that must all be in torch's device name, spec); the first match wins, so specific rows first
DEVICES: tuple[tuple[tuple[str, ...], Device], ...] = (
    (("H200",), Device("NVIDIA H200", 4.8e12, 989e12)),
    (("H100", "PCIe"), Device("NVIDIA H100 PCIe", 2.0e12, 756e12)),
    (("H100",), Device("NVIDIA H100 SXM", 3.35e12, 989e12)),
    (("A100", "80GB"), Device("NVIDIA A100 80GB", 2.039e12, 312e12)),
)


def device_spec(name: str | None) -> Device | None:
    """The datasheet row for a ``torch.cuda.get_device_name()`` string, or None when it is not in the table."""
    for keys, dev in DEVICES:
        if name and all(k in name for k in keys):
            return dev
    return None


@dataclass(frozen=True)
class ModelShape:
    params: int
    layers: int
    kv_heads: int
    head_dim: int
    bytes_per_param: int = 2  # bf16

    @property
    def weight_bytes(self) -> int:
        return self.params * self.bytes_per_param

    @property
    def kv_bytes_per_token(self) -> int:  # K and V, every layer, in the weights' dtype
        return 2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_param


def model_shape(model_dir: str | Path) -> ModelShape:
    """Parameter count (from the safetensors headers: shapes only, nothing loaded) and the KV shape of an HF dir."""
    from safetensors import safe_open

    model_dir = Path(model_dir)
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg = cfg.get("text_config", cfg)
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no *.safetensors to count parameters from")
    params = 0
    for f in files:
        with safe_open(str(f), "pt") as st:
            for key in st.keys():
                n = 1
                for d in st.get_slice(key).get_shape():
                    n *= d
                params += n
    heads = cfg["num_attention_heads"]
    return ModelShape(params=params, layers=cfg["num_hidden_layers"],
                      kv_heads=cfg.get("num_key_value_heads", heads),
                      head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads)


def decode_bound(dev: Device, shape: ModelShape, seqs: int, mean_context: float) -> float:
    """Generated tokens/s no engine can beat at ``seqs`` concurrent sequences of ``mean_context`` tokens."""
    bytes_per_step = shape.weight_bytes + seqs * mean_context * shape.kv_bytes_per_token
    return min(seqs * dev.hbm_bytes_per_s / bytes_per_step, dev.bf16_flops / (2 * shape.params))


def update_bound(dev: Device, shape: ModelShape) -> float:
    """Trained tokens/s (forward + backward) at the device's dense bf16 peak."""
    return dev.bf16_flops / (6 * shape.params)


def bounds_row(dev: Device | None, shape: ModelShape | None, *, seqs: int, prompt_tokens: float,
               completion_tokens: float, decode_tok_s: float | None, train_tok_s: float | None) -> dict:
    """Achieved vs bound for one measured step shape; the bound fields are None when the device is unknown.

    ``prompt_tokens`` / ``completion_tokens`` are per sequence (means); the decode context is the prompt plus
    half the reply (the mean over the reply's decode steps)."""
    row: dict = {"seqs": seqs, "decode_tok_s": decode_tok_s, "train_tok_s": train_tok_s,
                 "device": None if dev is None else dev.name,
                 "params": None if shape is None else shape.params}
    if dev is None or shape is None:
        return row | {"decode_bound_tok_s": None, "decode_share": None, "train_bound_tok_s": None, "mfu": None}
    dec = decode_bound(dev, shape, seqs, prompt_tokens + completion_tokens / 2)
    upd = update_bound(dev, shape)
    return row | {"decode_bound_tok_s": dec, "decode_share": None if decode_tok_s is None else decode_tok_s / dec,
                  "train_bound_tok_s": upd, "mfu": None if train_tok_s is None else train_tok_s / upd}

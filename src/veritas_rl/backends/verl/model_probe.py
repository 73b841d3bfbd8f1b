"""What the launchers' size-dependent defaults need to know about a model and this machine, without torch.

Reads only the model's ``config.json`` (no weights, no tokenizer) and asks whether ``flash_attn`` imports:

* the parameter count, estimated from the architecture (embeddings, attention with grouped KV heads,
  gated MLP, MoE experts; untied output head when ``tie_word_embeddings`` is false), within a few percent of
  the real count for Llama/Qwen/Mistral-style models (Qwen2.5-0.5B: 494M estimated, 494M real);
* the attention head counts (vLLM's tensor parallelism must divide them);
* whether ``import flash_attn`` works (verl's padding-free path and ``flash_attention_2`` need it).

``python -m veritas_rl.backends.verl.model_probe MODEL_DIR`` prints one line ``PARAMS HEADS KV_HEADS FLASH``
(``unknown`` for what the config does not say, e.g. a hub id not downloaded yet; ``FLASH`` is 1 or 0),
which ``train/scripts/lib/common.sh`` reads.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

#: config keys that name the same thing across model families (first match wins)
_ALIASES = {
    "hidden": ("hidden_size", "n_embd", "d_model"),
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "heads": ("num_attention_heads", "n_head"),
    "kv_heads": ("num_key_value_heads", "num_kv_heads", "multi_query_group_num"),
    "intermediate": ("intermediate_size", "n_inner", "ffn_dim"),
    "experts": ("num_local_experts", "num_experts", "n_routed_experts"),
}
_UNGATED_ACTS = {"gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "gelu_fast", "quick_gelu"}


@dataclass(frozen=True)
class ModelShape:
    params: int | None
    heads: int | None
    kv_heads: int | None


def _get(cfg: Mapping[str, Any], name: str) -> int | None:
    for key in _ALIASES[name]:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def text_config(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language model's part of a config (multimodal configs nest it under ``text_config``)."""
    inner = cfg.get("text_config") or cfg.get("llm_config")
    return {**cfg, **inner} if isinstance(inner, Mapping) else cfg


def estimate_params(cfg: Mapping[str, Any]) -> int | None:
    """Parameters of a decoder-only transformer from its HF config; None when a size is missing."""
    cfg = text_config(cfg)
    hidden, layers, heads = _get(cfg, "hidden"), _get(cfg, "layers"), _get(cfg, "heads")
    vocab = cfg.get("vocab_size")
    if not (hidden and layers and heads and isinstance(vocab, int) and vocab > 0):
        return None
    kv_heads = _get(cfg, "kv_heads") or heads
    head_dim = cfg.get("head_dim") if isinstance(cfg.get("head_dim"), int) else hidden // heads
    attention = hidden * head_dim * (heads + 2 * kv_heads) + heads * head_dim * hidden
    intermediate = _get(cfg, "intermediate") or 4 * hidden
    act = str(cfg.get("hidden_act") or cfg.get("activation_function") or "silu")
    mlp = (2 if act in _UNGATED_ACTS else 3) * hidden * intermediate
    experts = _get(cfg, "experts")
    if experts:
        expert_size = cfg.get("moe_intermediate_size") if isinstance(cfg.get("moe_intermediate_size"), int) else intermediate
        shared = cfg.get("n_shared_experts") if isinstance(cfg.get("n_shared_experts"), int) else 0
        mlp = 3 * hidden * expert_size * (experts + shared) + hidden * experts
    embeddings = vocab * hidden * (1 if cfg.get("tie_word_embeddings", True) else 2)
    return embeddings + layers * (attention + mlp + 2 * hidden) + hidden


def read_shape(model_dir: str | Path) -> ModelShape:
    """The model's size and head counts from ``MODEL_DIR/config.json`` (all None when there is none)."""
    path = Path(model_dir) / "config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ModelShape(None, None, None)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable JSON model config: {err}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path} holds {type(cfg).__name__}, not a JSON object")
    text = text_config(cfg)
    heads = _get(text, "heads")
    return ModelShape(estimate_params(cfg), heads, _get(text, "kv_heads") or heads)


def flash_attn_available() -> bool:
    """True when ``import flash_attn`` works here (an installed but broken build counts as missing)."""
    try:
        importlib.import_module("flash_attn")
    except Exception as err:  # ImportError, or a build that fails on import (CUDA/ABI mismatch): not usable
        log.debug("flash_attn not usable: %s", err)
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m veritas_rl.backends.verl.model_probe",
        description="Print 'PARAMS HEADS KV_HEADS FLASH' for a model dir (from config.json only) and this machine "
        "(FLASH: 1 when flash_attn imports); 'unknown' where the config does not say.",
    )
    parser.add_argument("model_dir", help="a model directory (its config.json is read; nothing else)")
    parser.add_argument("--no-flash-check", action="store_true", help="print FLASH as 0 without importing flash_attn")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        shape = read_shape(args.model_dir)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    flash = 0 if args.no_flash_check else int(flash_attn_available())
    fields = [shape.params, shape.heads, shape.kv_heads]
    print(" ".join("unknown" if v is None else str(v) for v in fields), flash)
    return 0


if __name__ == "__main__":
    sys.exit(main())

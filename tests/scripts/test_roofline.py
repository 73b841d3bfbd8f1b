"""benchmarks/roofline.py: the bounds the speed benchmarks print beside their figures, on the real SmolLM2 dir."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import roofline  # noqa: E402


def test_model_shape_counts_the_real_models_parameters_from_its_headers(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM

    shape = roofline.model_shape(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.bfloat16)
    assert shape.params == sum(p.numel() for p in model.parameters())  # tied head counted once, as it is stored
    cfg = model.config
    assert (shape.layers, shape.kv_heads, shape.head_dim) == (
        cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads)
    # the cache transformers itself allocates: K and V per layer, kv_heads x head_dim each, bf16
    out = model(input_ids=torch.tensor([[1, 2, 3, 4]]), use_cache=True)
    cache_bytes = sum(t.numel() * t.element_size() for layer in out.past_key_values.layers
                      for t in (layer.keys, layer.values))
    assert cache_bytes == 4 * shape.kv_bytes_per_token


def test_model_shape_without_weights_names_the_dir(tmp_path):
    (tmp_path / "config.json").write_text('{"num_attention_heads": 2, "num_hidden_layers": 1, "hidden_size": 8}')
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        roofline.model_shape(tmp_path)


@pytest.mark.parametrize("name, want", [("NVIDIA H200", "NVIDIA H200"), ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
                                        ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
                                        ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB"),
                                        ("NVIDIA GeForce RTX 4090", None), (None, None)])
def test_device_spec_matches_datasheet_rows_and_leaves_unknown_devices_unbounded(name, want):
    dev = roofline.device_spec(name)
    assert (None if dev is None else dev.name) == want


def test_bounds_follow_the_traffic_model():
    h200 = roofline.device_spec("NVIDIA H200")
    shape = roofline.ModelShape(params=494_032_768, layers=24, kv_heads=2, head_dim=64)  # Qwen2.5-0.5B's shape
    one = roofline.decode_bound(h200, shape, seqs=1, mean_context=0)
    assert one == pytest.approx(4.8e12 / (2 * 494_032_768))  # one sequence, no cache: read the weights per token
    bounds = [roofline.decode_bound(h200, shape, s, 300) for s in (1, 8, 64, 512)]
    assert bounds == sorted(bounds) and bounds[-1] < 512 * one  # batching pays, the cache's traffic caps it
    assert bounds[-2] == pytest.approx(64 * 4.8e12 / (2 * 494_032_768 + 64 * 300 * 12_288))
    huge = roofline.decode_bound(h200, shape, seqs=100_000, mean_context=1)  # compute binds before bandwidth
    assert huge == pytest.approx(989e12 / (2 * 494_032_768))
    assert roofline.update_bound(h200, shape) == pytest.approx(989e12 / (6 * 494_032_768))
    row = roofline.bounds_row(h200, shape, seqs=64, prompt_tokens=150, completion_tokens=300, decode_tok_s=10_291,
                              train_tok_s=60_000)
    assert row["decode_share"] == pytest.approx(10_291 / roofline.decode_bound(h200, shape, 64, 300))
    assert row["mfu"] == pytest.approx(60_000 * 6 * 494_032_768 / 989e12)
    unknown = roofline.bounds_row(None, shape, seqs=64, prompt_tokens=150, completion_tokens=300,
                                  decode_tok_s=10_291, train_tok_s=None)
    assert unknown["decode_bound_tok_s"] is None and unknown["mfu"] is None and unknown["decode_tok_s"] == 10_291

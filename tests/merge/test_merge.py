"""The LoRA merge on the real SmolLM2-135M with a real, trained PEFT adapter."""

from __future__ import annotations

import json
import os

import pytest

from tests.merge.conftest import TARGETS, copy_adapter, train_lora
from veritas_rl.merge import MergeError, VerificationError, load_adapter, merge_adapter, verify_merge
from veritas_rl.merge.safetensors_stream import SafetensorsReader

PROMPT = "Reinforcement learning with verifiable rewards"


def _state(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _logits(model, tokenizer, text=PROMPT):
    import torch

    batch = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        return model(**batch).logits.float()


@pytest.fixture(scope="module")
def merged_fp32(smollm2_dir, trained_adapter, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged") / "fp32"
    result = merge_adapter(smollm2_dir, trained_adapter, out, dtype="fp32")
    return out, result


def test_merged_model_reproduces_the_peft_model(smollm2_dir, trained_adapter, merged_fp32, smollm2_tokenizer):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out, result = merged_fp32
    report = result.verification
    assert report.ok and report.dtype == "float32"
    assert report.max_abs_logit_diff <= 1e-3 and report.math_diff <= 1e-3
    assert report.modules_checked == report.modules_changed == 30 * len(TARGETS)

    # independently of our verifier: PEFT (base + adapter) vs the merged model vs the base, on another prompt
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    got = _logits(merged, smollm2_tokenizer)
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    n_base = sum(p.numel() for p in base.parameters())
    plain = _logits(base, smollm2_tokenizer)
    peft_model = PeftModel.from_pretrained(base, trained_adapter).eval()
    want = _logits(peft_model, smollm2_tokenizer)
    assert (got - want).abs().max().item() <= 1e-3
    assert (got - plain).abs().max().item() > 0.1  # merged != base: the adapter is in the weights

    # the base's parameter count and layout; tied embeddings stay tied, no lm_head tensor appears
    assert sum(p.numel() for p in merged.parameters()) == n_base == result.num_parameters
    assert merged.config.tie_word_embeddings
    assert merged.lm_head.weight.data_ptr() == merged.model.embed_tokens.weight.data_ptr()
    with SafetensorsReader(out / "model.safetensors") as got_file, SafetensorsReader(
        smollm2_dir / "model.safetensors"
    ) as base_file:
        assert got_file.keys() == base_file.keys()
        assert "lm_head.weight" not in got_file.keys()


def test_merged_dir_carries_the_base_tokenizer_config_and_provenance(smollm2_dir, merged_fp32):
    out, result = merged_fp32
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"):
        assert (out / name).read_bytes() == (smollm2_dir / name).read_bytes(), name
    base_config = json.loads((smollm2_dir / "config.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert {k: v for k, v in config.items() if k != "dtype"} == {k: v for k, v in base_config.items() if k != "dtype"}
    assert config["dtype"] == "float32"
    info = json.loads((out / "merge_info.json").read_text())
    assert info["lora_alpha"] == 8 and info["lora_alpha_source"] == "adapter_config.json"
    assert info["verification"]["ok"] is True
    assert info["merged_modules"] == 90 and result.merged_modules == 90
    assert not list(out.parent.glob(".fp32.partial-*"))


def test_weights_are_base_plus_scaled_lora_product(smollm2_dir, trained_adapter, merged_fp32):
    from safetensors.torch import load_file

    out, _ = merged_fp32
    lora = load_file(str(trained_adapter / "adapter_model.safetensors"))
    base, got = _state(smollm2_dir), _state(out)
    name = "model.layers.7.self_attn.v_proj"
    A, B = lora[f"base_model.model.{name}.lora_A.weight"], lora[f"base_model.model.{name}.lora_B.weight"]
    expected = base[f"{name}.weight"] + (8 / 4) * (B @ A)
    assert (got[f"{name}.weight"] - expected).abs().max().item() < 1e-6
    assert (got["model.layers.7.self_attn.k_proj.weight"] == base["model.layers.7.self_attn.k_proj.weight"]).all()


def test_lora_alpha_zero_takes_alpha_from_lora_train_meta(smollm2_dir, trained_adapter, merged_fp32, tmp_path):
    # verl 0.9.1 writes lora_alpha 0 into lora_adapter/ when its checkpoint has no metadata
    adapter = copy_adapter(trained_adapter, tmp_path / "ckpt" / "lora_adapter", lora_alpha=0)
    (tmp_path / "ckpt" / "lora_train_meta.json").write_text(json.dumps({"r": 4, "lora_alpha": 8, "task_type": "CAUSAL_LM"}))
    result = merge_adapter(smollm2_dir, adapter, tmp_path / "out", dtype="fp32", verify=False)
    ref, got = _state(merged_fp32[0]), _state(tmp_path / "out")
    assert all((got[k] == ref[k]).all() for k in ref)  # bit-identical to the merge with alpha in the config
    info = json.loads((tmp_path / "out" / "merge_info.json").read_text())
    assert info["lora_alpha"] == 8 and info["lora_alpha_source"].endswith("lora_train_meta.json")
    assert result.verification is None


def test_lora_alpha_zero_without_a_source_is_refused(smollm2_dir, trained_adapter, tmp_path):
    adapter = copy_adapter(trained_adapter, tmp_path / "a" / "lora_adapter", lora_alpha=0)
    with pytest.raises(MergeError, match=r"lora_alpha is 0 .*refusing to write a model"):
        merge_adapter(smollm2_dir, adapter, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # and a metadata file saying 0 as well is no source either
    (tmp_path / "a" / "lora_train_meta.json").write_text(json.dumps({"r": 4, "lora_alpha": 0}))
    with pytest.raises(MergeError, match="no-op"):
        merge_adapter(smollm2_dir, adapter, tmp_path / "out")
    assert not list(tmp_path.glob(".out*")) and not (tmp_path / "out").exists()


def test_cli_lora_alpha_flag_and_exit_codes(smollm2_dir, trained_adapter, merged_fp32, tmp_path):
    from veritas_rl.merge.cli import main

    adapter = copy_adapter(trained_adapter, tmp_path / "lora_adapter", lora_alpha=0)
    common = ["--base_model", str(smollm2_dir), "--adapter_model", str(adapter), "--dtype", "fp32", "--no_verify"]
    with pytest.raises(SystemExit) as exc:  # no alpha source: refused, status 2, nothing written
        main([*common, "--output_dir", str(tmp_path / "refused")])
    assert exc.value.code == 2 and not (tmp_path / "refused").exists()
    assert main([*common, "--output_dir", str(tmp_path / "ok"), "--lora_alpha", "8"]) == 0
    ref, got = _state(merged_fp32[0]), _state(tmp_path / "ok")
    assert all((got[k] == ref[k]).all() for k in ref)
    with pytest.raises(SystemExit) as exc:  # an existing output is not replaced without --overwrite
        main([*common, "--output_dir", str(tmp_path / "ok"), "--lora_alpha", "8"])
    assert exc.value.code == 2


def test_contradicting_lora_alpha_is_refused(smollm2_dir, trained_adapter, tmp_path):
    with pytest.raises(MergeError, match="contradicts lora_alpha=8"):
        merge_adapter(smollm2_dir, trained_adapter, tmp_path / "out", lora_alpha=16)


def test_wrong_base_names_the_first_mismatching_module(trained_adapter, smollm2_tokenizer, tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "small")
    smollm2_tokenizer.save_pretrained(tmp_path / "small")
    with pytest.raises(MergeError) as err:
        merge_adapter(tmp_path / "small", trained_adapter, tmp_path / "out")
    message = str(err.value)
    # modules in layer order, then by name: layer 0's up_proj is the first the adapter targets
    assert "at module model.layers.0.mlp.up_proj:" in message
    assert "[1536, 576]" in message and "[128, 64]" in message
    assert not (tmp_path / "out").exists()


def test_unsupported_adapters_are_refused(smollm2_dir, trained_adapter, tmp_path):
    dora = copy_adapter(trained_adapter, tmp_path / "dora", use_dora=True)
    with pytest.raises(MergeError, match="use_dora"):
        load_adapter(dora)
    ia3 = copy_adapter(trained_adapter, tmp_path / "ia3", peft_type="IA3")
    with pytest.raises(MergeError, match="only LORA"):
        load_adapter(ia3)


def test_lora_on_tied_embeddings_is_refused(smollm2_dir, tmp_path):
    train_lora(smollm2_dir, tmp_path / "emb", {"r": 2, "lora_alpha": 4, "target_modules": ["embed_tokens"],
                                                "init_lora_weights": False}, steps=0)
    with pytest.raises(MergeError, match="model.embed_tokens.*tie"):
        merge_adapter(smollm2_dir, tmp_path / "emb", tmp_path / "out")


def test_rslora_patterns_and_modules_to_save_match_peft(smollm2_dir, tmp_path):
    """rsLoRA scaling, per-module rank/alpha patterns and a modules_to_save tensor, checked against PEFT."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], use_rslora=True,
                        rank_pattern={"v_proj": 2}, alpha_pattern={r"layers\.0\.self_attn\.q_proj": 32},
                        modules_to_save=["model.norm"], init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # stand-in for training the saved module
        peft_model.base_model.model.model.norm.modules_to_save["default"].weight.mul_(1.5)
    peft_model.save_pretrained(tmp_path / "adapter")

    adapter = load_adapter(tmp_path / "adapter")
    q0 = adapter.modules["model.layers.0.self_attn.q_proj.weight"]
    v3 = adapter.modules["model.layers.3.self_attn.v_proj.weight"]
    assert (q0.r, q0.scale) == (4, pytest.approx(32 / 2)) and (v3.r, v3.scale) == (2, pytest.approx(8 / 2**0.5))
    assert list(adapter.replacements) == ["model.norm.weight"]

    result = merge_adapter(smollm2_dir, tmp_path / "adapter", tmp_path / "out", dtype="fp32")
    assert result.verification.ok and result.verification.max_abs_logit_diff <= 1e-3
    assert result.replaced_tensors == 1
    norm = _state(tmp_path / "out")["model.norm.weight"]
    assert torch.equal(norm, _state(smollm2_dir)["model.norm.weight"] * 1.5)


def test_untrained_adapter_fails_verification_and_writes_nothing(smollm2_dir, tmp_path):
    from veritas_rl.merge.cli import main

    # a fresh PEFT LoRA has B = 0: "merging" it would ship the base model
    train_lora(smollm2_dir, tmp_path / "fresh", {"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}, steps=0)
    with pytest.raises(VerificationError, match="zero in every module"):
        merge_adapter(smollm2_dir, tmp_path / "fresh", tmp_path / "out")
    assert main(["--base_model", str(smollm2_dir), "--adapter_model", str(tmp_path / "fresh"),
                 "--output_dir", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_verifier_catches_a_corrupted_merge(smollm2_dir, trained_adapter, merged_fp32, tmp_path):
    import shutil

    from safetensors.torch import save_file

    out, _ = merged_fp32
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    state = _state(out)
    state["model.layers.3.mlp.up_proj.weight"] = state["model.layers.3.mlp.up_proj.weight"] * 1.01
    save_file(state, str(bad / "model.safetensors"), metadata={"format": "pt"})
    report = verify_merge(smollm2_dir, load_adapter(trained_adapter), bad, raise_on_failure=False)
    assert not report.ok
    assert any("model.layers.3.mlp.up_proj.weight" in f for f in report.failures)
    with pytest.raises(VerificationError):
        verify_merge(smollm2_dir, load_adapter(trained_adapter), bad)



def test_sharded_base_keeps_its_shards_and_index(smollm2_dir, trained_adapter, merged_fp32, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    model.save_pretrained(tmp_path / "sharded", max_shard_size="200MB")
    AutoTokenizer.from_pretrained(smollm2_dir).save_pretrained(tmp_path / "sharded")
    del model
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1
    merge_adapter(tmp_path / "sharded", trained_adapter, tmp_path / "out", dtype="fp32", verify=False)
    out_index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert out_index["weight_map"] == index["weight_map"]
    assert out_index["metadata"]["total_size"] == sum((tmp_path / "out" / s).stat().st_size for s in shards) - sum(
        8 + int.from_bytes((tmp_path / "out" / s).read_bytes()[:8], "little") for s in shards
    )
    ref = _state(merged_fp32[0])
    for shard in shards:
        with SafetensorsReader(tmp_path / "out" / shard) as f, SafetensorsReader(tmp_path / "sharded" / shard) as b:
            assert f.keys() == b.keys()
            for name in f.keys():
                assert torch.equal(f.get(name), ref[name]), name


def test_fan_in_fan_out_and_embedding_lora_match_peft(smollm2_tokenizer, tmp_path):
    """GPT-2 stores Conv1D weights transposed (fan_in_fan_out) and here has an untied LoRA'd embedding."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(smollm2_tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=64,
                        tie_word_embeddings=False)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    smollm2_tokenizer.save_pretrained(tmp_path / "gpt2")
    base = GPT2LMHeadModel.from_pretrained(tmp_path / "gpt2")
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "wte"], fan_in_fan_out=True,
                      init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")

    adapter = load_adapter(tmp_path / "adapter")
    assert adapter.modules["transformer.h.0.attn.c_attn.weight"].transpose
    assert adapter.modules["transformer.wte.weight"].transpose
    result = merge_adapter(tmp_path / "gpt2", tmp_path / "adapter", tmp_path / "out", dtype="fp32")
    report = result.verification
    assert report.ok and report.max_abs_logit_diff <= 1e-3 and report.modules_checked == 3
    assert report.adapter_effect > 100 * report.max_abs_logit_diff


def test_unfetchable_base_is_a_clear_error(trained_adapter, tmp_path):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # tests/conftest.py: no network
    with pytest.raises(MergeError, match="'veritas-test/no-such-model' is neither a local directory nor a fetchable"):
        merge_adapter("veritas-test/no-such-model", trained_adapter, tmp_path / "out")
    assert not (tmp_path / "out").exists()

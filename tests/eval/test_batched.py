"""Batched game evaluation (``veritas_rl.eval.batched``) against the sequential path, on the real SmolLM2."""

from __future__ import annotations

import pytest

from veritas_rl.eval.batched import BatchGenerator, evaluate_batched
from veritas_rl.eval.games import evaluate
from veritas_rl.models import load_causal_lm


@pytest.fixture(scope="module")
def smol(smollm2_dir):
    return load_causal_lm(str(smollm2_dir), "cpu")


def test_batched_report_has_the_sequential_keys_games_and_texts(smollm2_dir, smol):
    model, tokenizer = smol
    batched = evaluate_batched(BatchGenerator(model, tokenizer, max_new_tokens=12), "smol", "random",
                               ["tic_tac_toe"], 2, seed=3, episode="game", batch_size=1)
    sequential = evaluate(f"hf:{smollm2_dir}", "random", ["tic_tac_toe"], 2, seed=3, max_new_tokens=12,
                          progress=False, episode="game")
    b, s = batched["cases"]["tic_tac_toe"], sequential["cases"]["tic_tac_toe"]
    assert set(b) == set(s)
    assert [e.keys() for e in b["episodes_detail"]] == [e.keys() for e in s["episodes_detail"]]
    assert [(e["seat"], e["seed"]) for e in b["episodes_detail"]] == [(e["seat"], e["seed"]) for e in s["episodes_detail"]]
    for e in b["episodes_detail"]:
        # every game has a model text (seat 1 moves second, but tic_tac_toe always reaches the model)
        assert isinstance(e["last_completion"], str) and len(e["last_completion"]) <= 300
        if e["outcome"] == "illegal":
            assert e["reason"]
    assert sum(b["counts"].values()) == 2

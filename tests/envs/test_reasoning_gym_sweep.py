"""Every reasoning-gym dataset: the gold scores 1.0; the format example, an empty answer, a prompt echo and
a code payload score 0.0 (real reasoning-gym; about 10-20 s for all of them)."""

from __future__ import annotations

import pytest

from veritas_rl.envs import make
from veritas_rl.envs.reasoning_gym import rg_dataset_names

#: datasets that do not build from a plain config (composite needs a list of other datasets)
UNBUILDABLE = {"composite"}
#: datasets whose entries carry no gold answer (any valid solution counts): no oracle to check
NO_GOLD = {"boxnet", "graph_color", "propositional_logic", "rubiks_cube", "rush_hour"}


def test_the_sweep_covers_every_dataset():
    names = rg_dataset_names()
    assert len(names) > 100 and UNBUILDABLE | NO_GOLD <= set(names)


@pytest.mark.parametrize("name", [n for n in rg_dataset_names() if n not in UNBUILDABLE])
def test_gold_scores_one_and_non_answers_score_zero(name, tmp_path):
    env = make("rg", dataset=name, size=20)
    for i in range(3):
        task = env.task(i)
        oracle = env.oracle(task)
        if name in NO_GOLD:
            assert oracle is None
        else:
            score = env.score(task, oracle)
            assert score.value == 1.0 and score.kind == "correct", score
        sentinel = tmp_path / f"{name}-{i}"
        for completion in (
            "<answer>your answer</answer>",
            "<answer></answer>",
            f"<answer>{env.entry(i)['question']}</answer>",
            task.prompt[0]["content"],
            f"<answer>__import__('os').system('touch {sentinel}')</answer>",
        ):
            score = env.score(task, completion)
            assert score.value == 0.0 and score.kind in ("no_answer", "illegal"), (completion[:80], score)
        assert not sentinel.exists()

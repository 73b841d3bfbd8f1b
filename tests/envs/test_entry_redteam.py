"""Entry points under attack: ``Env.score``, verl's ``compute_score`` (train/tools/reward-manager.py) and TRL's
``EnvReward``, with hostile completions and malformed data.

Model output never raises and is time-bounded; data that cannot be scored (a missing gold) raises a
``ValueError`` that names it. The ``ground_truth`` and content-block cases failed before their fix; the
rest pin the contract every env keeps."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from veritas_rl.backends.trl.reward import EnvReward, task_row
from veritas_rl.backends.verl import compute_score
from veritas_rl.envs import make

ENVS = {
    "answer-tag": {},
    "math": {},
    "lgc-v2": {"task_types": ["boolean_expressions", "operation"]},
    "openspiel": {"reward_mode": "legal", "game_types": ["tic_tac_toe"]},
    "reasoning-gym": {"dataset": "basic_arithmetic"},
    "mix": {"components": [{"env": "answer-tag"}, {"env": "math"}]},
}


@pytest.fixture(scope="module", params=sorted(ENVS))
def case(request):
    env = make(request.param, **ENVS[request.param])
    task = env.task(env.task_id_at(0))
    return env, task, task_row(env, task)


def _verl(env, task, row, completion):
    return compute_score(env.name, completion, task.ground_truth,
                         {"env": env.name, "env_config": row["env_config"], "task": row["task"]})


NOT_TEXT = [None, b"<answer>7</answer>", bytearray(b"7"), [{"role": "assistant", "content": "7"}], {"content": "7"},
            7, float("nan"), ["a", "b"], ()]


def test_non_text_completions_score_zero_through_every_entry(case):
    env, task, row = case
    reward = EnvReward()
    for bad in NOT_TEXT:
        direct, verl = env.score(task, bad), _verl(env, task, row, bad)
        assert direct.value == 0.0 and direct.kind == "error" and direct.info["reason"], (env.name, bad, direct.info)
        assert verl["score"] == 0.0 and verl["kind"] == "error", (env.name, bad, verl)
    # TRL: a bare non-text completion, and assistant messages whose content is not text
    for bad in (None, 7, {"content": "7"}, [{"role": "assistant", "content": None}],
                [{"role": "assistant", "content": [{"type": "text", "text": None}]}],
                [{"role": "assistant", "content": [{"type": "text", "text": 7}]}]):
        got = reward(completions=[bad], task=[row["task"]], env=[env.name], env_config=[row["env_config"]])
        assert got == [0.0] and reward.last_scores[0].kind == "error", (env.name, bad, reward.last_scores[0].info)


def test_ten_megabytes_score_zero_fast_through_every_entry(case):
    env, task, row = case
    huge = "<answer>" + "9" * 10_000_000 + "</answer>"
    start = time.perf_counter()
    assert env.score(task, huge).kind == "too_long"
    assert _verl(env, task, row, huge)["kind"] == "too_long"
    assert EnvReward()(completions=[huge], task=[row["task"]], env=[env.name], env_config=[row["env_config"]]) == [0.0]
    assert time.perf_counter() - start < 5.0  # three 10 MB messages to the scoring worker and back


N = 190_000
FLOODS = {
    "open tags": "<answer>" * (N // 8),
    "close tags": "</answer>" * (N // 9),
    "distinct tags": "".join(f"<answer>{i}</answer>" for i in range(N // 22)),
    "boxes": "\\boxed{" * (N // 7),
    "closed boxes": "".join(f"\\boxed{{{i}}}" for i in range(N // 12)),
    "braces": "{" * N,
    "power towers": "<answer>9^9^9^9^9</answer> \\boxed{9^{9^{9^{9}}}} the answer is 9**9**9**9",
    "big integer": "<answer>" + "9" * 150_000 + "</answer> \\boxed{" + "9" * 30_000 + "}",
    "think tags": "<think>" * (N // 7),
    "closed thinks": "</think>" * (N // 8) + "x",
    "json": "[" * (N // 2) + '{"a":' * (N // 10),
    "fences": "```" * (N // 3),
    "digits": "1 " * (N // 2),
    "markers": "the answer is " * (N // 14),
    "deep parens": "<answer>" + "(" * 5_000 + "1" + ")" * 5_000 + "</answer>",
    "moves": "move: " + "e2e4 " * (N // 5),
}


def test_pathological_completions_are_fast_in_every_env(case):
    """Through the scoring guard's worker (verl's path): each flood scores 0 well inside the 5 s budget."""
    env, task, row = case
    _verl(env, task, row, "warm up")
    slowest = (0.0, "")
    for label, text in FLOODS.items():
        start = time.perf_counter()
        result = _verl(env, task, row, text)
        slowest = max(slowest, (time.perf_counter() - start, label))
        assert result["kind"] != "timeout", (env.name, label, result)
    assert slowest[0] < 1.0, (env.name, slowest)


def test_chat_template_tokens_in_the_completion(case):
    """verl decodes with skip_special_tokens, but a policy can spell the markers out as text."""
    env, task, row = case
    oracle = env.oracle(task)
    for wrapped in (f"<|im_start|>assistant\n{oracle}<|im_end|>", f"{oracle}<|endoftext|>", f"{oracle}</s>"):
        assert _verl(env, task, row, wrapped)["score"] == env.score(task, wrapped).value
    fake_turn = f"<|im_end|>\n<|im_start|>user\n{task.prompt[0]['content']}<|im_end|>\n<|im_start|>assistant\n"
    assert _verl(env, task, row, fake_turn)["score"] == 0.0


@pytest.mark.parametrize("gold", [None, float("nan"), np.float64("nan"), ["38"], np.array(["38"]), b"38", {"a": 1}])
@pytest.mark.parametrize("env_name", ["answer-tag", "math"])
def test_a_missing_or_malformed_ground_truth_fails_clearly(env_name, gold):
    """A parquet row with no gold (None; NaN is pandas' missing value) scored the answer "None" / "nan" 1.0
    in answer-tag (the gold compared as ``str(gold)``), and raised an unnamed TypeError in math."""
    completion = f"<answer>{gold}</answer> \\boxed{{{gold}}}"
    with pytest.raises(ValueError, match=r"ground_truth.*reward_model\.ground_truth.*(missing|not an answer)"):
        compute_score(env_name, completion, gold, {"env": env_name})


def test_a_serialised_task_without_a_gold_fails_clearly():
    env = make("answer-tag")
    data = env.task(0).to_dict()
    data["ground_truth"] = None
    with pytest.raises(ValueError, match=r"serialised task 'ground_truth' is missing"):
        compute_score("answer-tag", "<answer>None</answer>", None, {"env": "answer-tag", "task": json.dumps(data)})


@pytest.mark.parametrize("convert", [int, np.int64, np.int32, float, np.float64])
@pytest.mark.parametrize("env_name", ["answer-tag", "math"])
def test_a_numeric_ground_truth_column_still_scores(env_name, convert):
    """Parquet numbers arrive as numpy scalars: math raised TypeError on an np.int64 gold."""
    env = make(env_name)
    task = env.task(0)
    gold = convert(int(task.ground_truth))
    assert not (isinstance(gold, float) and math.isnan(gold))
    assert compute_score(env_name, env.oracle(task), gold, {"env": env_name})["score"] == 1.0
    assert compute_score(env_name, f"<answer>{int(gold) + 1}</answer>", gold, {"env": env_name})["score"] == 0.0


def test_mix_scores_each_task_with_its_own_component_only():
    """The component comes from the task (our data), never from the completion: an answer in another member's
    format scores 0, reasons and kinds pass through unchanged, and a task routed to the wrong env is refused."""
    mix = make("mix", **ENVS["mix"])
    tag_env, math_env = make("answer-tag"), make("math")
    for index in range(4):
        task = mix.task(mix.task_id_at(index))
        inner_env = tag_env if task.extra["inner_env"] == "answer-tag" else math_env
        inner = inner_env.task(task.extra["inner_task_id"])
        gold = task.ground_truth
        tag_form, box_form = f"<answer>{gold}</answer>", f"The final answer is \\boxed{{{gold}}}."
        own_form, other_form = (tag_form, box_form) if inner_env is tag_env else (box_form, tag_form)
        for text in (tag_form, box_form, "no idea", f"{other_form} {own_form}"):
            assert mix.score(task, text).info == inner_env.score(inner, text).info
        assert mix.score(task, other_form).value == 0.0
        row = task_row(mix, task)
        with pytest.raises(ValueError, match=r"belongs to env 'mix'.*routes it to env"):
            compute_score("x", tag_form, gold, {"env": inner_env.name, "task": row["task"]})

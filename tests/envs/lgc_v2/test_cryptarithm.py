"""lgc-v2 cryptarithm: any mapping that makes the sum true scores, malformed mappings do not."""

from __future__ import annotations

import itertools

import pytest

from veritas_rl.envs import make
from veritas_rl.envs.lgc_v2 import make_task_id


def test_cryptarithm_accepts_any_valid_mapping():
    env = make("lgc-v2", task_types=["cryptarithm"], cryptarithm_min_words=2, cryptarithm_max_words=2)
    task = env.task(make_task_id("cryptarithm", 11))
    gold = dict(pair.split("=") for pair in task.ground_truth.split(","))
    shuffled = ", ".join(f"{k} = {v}" for k, v in reversed(list(gold.items())))
    assert env.score(task, f"\\boxed{{{shuffled}}}").value == 1.0
    # search for another mapping that satisfies the same sum (brute force over digit permutations)
    words, result = task.extra["words"], task.extra["result"]
    letters = sorted(gold)
    alternatives = []
    if len(letters) <= 7:
        for digits in itertools.permutations(range(10), len(letters)):
            m = dict(zip(letters, digits))
            if any(m[w[0]] == 0 for w in words + [result]):
                continue
            val = lambda w: int("".join(str(m[c]) for c in w))  # noqa: E731
            if sum(map(val, words)) == val(result) and m != {k: int(v) for k, v in gold.items()}:
                alternatives.append(m)
                break
    for alt in alternatives:
        assert env.score(task, "\\boxed{" + ",".join(f"{k}={v}" for k, v in alt.items()) + "}").value == 1.0
    swapped = dict(gold)
    a, b = letters[0], letters[1]
    swapped[a], swapped[b] = swapped[b], swapped[a]
    bad = ",".join(f"{k}={v}" for k, v in swapped.items())
    assert env.score(task, f"\\boxed{{{bad}}}").value == 0.0
    assert "twice" in env.score(task, f"\\boxed{{{task.ground_truth},{letters[0]}=1}}").info["reason"]
    missing = ",".join(task.ground_truth.split(",")[1:])
    assert env.score(task, f"\\boxed{{{missing}}}").value == 0.0


def test_cryptarithm_some_task_has_alternative_solution_accepted():
    env = make("lgc-v2", task_types=["cryptarithm"], cryptarithm_min_words=2, cryptarithm_max_words=2)
    for seed in range(40):
        task = env.task(make_task_id("cryptarithm", seed))
        gold = {k: int(v) for k, v in (p.split("=") for p in task.ground_truth.split(","))}
        letters = sorted(gold)
        words, result = task.extra["words"], task.extra["result"]
        if len(letters) > 6:
            continue
        for digits in itertools.permutations(range(10), len(letters)):
            m = dict(zip(letters, digits))
            if m == gold or any(m[w[0]] == 0 for w in words + [result]):
                continue
            num = lambda w: int("".join(str(m[c]) for c in w))  # noqa: E731
            if sum(map(num, words)) == num(result):
                answer = ",".join(f"{k}={v}" for k, v in m.items())
                assert env.score(task, f"\\boxed{{{answer}}}").value == 1.0
                return
    pytest.fail("no cryptarithm with a second solution among 40 seeds")

"""lgc-v2 shared helpers: boxed-integer scoring and the range checks of the config."""

from __future__ import annotations

import pytest

from veritas_rl.envs.answers import CONFLICTING_BOXED
from veritas_rl.envs.base import Task
from veritas_rl.envs.lgc_v2.common import in_range, oracle_boxed, ordered, score_boxed_int


def _task(gold: str) -> Task:
    return Task("lgc-v2", 0, [{"role": "user", "content": "?"}], gold, {})


@pytest.mark.parametrize(
    "answer, gold, value, reason, kind",
    [
        ("\\boxed{42}", "42", 1.0, "correct", "correct"),
        ("so \\boxed{ +42 }", "42", 1.0, "correct", "correct"),
        ("\\boxed{$-7$}", "-7", 1.0, "correct", "correct"),
        ("\\boxed{-0}", "0", 1.0, "correct", "correct"),
        ("\\boxed{007}", "7", 1.0, "correct", "correct"),
        ("\\boxed{41}", "42", 0.0, "wrong number", "wrong"),
        ("\\boxed{42.0}", "42", 0.0, "boxed answer is not an integer", "no_answer"),
        ("\\boxed{4 2}", "42", 0.0, "boxed answer is not an integer", "no_answer"),
        ("\\boxed{--4}", "-4", 0.0, "boxed answer is not an integer", "no_answer"),
        ("\\boxed{" + "9" * 41 + "}", "42", 0.0, "boxed integer too long", "too_long"),
        ("no box, 42", "42", 0.0, "no \\boxed{} answer", "no_answer"),
        # boxes compare by value: 42 and 042 are one answer, 41 and 42 a hedge (either order)
        ("\\boxed{42} or \\boxed{ 042 }", "42", 1.0, "correct", "correct"),
        ("\\boxed{41} no, \\boxed{42}", "42", 0.0, CONFLICTING_BOXED, "hedge"),
        ("\\boxed{42} no, \\boxed{41}", "42", 0.0, CONFLICTING_BOXED, "hedge"),
        ("\\boxed{42} \\boxed{forty-two}", "42", 0.0, CONFLICTING_BOXED, "hedge"),
        ("\\boxed{41} \\boxed{041}", "42", 0.0, "wrong number", "wrong"),  # one wrong answer, twice
    ],
)
def test_score_boxed_int(answer, gold, value, reason, kind):
    score = score_boxed_int(_task(gold), answer)
    assert (score.value, score.info["reason"], score.kind) == (value, reason, kind)


def test_score_boxed_int_without_a_box_says_why():
    score = score_boxed_int(_task("3"), "the answer is 3")
    assert score.value == 0.0 and "boxed" in score.info["reason"]


def test_oracle_boxed_scores_one():
    for gold in ("0", "-15", "123456"):
        assert score_boxed_int(_task(gold), oracle_boxed(_task(gold))).value == 1.0


def test_range_checks():
    in_range("k", 3, 1, 3)
    for bad in (0, 4, True, 2.0, "2"):
        with pytest.raises(ValueError, match=rf"k={bad!r} is not valid; expected an integer in \[1, 3\]"):
            in_range("k", bad, 1, 3)
    ordered("lo", 2, "hi", 2)
    with pytest.raises(ValueError, match="lo=3 is greater than hi=2"):
        ordered("lo", 3, "hi", 2)

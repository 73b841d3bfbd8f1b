"""lgc-v2 game_of_24: any expression that makes 24 scores, the solver and the exact parser."""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction

import pytest

from veritas_rl.envs import make
from veritas_rl.envs.lgc_v2 import make_task_id
from veritas_rl.envs.lgc_v2.game_of_24 import ExpressionError, parse_arithmetic, solve_24


def test_game_of_24_accepts_any_valid_expression():
    env = make("lgc-v2", task_types=["game_of_24"])
    real = env.task(make_task_id("game_of_24", 0))
    # the scorer reads the numbers from the task: the classic 3 3 8 8 has one (fractional) solution
    task = dataclasses.replace(real, extra={**real.extra, "numbers": [8, 3, 8, 3]})
    assert env.score(task, "\\boxed{8/(3-8/3)}").value == 1.0
    assert env.score(task, "\\boxed{8 \\div (3 - 8 \\div 3)} = 24").value == 1.0
    assert env.score(task, "\\boxed{8/(3-8/3) = 24}").value == 1.0
    assert env.score(task, "\\boxed{\\frac{8}{3 - \\frac{8}{3}}}").value == 1.0
    assert env.score(task, "\\boxed{\\dfrac{8}{3 - \\dfrac{8}{3}} = 24}").value == 1.0
    assert env.score(task, "\\boxed{\\frac{8}{3 - \\frac{8}{4}}}").value == 0.0
    assert env.score(task, "\\boxed{8*3 + 8 - 8}").value == 0.0  # uses 8 three times
    assert "exactly once" in env.score(task, "\\boxed{8*3}").info["reason"]
    assert env.score(task, "\\boxed{8/(3-8/3) = 25}").value == 0.0
    assert env.score(task, "\\boxed{(8+8)/(3-3)}").info["reason"].endswith("division by zero")


def test_game_of_24_alternative_expressions_on_many_tasks():
    env = make("lgc-v2", task_types=["game_of_24"])
    checked = 0
    for seed in range(30):
        task = env.task(make_task_id("game_of_24", seed))
        nums = task.extra["numbers"]
        for perm in itertools.permutations(nums):
            a, b, c, d = perm
            for expr in (f"({a}+{b}+{c})*{d}", f"{a}*{b}-{c}*{d}", f"({a}-{b})*({c}+{d})", f"{a}*{b}*{c}/{d}"):
                value = parse_arithmetic(expr)[0]
                expected = 1.0 if value == 24 else 0.0
                assert env.score(task, f"\\boxed{{{expr}}}").value == expected, (nums, expr)
                checked += expected == 1.0
    assert checked > 5  # some of these shapes do solve some puzzles


def test_solve_24_and_parser():
    assert solve_24((1, 1, 1, 1)) is None
    assert parse_arithmetic(solve_24((3, 3, 8, 8)))[0] == 24
    assert solve_24((4, 4, 10, 10)) is not None  # (10*10-4)/4
    assert parse_arithmetic("(1+2)*3-4/8") == (Fraction(17, 2), [1, 2, 3, 4, 8])
    for bad in ("2**3", "-3+27", "1+", "(1+2", "eval('1')", "1/0", "3 4"):
        with pytest.raises(ExpressionError):
            parse_arithmetic(bad)

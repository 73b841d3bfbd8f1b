"""math: red-team findings — right answers that scored 0, wrong ones that paid, hedges that slipped through.

Each case failed before its fix (see the report in docs/environments.md, ``math``)."""

from __future__ import annotations

import time

import pytest

from veritas_rl.envs import Task, make
from veritas_rl.envs.safe_expr import ExprError, canonical, parse


def _task(gold: str) -> Task:
    return Task("math", 0, [{"role": "user", "content": "q"}], gold, {})


@pytest.fixture(scope="module")
def env():
    return make("math")


@pytest.mark.parametrize("gold, completion", [
    ("42", "The answer is **42**."),  # emphasis before the closing period
    ("42", "The answer is **$42**."),
    ("42", "The answer is *42*."),
    ("42", "the answer is 42;"),
    ("42", "**Answer:** 42"),  # "Answer:" is a marker
    ("42", "Answer: 42"),
    ("42", "The final answer is\n$$42$$"),  # the marker ends its line: the display block after it
    ("42", "The answer is:\n\n\\[42\\]"),
    ("42", "The final answer is:\n42"),
    ("2.5", "\\boxed{2\\frac{1}{2}}"),  # a mixed number
    ("-2.5", "\\boxed{-2\\dfrac{1}{2}}"),
    ("12.75", "\\boxed{12 \\tfrac34}"),
    ("42", "\\boxed {42}"),  # LaTeX allows a space before the argument
    ("42", "\\boxed 42"),
    ("42", "\\boxed{\\boxed{42}}"),
    ("42", "\\boxed{6 \\times 7 = 42}"),  # a worked answer whose sides agree
    ("42", "The answer is 40 + 2 = 42."),
    ("42", "\\boxed{x = 6 \\cdot 7 = 42}"),
    ("42", "\\boxed{42 \\text{ cm}^2}"),  # a unit with a power
    ("42", "\\boxed{42\\ \\text{cm}}"),  # a LaTeX space before the unit
    ("2\\sqrt{3}\\text{ cm}^2", "\\boxed{\\sqrt{12}}"),
])
def test_right_answers_in_common_forms_score_one(env, gold, completion):
    score = env.score(_task(gold), completion)
    assert score.value == 1.0, score.info


@pytest.mark.parametrize("gold, completion, kind", [
    ("1", "\\boxed{2\\frac{1}{2}}", "wrong"),  # 2 1/2, not 2 * 1/2
    ("3", "\\boxed{2\\frac{3}{2}}", "no_answer"),  # mixed number or product: ambiguous
    ("1", "\\boxed{2\\frac{1}{2}x}", "no_answer"),
    ("42", "\\boxed {43} \\boxed{42}", "hedge"),  # a spaced box is a box
    ("42", "\\boxed{42} \\boxed 43", "hedge"),
    ("42", "\\boxed{\\boxed{42}\\boxed{43}}", "no_answer"),
    ("42", "\\boxed{43 = 42}", "no_answer"),  # sides that differ state no answer
    ("43", "\\boxed{43 = 42}", "no_answer"),
    ("42", "\\boxed{x = 43 = 42}", "no_answer"),
    ("2", "\\boxed{2x = 4}", "no_answer"),  # an equation, not its solution
    ("42", "Answer: 43\n\\boxed{42}", "hedge"),  # the marker line and the box disagree
    ("42", "The answer is **43**.\n\\boxed{42}", "hedge"),
    ("42", "The final answer is\n$$43$$\n\\boxed{42}", "hedge"),
])
def test_wrong_answers_and_hedges_score_zero(env, gold, completion, kind):
    score = env.score(_task(gold), completion)
    assert score.value == 0.0 and score.kind == kind and score.info["reason"], score.info


@pytest.mark.parametrize("text, printed", [
    ("2\\frac{1}{2}", "2.5"), ("-2\\frac{1}{2}", "-2.5"), ("2 \\frac12", "2.5"), ("2\\frac{10}{20}", "2.5"),
    ("x^2\\frac{1}{2}", "x**2*(1/2)"),  # a bare exponent is not the whole part of a mixed number
    ("x^{2\\frac12}", "x**2.5"), ("2\\frac{x}{2}", "2*(x/2)"), ("2.5\\frac12", "2.5*(1/2)"), ("3\\cdot\\frac12", "3*(1/2)"),
])
def test_mixed_numbers_in_the_grammar(text, printed):
    assert canonical(parse(text, symbols=frozenset("x"))) == printed


@pytest.mark.parametrize("text", ["2\\frac{3}{2}", "2\\frac{0}{2}", "2\\frac{1}{2}x", "2\\frac12^2", "2\\frac{1}{2}!"])
def test_ambiguous_mixed_numbers_are_refused(text):
    with pytest.raises(ExprError):
        parse(text, symbols=frozenset("x"))


def test_mixed_numbers_are_not_the_given_integers_in_countdown():
    from veritas_rl.envs.reasoning_gym.guards import arithmetic_over_numbers

    guarded = arithmetic_over_numbers("2\\frac{1}{2}", {"metadata": {"numbers": [2, 1, 2]}}, target=1)
    assert guarded.text is None and guarded.kind == "illegal"


@pytest.mark.parametrize("flood", [
    "The final answer is\n" + "$$" + " " * 150_000,
    "The final answer is\n\n" + "\n" * 150_000,
    "answer:" * 25_000,
    "\\boxed " * 30_000,
    "\\boxed {" * 30_000,
    "\\boxed{" + "1 = " * 70 + "1}",
])
def test_new_extraction_paths_stay_linear(env, flood):
    start = time.perf_counter()
    score = env.score(_task("42"), flood)
    assert score.value == 0.0 and score.info["reason"]
    assert time.perf_counter() - start < 0.1


def test_an_expression_built_to_meet_the_gold_at_the_fixed_points_scores_zero():
    """The three fixed evaluation points are public: the gold plus a cubic vanishing exactly there agrees with the
    gold at all three (it scored 1.0). The reply is also checked at points keyed by its own text."""
    from veritas_rl.envs.math_env import _POINT_BASES, _symbol_value, answer_bases, compare_math, gold_reading

    roots = [repr(_symbol_value("x", b)) for b in _POINT_BASES]
    hack = "x^2 + " + "".join(f"(x - {r})" for r in roots)
    got = compare_math("x^2", hack)
    assert got.value == 0.0 and got.info["kind"] == "wrong"
    for right in ("x \\cdot x", "x^{2}", "\\frac{2x^2}{2}", "(-x)^2"):  # equal expressions agree at every point
        assert compare_math("x^2", right).value == 1.0, right
    assert compare_math("(x+1)^2", "x^2+2x+1").value == 1.0
    # golds only math-verify reads (outside our grammar): their sympy reading is checked at the reply's points too
    cubic = "".join(f"(x - {r})" for r in roots)
    for gold, right in (("|x|^2", "x \\cdot x"), ("x+y \\text{ units}^2", "y+x")):
        assert gold_reading(gold)[0] == "value", gold
        assert compare_math(gold, f"{right} + {cubic}").value == 0.0, gold
        assert compare_math(gold, right).value == 1.0, gold
    assert answer_bases(["x^2"]) == answer_bases(["x^2"]) != answer_bases(["x^{2}"])  # pure, and keyed by the text
    assert all(0.5 <= b <= 1.3 for b in answer_bases([hack]))

"""answers: the shared slot extraction (boxes, tags, markers) is linear time and its hedge check compares by key."""

from __future__ import annotations

import time

import pytest

from veritas_rl.envs.answers import (
    CONFLICTING_BOXED,
    MAX_BOXED_ANSWERS,
    after_last_marker,
    boxed_answer,
    boxed_answers,
    distinct_answers,
    last_boxed,
    last_fenced_block,
    last_tag,
)

N = 100_000
FLOODS = [
    "<answer>" * (N // 8),
    "</answer>" * (N // 9),
    "<answer></answer>" * (N // 17),
    "\\boxed{" * (N // 7),
    "\\boxed{}" * (N // 8),
    "\\boxed{1}" * (N // 9),
    "\\boxed{" + "{" * N,
    "{" * N + "\\boxed{",
    "}" * N + "\\boxed{1}",
    "\\fbox{\\boxed{" * (N // 13),
    "\\boxed{" + "x" * N + "}",
    "the answer is " * (N // 14),
    "```" * (N // 3),
]


@pytest.mark.parametrize("flood", FLOODS, ids=range(len(FLOODS)))
def test_floods_are_linear(flood):
    start = time.perf_counter()
    boxed_answers(flood)
    boxed_answer(flood)
    last_boxed(flood)
    last_tag(flood)
    after_last_marker(flood, "the answer is")
    last_fenced_block(flood)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05, elapsed


def test_flood_cost_grows_linearly():
    def cost(n):
        box, tag, braces = "\\boxed{" * n, "<answer>" * n, "\\boxed{" + "{}" * n
        best = float("inf")
        for _ in range(5):  # the best of five: the machine is shared
            start = time.perf_counter()
            boxed_answers(box)
            last_tag(tag)
            boxed_answers(braces)
            best = min(best, time.perf_counter() - start)
        return best

    small, large = cost(2_000), cost(20_000)
    assert large < 30 * small + 0.005, (small, large)  # ten times the input: ~ten times the time, not a hundred


def test_boxed_answers_top_level_in_order():
    assert boxed_answers("\\boxed{1} x \\fbox{2} \\boxed{\\boxed{3}} \\boxed{4") == ["1", "2", "\\boxed{3}"]
    assert boxed_answers("\\boxed{\\frac{1}{2}}") == ["\\frac{1}{2}"]
    assert len(boxed_answers("\\boxed{1}" * 1000)) == MAX_BOXED_ANSWERS + 1


def test_hedge_check_uses_the_given_comparison():
    assert boxed_answer("\\boxed{True} \\boxed{ True }") == (" True ", "ok")  # the last box, as written
    assert boxed_answer("\\boxed{True} \\boxed{False}") == (None, CONFLICTING_BOXED)
    assert boxed_answer("\\boxed{18} \\boxed{18.0}") == (None, CONFLICTING_BOXED)  # by text by default
    by_value = lambda a, b: float(a) == float(b)  # noqa: E731
    assert boxed_answer("\\boxed{18} \\boxed{18.0}", same=by_value) == ("18.0", "ok")
    assert boxed_answer("nothing") == (None, "no \\boxed{} answer")


def test_distinct_answers_stops_early():
    calls = []

    def same(a, b):
        calls.append((a, b))
        return a == b

    assert distinct_answers([1, 1, 2, 3, 4, 5], same) == [1, 2]
    assert len(calls) == 2  # stopped at the second distinct answer
    assert distinct_answers([1, 2, 3], same, stop_at=10) == [1, 2, 3]


# -- <answer> markup that does not pair cleanly ---------------------------------------------------


@pytest.mark.parametrize("text, kind", [
    ("<answer>39<answer>38</answer>", "no_answer"),  # an opener inside a block: "39" hidden from the reader
    ("<answer>38</answer> <answer>39<answer>38</answer>", "hedge"),
    ("<answer>0</answer></answer><answer>1", "hedge"),  # then an unclosed "1"
    ("<answer>0</answer> 1</answer>", "hedge"),  # a stray closer after text
    ("<ANSWER>39</ANSWER> <answer>38</answer>", "no_answer"),  # another case: skipped by exact-case readers
    ("<Answer>38</answer>", "no_answer"),
])
def test_tag_markup_problem_names_markup_that_hides_an_answer(text, kind):
    from veritas_rl.envs.answers import tag_markup_problem

    problem = tag_markup_problem(text)
    assert problem is not None and problem[1] == kind and "<answer>" in problem[0], problem


@pytest.mark.parametrize("text", [
    "42", "<answer>42</answer>", "<answer>41</answer> no, <answer>42</answer>",  # pairs: the hedge rule decides
    "<answer><answer>42</answer>", "<answer>42</answer></answer>", "<answer>42</answer> <answer>  ",  # blank strays
    "<answer>42",  # nothing closed: the reader's "no tag"
    "<answer>" * 30_000, "</answer>" * 20_000, "<answer></answer>" * 10_000,
])
def test_tag_markup_problem_lets_clean_or_blank_markup_through(text):
    from veritas_rl.envs.answers import tag_markup_problem

    assert tag_markup_problem(text) is None


def test_tag_markup_problem_is_linear_on_floods():
    import time

    from veritas_rl.envs.answers import tag_markup_problem

    for flood in ("<answer>2" * 20_000 + "</answer>", "2</answer>" * 20_000, "<answer>x</answer>" * 10_000 + "<answer>"):
        start = time.perf_counter()
        tag_markup_problem(flood)
        assert time.perf_counter() - start < 0.05, flood[:20]


@pytest.mark.parametrize("env_name, config", [("answer-tag", {}), ("openspiel", {}), ("reasoning-gym", {"size": 5})])
def test_every_tag_env_refuses_markup_that_hides_a_second_answer(env_name, config):
    from veritas_rl.envs import make

    env = make(env_name, **config)
    task = env.task(env.task_id_at(0))
    oracle = env.oracle(task)
    assert env.score(task, oracle).value == 1.0
    gold = oracle.split("<answer>")[1].split("</answer>")[0]
    for hedge in (f"<answer>zz9<answer>{gold}</answer>", f"<ANSWER>zz9</ANSWER> <answer>{gold}</answer>",
                  f"<answer>{gold}</answer></answer><answer>zz9"):
        score = env.score(task, hedge)
        assert score.value == 0.0 and "<answer>" in score.info["reason"], (env_name, hedge, score)

"""answer-tag: red-team findings — wrong answers that paid, hedges that slipped through, right answers that scored 0.

The attacks failed before their fix; the forms next to them (right answers, near misses) keep the fixes from
reaching too far (see docs/environments.md, ``answer-tag``)."""

from __future__ import annotations

import time

import pytest

from veritas_rl.envs import Task, make
from veritas_rl.envs.answer_tag import normalize_answer
from veritas_rl.envs.answers import parse_number


@pytest.fixture(scope="module")
def env():
    return make("answer-tag")


def _task(gold: str) -> Task:
    return Task("answer-tag", 0, [{"role": "user", "content": "What is the capital city of France?"}], gold, {})


@pytest.mark.parametrize("gold, answer", [
    ("23", "2³"),  # NFKC folds superscripts into digits: 2³ (8) became "23"
    ("106", "10⁶"),
    ("11/2", "1½"),  # NFKC folds ½ into "1⁄2": 1½ (1.5) would become 11/2
    ("5.5", "1½"),
    ("12", "1 2"),  # spaces between digits were dropped: a list of 1 and 2 became 12
    ("123", "1 2 3"),
    ("78", "7$8"),  # every "$" was dropped, not only a currency sign
    ("78", "$7$8"),
])
def test_normalisation_does_not_turn_another_value_into_the_gold(env, gold, answer):
    score = env.score(_task(gold), f"<answer>{answer}</answer>")
    assert score.value == 0.0 and score.kind == "wrong", score.info


@pytest.mark.parametrize("gold, answer", [
    ("2^3", "2³"),  # a superscript is a power
    ("x^2", "x²"),
    ("H2O", "H₂O"),  # subscripts still fold
    ("7", "７"),  # full-width digits still fold
    ("7", "7\u200b"),  # invisible characters: zero-width space, bidi marks, soft hyphen, BOM
    ("7", "\u200e7"),
    ("7", "\u202e7"),
    ("paris", "Par\u00adis"),
    ("7", "\ufeff7"),
    ("0.5", "½"),  # a vulgar fraction alone is its value
    ("1/2", "1⁄2"),  # the fraction slash
    ("7", "**7**"),  # markup around the whole answer
    ("7", "*7*"),
    ("7", "`7`"),
    ("7", "$$7$$"),
    ("7", "\\(7\\)"),
    ("7", "\\boxed{7}"),
    ("7", "\\text{7}"),
    ("7", "**$7$**."),
    ("Paris", "**Paris**"),
    ("5", "5$"),  # currency signs in front or behind
    ("-5", "-$5"),
    ("-5", "$-5"),
    ("5", "$ 5"),
])
def test_right_answers_in_common_forms_score_one(env, gold, answer):
    score = env.score(_task(gold), f"<answer>{answer}</answer>")
    assert score.value == 1.0, score.info


@pytest.mark.parametrize("gold, answer", [
    ("7", "**7** or **8**"),  # markup is unwrapped only around the whole answer
    ("7", "\\boxed{7} \\boxed{8}"),
    ("7", "$7$ or $8$"),
    ("7", "7\u200b8"),  # an invisible character does not split one answer into two
    ("*", "**"),
])
def test_unwrapping_markup_does_not_accept_two_answers(env, gold, answer):
    assert env.score(_task(gold), f"<answer>{answer}</answer>").value == 0.0


def test_a_flood_of_tags_hides_no_hedge(env):
    """Only the first 65 tags were read: a different answer past them escaped the hedge check."""
    task = _task("7")
    text = "<answer>7</answer>" * 70 + "<answer>8</answer>" + "<answer>7</answer>"
    score = env.score(task, text)
    assert score.value == 0.0 and score.kind == "hedge", score.info
    assert env.score(task, "<answer>7</answer>" * 64).value == 1.0  # repeating one answer is fine


def test_padding_a_tag_past_the_length_bound_hides_no_hedge(env):
    """Tags over 10,000 raw characters were left out of the hedge check: whitespace padding hid a second answer."""
    task = _task("7")
    for padded in ("8" + " " * 10_001, " " * 10_001 + "8", "8" + "\n" * 10_001):
        score = env.score(task, f"<answer>{padded}</answer> <answer>7</answer>")
        assert score.value == 0.0 and score.kind == "hedge", score.info


def test_a_copy_of_the_prompt_hides_no_hedge(env):
    """The text before the last copy of the prompt was dropped before the hedge check: a wrong answer
    there, then the prompt (or its question), then the gold, scored 1.0."""
    for i in range(3):
        task = env.task(i)
        prompt, gold = task.prompt[0]["content"], task.ground_truth
        question = prompt.split("\n")[0]
        wrong = str(int(gold) + 1)
        for copy in (prompt, question):
            score = env.score(task, f"<answer>{wrong}</answer>\n{copy}\n<answer>{gold}</answer>")
            assert score.value == 0.0 and score.kind == "hedge", score.info
        # the copy itself (with its format example) is still not an answer, and the gold after it still counts
        assert env.score(task, f"{prompt}\n<answer>{gold}</answer>").value == 1.0
        assert env.score(task, f"<answer>{gold}</answer>\n{prompt}\n<answer>{gold}</answer>").value == 1.0


def test_a_copy_of_the_prompt_hides_no_boxed_hedge_in_math():
    """The same cut in ``math`` (the prompt-echo logic both question/answer envs share)."""
    env = make("math")
    for i in range(3):
        task = env.task(i)
        prompt, gold = task.prompt[0]["content"], task.ground_truth
        wrong = str(int(gold) + 1)
        score = env.score(task, f"\\boxed{{{wrong}}}\n{prompt}\n\\boxed{{{gold}}}")
        assert score.value == 0.0 and score.kind == "hedge", score.info
        assert env.score(task, f"\\boxed{{{gold}}}\n{prompt}\n\\boxed{{{gold}}}").value == 1.0
        assert env.score(task, f"{prompt}\nThe answer is \\boxed{{{gold}}}.").value == 1.0


def test_parse_number_keeps_spaces_and_dollars_meaningful():
    assert parse_number("1 2") is None and parse_number("7$8") is None
    assert parse_number("$ 5") == 5 and parse_number("-$5") == -5 and parse_number("- 5") == -5
    assert parse_number("50 %") == 50 and parse_number("$1,234.50") == parse_number("1234.5")


def test_normalize_answer_forms():
    assert normalize_answer("2³") == "2^3" and normalize_answer("x⁻¹") == "x^-1"
    assert normalize_answer("1½") == "1 1/2"
    assert normalize_answer("\u200b**Paris**.\u200e") == "paris"


def test_hostile_answers_are_fast(env):
    task = _task("7")
    texts = [
        "<answer>" + "²" * 9_000 + "</answer>",
        "<answer>" + "½" * 9_000 + "</answer>",
        "<answer>" + "\u200b" * 150_000 + "7</answer>",
        "<answer>" + "**" * 4_000 + "7" + "**" * 4_000 + "</answer>",
        "<answer>" + "\\boxed{" * 1_000 + "7" + "}" * 1_000 + "</answer>",
        ("<answer>" + " " * 20_000 + "</answer>") * 9,
        "<answer>7</answer>" * 11_000,
        "<answer>1e999999</answer>",
    ]
    start = time.perf_counter()
    for text in texts:
        assert env.score(task, text).value == 0.0
    assert time.perf_counter() - start < 1.0

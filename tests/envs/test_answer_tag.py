"""answer-tag: last <answer> tag, normalisation, data sources."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from veritas_rl.envs import Task, make
from veritas_rl.envs.answer_tag import normalize_answer


@pytest.fixture(scope="module")
def env():
    return make("answer-tag")


def _task(gold: str) -> Task:
    return Task("answer-tag", 0, [{"role": "user", "content": "q"}], gold, {})


@pytest.mark.parametrize(
    "gold, answer",
    [
        ("Paris", "paris"),
        ("Paris", "  Paris. "),
        ("New  York", "new york"),
        ("new york", "New\nYork."),
        ("1234", "1,234"),
        ("7", "7.0"),
        ("7", "$7"),
        ("-3", "-3"),
        ("0.5", ".5"),
        ("(a, b)", "(A, B)"),
        ("1000", "1 000"),
        ("50", "50%"),
        ("-3", "−3"),
    ],
)
def test_normalised_exact_match(env, gold, answer):
    assert env.score(_task(gold), f"reasoning... <answer>{answer}</answer>").value == 1.0


@pytest.mark.parametrize(
    "gold, answer",
    [
        ("Paris", "Paris, France"),
        ("7", "7 apples"),
        ("7", "8"),
        ("New York", "NewYork"),
        ("yes", "no"),
        ("12", "1.2"),
        ("7", "3+4"),  # exact match: expressions are not evaluated
        ("918", "9, 18"),
        ("918", "9,18"),
        ("18", "[18]"),  # a list of one, not 18
        ("18", "(18)"),
    ],
)
def test_mismatch(env, gold, answer):
    score = env.score(_task(gold), f"<answer>{answer}</answer>")
    assert score.value == 0.0 and score.info["reason"] == "answer does not match" and score.kind == "wrong"


def test_different_tags_are_a_hedge_and_missing_tags(env):
    task = _task("42")
    assert env.score(task, "<answer>41</answer> no wait <answer>42</answer>").kind == "hedge"  # any order
    assert env.score(task, "<answer>42</answer> yes, <answer> 42. </answer>").value == 1.0
    assert env.score(task, "<answer>your answer</answer> <answer></answer> <answer>42</answer>").value == 1.0
    assert env.score(task, "<answer>42</answer> no wait <answer>41</answer>").value == 0.0
    for text, reason in (
        ("42", "no <answer>...</answer> tag"),
        ("<answer>42", "no <answer>...</answer> tag"),
        ("<answer> </answer>", "empty <answer> tag"),
        ("<think><answer>42</answer></think>", "empty answer"),  # the gold only inside the thinking
        ("<think><answer>42</answer></think> done", "no <answer>...</answer> tag"),
        ("<answer>your answer</answer>", "the prompt's format example, not an answer"),
    ):
        score = env.score(task, text)
        assert score.info["reason"] == reason and score.kind == "no_answer", (text, score.info)


def test_normalize_answer():
    assert normalize_answer("  The  Eiffel\tTower. ") == "the eiffel tower"
    assert normalize_answer("1,000.0") == "1000"
    assert normalize_answer("ＡＢＣ") == "abc"  # full-width letters fold (NFKC)


def test_default_offline_small_sums(env):
    for i in (0, 1, 99):
        task = env.task(i)
        text = task.prompt[0]["content"]
        assert "<answer>" in text and text.count("+") == 1
        a, b = (int(x) for x in text.split("Calculate ")[1].split(".")[0].split(" + "))
        assert task.ground_truth == str(a + b)
        assert env.score(task, env.oracle(task)).value == 1.0
        assert env.score(task, f"<answer>{a + b + 1}</answer>").value == 0.0


def test_local_jsonl_and_parquet(tmp_path):
    rows = [{"prompt": "Capital of France?", "gold": "Paris"}, {"prompt": "2+2?", "gold": "#### 4"}]
    jsonl = tmp_path / "qa.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows))
    parquet = tmp_path / "qa.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    for path in (jsonl, parquet):
        env = make("answer_tag", data_files=[str(path)], question_key="prompt", answer_key="gold")
        assert env.num_tasks == 2
        assert env.task(0).prompt[0]["content"].startswith("Capital of France?")
        assert env.score(env.task(0), "<answer>paris</answer>").value == 1.0
        assert env.task(1).ground_truth == "4"
        assert env.score(env.task(1), "<answer>4.0</answer>").value == 1.0
    with pytest.raises(ValueError, match=r"answer_key='answer' is not a column; choose from: prompt, gold"):
        make("answer-tag", data_files=[str(jsonl)], question_key="prompt")


def test_long_answer_is_fast(env):
    import time

    task = _task("x")
    start = time.perf_counter()
    for text in ("<answer>" * 30_000, "<answer>" + "x " * 90_000 + "</answer>", "</answer>" * 20_000):
        assert env.score(task, text).value == 0.0
    assert time.perf_counter() - start < 0.5
    assert env.score(task, "<answer>" + "x " * 90_000 + "</answer>").kind == "too_long"


def test_copying_the_prompt_scores_zero(env):
    for i in range(10):
        task = env.task(i)
        prompt = task.prompt[0]["content"]
        for echo in (prompt, prompt + "\n" + prompt):
            score = env.score(task, echo)
            assert score.value == 0.0 and score.kind == "no_answer", score.info
        assert env.score(task, f"{prompt}\n<answer>{task.ground_truth}</answer>").value == 1.0


def test_a_gold_that_is_the_format_example_still_scores():
    assert make("answer-tag").score(_task("your answer"), "<answer>Your answer</answer>").value == 1.0

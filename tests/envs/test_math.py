"""math / gsm8k: extraction order, numeric normalisation, math-verify, local parquet/jsonl loading."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from veritas_rl.envs import Task, make
from veritas_rl.envs.answers import CONFLICTING_BOXED
from veritas_rl.envs.math_env import compare_math, extract_answer, gold_answer, normalize_numeric

GSM8K_ROWS = [
    {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
    },
    {
        "question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
        "How much did she earn?",
        "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nShe earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10",
    },
    {"question": "A shop sells 1,200 pens a day. How many in 5 days?", "answer": "#### 6,000"},
]


def _task(gold: str) -> Task:
    return Task("math", 0, [{"role": "user", "content": "q"}], gold, {})


@pytest.fixture(scope="module")
def env():
    return make("math")


@pytest.mark.parametrize(
    "text, expected, how",
    [
        ("The answer is 5. Therefore \\boxed{7}.", "7", "boxed"),
        ("\\boxed{3} first, then \\boxed{\\frac{1}{2}}", None, CONFLICTING_BOXED),  # one final answer only
        ("\\boxed{\\frac{1}{2}}, i.e. \\boxed{ \\frac{1}{2} }", "\\frac{1}{2}", "boxed"),
        ("\\boxed{\\sqrt{\\frac{a}{b}}}", "\\sqrt{\\frac{a}{b}}", "boxed"),
        ("Final answer: 3. Checking again, the answer is 4.", "4", "the answer is"),
        ("The answer is 4. Final answer: 3", "4", "the answer is"),
        ("So the answer is $1,234.50.", "1,234.50", "the answer is"),
        ("The answer is: **42**", "42", "the answer is"),
        ("The answer is \\(42\\). Done.", "\\(42\\)", "the answer is"),
        ("#### 5\n**Final Answer:** 6", "6", "final answer"),
        ("The final answer is 12 apples. That is all.", "12 apples", "final answer"),
        ("work...\n#### 72", "72", "####"),
        ("#### Step 1\nadd 5 and 7\n#### Step 2\nso we get 12", "12", "last number"),
        ("I think 3, no wait, 8", "8", "last number"),
        ("it costs 2,500 dollars", "2500", "last number"),
        ("no digits here", None, "none"),
        ("\\boxed{unclosed 5", "5", "last number"),
    ],
)
def test_extraction_order(text, expected, how):
    assert extract_answer(text) == (expected, how)


@pytest.mark.parametrize(
    "gold, answer",
    [
        ("1234", "$1,234"),
        ("72", "72.0"),
        ("72", "72.00"),
        ("50", "50%"),
        ("50", "50\\%"),
        ("18", "\\$18"),
        ("18", "18 dollars"),
        ("-3", "-3"),
        ("0.5", "\\frac{1}{2}"),
        ("0.5", ".5"),
        ("6000", "6,000"),
        ("6,000", "6000"),
        ("2.5", "5/2"),
        ("12", "x = 12"),
        ("42", "\\(42\\)"),
        ("42", "$42$"),
        ("18", "\\text{18 dollars}"),
    ],
)
def test_numeric_normalisation_matches(gold, answer):
    score = compare_math(gold, answer)
    assert score.value == 1.0, score.info


@pytest.mark.parametrize(
    "gold, answer", [("72", "73"), ("1234", "1,235"), ("0.5", "0.51"), ("18", "18 or 19"), ("5", "-5")]
)
def test_numeric_mismatch(gold, answer):
    score = compare_math(gold, answer)
    assert score.value == 0.0 and score.info["reason"]


def test_normalize_numeric_values():
    from fractions import Fraction

    assert normalize_numeric("$1,234.50") == Fraction(246_9, 2)
    assert normalize_numeric("\\dfrac{3}{4}") == Fraction(3, 4)
    assert normalize_numeric("-\\frac{3}{4}") == Fraction(-3, 4)
    assert normalize_numeric("1,23") is None  # not a thousands separator
    assert normalize_numeric("two") is None


@pytest.mark.parametrize(
    "gold, answer, ok",
    [
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
        ("x^2+2x+1", "(x+1)^2", True),
        ("x^2+2x+1", "(x+1)^3", False),
        ("\\pi/2", "\\frac{\\pi}{2}", True),
        ("\\{1, 2\\}", "\\{2, 1\\}", True),
        ("3\\sqrt{3}", "\\sqrt{27}", True),
        ("3\\sqrt{3}", "\\sqrt{28}", False),
    ],
)
def test_math_verify_symbolic(gold, answer, ok):
    score = compare_math(gold, answer)
    assert (score.value == 1.0) is ok, score.info
    if ok:
        assert score.info["match"] in ("math-verify", "exact")


def test_delimited_answers_through_the_env(env):
    task = _task("42")
    for text in ("The answer is \\(42\\).", "Final answer: $42$", "The answer is: **42**", "#### 42"):
        assert env.score(task, text).value == 1.0, text


def test_symbolic_through_the_env(env):
    task = _task("\\frac{\\sqrt{2}}{2}")
    assert env.score(task, "so we get \\boxed{\\frac{1}{\\sqrt{2}}}").value == 1.0
    assert env.score(task, "so we get \\boxed{\\frac{1}{\\sqrt{3}}}").value == 0.0
    plain = make("math", use_math_verify=False)
    assert plain.score(task, "\\boxed{\\frac{1}{\\sqrt{2}}}").value == 0.0
    assert plain.score(task, "\\boxed{\\frac{\\sqrt{2}}{2}}").value == 1.0


def test_long_inputs_are_fast(env):
    task = _task("x^2+1")
    cases = [
        "\\boxed{" + "9 " * 5000 + "}",  # huge boxed: not handed to math-verify
        "9 " * 95_000,
        "\\boxed{" * 20_000,
        "the answer is " * 10_000,
        ("(" * 50_000) + ")" * 50_000,
    ]
    start = time.perf_counter()
    for text in cases:
        score = env.score(task, text)
        assert score.value == 0.0 and score.info["reason"]
    assert time.perf_counter() - start < 1.0
    assert "longer than" in env.score(task, cases[0]).info["reason"]


@pytest.mark.parametrize("answer", ["10^{99999999}", "9^{9^{9}}", "100000!", "2**99999999", "1e999999999", "2^{1000}"])
def test_answers_that_would_explode_in_sympy_score_zero_fast(env, answer):
    for gold in ("x^2", "42"):
        start = time.perf_counter()
        score = env.score(_task(gold), f"\\boxed{{{answer}}}")
        assert score.value == 0.0 and score.info["reason"]
        assert time.perf_counter() - start < 0.2, answer


def test_gold_answer_forms():
    assert gold_answer(GSM8K_ROWS[0]["answer"]) == "72"
    assert gold_answer("so \\boxed{\\frac{1}{2}} is it") == "\\frac{1}{2}"
    assert gold_answer(" 17 ") == "17"


def test_default_is_offline_gsm_symbolic(env):
    assert env.num_tasks == 10_000
    task = env.task(5)
    assert "\\boxed{}" in task.prompt[0]["content"]
    assert normalize_numeric(task.ground_truth) is not None
    assert env.score(task, env.oracle(task)).value == 1.0
    assert env.score(task, f"The answer is {task.ground_truth}.").value == 1.0
    wrong = str(int(float(task.ground_truth)) + 1)
    assert env.score(task, f"\\boxed{{{wrong}}}").value == 0.0
    assert make("math", seed=1).task(5) != task


def _write_files(tmp_path):
    rows = [{"q": r["question"], "a": r["answer"], "other": i} for i, r in enumerate(GSM8K_ROWS)]
    parquet = tmp_path / "gsm.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    jsonl = tmp_path / "gsm.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return parquet, jsonl


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_local_file_loading(tmp_path, kind):
    parquet, jsonl = _write_files(tmp_path)
    path = parquet if kind == "parquet" else jsonl
    env = make("gsm8k", data_files=[str(path)], question_key="q", answer_key="a")
    assert env.num_tasks == 3
    task = env.task(0)
    assert task.prompt[0]["content"].startswith("Natalia sold clips")
    assert task.ground_truth == "72" and task.extra["source"] == "files"
    assert env.score(task, "48 + 24 = 72, so the answer is 72.").value == 1.0
    assert env.score(task, "#### 71").value == 0.0
    assert env.task(2).ground_truth == "6,000"
    assert env.score(env.task(2), "\\boxed{6000}").value == 1.0
    assert env.score(env.task(1), "She earned $10.00.").value == 1.0


def test_local_files_concatenate_and_max_tasks(tmp_path):
    parquet, jsonl = _write_files(tmp_path)
    env = make("math", data_files=f"{parquet},{jsonl}", question_key="q", answer_key="a")
    assert env.num_tasks == 6
    assert env.task(3).ground_truth == "72"
    assert make("math", data_files=[str(parquet)], question_key="q", answer_key="a", max_tasks=2).num_tasks == 2


def test_file_config_errors(tmp_path):
    parquet, _ = _write_files(tmp_path)
    with pytest.raises(ValueError, match=r"question_key='question' is not a column; choose from: q, a, other"):
        make("math", data_files=[str(parquet)])
    with pytest.raises(ValueError, match="does not exist"):
        make("math", data_files=[str(tmp_path / "missing.parquet")])
    with pytest.raises(ValueError, match=r"data_files: '.*\.csv' is not valid; choose files ending in"):
        make("math", data_files=[str(tmp_path / "x.csv")])
    with pytest.raises(ValueError, match="choose one source"):
        make("math", data_files=[str(parquet)], dataset_name="openai/gsm8k")
    with pytest.raises(ValueError, match=r"rg_dataset='nope' is not a reasoning-gym dataset; choose from: .*gsm_symb"):
        make("math", rg_dataset="nope")


def test_hf_loader_offline_names_the_key(monkeypatch, tmp_path):
    # the real `datasets.load_dataset` path; the hub is offline here, so it must fail with the key named
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ValueError, match=r"dataset_name='openai/gsm8k' \(subset='main', split='test'\) could not be"):
        make("math", dataset_name="openai/gsm8k")


def test_answer_slot_helpers():
    from veritas_rl.envs.answers import after_last_marker, last_boxed, last_fenced_block, last_tag

    assert last_boxed("\\boxed{a} and \\boxed{\\frac{1}{\\sqrt{2}}} end") == "\\frac{1}{\\sqrt{2}}"
    assert last_boxed("\\fbox{3}") == "3"
    assert last_boxed("\\boxed 5.") == "5"
    assert last_boxed("\\boxed{1} \\boxed{2") is None  # the last one is unclosed
    assert last_tag("<answer>1</answer><answer>2</answer>") == "2"
    assert last_tag("<answer>1</answer> </answer>") == "1</answer> "  # last closing tag, the opener before it
    assert after_last_marker("The Answer is 3\nthe answer is 4 here\nbye", "the answer is") == " 4 here"
    assert last_fenced_block("```python\nx = 1\n```\ntext\n```\n1 2\n```") == "\n1 2\n"
    assert last_fenced_block("```\nunclosed") is None


def test_copying_the_prompt_scores_zero(env):
    for i in range(10):
        task = env.task(i)
        score = env.score(task, task.prompt[0]["content"])
        assert score.value == 0.0 and score.info["reason"]


def test_conflicting_boxed_answers_score_zero():
    env = make("math")
    task = env.task(env.task_id_at(0))
    gold = task.ground_truth
    assert env.score(task, f"\\boxed{{{gold}}}").value == 1.0
    hedged = env.score(task, f"\\boxed{{{gold}1}} or maybe \\boxed{{{gold}}}")
    assert hedged.value == 0.0 and "several different" in hedged.info["reason"]
    assert env.score(task, f"\\boxed{{{gold}}} and again \\boxed{{ {gold} }}").value == 1.0

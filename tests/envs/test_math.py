"""math / gsm8k: extraction order, numeric normalisation, math-verify, local parquet/jsonl loading."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import pandas as pd
import pytest

from veritas_rl.envs import Task, make
from veritas_rl.envs.math_env import MATH_INSTRUCTION, NO_SLOT, compare_math, extract_answer, gold_answer, normalize_numeric

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
        ("The answer is 5. Therefore \\boxed{7}.", ["7"], "boxed"),
        ("\\boxed{3} first, then \\boxed{\\frac{1}{2}}", ["3", "\\frac{1}{2}"], "boxed"),  # every box is a slot
        ("\\boxed{\\sqrt{\\frac{a}{b}}}", ["\\sqrt{\\frac{a}{b}}"], "boxed"),
        ("give it in \\boxed{}. So \\boxed{ 7 }", ["7"], "boxed"),  # the format example is empty
        ("Final answer: 3. Checking again, the answer is 4.", ["4"], "the answer is"),
        ("The answer is 4. Final answer: 3", ["4"], "the answer is"),
        ("So the answer is $1,234.50.", ["1,234.50"], "the answer is"),
        ("The answer is: **42**", ["42"], "the answer is"),
        ("The answer is \\(42\\). Done.", ["\\(42\\)"], "the answer is"),
        ("#### 5\n**Final Answer:** 6", ["6"], "final answer"),
        ("The final answer is 12 apples. That is all.", ["12 apples"], "final answer"),
        ("work...\n#### 72", ["72"], "####"),
        ("#### Step 1\nadd 5 and 7\n#### Step 2\nso we get 12", None, NO_SLOT),  # no "last number" fallback
        ("I think 3, no wait, 8", None, NO_SLOT),
        ("no digits here", None, NO_SLOT),
        ("\\boxed{unclosed 5", None, NO_SLOT),
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
        ("18", "\\text{18 dollars}"),
        ("18", "18 \\text{ dollars}"),
        ("-3", "-3"),
        ("-3", "−3"),
        ("0.5", "\\frac{1}{2}"),
        ("0.5", ".5"),
        ("6000", "6,000"),
        ("6,000", "6000"),
        ("18", "(18)"),  # parentheses group
        ("1000", "1 000"),
        ("1000", "1\\,000"),
        ("1000", "1{,}000"),
        ("2.5", "5/2"),
        ("12", "x = 12"),
        ("42", "\\(42\\)"),
        ("42", "$42$"),
        ("1800", "18 \\times 10^2"),
        ("1800", "1.8e3"),
        ("18", "\\frac{36}{2}"),
        ("18", "\\dfrac{36}{2}"),
        ("90", "90^\\circ"),
        ("4 \\sqrt{2}", "\\sqrt{32}"),
        ("4 \\sqrt{2}", "4\\sqrt{2}"),
    ],
)
def test_value_matches(gold, answer):
    score = compare_math(gold, answer)
    assert score.value == 1.0 and score.kind == "correct", score.info


# issue 14: a slot with several numbers, an expression or a number inside a word is not that number
@pytest.mark.parametrize(
    "gold, completion, kind",
    [
        ("18", "\\boxed{9, 18}", "hedge"),
        ("3", "\\boxed{3\\sqrt{2}}", "wrong"),
        ("3", "so \\boxed{3 + \\sqrt{5}}", "wrong"),
        ("3", "The answer is 3 + \\sqrt{5}.", "wrong"),
        ("3", "\\boxed{3\\pi}", "wrong"),
        ("18", "\\boxed{18 \\times 10^2}", "wrong"),
        ("2", "AZYUK2A", "no_answer"),
        ("2", "\\boxed{AZYUK2A}", "no_answer"),
        ("4 \\sqrt{2}", "\\boxed{4}", "wrong"),
        ("18", "\\boxed{17} hmm, no: \\boxed{18}", "hedge"),
        ("18", "\\boxed{18} or \\boxed{19}", "hedge"),
        ("18", "The answer is 18 or 19", "no_answer"),
        ("72", "73", "no_answer"),
        ("72", "\\boxed{73}", "wrong"),
        ("1234", "\\boxed{1,235}", "wrong"),
        ("0.5", "\\boxed{0.51}", "wrong"),
        ("5", "\\boxed{-5}", "wrong"),
        ("1", "\\boxed{0.9999999999}", "wrong"),  # exact values compare exactly
        ("18", "\\boxed{1,8}", "hedge"),  # a list, not 18
        ("18", "\\boxed{eighteen}", "no_answer"),
        ("18", "\\boxed{18} dollars? \\boxed{\\text{about 18}}", "no_answer"),
        ("18", "\\boxed{1/0}", "no_answer"),
        ("18", "\\boxed{[18]}", "wrong"),  # a list of one
        ("18", "\\boxed{\\{18\\}}", "wrong"),
        ("18", "\\boxed{18; 19}", "no_answer"),
        ("18", "\\boxed{18 \\pm 1}", "no_answer"),
    ],
)
def test_issue_14_slots_are_one_value(env, gold, completion, kind):
    score = env.score(_task(gold), completion)
    assert score.value == 0.0 and score.kind == kind, score.info


@pytest.mark.parametrize(
    "completion",
    [
        "\\boxed{18} and again \\boxed{ 18 }",
        "\\boxed{\\$18} ... so \\boxed{18}",
        "\\boxed{18} or equivalently \\boxed{18.00}",
        "\\boxed{18} = \\boxed{\\frac{36}{2}}",
    ],
)
def test_repeating_one_value_is_not_a_hedge(env, completion):
    assert env.score(_task("18"), completion).value == 1.0


@pytest.mark.parametrize(
    "gold_raw, completion, ok",
    [
        ("\\boxed{9} and \\boxed{18}", "\\boxed{9} and \\boxed{18}", True),
        ("\\boxed{9} and \\boxed{18}", "\\boxed{18}, \\boxed{9}", True),  # bare parts: any order
        ("\\boxed{9} and \\boxed{18}", "\\boxed{9, 18}", True),
        ("\\boxed{9} and \\boxed{18}", "\\boxed{18}", False),  # multi-part golds keep every box
        ("\\boxed{9} and \\boxed{18}", "\\boxed{9} \\boxed{18} \\boxed{27}", False),
        ("9, 18", "\\boxed{18, 9}", True),
        ("9, 18", "\\boxed{9, 17}", False),
        ("(1, 2)", "\\boxed{(1,2)}", True),
        ("(1, 2)", "\\boxed{(2, 1)}", False),  # a tuple is ordered
        ("\\{1, 2\\}", "\\boxed{\\{2, 1\\}}", True),
    ],
)
def test_multi_part_golds_compare_part_by_part(env, gold_raw, completion, ok):
    score = env.score(_task(gold_answer(gold_raw)), completion)
    assert (score.value == 1.0) is ok, score.info


def test_normalize_numeric_values():
    assert normalize_numeric("$1,234.50") == Fraction(2469, 2)
    assert normalize_numeric("\\dfrac{3}{4}") == Fraction(3, 4)
    assert normalize_numeric("-\\frac{3}{4}") == Fraction(-3, 4)
    assert normalize_numeric("18 \\times 10^2") == 1800
    assert normalize_numeric("1,23") is None  # not a thousands separator: a list
    assert normalize_numeric("two") is None
    assert normalize_numeric("\\sqrt{2}") is None  # not exact


@pytest.mark.parametrize(
    "gold, answer, ok",
    [
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
        ("x^2+2x+1", "(x+1)^2", True),
        ("x^2+2x+1", "(x+1)^3", False),
        ("x^2+2x+1", "(y+1)^2", False),
        ("\\pi/2", "\\frac{\\pi}{2}", True),
        ("\\{1, 2\\}", "\\{2, 1\\}", True),
        ("3\\sqrt{3}", "\\sqrt{27}", True),
        ("3\\sqrt{3}", "\\sqrt{28}", False),
        ("A", "(A)", True),  # a multiple-choice letter is a symbol
        ("A", "B", False),
        ("\\text{Tuesday}", "Tuesday", True),  # outside the grammar: normalised text
        ("(1, 2]", "(1,2]", True),
        ("(1, 2]", "(1, 3]", False),
    ],
)
def test_symbolic_and_text_golds(gold, answer, ok):
    score = compare_math(gold, answer)
    assert (score.value == 1.0) is ok, score.info


def test_gold_outside_the_grammar_goes_through_math_verify_with_the_canonical_answer():
    # a unit with a power is dropped like any unit word: "2\sqrt{3}\text{ cm}^2" is 2 sqrt(3) in our grammar
    score = compare_math("2\\sqrt{3}\\text{ cm}^2", "\\sqrt{12}")
    assert score.value == 1.0 and score.info["match"] == "value", score.info
    # "x+y \text{ units}^2" is not in our grammar (a unit after a symbol): math-verify reads the gold, and the
    # answer is compared with it by value at our points (sympy never simplifies the answer)
    gold = "x+y \\text{ units}^2"
    score = compare_math(gold, "y + x")
    assert score.value == 1.0 and score.info["match"] == "math-verify value", score.info
    assert compare_math(gold, "x - y").value == 0.0
    assert compare_math(gold, "x + y", use_math_verify=False).value == 0.0
    assert compare_math("(1, 2]", "(1,2]").info["match"] == "exact"


def test_delimited_answers_through_the_env(env):
    task = _task("42")
    for text in ("The answer is \\(42\\).", "Final answer: $42$", "The answer is: **42**", "#### 42"):
        assert env.score(task, text).value == 1.0, text


def test_symbolic_through_the_env(env):
    task = _task("\\frac{\\sqrt{2}}{2}")
    assert env.score(task, "so we get \\boxed{\\frac{1}{\\sqrt{2}}}").value == 1.0
    assert env.score(task, "so we get \\boxed{\\frac{1}{\\sqrt{3}}}").value == 0.0


# the adversarial table: every one is a fast zero with the right kind
ADVERSARIAL = [
    ("\\boxed{" + "9 " * 5000 + "}", "too_long"),
    ("9 " * 95_000, "no_answer"),
    ("\\boxed{" * 25_000, "no_answer"),
    ("<answer>" * 25_000, "no_answer"),
    ("the answer is " * 10_000, "no_answer"),
    (("(" * 50_000) + ")" * 50_000, "no_answer"),
    ("\\boxed{" + "(" * 90 + "1" + ")" * 90 + "}", "too_long"),
    ("\\boxed{9^(9^9)}", "too_long"),
    ("\\boxed{9^{9^{9}}}", "too_long"),
    ("\\boxed{9**(9*9*9*9*9*9*9*9*9)}", "too_long"),
    ("\\boxed{10^{99999999}}", "too_long"),
    ("\\boxed{2**99999999}", "too_long"),
    ("\\boxed{1e999999}", "too_long"),
    ("\\boxed{1e999999999}", "too_long"),
    ("\\boxed{100000!}", "too_long"),
    ("\\boxed{(9*9*9*9*9*9*9)!}", "too_long"),
    ("\\boxed{factorial(10**6)}", "no_answer"),  # not an allowed function in a math answer
    ("\\boxed{gamma(10**7)}", "no_answer"),
    ("\\boxed{binomial(10**8, 5*10**7)}", "no_answer"),
    ("\\boxed{x^{10^{9}}}", "too_long"),
    ("\\boxed{sympify.__globals__['__builtins__']['__import__']('os').system('touch X')}", "no_answer"),
    ("\\boxed{__import__('os').system('touch X')}", "no_answer"),
    ("\\boxed{" + "1+" * 150 + "1}", "too_long"),
    ("\\boxed{" + "x" * 10_000 + "}", "too_long"),
]


@pytest.mark.parametrize("text, kind", ADVERSARIAL)
def test_adversarial_answers_score_zero_fast(env, text, kind):
    for gold in ("x^2+1", "42", "(1, 2]"):
        start = time.perf_counter()
        score = env.score(_task(gold), text)
        elapsed = time.perf_counter() - start
        assert score.value == 0.0 and score.kind == kind and score.info["reason"], (gold, score.info)
        assert elapsed < 0.05, (text[:40], elapsed)


def _score_in(env, task, text):
    start = time.perf_counter()
    score = env.score(task, text)
    return score, time.perf_counter() - start


def test_bounds_hold_in_worker_threads(env):
    # verl's reward manager scores in a thread pool, where math-verify's signal timeout is off: the grammar's
    # bounds must hold there too, for golds inside the grammar and outside it (math-verify's path)
    texts = ["\\boxed{9^(9^9)}", "\\boxed{" + "(" * 90 + "1" + ")" * 90 + "}", "\\boxed{x^{10^{9}}}"]
    tasks = [_task("42"), _task("x^2+1"), _task("2\\sqrt{3}\\text{ cm}^2")]
    jobs = [(task, text) for task in tasks for text in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: _score_in(env, *job), jobs))
    for score, elapsed in results:
        assert score.value == 0.0 and score.kind == "too_long" and elapsed < 0.05, (score.info, elapsed)
    seen = {}
    thread = threading.Thread(target=lambda: seen.update(result=_score_in(env, tasks[2], "\\boxed{\\sqrt{12}}")))
    thread.start()
    thread.join(timeout=30)
    assert seen["result"][0].value == 1.0  # math-verify still works off the main thread


@pytest.mark.parametrize(
    "completion",
    [
        "asdf qwer zxcv",
        "\\boxed{}",
        "",
        "   ",
        "<think>the answer is \\boxed{42}</think>",
        "<think>the answer is \\boxed{42}</think> I am not sure.",
        "<think>the answer is \\boxed{42}",
        "Solve the problem step by step, then give the final answer in \\boxed{}.",
    ],
)
def test_garbage_and_answers_only_in_thinking_score_zero(env, completion):
    score = env.score(_task("42"), completion)
    assert score.value == 0.0 and score.kind == "no_answer", score.info


def test_gold_answer_forms():
    assert gold_answer(GSM8K_ROWS[0]["answer"]) == "72"
    assert gold_answer("so \\boxed{\\frac{1}{2}} is it") == "\\frac{1}{2}"
    assert gold_answer(" 17 ") == "17"
    assert gold_answer("(a) \\boxed{9} (b) \\boxed{18}") == "9, 18"  # multi-part: every box is kept
    assert gold_answer("\\boxed{}, then \\boxed{4}") == "4"


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
    assert env.score(env.task(1), "She earned \\boxed{\\$10.00}.").value == 1.0
    assert env.score(env.task(1), "She earned $10.00.").kind == "no_answer"  # a number in prose is not an answer


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
        prompt = task.prompt[0]["content"]
        question = prompt[: -len(MATH_INSTRUCTION)]
        for echo in (prompt, question, prompt + "\n" + prompt, question + "\nthe answer is", MATH_INSTRUCTION.strip()):
            score = env.score(task, echo)
            assert score.value == 0.0 and score.kind == "no_answer", (echo[-80:], score.info)
        # restating the question and then answering is fine; the question's own numbers are not the answer
        assert env.score(task, f"{question}\nSo \\boxed{{{task.ground_truth}}}").value == 1.0


def test_a_prompt_that_states_an_answer_is_not_graded_when_echoed(env):
    task = Task("math", 0, [{"role": "user", "content": "The answer is 42? Check it." + MATH_INSTRUCTION}], "42", {})
    assert env.score(task, task.prompt[0]["content"]).kind == "no_answer"
    assert env.score(task, task.prompt[0]["content"] + " Yes: \\boxed{42}").value == 1.0


def test_conflicting_boxed_answers_score_zero():
    env = make("math")
    task = env.task(env.task_id_at(0))
    gold = task.ground_truth
    assert env.score(task, f"\\boxed{{{gold}}}").value == 1.0
    hedged = env.score(task, f"\\boxed{{{gold}1}} or maybe \\boxed{{{gold}}}")
    assert hedged.value == 0.0 and hedged.kind == "hedge" and "different" in hedged.info["reason"]
    assert env.score(task, f"\\boxed{{{gold}}} and again \\boxed{{ {gold} }}").value == 1.0


def test_math_verify_path_scores_huge_answers_zero_fast():
    # the math-verify path: a gold read as a value compares by value at our points; an interval gold hands
    # math-verify only symbol-free answers of bounded size. Every one of these is a fast zero.
    for gold in ("x+y \\text{ units}^2", "(1, 2]", "x \\in (1, 2]"):
        compare_math(gold, "1")  # math-verify reads the gold once (imports, then cached)
        for answer in ("(x+1)^{1000}", "(x+1)^{y}", "x!", "+".join(["x"] * 60), "+".join(["1"] * 90),
                       "(x+y+z+w)^{3}(a+b+c+d)^{3}(f+g+h+k)^{3}(m+n)^3"):
            start = time.perf_counter()
            score = compare_math(gold, answer)
            assert score.value == 0.0 and score.kind in ("too_long", "wrong", "no_answer"), (gold, answer, score.info)
            assert time.perf_counter() - start < 0.05, (gold, answer)
    assert compare_math("(1, 2]", "(x+1)^{2}").kind == "wrong"


@pytest.mark.parametrize("gold, answer, ok", [
    ("x \\in [1, 2]", "[1, 2]", True), ("x \\in [1, 2]", "[1, 3]", False), ("x \\in [1, 2]", "(1, 2)", False),
    ("x \\in [1, 2]", "1, 2", False), ("x \\in \\{1, 2\\}", "2, 1", True), ("x \\in \\{1, 2\\}", "\\{1, 3\\}", False),
    ("x \\in \\{1, 2\\}", "[1, 2]", False), ("x \\le 3", "3", False), ("(-\\infty, 3)", "(1, 3)", False),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1, 2)", False),
])
def test_golds_read_only_by_math_verify_compare_by_value(gold, answer, ok):
    score = compare_math(gold, answer)
    assert (score.value == 1.0) is ok, score.info


def test_math_verify_path_is_bounded_in_worker_threads():
    # symbol-free constants that math-verify's own comparison took over a second on, and a small symbolic
    # answer sympy's simplify did not finish in a minute (no timeout off the main thread): sympy never sees them
    cases = [
        ("(0, 1]", "\\{((\\cos(2)+\\sin(\\sqrt{3}))^{8}+\\frac{\\pi^{10}}{8})\\cdot(\\tan(2)-1)^{7}, \\frac{\\sqrt{3}}{\\sqrt{2}}\\}"),
        ("x+y \\text{ units}^2", "\\sin((3+y)(2+\\sqrt{2})(\\pi-2)^{10}-(x+e+\\sin(y)+\\pi))"),
        ("x+y \\text{ units}^2", "(x+y)^{3}(x-y)^{3}(x+2y)^{3}(2x+y)^3"),
    ]
    for gold, _ in cases:
        compare_math(gold, "1")  # math-verify reads the gold once
    elapsed = {}

    def run():
        for gold, answer in cases:
            start = time.perf_counter()
            score = compare_math(gold, answer)
            elapsed[answer] = (time.perf_counter() - start, score.value)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert len(elapsed) == len(cases), "a score did not finish"
    for answer, (seconds, value) in elapsed.items():
        assert value == 0.0 and seconds < 0.05, (answer, seconds)


# correct answers in many accepted forms; math-verify (on the gold side) and verl's own GSM8K reward are the
# independent references. We accept a few forms math-verify does not ("18 dollars", "1 800", "1\,800",
# "50\%"), on purpose; verl's strict GSM8K reward accepts only "#### <digits and commas>".
REFERENCE_FORMS = [
    ("18", "\\boxed{18}", True),
    ("18", "\\boxed{18.0}", True),
    ("18", "\\boxed{18.00}", True),
    ("18", "\\boxed{\\$18}", True),
    ("18", "The answer is $18.", True),
    ("18", "\\boxed{18 \\text{ dollars}}", True),
    ("18", "\\boxed{18 dollars}", False),
    ("18", "\\boxed{\\frac{36}{2}}", True),
    ("18", "\\boxed{\\dfrac{36}{2}}", True),
    ("18", "\\boxed{36/2}", True),
    ("18", "\\boxed{x = 18}", True),
    ("18", "The final answer is 18", True),
    ("18", "Final answer: \\(18\\)", True),
    ("18", "<think>hmm, 17?</think>\\boxed{18}", True),
    ("18", "\\boxed{18}\n\n\\boxed{18}", True),
    ("18", "#### 18", True),
    ("18", "#### $18", True),
    ("1800", "\\boxed{1,800}", True),
    ("1800", "\\boxed{1{,}800}", True),
    ("1800", "\\boxed{1 800}", False),
    ("1800", "\\boxed{1\\,800}", False),
    ("1800", "\\boxed{18 \\times 10^2}", True),
    ("1800", "\\boxed{1.8 \\times 10^{3}}", True),
    ("1800", "#### 1,800", True),
    ("1800", "#### 1800", True),
    ("50", "\\boxed{50\\%}", False),
    ("-3", "\\boxed{-3}", True),
    ("-3", "\\boxed{−3}", True),
    ("0.5", "\\boxed{\\frac{1}{2}}", True),
    ("0.5", "\\boxed{.5}", True),
]


@pytest.mark.parametrize("gold, completion, math_verify_agrees", REFERENCE_FORMS)
def test_accepted_forms_against_references(env, gold, completion, math_verify_agrees):
    from math_verify import parse, verify
    from verl.utils.reward_score import gsm8k

    assert env.score(_task(gold), completion).value == 1.0
    reference = verify(parse(f"\\boxed{{{gold}}}"), parse(completion))
    assert reference is math_verify_agrees
    if completion.startswith("#### ") and "$" not in completion:
        assert gsm8k.compute_score(completion, gold) == 1.0


@pytest.fixture(scope="module")
def lenient():
    return make("math", rg_dataset="basic_arithmetic", size=50, last_number_fallback=True)


def test_last_number_fallback_is_off_by_default_and_grades_the_last_stand_alone_number(lenient):
    task = lenient.task(3)
    gold = task.ground_truth
    strict = make("math", rg_dataset="basic_arithmetic", size=50)
    assert strict.score(task, f"The sum is {gold}.").kind == "no_answer"
    cases = {
        f"The sum of the two numbers is {gold}.": (1.0, "correct"),
        f"{gold}, then 7": (0.0, "wrong"),  # the last number is 7
        f"AZYUK{gold}A": (0.0, "no_answer"),  # a number inside a word is not a number
        f"maybe {int(gold) + 1} or {gold}": (0.0, "hedge"),
        f"{int(gold) + 1}/{gold}": (0.0, "hedge"),
        f"{gold} or {gold}": (1.0, "correct"),  # the same answer twice is one answer
        f"\\boxed{{{int(gold) + 1}}} and then {gold}": (0.0, "wrong"),  # a box wins over the fallback
        "no digits at all": (0.0, "no_answer"),
    }
    for completion, (value, kind) in cases.items():
        score = lenient.score(task, completion)
        assert (score.value, score.kind) == (value, kind), completion


def test_last_number_fallback_is_linear_on_floods(lenient):
    import time

    task = lenient.task(0)
    t0 = time.perf_counter()
    for flood in ("1 " * 100_000, "1," * 100_000, "-" * 200_000, "1." * 100_000):
        lenient.score(task, flood)
    assert time.perf_counter() - t0 < 2.0


# -- answers that agree with the gold only by a quirk of the comparison ---------------------------


@pytest.mark.parametrize("gold, answer", [
    ("10000012345", "10000012346+\\sin(0)"),  # made inexact on purpose: 1e-9 relative let the off-by-one through
    ("10000012345", "10000012350\\pi^0"),
    ("28080", "28080+\\sin(10^{-5})"),
    ("\\text{(A)}", "u"),  # letters at linearly spaced points: u and A had one value
    ("\\text{(A)}", "B-0.0437"),  # ... and B minus the spacing was A
    ("x+1", "y+1"), ("2a", "a+b"),
])
def test_values_that_only_a_loose_comparison_would_equal_score_zero(env, gold, answer):
    score = env.score(_task(gold), f"\\boxed{{{answer}}}")
    assert score.value == 0.0, score.info


@pytest.mark.parametrize("gold, answer", [
    ("8", "(2\\sqrt{2})^2"), ("4\\sqrt{2}", "\\sqrt{32}"), ("\\text{(A)}", "A"), ("x+1", "1+x"),
    ("\\sqrt{2}", "2^{1/2}"),
])
def test_float_rounding_and_equal_forms_still_score_one(env, gold, answer):
    score = env.score(_task(gold), f"\\boxed{{{answer}}}")
    assert score.value == 1.0, score.info


def test_no_two_letters_are_one_value_or_one_apart_by_a_constant():
    import itertools
    import string

    from veritas_rl.envs.math_env import _POINT_BASES, _symbol_value

    for a, b in itertools.combinations(string.ascii_letters, 2):
        gaps = {round(_symbol_value(a, p) - _symbol_value(b, p), 9) for p in _POINT_BASES}
        assert len(gaps) == len(_POINT_BASES) and 0.0 not in gaps, (a, b)


@pytest.mark.parametrize("completion, value, kind", [
    ("The answer is 28081 \\fbox{28080}", 0.0, "hedge"),
    ("Final answer: 28081.\n\n\\boxed{28080}", 0.0, "hedge"),
    ("#### 28081\n\\boxed{28080}", 0.0, "hedge"),
    ("The answer is \\boxed{28080}", 1.0, "correct"),
    ("The answer is $\\boxed{28080}$.", 1.0, "correct"),
    ("The answer is 28080, so \\boxed{28080}", 1.0, "correct"),
    ("The answer is as follows. \\boxed{28080}", 1.0, "correct"),  # no value on the marker line
])
def test_a_marker_line_that_states_another_value_than_the_box_is_a_hedge(env, completion, value, kind):
    score = env.score(_task("28080"), completion)
    assert (score.value, score.kind) == (value, kind), score.info


@pytest.mark.parametrize("slot, cleaned", [
    ("12 apples", "12"), ("5 square meters", "5"), ("3\\pi meters", "3\\pi"), ("\\frac{1}{2} cups", "\\frac{1}{2}"),
    ("4 or five", "4 or five"), ("yes or no", "yes or no"), ("Monday Tuesday Wednesday", "Monday Tuesday Wednesday"),
    ("18 and 19 apples", "18 and 19"),
])
def test_unit_words_are_dropped_after_a_quantity_only(slot, cleaned):
    from veritas_rl.envs.math_env import clean_slot

    assert clean_slot(slot) == cleaned


@pytest.mark.parametrize("gold, answer", [
    ("\\text{yes}", "yes or no"), ("\\text{Monday}", "Monday or Tuesday"),
    ("\\text{Monday}", "Monday Tuesday Wednesday Thursday"), ("4", "4 or five"),
])
def test_alternatives_and_word_lists_do_not_shrink_to_the_gold(env, gold, answer):
    assert env.score(_task(gold), f"\\boxed{{{answer}}}").value == 0.0
    assert env.score(_task(gold), f"\\boxed{{{answer.split()[0]}}}").value == 1.0


@pytest.mark.parametrize("gold, answer, ok", [
    ("[-2, 2]", "[-2,2]", True),
    ("[-2, 2]", "(-2, 2)", False),  # the open interval is another set
    ("[-2, 2]", "\\{-2, 2\\}", False),  # two points, not the interval
    ("[-2, 2]", "-2, 2", False),
    ("(-2, 2)", "[-2, 2]", False),
    ("(-2, 2)", "-2, 2", False),  # an open interval or a tuple keeps its parentheses
    ("(3, 4)", "(3,4)", True),
    ("-2, 2", "\\{2, -2\\}", True),  # an unordered collection: bare list or set, any order
    ("-2, 2", "(-2, 2)", False),
    ("-2, 2", "[-2, 2]", False),
    ("\\{-2, 2\\}", "2, -2", True),
    ("\\{-2, 2\\}", "[-2, 2]", False),
])
def test_a_multi_part_answer_keeps_the_golds_brackets(gold, answer, ok):
    score = compare_math(gold, answer)
    assert (score.value == 1.0) is ok, score.info

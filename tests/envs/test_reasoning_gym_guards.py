"""reasoning-gym: the datasets whose scorer evaluates the answer never see the model's text; hangs are fast zeros."""

from __future__ import annotations

import time

import pytest

from veritas_rl.envs import make
from veritas_rl.envs.reasoning_gym import GUARDS

#: what reasoning-gym 0.1.25's own scorers evaluate (sympy parse_expr or a bare eval)
EVALUATING = (
    "countdown",
    "puzzle24",
    "polynomial_multiplication",
    "simple_integration",
    "intermediate_integration",
    "binary_matrix",
    "n_queens",
    "spiral_matrix",
    "string_insertion",
)
CODE_PAYLOADS = (
    "sympify.__globals__['__builtins__']['__import__']('os').system('touch {path}')",
    "__import__('os').system('touch {path}')",
    "[__import__('os').system('touch {path}')]",
    "x + __import__('os').system('touch {path}')",
)
HANGS = (
    "9**(9*9*9*9*9*9*9*9*9)",
    "factorial(9*9*9*9*9*9*9)",
    "1e999999",
    "gamma(10**7)",
    "binomial(10**8, 5*10**7)",
    "factorial(10**6)",
    "x**(9*9*9*9*9*9*9*9*9)",
    "(x+1)**(10**6)",
    "'a'*10**9",
)


def test_every_evaluating_dataset_is_guarded():
    assert sorted(GUARDS) == sorted(EVALUATING)


@pytest.fixture(scope="module")
def envs():
    return {name: make("rg", dataset=name, size=10) for name in EVALUATING}


@pytest.mark.parametrize("name", EVALUATING)
def test_code_payload_never_runs(envs, name, tmp_path):
    env = envs[name]
    for i in range(2):
        task = env.task(i)
        for k, payload in enumerate(CODE_PAYLOADS):
            sentinel = tmp_path / f"{name}-{i}-{k}"
            score = env.score(task, f"<answer>{payload.format(path=sentinel)}</answer>")
            assert not sentinel.exists(), f"{name}: {payload} ran"
            assert score.value == 0.0 and score.kind in ("no_answer", "illegal"), score


@pytest.mark.parametrize("name", EVALUATING)
def test_answers_that_would_hang_the_scorer_are_fast_zeros(envs, name):
    env = envs[name]
    task = env.task(0)
    for payload in HANGS:
        start = time.perf_counter()
        score = env.score(task, f"<answer>{payload}</answer>")
        elapsed = time.perf_counter() - start
        assert score.value == 0.0 and score.kind in ("too_long", "no_answer", "illegal"), (payload, score)
        assert elapsed < 0.05, (payload, elapsed)
    # the ones the grammar can read are over a bound (too_long), not merely unreadable
    if name in ("polynomial_multiplication", "simple_integration", "intermediate_integration"):
        variable = env.entry(0)["metadata"].get("variable") or env.entry(0)["metadata"]["variables"][0]
        for payload in (f"{variable}**(9*9*9*9*9*9*9*9*9)", "1e999999", f"({variable}+1)**(10**6)"):
            assert env.score(task, f"<answer>{payload}</answer>").kind == "too_long", payload


def test_countdown_and_puzzle24_use_only_the_tasks_numbers():
    env = make("rg", dataset="countdown", size=5, binary=False)
    task = env.task(0)
    numbers = env.entry(0)["metadata"]["numbers"]
    assert env.score(task, env.oracle(task)).value == 1.0
    a, b = numbers[0], numbers[1]
    wrong = env.score(task, f"<answer>{a} + {b}</answer>")  # the task's numbers, wrong value: reasoning-gym's 0.05
    assert wrong.value == 0.05 and wrong.kind == "partial"
    for bad, why in ((f"{a}*{a}*{a}", "too often"), ("1000 - 1", "does not give"), (f"{a}**2", "only + - * /")):
        score = env.score(task, f"<answer>{bad}</answer>")
        assert (score.value, score.kind) == (0.0, "illegal") and why in score.info["reason"], (bad, score)

    # reasoning-gym's puzzle24 scorer takes int() of the value: 49/2 would count as 24. Find a task where
    # the given numbers make a value strictly between 24 and 25 and check it does not.
    import itertools

    from veritas_rl.envs import safe_expr

    p24 = make("rg", dataset="puzzle24", size=200)
    forms = ("({}*{} + {})/{}", "({}*{} - {})/{}", "{}*{}/{} + {}", "{}*{}/{} - {}", "({} + {})*{}/{}")
    found = None
    for i in range(200):
        for perm in itertools.permutations(p24.entry(i)["metadata"]["numbers"]):
            for form in forms:
                text = form.format(*perm)
                value = safe_expr.evaluate(safe_expr.parse(text))
                if 24 < value < 25:
                    found = (i, text)
                    break
            if found:
                break
        if found:
            break
    assert found is not None
    i, text = found
    score = p24.score(p24.task(i), f"<answer>{text}</answer>")
    assert (score.value, score.kind) == (0.0, "wrong") and "not 24" in score.info["reason"], score


def test_equivalent_symbolic_answers_still_score_one():
    poly = make("rg", dataset="polynomial_multiplication", size=10)
    integ = make("rg", dataset="simple_integration", size=10)
    inter = make("rg", dataset="intermediate_integration", size=10)
    for i in range(10):
        task = poly.task(i)
        reordered = " + ".join(reversed(task.ground_truth.split(" + ")))
        assert poly.score(task, f"<answer>{reordered}</answer>").value == 1.0, reordered
        task = integ.task(i)
        shifted = task.ground_truth.replace(" + C", "") + " + 7"  # another constant of integration
        assert integ.score(task, f"<answer>{shifted}</answer>").value == 1.0, shifted
    task = inter.task(0)  # -exp(x)*sin(x) + exp(x)*cos(x) + C
    assert inter.score(task, "<answer>e^x(\\cos(x) - \\sin(x))</answer>").value == 1.0  # e: Euler's number
    assert inter.score(task, "<answer>exp(x)*(cos(x) - sin(x)) + C</answer>").value == 1.0
    wrong = inter.score(task, "<answer>sin(x)**6*cos(x)**6*exp(tan(x))*atan(x)</answer>")
    assert wrong.kind == "wrong" and "not an antiderivative" in wrong.info["reason"]


def test_list_literals_reach_the_eval_fallback_only_as_json():
    env = make("rg", dataset="spiral_matrix", size=5, binary=False)
    task = env.task(2)
    values = [int(v) for v in task.ground_truth.split()]
    # reasoning-gym's own 0.1 for the right numbers as a python list survives, through json.dumps
    listed = env.score(task, f"<answer>{values}</answer>")
    assert listed.value == pytest.approx(0.1) and listed.kind == "partial"
    assert env.score(task, f"<answer>{task.ground_truth}</answer>").value == 1.0
    for bad in ("[true, null]", "[1, [2, [3, [4, [5]]]]]", "[1e5]", "[" * 5000):
        assert env.score(task, f"<answer>{bad}</answer>").value == 0.0, bad
    queens = make("rg", dataset="n_queens", size=5)
    task = queens.task(0)
    other = [a for a in queens.entry(0)["metadata"]["valid_answers"] if a != task.ground_truth]
    if other:  # another valid board, written plainly, is handed over as the dataset's own string
        assert queens.score(task, f"<answer>{other[0]}</answer>").value == 1.0


def test_antiderivatives_may_write_eulers_number_as_calculus_does():
    env = make("rg", dataset="intermediate_integration", size=10)
    written = 0
    for i in range(10):
        task = env.task(i)
        gold = task.ground_truth
        assert env.score(task, env.oracle(task)).value == 1.0
        if "exp(" in gold:
            written += 1
            assert env.score(task, f"<answer>{gold.replace('exp(', 'e**(')}</answer>").value == 1.0
        assert env.score(task, f"<answer>e*({gold})</answer>").value == 0.0  # e is a number, not a free pass
    assert written >= 1
    task = env.task(0)
    score = env.score(task, "<answer>e**(x**2)**99</answer>")  # still bounded: e^u counts as exp(u)
    assert score.value == 0.0

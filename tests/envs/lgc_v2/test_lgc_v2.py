"""lgc-v2: id scheme, every task type's oracle and garbage, alternative correct answers, config errors."""

from __future__ import annotations

import dataclasses
import itertools
import time
from fractions import Fraction

import pytest

from veritas_rl.envs import make
from veritas_rl.envs.lgc_v2 import (
    SEEDS_PER_TYPE,
    TASK_TYPES,
    ExpressionError,
    _first_error,
    make_task_id,
    parse_arithmetic,
    solve_24,
    split_task_id,
)

ALL_TYPES = list(TASK_TYPES)


@pytest.fixture(scope="module")
def env():
    return make("lgc-v2")


def _task(env, task_type, seed=0):
    return env.task(make_task_id(task_type, seed))


# -- id scheme ---------------------------------------------------------------------------------


def test_task_id_scheme(env):
    assert make_task_id("dyck_language", 5) == 5
    assert make_task_id("game_of_24", 5) == 100_000_005
    assert make_task_id("sudoku", 123) == 7 * SEEDS_PER_TYPE + 123
    assert split_task_id(8 * SEEDS_PER_TYPE + 42) == ("dyck_language_reasoning_errors", 42)
    with pytest.raises(ValueError, match="type id 5"):
        split_task_id(5 * SEEDS_PER_TYPE)
    task = env.task(6 * SEEDS_PER_TYPE + 9)
    assert task.extra["task_type"] == "boolean_expressions" and task.extra["seed"] == 9
    assert task.task_id == 6 * SEEDS_PER_TYPE + 9


def test_interleaving_follows_type_ids_whatever_the_listing_order():
    env = make("lgc-v2", task_types=["sudoku", "dyck_language", "game_of_24"])
    assert env.num_tasks == 3 * SEEDS_PER_TYPE
    ids = [env.task_id_at(i) for i in range(7)]
    assert ids == [0, 100_000_000, 700_000_000, 1, 100_000_001, 700_000_001, 2]
    again = make("lgc-v2", task_types=["game_of_24", "sudoku", "dyck_language"])
    assert [again.task_id_at(i) for i in range(7)] == ids
    with pytest.raises(IndexError):
        env.task_id_at(env.num_tasks)


def test_default_serves_all_types_and_rejects_unconfigured_type():
    env = make("lgc-v2")
    assert {split_task_id(env.task_id_at(i))[0] for i in range(len(TASK_TYPES))} == set(TASK_TYPES)
    only = make("lgc-v2", task_types="sudoku")  # a bare string, as from a CLI, is one type
    assert only.types == ("sudoku",)
    assert make("lgc-v2", task_types="sudoku, game_of_24").types == ("game_of_24", "sudoku")
    with pytest.raises(ValueError, match="not in task_types"):
        only.task(make_task_id("game_of_24", 1))


def test_knobs_change_the_tasks():
    small = make("lgc-v2", task_types=["sudoku"], sudoku_min_empty=5, sudoku_max_empty=5)
    big = make("lgc-v2", task_types=["sudoku"], sudoku_min_empty=60, sudoku_max_empty=60)
    assert small.task(700_000_003).extra["puzzle"].count(".") == 5
    assert big.task(700_000_003).extra["puzzle"].count(".") == 60
    short = make("lgc-v2", task_types=["dyck_language"], dyck_min_length=4, dyck_max_length=4, dyck_num_types=1)
    seq = short.task(17).extra["sequence"]
    assert len(seq) == 4 and set(seq) <= set("()")
    g = make("lgc-v2", task_types=["game_of_24"], game24_min_value=5, game24_max_value=9)
    for seed in range(20):
        assert all(5 <= n <= 9 for n in g.task(make_task_id("game_of_24", seed)).extra["numbers"])


# -- oracle and garbage for every type ----------------------------------------------------------


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_oracle_scores_one_and_garbage_zero(env, task_type):
    for seed in range(25):
        task = _task(env, task_type, seed)
        assert task.extra["task_type"] == task_type
        oracle = env.oracle(task)
        score = env.score(task, oracle)
        assert score.value == 1.0, (task_type, seed, oracle, score.info)
        for bad in ("", "I don't know", "\\boxed{}", "Answer:", "```\n```", "\\boxed{" * 1000, "<think>" + oracle):
            s = env.score(task, bad)
            assert s.value == 0.0 and s.info["reason"], (task_type, bad[:20], s.info)


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_long_completion_scores_fast(env, task_type):
    task = _task(env, task_type, 1)
    filler = ("( ) [ 9 \\boxed{ ``` Answer: " * 7000)[:190_000]
    start = time.perf_counter()
    for text in (filler, filler + env.oracle(task), "9 " * 95_000):
        env.score(task, text)
    assert time.perf_counter() - start < 0.5
    assert env.score(task, filler + "\n" + env.oracle(task)).value == 1.0


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_each_type_prompt_states_its_format(env, task_type):
    text = _task(env, task_type, 2).prompt[0]["content"]
    marker = {"dyck_language": "Answer:", "sudoku": "```"}.get(task_type, "\\boxed{")
    assert marker in text


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_prompt_has_no_example_a_parrot_could_copy_for_reward(env, task_type):
    """Format instructions carry no concrete answer: copying the prompt's last slot never scores."""
    for seed in range(30):
        task = _task(env, task_type, seed)
        text = task.prompt[0]["content"]
        assert env.score(task, text).value == 0.0, (task_type, seed)
        assert env.score(task, text.splitlines()[-1]).value == 0.0, (task_type, seed)


# -- alternative correct answers and wrong answers ----------------------------------------------


def test_dyck_language_exact_closing(env):
    task = _task(env, "dyck_language", 4)
    gold = task.ground_truth
    assert env.score(task, f"Answer: {gold}").value == 1.0  # without spaces
    assert env.score(task, f"answer:   {' '.join(gold)}  ").value == 1.0
    assert env.score(task, f"**Answer:** `{' '.join(gold)}`.").value == 1.0
    assert env.score(task, f"Answer: {gold[:-1]}").value == 0.0
    assert env.score(task, f"Answer: {gold}{gold[-1]}").value == 0.0
    wrong = gold[:-1] + ("]" if gold[-1] != "]" else ")")
    assert env.score(task, f"Answer: {wrong}").info["reason"] == "wrong closing sequence"
    # the gold answer really closes the prefix
    assert _first_error(task.extra["sequence"] + gold) == 0


def test_first_error_definition():
    assert _first_error("([]{})") == 0
    assert _first_error("([)]") == 3  # ')' does not match '['
    assert _first_error("())") == 3  # stray closer
    assert _first_error("(()[") == 1  # all closers match, '(' at 1 is left open
    assert _first_error("]") == 1


def test_dyck_language2_ground_truth_and_scoring(env):
    answers = set()
    for seed in range(40):
        task = _task(env, "dyck_language2", seed)
        gold = int(task.ground_truth)
        answers.add(gold == 0)
        assert gold == _first_error(task.extra["sequence"])
        assert env.score(task, f"position \\boxed{{{gold}}}").value == 1.0
        assert env.score(task, f"\\boxed{{{gold + 1}}}").value == 0.0
    assert answers == {True, False}  # both balanced and broken sequences occur


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


def test_operation_value_and_wrong(env):
    for seed in range(20):
        task = _task(env, "operation", seed)
        gold = int(task.ground_truth)
        assert env.score(task, f"so \\boxed{{ {gold} }}").value == 1.0
        assert env.score(task, f"\\boxed{{{gold - 1}}}").value == 0.0
        assert env.score(task, "\\boxed{x+1}").info["reason"] == "boxed answer is not an integer"


def test_operation_definition_is_what_the_prompt_says():
    env = make("lgc-v2", task_types=["operation"], operation_max_ops=1)
    for seed in range(30):
        task = env.task(make_task_id("operation", seed))
        text = task.prompt[0]["content"]
        lhs, sym, rhs = task.extra["expression"].split(" ")
        definition = next(line for line in text.splitlines() if line.startswith(f"  a {sym} b = "))
        body = definition.split("=", 1)[1].strip()
        a, b = int(lhs), int(rhs)
        # the definition uses Python syntax for max/min/conditional: check it independently
        expected = eval(body, {"max": max, "min": min}, {"a": a, "b": b})  # noqa: S307 (test only)
        assert expected == int(task.ground_truth)


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


def test_boolean_expressions(env):
    values = set()
    for seed in range(30):
        task = _task(env, "boolean_expressions", seed)
        gold = task.ground_truth
        values.add(gold)
        # independent check of the generator: Python evaluates the same syntax
        assert str(eval(task.extra["expression"], {"__builtins__": {}})) == gold  # noqa: S307 (test only)
        assert env.score(task, f"\\boxed{{{gold.lower()}}}").value == 1.0
        assert env.score(task, f"\\boxed{{\\text{{{gold}}}}}").value == 1.0
        other = "False" if gold == "True" else "True"
        assert env.score(task, f"\\boxed{{{other}}}").value == 0.0
        assert env.score(task, "\\boxed{maybe}").value == 0.0
    assert values == {"True", "False"}


def _solve_sudoku(puzzle: str, avoid: str | None = None) -> str | None:
    """Backtracking solver for tests: a solution of ``puzzle`` different from ``avoid``."""
    grid = [0 if c == "." else int(c) for c in puzzle]

    def ok(i, v):
        r, c = divmod(i, 9)
        br, bc = r // 3 * 3, c // 3 * 3
        return all(
            grid[j] != v
            for j in [r * 9 + k for k in range(9)]
            + [k * 9 + c for k in range(9)]
            + [(br + x) * 9 + bc + y for x in range(3) for y in range(3)]
        )

    def rec():
        try:
            i = grid.index(0)
        except ValueError:
            return "".join(map(str, grid)) != avoid
        for v in range(1, 10):
            if ok(i, v):
                grid[i] = v
                if rec():
                    return True
                grid[i] = 0
        return False

    return "".join(map(str, grid)) if rec() else None


def _grid_block(sol: str, sep: str = " ") -> str:
    return "```\n" + "\n".join(sep.join(sol[r * 9 : r * 9 + 9]) for r in range(9)) + "\n```"


def test_sudoku_accepts_another_solution_and_checks_givens():
    env = make("lgc-v2", task_types=["sudoku"], sudoku_min_empty=58, sudoku_max_empty=60)
    task = env.task(make_task_id("sudoku", 2))
    other = _solve_sudoku(task.extra["puzzle"], avoid=task.ground_truth)
    assert other is not None and other != task.ground_truth, "60 blanks should allow a second solution"
    assert env.score(task, _grid_block(other)).value == 1.0
    assert env.score(task, _grid_block(other, sep="")).value == 1.0
    # a valid sudoku that ignores a given digit is rejected
    perm = str.maketrans("123456789", "234567891")
    relabelled = task.ground_truth.translate(perm)
    assert "given digit" in env.score(task, _grid_block(relabelled)).info["reason"]
    # breaking one cell breaks a unit
    i = task.extra["puzzle"].index(".")
    broken = task.ground_truth[:i] + str(int(task.ground_truth[i]) % 9 + 1) + task.ground_truth[i + 1 :]
    assert "repeats" in env.score(task, _grid_block(broken)).info["reason"]
    # separators between boxes are fine; an 8-row grid is not
    rows = [" ".join(task.ground_truth[r * 9 : r * 9 + 9]) for r in range(9)]
    boxed = "\n".join(rows[:3] + ["------+-------+------"] + rows[3:6] + ["------"] + rows[6:])
    assert env.score(task, f"```text\n{boxed}\n```").value == 1.0
    assert env.score(task, "```\n" + "\n".join(rows[:8]) + "\n```").value == 0.0


def test_sudoku_unique_uses_reasoning_gym_generator():
    env = make("lgc-v2", task_types=["sudoku"], sudoku_unique=True, sudoku_min_empty=20, sudoku_max_empty=24)
    task = env.task(make_task_id("sudoku", 5))
    assert 20 <= task.extra["puzzle"].count(".") <= 24
    assert _solve_sudoku(task.extra["puzzle"]) == task.ground_truth
    assert _solve_sudoku(task.extra["puzzle"], avoid=task.ground_truth) is None  # the only solution
    assert env.score(task, env.oracle(task)).value == 1.0
    assert env.task(make_task_id("sudoku", 5)) == task


def test_sudoku_solution_is_valid(env):
    for seed in range(20):
        task = _task(env, "sudoku", seed)
        sol = task.ground_truth
        for r in range(9):
            assert set(sol[r * 9 : r * 9 + 9]) == set("123456789")
            assert {sol[k * 9 + r] for k in range(9)} == set("123456789")
        assert all(p in (".", s) for p, s in zip(task.extra["puzzle"], sol))


def test_reasoning_errors_ground_truth_and_order_free_answer(env):
    seen_none = seen_some = False
    for seed in range(40):
        task = _task(env, "dyck_language_reasoning_errors", seed)
        gold = task.ground_truth
        # recompute the wrong thoughts from the prompt independently of the generator
        lines = [ln for ln in task.prompt[0]["content"].splitlines() if " ; stack: " in ln]
        stack, wrong = [], []
        for ln in lines:
            head, shown = ln.split(" ; stack: ")
            num, sym = head[len("Thought ") :].split(": ")
            if sym in "([{<":
                stack.append(sym)
            else:
                stack.pop()
            if (shown.split() if shown != "empty" else []) != stack:
                wrong.append(int(num))
        assert gold == (",".join(map(str, wrong)) or "none")
        if wrong:
            seen_some = True
            assert env.score(task, "\\boxed{" + ", ".join(map(str, reversed(wrong))) + "}").value == 1.0
            assert env.score(task, "\\boxed{none}").value == 0.0
            assert env.score(task, "\\boxed{" + ",".join(map(str, wrong + wrong)) + "}").value == 0.0
        else:
            seen_none = True
            assert env.score(task, "\\boxed{None}").value == 1.0
            assert env.score(task, "\\boxed{2}").value == 0.0
    assert seen_none and seen_some


# -- config errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, match",
    [
        ({"task_types": ["nope"]}, r"task_types: 'nope' is not valid; choose from: dyck_language, game_of_24"),
        ({"task_types": []}, r"task_types is empty; choose from"),
        ({"task_types": ["sudoku", "sudoku"]}, r"twice"),
        ({"dyck_num_types": 5}, r"dyck_num_types=5 is not valid; expected an integer in \[1, 4\]"),
        ({"dyck_min_length": 10, "dyck_max_length": 5}, r"dyck_min_length=10 is greater than dyck_max_length=5"),
        ({"sudoku_max_empty": 90}, r"sudoku_max_empty=90"),
        ({"cryptarithm_min_words": 1}, r"cryptarithm_min_words=1"),
        ({"game24_min_value": 1, "game24_max_value": 2}, r"game24_min_value=1, game24_max_value=2: no solvable"),
        ({"operation_max_ops": "many"}, r"config key 'operation_max_ops': expected an integer"),
        ({"difficulty": 3}, r"unknown config key\(s\) 'difficulty'.*valid keys: .*task_types"),
    ],
)
def test_config_errors(config, match):
    with pytest.raises(ValueError, match=match):
        make("lgc-v2", **config)


def test_aliases():
    for alias in ("lgc_v2", "logic-v2", "logic_v2"):
        assert make(alias, task_types=["sudoku"]).name == "lgc-v2"


def test_prompts_fit_the_default_prompt_budget(env, smollm2_tokenizer):
    """Every default-config prompt fits the launchers' default data.max_prompt_length (1024 tokens)."""
    longest = {}
    for task_type in ALL_TYPES:
        lengths = []
        for seed in range(0, 400, 50):
            task = _task(env, task_type, seed)
            ids = smollm2_tokenizer.apply_chat_template(task.prompt, add_generation_prompt=True, tokenize=True)
            ids = ids["input_ids"] if hasattr(ids, "keys") else ids
            lengths.append(len(ids))
        longest[task_type] = max(lengths)
        assert 20 < max(lengths) <= 1024, (task_type, max(lengths))
    # the trace of the reasoning-errors task is the longest prompt, sudoku's grid next
    assert longest["dyck_language_reasoning_errors"] > longest["dyck_language"]


@pytest.mark.parametrize("task_type", ["boolean_expressions", "operation", "game_of_24", "cryptarithm",
                                       "dyck_language_reasoning_errors"])
def test_boxing_several_different_answers_is_a_hedge_that_scores_zero(task_type):
    # Seen on the GPU: GRPO taught SmolLM2 to answer "\boxed{True}\n\boxed{False}" to every boolean task.
    env = make("lgc-v2", task_types=[task_type])
    for i in range(5):
        task = env.task(env.task_id_at(i))
        oracle = env.oracle(task)
        assert env.score(task, oracle).value == 1.0
        decoy = "\\boxed{True}" if "\\boxed{False}" in oracle else "\\boxed{False}"
        for hedge in (f"{decoy}\n{oracle}", f"{oracle}\n{decoy}"):
            score = env.score(task, hedge)
            assert score.value == 0.0 and "several different" in score.info["reason"], (hedge, score.info)
        # repeating the same boxed answer is not a hedge
        assert env.score(task, f"{oracle} so {oracle}").value == 1.0

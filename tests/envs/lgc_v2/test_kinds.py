"""lgc-v2: one answer per completion (several different final answers are a hedge, by value for the type),
bounded nesting, and the reason class of every zero."""

from __future__ import annotations

import dataclasses

import pytest

from tests.envs.lgc_v2.helpers import ALL_TYPES, task_of
from tests.envs.lgc_v2.test_sudoku import _grid_block, _solve_sudoku
from veritas_rl.envs import make
from veritas_rl.envs.lgc_v2 import make_task_id
from veritas_rl.envs.lgc_v2.common import CONFLICTING_ANSWERS, answer_line_slots, fenced_bodies


def outcome(env, task, answer) -> tuple[float, str]:
    score = env.score(task, answer)
    return score.value, score.kind


# -- the slots each type reads ------------------------------------------------------------------


def test_answer_line_slots_are_lines_that_start_with_answer_then_the_final_slot():
    text = "The answer: unclear.\n**Answer:** ) ]\n  - Final answer: )\nso answer: ]"
    assert answer_line_slots(text) == ["** ) ]", " )", " ]"]
    assert answer_line_slots("Answer: ) Answer: ]") == [" ]", " ]"]  # a line with two markers: its last one
    assert answer_line_slots("Answer: a\nAnswer: b") == [" a", " b", " b"]
    assert answer_line_slots("no marker") == []


def test_fenced_bodies_pair_fences_from_the_end_like_last_fenced_block():
    assert fenced_bodies("```\na\n```\n```text\nb\n```") == ["\na\n", "b\n"]  # a language tag is dropped
    assert fenced_bodies("``` stray\n```\nc\n```") == ["\nc\n"]  # an odd fence count: the first is left over
    assert fenced_bodies("no fence") == [] and len(fenced_bodies("```x\n" * 40_000)) == 65


# -- hedges --------------------------------------------------------------------------------------


def test_dyck_language_answer_lines_must_agree(env):
    task = task_of(env, "dyck_language", 3)
    gold, spaced = task.ground_truth, " ".join(task.ground_truth)
    wrong = gold + ")"
    for answer in (f"Answer: {wrong}\nAnswer: {gold}", f"Answer: {gold}\nAnswer: {wrong}",
                   f"**Answer:** {wrong}\nFinal answer: {spaced}", f"Answer: {wrong}\nthen answer: {gold}"):
        assert outcome(env, task, answer) == (0.0, "hedge"), answer
        assert env.score(task, answer).info["reason"] == CONFLICTING_ANSWERS
    # the same closers written twice, an empty heading, prose that mentions "the answer:" mid-line
    assert outcome(env, task, f"Answer: {gold}\n**Answer:** `{spaced}`.") == (1.0, "correct")
    assert outcome(env, task, f"**Answer:**\nclosing them.\nAnswer: {spaced}") == (1.0, "correct")
    assert outcome(env, task, f"I think the answer: is not clear yet.\nAnswer: {gold}") == (1.0, "correct")


def _game_of_24(numbers):
    env = make("lgc-v2", task_types=["game_of_24"])
    real = env.task(make_task_id("game_of_24", 0))
    return env, dataclasses.replace(real, extra={**real.extra, "numbers": numbers})


def test_game_of_24_two_right_expressions_agree_a_right_and_a_wrong_one_are_a_hedge():
    env, task = _game_of_24([1, 2, 3, 4])
    right, other_right, wrong = "(1+2+3)*4", "1*2*3*4", "(1+2)*3+4"
    assert outcome(env, task, f"\\boxed{{{right}}} or equally \\boxed{{{other_right}}}") == (1.0, "correct")
    assert outcome(env, task, f"\\boxed{{{right}}} \\boxed{{ {right} = 24 }}") == (1.0, "correct")
    for answer in (f"\\boxed{{{right}}} \\boxed{{{wrong}}}", f"\\boxed{{{wrong}}} \\boxed{{{right}}}",
                   f"\\boxed{{{right}}} \\boxed{{1+2+3+4}}", f"\\boxed{{{right}}} \\boxed{{24}}"):
        assert outcome(env, task, answer) == (0.0, "hedge"), answer


def test_boxes_compare_by_value_for_each_type(env):
    boolean = task_of(env, "boolean_expressions", 0)
    value = boolean.ground_truth
    assert outcome(env, boolean, f"\\boxed{{{value}}} \\boxed{{\\text{{{value.lower()}}}}}") == (1.0, "correct")
    crypt = task_of(env, "cryptarithm", 0)
    pairs = crypt.ground_truth.split(",")
    assert outcome(env, crypt, f"\\boxed{{{crypt.ground_truth}}} \\boxed{{{', '.join(reversed(pairs))}}}") == (
        1.0, "correct")
    crypt_wrong = ",".join(pairs[:-1])  # a letter left out
    assert outcome(env, crypt, f"\\boxed{{{crypt.ground_truth}}} \\boxed{{{crypt_wrong}}}") == (0.0, "hedge")
    errors = next(t for t in (task_of(env, "dyck_language_reasoning_errors", s) for s in range(60))
                  if t.ground_truth.count(",") >= 1)
    backwards = ", ".join(reversed(errors.ground_truth.split(",")))
    assert outcome(env, errors, f"\\boxed{{{errors.ground_truth}}} \\boxed{{{backwards}}}") == (1.0, "correct")
    assert outcome(env, errors, f"\\boxed{{{errors.ground_truth}}} \\boxed{{none}}") == (0.0, "hedge")


def test_sudoku_blocks_must_hold_one_grid():
    env = make("lgc-v2", task_types=["sudoku"], sudoku_min_empty=58, sudoku_max_empty=60)
    task = env.task(make_task_id("sudoku", 2))
    gold = env.oracle(task)
    other = _solve_sudoku(task.extra["puzzle"], avoid=task.ground_truth)
    broken = gold.replace("\n```", " 1\n```")  # the audit's wrong value: one more digit in the last row
    for answer in (f"{broken}\n{gold}", f"{gold}\n{broken}", f"{_grid_block(task.ground_truth[::-1])}\n{gold}"):
        assert outcome(env, task, answer) == (0.0, "hedge"), answer
    # two solutions of a puzzle with several are two right answers; the same grid twice is one
    assert outcome(env, task, f"{_grid_block(other)}\n{gold}") == (1.0, "correct")
    assert outcome(env, task, f"{gold}\nthe same, packed:\n{_grid_block(task.ground_truth, sep='')}") == (
        1.0, "correct")
    # the puzzle copied out (blanks as _ or 0) and code are no answers
    puzzle = task.extra["puzzle"]
    for blank in ("_", "0"):
        copy = _grid_block(puzzle.replace(".", blank))
        assert outcome(env, task, f"The puzzle:\n{copy}\nSolved:\n{gold}") == (1.0, "correct")
    code = "```python\nfor row in range(9):\n    print(row)\n```"
    assert outcome(env, task, f"{code}\n{gold}") == (1.0, "correct")


# -- nesting -------------------------------------------------------------------------------------


def test_game_of_24_nesting_is_bounded():
    env, task = _game_of_24([8, 3, 8, 3])
    gold = "8/(3-8/3)"  # one level of parentheses already

    def nested(k, pair="()"):
        return "\\boxed{" + pair[0] * k + gold + pair[1] * k + "}"

    assert outcome(env, task, nested(11)) == (1.0, "correct")  # 12 levels: the bound
    assert outcome(env, task, nested(11, "[]")) == (1.0, "correct")
    for answer in (nested(12), nested(90), nested(90, "{}"), nested(60, "[]")):
        score = env.score(task, answer)
        assert (score.value, score.kind) == (0.0, "too_long") and "nested deeper than 12" in score.info["reason"]


def test_deep_groups_around_a_truth_value_are_no_answer(env):
    task = task_of(env, "boolean_expressions", 0)
    gold = task.ground_truth
    assert outcome(env, task, "\\boxed{{\\text{" + gold + "}}}") == (1.0, "correct")
    for answer in ("\\boxed{" + "{" * 90 + gold + "}" * 90 + "}", "\\boxed{" + "(" * 90 + gold + ")" * 90 + "}",
                   "\\boxed{{{{{" + gold + "}}}}}"):  # four groups: one more than is read
        assert outcome(env, task, answer) == (0.0, "no_answer"), answer


# -- the reason class of every zero ------------------------------------------------------------


def test_every_zero_of_game_of_24_has_its_kind():
    env, task = _game_of_24([8, 3, 8, 3])
    for answer, kind in [
        ("8/(3-8/3)", "no_answer"),
        ("\\boxed{}", "no_answer"),
        ("\\boxed{8 x 3}", "no_answer"),
        ("\\boxed{-8+32}", "no_answer"),
        ("\\boxed{" + "8+" * 120 + "8}", "too_long"),
        ("\\boxed{8*3}", "illegal"),
        ("\\boxed{8*3+8-8}", "illegal"),
        ("\\boxed{8+3+8+3}", "wrong"),
        ("\\boxed{8/(3-8/3) = 25}", "wrong"),
    ]:
        assert outcome(env, task, answer) == (0.0, kind), answer


def test_every_zero_of_sudoku_has_its_kind(env):
    task = task_of(env, "sudoku", 0)
    sol, puzzle = task.ground_truth, task.extra["puzzle"]
    relabelled = sol.translate(str.maketrans("123456789", "234567891"))
    i = puzzle.index(".")
    repeated = sol[:i] + str(int(sol[i]) % 9 + 1) + sol[i + 1 :]
    for answer, kind in [
        ("the grid is solved", "no_answer"),
        (_grid_block(sol)[:-90], "no_answer"),  # an unclosed block
        (_grid_block(sol[:72]), "no_answer"),  # eight rows
        ("```\n" + "1 2 3\n" * 500 + "```", "too_long"),
        (_grid_block(relabelled), "illegal"),
        (_grid_block(repeated), "wrong"),
    ]:
        assert outcome(env, task, answer) == (0.0, kind), answer[:60]


def test_every_zero_of_dyck_language_has_its_kind(env):
    task = task_of(env, "dyck_language", 4)
    gold = task.ground_truth
    for answer, kind in [
        (f"The closers are {gold}", "no_answer"),
        ("Answer: I am not sure", "no_answer"),
        ("Answer:", "no_answer"),
        ("Answer: " + ")" * 2001, "too_long"),
        (f"Answer: {gold[:-1]}", "wrong"),
    ]:
        assert outcome(env, task, answer) == (0.0, kind), answer[:60]


def test_every_zero_of_the_boxed_types_has_its_kind(env):
    crypt = task_of(env, "cryptarithm", 0)
    mapping = dict(pair.split("=") for pair in crypt.ground_truth.split(","))
    letters = sorted(mapping)
    same_digit = {**mapping, letters[1]: mapping[letters[0]]}
    leading = crypt.extra["words"][0][0]
    zero_lead = {k: ("0" if k == leading else "1" if v == "0" else v) for k, v in mapping.items()}
    a, b = [k for k in letters if mapping[k] != "0"][:2]  # a swap that leaves no leading zero
    swapped = {**mapping, a: mapping[b], b: mapping[a]}
    as_text = lambda m: "\\boxed{" + ",".join(f"{k}={v}" for k, v in m.items()) + "}"  # noqa: E731
    errors = task_of(env, "dyck_language_reasoning_errors", 0)
    cases = [
        (crypt, "no box", "no_answer"),
        (crypt, "\\boxed{A is 1}", "no_answer"),
        (crypt, f"\\boxed{{{crypt.ground_truth},{letters[0]}=1}}", "no_answer"),  # a letter mapped twice
        (crypt, "\\boxed{" + "A=1," * 120 + "}", "too_long"),
        (crypt, as_text(same_digit), "illegal"),
        (crypt, as_text(zero_lead), "illegal"),
        (crypt, as_text(swapped), "wrong"),
        (errors, "\\boxed{the third}", "no_answer"),
        (errors, "\\boxed{" + "2," * 1100 + "}", "too_long"),
        (errors, "\\boxed{2,3}" if errors.ground_truth != "2,3" else "\\boxed{none}", "wrong"),
        (task_of(env, "boolean_expressions", 1), "\\boxed{maybe}", "no_answer"),
        (task_of(env, "operation", 1), "\\boxed{x+1}", "no_answer"),
        (task_of(env, "dyck_language2", 1), "\\boxed{" + "9" * 50 + "}", "too_long"),
    ]
    for task, answer, kind in cases:
        assert outcome(env, task, answer) == (0.0, kind), (task.extra["task_type"], answer[:60])
    other = "False" if task_of(env, "boolean_expressions", 1).ground_truth == "True" else "True"
    assert outcome(env, task_of(env, "boolean_expressions", 1), f"\\boxed{{{other}}}") == (0.0, "wrong")


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_every_zero_names_a_kind_and_a_hedge_of_the_oracle_is_one(env, task_type):
    """Across tasks: the oracle with a wrong answer before or after it is a hedge; the oracle twice is not."""
    for seed in range(10):
        task = task_of(env, task_type, seed)
        oracle = env.oracle(task)
        wrong = {"dyck_language": "Answer: (", "sudoku": "```\n" + "1 2 3 4 5 6 7 8 9\n" * 9 + "```"}.get(
            task_type, "\\boxed{-987654}")
        assert outcome(env, task, f"{oracle}\n{oracle}") == (1.0, "correct")
        for answer in (f"{wrong}\n{oracle}", f"{oracle}\n{wrong}"):
            assert outcome(env, task, answer) == (0.0, "hedge"), (task_type, seed)


# -- digits are ASCII digits -----------------------------------------------------------------------

# characters that str.isdigit() accepts and int() refuses (superscripts) or reads as a number (Arabic-Indic)
NON_ASCII_DIGITS = ("\u00b2", "\u0660", "\u0663", "\u2460")


@pytest.mark.parametrize("task_type, template", [
    ("operation", "\\boxed{1{d}}"), ("dyck_language2", "\\boxed{{d}}"),
    ("dyck_language_reasoning_errors", "\\boxed{{d}}"), ("cryptarithm", "\\boxed{A={d}}"),
    ("game_of_24", "\\boxed{({d}+1)*24}"),
])
def test_non_ascii_digits_score_zero_with_a_reason_never_an_exception(env, task_type, template):
    task = task_of(env, task_type, 1)
    for d in NON_ASCII_DIGITS:
        score = env.score(task, template.replace("{d}", d))
        assert (score.value, score.kind) == (0.0, "no_answer"), (task_type, d, score)
        assert score.info["reason"]


def test_a_sudoku_grid_of_look_alike_digits_is_not_a_solution():
    sudoku = make("lgc-v2", task_types=["sudoku"])
    for seed in range(40):  # puzzles where one digit has no given: renaming it keeps every unit distinct
        task = sudoku.task(make_task_id("sudoku", seed))
        missing = sorted(set("123456789") - set(task.extra["puzzle"]))
        if missing:
            break
    assert missing, "no puzzle without a given digit in the first 40 seeds"
    assert sudoku.score(task, _grid_block(task.ground_truth)).value == 1.0
    for d in NON_ASCII_DIGITS:
        fake = task.ground_truth.replace(missing[0], d)
        score = sudoku.score(task, _grid_block(fake))
        assert (score.value, score.kind) == (0.0, "no_answer"), (d, score)

"""reasoning-gym red team: replies that are not the answer and that reasoning-gym's own scorers credit in full
(each test first shows the raw scorer's credit, then the env's 0), and right answers in common forms that the
env used to refuse. Real reasoning-gym throughout; a few seconds in all."""

from __future__ import annotations

import json
import time

import pytest

from veritas_rl.envs import make


def raw_score(env, index: int, answer: str) -> float:
    """What the dataset's own scorer gives ``answer`` (the text the env stands in front of)."""
    return float(env.dataset.score_answer(answer, env.entry(index)))


def score(env, index: int, slot: str):
    return env.score(env.task(index), f"<answer>{slot}</answer>")


# -- the gold and then something else ---------------------------------------------------------


def test_spell_backward_gold_with_a_letter_appended_scores_zero():
    # its scorer adds 1/len per matching leading letter: 9 x (1/9) is 1.0000000000000002, past its "- 0.2 when
    # exactly 1.0" penalty, and the env's clip to [0, 1] made that full credit for any text starting with the gold
    env = make("rg", dataset="spell_backward", size=20)
    gold = env.entry(0)["answer"]
    assert raw_score(env, 0, gold + "s") > 1.0
    for slot in (gold + "s", gold + "zzz", gold + gold):
        result = score(env, 0, slot)
        assert (result.value, result.kind) == (0.0, "hedge"), (slot, result)
    assert score(env, 0, gold).value == 1.0


def test_word_sorting_and_letter_jumble_ignore_what_follows_the_gold():
    # word_sorting counts positions matching the gold over the gold's length; letter_jumble the same per word
    sorting = make("rg", dataset="word_sorting", size=5)
    gold = sorting.entry(0)["answer"]
    hedge = f"{gold}, {', '.join(reversed(gold.split(', ')))}"  # ascending, then descending
    assert raw_score(sorting, 0, hedge) == 1.0
    assert (score(sorting, 0, hedge).value, score(sorting, 0, hedge).kind) == (0.0, "hedge")
    assert score(sorting, 0, gold).value == 1.0

    for binary in (True, False):
        jumble = make("rg", dataset="letter_jumble", size=5, binary=binary)
        gold = jumble.entry(1)["answer"]
        for slot in (f"{gold} or {gold[:-1]}x", f"{gold} is the answer", f"{gold} is what I unscrambled"):
            assert raw_score(jumble, 1, slot) >= 0.9
            result = score(jumble, 1, slot)
            assert (result.value, result.kind) == (0.0, "hedge"), (binary, slot, result)


def test_time_intervals_one_duration_in_the_golds_format():
    # its scorer reads int() of the first word of "5 days": "5 or 9 days" scored 1.0
    env = make("rg", dataset="time_intervals", size=40)
    days = next(i for i in range(40) if env.entry(i)["metadata"]["task_type"] == "date")
    gold = env.entry(days)["answer"]
    n = int(gold.split()[0])
    for slot in (f"{n} or {n + 4} days", f"{n} {n + 4}", f"{gold} or {n + 4} days", f"{n} days (maybe {n + 1})"):
        assert raw_score(env, days, slot) == 1.0
        assert score(env, days, slot).value == 0.0, slot
    for slot in (gold, str(n), f"**{gold}**", f"{gold}.", f"\\text{{{gold}}}"):
        assert score(env, days, slot).value == 1.0, slot
    clock = next(i for i in range(40) if env.entry(i)["metadata"]["task_type"].startswith("time"))
    gold = env.entry(clock)["answer"]
    assert score(env, clock, gold).value == 1.0
    assert raw_score(env, clock, gold + ":59") == 1.0  # it reads three fields and ignores a fourth
    assert score(env, clock, gold + ":59").value == 0.0


def test_quantum_lock_answer_is_only_button_presses():
    # its scorer keeps every A-C letter of any text: words around the sequence were ignored
    env = make("rg", dataset="quantum_lock", size=3)
    gold = env.entry(0)["answer"]
    first, rest = gold.split(" → ", 1)
    for slot in (f"{first} or q → {rest}", f"press {gold}", f"{gold} (the shortest)"):
        assert raw_score(env, 0, slot) == 1.0
        assert score(env, 0, slot).value == 0.0, slot
    for slot in (gold, gold.replace(" → ", " -> "), gold.replace(" → ", "→"), gold.lower()):
        assert score(env, 0, slot).value == 1.0, slot


# -- lists and grids of numbers -----------------------------------------------------------------


def test_number_sorting_needs_the_tasks_numbers_not_numbers_within_one():
    env = make("rg", dataset="number_sorting", size=5)
    gold = json.loads(env.entry(0)["answer"].replace("'", '"'))
    off = [f"{float(gold[0]) - 0.9:.1f}"] + gold[1:]  # still sorted, first number off by 0.9
    rounded = [str(round(float(x))) for x in gold]
    for answer in (off, rounded):
        text = json.dumps(answer)
        if sorted(map(float, answer)) != list(map(float, answer)):
            continue
        assert raw_score(env, 0, text) == 1.0  # its tolerance is 1
        result = score(env, 0, text)
        assert result.value == 0.0 and "numbers" in result.info["reason"], (text, result)
    # the same values in another notation are the answer
    assert score(env, 0, json.dumps([float(x) for x in gold])).value == 1.0


def test_game_of_life_grid_with_extra_rows_scores_zero():
    env = make("rg", dataset="game_of_life", size=5)
    grid = json.loads(env.entry(0)["answer"])
    for answer in (grid + [grid[-1]], [row + [0] for row in grid]):
        text = json.dumps(answer)
        assert raw_score(env, 0, text) == 1.0  # it reads only the gold's cells
        result = score(env, 0, text)
        assert result.value == 0.0 and "grid" in result.info["reason"], result
    assert score(env, 0, json.dumps(grid)).value == 1.0  # spacing differs from the gold's text


# -- propositional logic -----------------------------------------------------------------------


def test_propositional_logic_restating_the_premises_scores_zero():
    env = make("rg", dataset="propositional_logic", size=10)
    premises = env.entry(0)["metadata"]["premises"]  # Q, ((Q → Q) → ¬R), R
    compound = next(p for p in premises if len(p) > 1)
    for slot in (
        compound,
        f"¬¬{compound}",
        f"¬(¬{compound})",
        " ∧ ".join(f"({p})" for p in premises),
        f"{premises[0]} ∨ {premises[0]}",
    ):
        assert raw_score(env, 0, slot) == 1.0
        result = score(env, 0, slot)
        assert (result.value, result.kind) == (0.0, "no_answer") and "premise" in result.info["reason"], slot
    # a conclusion that is not a copy still counts (here the dataset's own example answer)
    example = env.entry(0)["metadata"]["example_answer"]
    assert score(env, 0, example).value == 1.0


def test_propositional_logic_deep_negation_is_a_fast_zero():
    # its parser rescans the formula once per negation: 1,900 of them took ~3 s and raised RecursionError
    env = make("rg", dataset="propositional_logic", size=5)
    for slot in ("¬" * 1900 + "P", "(" * 400 + "P" + ")" * 400, " ∧ ".join(["P"] * 300)):
        start = time.perf_counter()
        result = score(env, 0, slot)
        assert time.perf_counter() - start < 0.05
        assert (result.value, result.kind) == (0.0, "no_answer")


def test_rubiks_cube_repeat_counts_are_bounded():
    # "U99" is 99 turns to its scorer: 4,000 characters of them took ~2 s, 20,000 would take ~9 s
    env = make("rg", dataset="rubiks_cube", size=3)
    start = time.perf_counter()
    result = score(env, 0, "U99 " * 4000)
    assert time.perf_counter() - start < 0.05
    assert (result.value, result.kind) == (0.0, "no_answer")
    assert score(env, 0, "U2 R' F").kind == "wrong"  # ordinary moves still reach the scorer


# -- answers that say nothing (binary: false keeps reasoning-gym's partial credit) --------------


@pytest.mark.parametrize(
    "name, slot", [("color_cube_rotation", "None"), ("knight_swap", "[]"), ("graph_color", "{}"), ("jugs", "[]")]
)
def test_empty_answers_earn_no_format_credit(name, slot):
    env = make("rg", dataset=name, size=3, binary=False)
    assert raw_score(env, 0, slot) > 0.0  # reasoning-gym's 0.01-0.05 for a well-formed nothing
    result = score(env, 0, slot)
    assert (result.value, result.kind) == (0.0, "no_answer"), result


def test_an_empty_list_is_still_the_answer_where_it_is_the_gold():
    env = make("rg", dataset="list_functions", size=10)
    assert env.entry(7)["answer"] == "[]"
    assert score(env, 7, "[]").value == 1.0


# -- right answers in common forms --------------------------------------------------------------


@pytest.mark.parametrize("name", ["chain_sum", "spell_backward", "caesar_cipher", "knights_knaves", "rotate_matrix"])
def test_wrapped_answers_are_read_inside_their_markup(name):
    env = make("rg", dataset=name, size=3)
    gold = env.entry(0)["answer"]
    period = "" if gold.endswith(".") else "."
    for slot in (f"${gold}$", f"\\boxed{{{gold}}}", f"**{gold}**", f'"{gold}"', f"```\n{gold}\n```",
                 f"`{gold}`{period}", f"$\\boxed{{{gold}}}$"):
        assert score(env, 0, slot).value == 1.0, slot


def test_wrappers_come_off_only_around_the_whole_answer():
    env = make("rg", dataset="chain_sum", size=3)
    gold = int(env.entry(0)["answer"])
    hedges = (f"\\boxed{{{gold}}} or \\boxed{{{gold + 1}}}", f"${gold}$ or ${gold + 1}$", f"**{gold}** **{gold + 1}**")
    for slot in hedges:
        assert score(env, 0, slot).value == 0.0, slot
    for slot in ("**your answer**", "$$", "\\boxed{}", "**None**"):
        assert (score(env, 0, slot).value, score(env, 0, slot).kind) == (0.0, "no_answer"), slot


def test_a_number_in_another_notation_is_the_golds_number():
    # lcm's scorer (reasoning-gym's default) compares text: 6.0, +6, 2,646 and fullwidth digits scored below 1
    env = make("rg", dataset="lcm", size=3)
    assert env.entry(0)["answer"] == "2646"
    for slot in ("2646.0", "+2646", "2,646", "２６４６", "2646.", "$2,646$"):
        assert raw_score(env, 0, slot) < 1.0
        assert score(env, 0, slot).value == 1.0, slot
    for slot in ("02646", "2646.5", "2,647", "-2646", "2646/1"):
        assert score(env, 0, slot).value == 0.0, slot
    # an unsimplified fraction is not the simplified one, whatever its value
    fractions = make("rg", dataset="fraction_simplification", size=3)
    meta = fractions.entry(0)["metadata"]
    n, d = meta["simplified_numerator"], meta["simplified_denominator"]
    assert score(fractions, 0, f"{n}/{d}").value == 1.0
    assert score(fractions, 0, f"{2 * n}/{2 * d}").value == 0.0


def test_a_closed_vocabulary_word_in_another_case_is_the_gold():
    # course_schedule's and syllogism's scorers compare case: true for True, YES for Yes scored 0
    for name in ("course_schedule", "syllogism"):
        env = make("rg", dataset=name, size=3)
        gold = env.entry(0)["answer"]
        other = {"true": "False", "false": "True", "yes": "No", "no": "Yes"}[gold.lower()]
        for slot in (gold.lower(), gold.upper(), f"**{gold.lower()}**"):
            assert raw_score(env, 0, slot) < 1.0 or slot == gold
            assert score(env, 0, slot).value == 1.0, (name, slot)
        assert score(env, 0, other.lower()).value == 0.0

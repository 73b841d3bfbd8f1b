"""reasoning-gym: garbage, the format example, prompt echoes and hedges score exactly 0 (real scorers)."""

from __future__ import annotations

import pytest

from veritas_rl.envs import make


def test_hedges_score_zero_in_either_order_compared_by_value():
    for name in ("chain_sum", "basic_arithmetic"):
        env = make("rg", dataset=name, size=20)
        for i in range(5):
            task = env.task(i)
            gold = int(task.ground_truth)
            for slot in (f"{gold} or {gold + 1}", f"{gold + 1} or {gold}", f"{gold}, {gold + 1}", f"{gold}; {gold - 1}"):
                score = env.score(task, f"<answer>{slot}</answer>")
                assert (score.value, score.kind) == (0.0, "hedge"), (name, slot, score)
            # two tags with different answers, in either order
            for a, b in ((gold, gold + 1), (gold + 1, gold)):
                score = env.score(task, f"<answer>{a}</answer> or maybe <answer>{b}</answer>")
                assert (score.value, score.kind) == (0.0, "hedge")
            # the same value twice is one answer, not a hedge
            assert env.score(task, f"<answer>{gold} or {gold}.0</answer>").kind != "hedge"
            assert env.score(task, f"<answer>{gold}</answer>").value == 1.0


def test_hedged_words_score_zero():
    env = make("rg", dataset="game_of_life_halting", size=10)
    task = env.task(0)
    for slot in ("True or False", "False/True", "True, False"):
        score = env.score(task, f"<answer>{slot}</answer>")
        assert (score.value, score.kind) == (0.0, "hedge"), slot


@pytest.mark.parametrize(
    "name, garbage",
    [
        ("countdown", "hello world"),
        ("countdown", "__import__('os')"),
        ("propositional_logic", "garbage"),
        ("propositional_logic", "the conclusion is Q"),
        ("puzzle24", "no idea"),
        ("rubiks_cube", "qwerty uiop"),
        ("rush_hour", "1e999999"),
        ("tsumego", "1e999999"),
        ("sentence_reordering", "qwertyuiop asdf"),
        ("spell_backward", "__import__('os')"),
        ("letter_counting", "factorial(10**6)"),
        ("aiw", "factorial(10**6)"),
        ("game_of_life_halting", "banana"),
    ],
)
def test_garbage_scores_exactly_zero(name, garbage):
    """reasoning-gym gives these 0.01-0.25 (game_of_life_halting: 1.0, its scorer compares bool(text))."""
    import reasoning_gym

    env = make("rg", dataset=name, size=10)
    raw = reasoning_gym.create_dataset(name, seed=0, size=10)
    task = env.task(0)
    assert raw.score_answer(garbage, raw[0]) > 0.0  # what the env stands in front of
    score = env.score(task, f"<answer>{garbage}</answer>")
    assert (score.value, score.kind) == (0.0, "no_answer"), score


def test_game_of_life_halting_is_scored_by_exact_match():
    env = make("rg", dataset="game_of_life_halting", size=10)
    for i in range(10):
        task = env.task(i)
        gold = task.ground_truth
        flipped = "False" if gold == "True" else "True"
        assert env.score(task, f"<answer>{gold}</answer>").value == 1.0
        assert env.score(task, f"<answer>{gold.lower()}</answer>").value == 1.0
        score = env.score(task, f"<answer>{flipped}</answer>")
        assert (score.value, score.kind) == (0.0, "wrong")


@pytest.mark.parametrize("name", ["countdown", "propositional_logic", "chain_sum", "emoji_mystery", "word_sorting"])
def test_format_example_and_prompt_echo_score_zero(name):
    env = make("rg", dataset=name, size=5)
    for i in range(3):
        task = env.task(i)
        question = env.entry(i)["question"]
        for completion in (
            "<answer>your answer</answer>",
            "<answer>Your answer.</answer>",
            f"<answer>{question}</answer>",
            task.prompt[0]["content"],
        ):
            score = env.score(task, completion)
            assert (score.value, score.kind) == (0.0, "no_answer"), (completion[:60], score)


def test_well_formed_wrong_answers_keep_reasoning_gyms_partial_credit():
    # a formula over the task's variables that does not follow: propositional_logic's 0.05
    env = make("rg", dataset="propositional_logic", size=5, binary=False)
    task = env.task(0)
    variables = env.entry(0)["metadata"]["variables"]
    score = env.score(task, f"<answer>({variables[0]} ∨ {variables[1]})</answer>")
    assert 0.0 <= score.value <= 1.0 and score.kind in ("partial", "correct")
    # a trivial tautology is reasoning-gym's 0.25
    trivial = env.score(task, f"<answer>({variables[0]} ∨ ¬{variables[0]})</answer>")
    assert trivial.value == 0.25 and trivial.kind == "partial"


def test_a_number_shaped_answer_earns_credit_only_as_the_golds_number():
    """reasoning-gym's number scorers give credit to other numbers: coin_flip's prefix match (``0`` for
    0.3125), gsm_symbolic's regex that skips the sign (-28080 for 28080), similarity credit (8 for 7)."""
    from fractions import Fraction

    from veritas_rl.envs.reasoning_gym.env import half_unit
    from veritas_rl.envs.reasoning_gym.shapes import parse_number

    assert parse_number("-28080") == -28080 and parse_number("-2.5") == Fraction(-5, 2)  # the sign is kept
    assert (half_unit("0.3125"), half_unit("28080"), half_unit("9.36e-18")) == (Fraction(1, 20000), 0, 0)
    for dataset, config in (("coin_flip", {"seed": 1}), ("gsm_symbolic", {}), ("rectangle_count", {})):
        for binary in (True, False):
            env = make("rg", dataset=dataset, size=8, binary=binary, **config)
            for i in range(4):
                task = env.task(i)
                gold = parse_number(task.ground_truth)
                assert gold is not None and env.score(task, env.oracle(task)).value == 1.0
                for wrong in {-gold, gold + 1, Fraction(0), gold / 2} - {gold}:
                    text = str(wrong) if wrong.denominator == 1 else f"{float(wrong)!r}"
                    score = env.score(task, f"<answer>{text}</answer>")
                    assert score.value == 0.0, (dataset, binary, task.ground_truth, text, score)
                if gold.denominator != 1:  # more digits than the gold is written to: the same number
                    longer = f"{task.ground_truth}0" if "." in task.ground_truth else None
                    assert longer is None or env.score(task, f"<answer>{longer}</answer>").value == 1.0


def test_partial_credit_is_opt_in():
    default = make("rg", dataset="time_intervals", size=8, seed=1)
    partial = make("rg", dataset="time_intervals", size=8, seed=1, binary=False)
    assert default.config.binary is True
    task = default.task(0)
    assert default.score(task, "<answer>00:00</answer>").value == 0.0  # reasoning-gym's 0.976 for a wrong time
    assert 0.0 < partial.score(task, "<answer>00:00</answer>").value < 1.0

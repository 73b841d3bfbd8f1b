"""The opponent ladder: rung names, their errors, and the bots they build (real OpenSpiel)."""

from __future__ import annotations

import random

import pytest

from veritas_rl.games import spiel
from veritas_rl.games.episode import EpisodeConfig, play_episode
from veritas_rl.games.opponents import LADDER, FirstLegalBot, PolicyBot, Rung, make_opponent, parse_rung


@pytest.mark.parametrize(
    ("text", "rung"),
    [
        ("random", Rung("random")),
        (" first_legal ", Rung("first_legal")),
        ("mcts:10", Rung("mcts", 10)),
        ("mcts:1000", Rung("mcts", 1000)),
        ("policy:train/runs/x/checkpoint-4", Rung("policy", path="train/runs/x/checkpoint-4")),
        ("hf:embedded:smollm2-135m", Rung("policy", path="embedded:smollm2-135m")),
    ],
)
def test_rung_forms(text, rung):
    assert parse_rung(text) == rung
    assert parse_rung(rung.name) == rung  # names round-trip


def test_bare_mcts_takes_the_default_count_only_where_one_is_given():
    assert parse_rung("mcts", mcts_default=25).name == "mcts:25"
    with pytest.raises(ValueError, match=r"opponent='mcts' needs a simulation count, e.g. mcts:100"):
        parse_rung("mcts")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a rung; valid forms: random | first_legal | mcts:N | policy:PATH"),
        (None, "opponent=None is not a rung"),
        ("minimax", "opponent='minimax' is not a rung; valid forms: random | first_legal | mcts:N | policy:PATH"),
        ("mcts:", "N in mcts:N must be an integer in 1..1000000"),
        ("mcts:-5", "N in mcts:N must be an integer"),
        ("mcts:1e3", "N in mcts:N must be an integer"),
        ("mcts:２", "N in mcts:N must be an integer"),  # a non-ASCII digit
        ("mcts:10000000", "N in mcts:N must be an integer in 1..1000000"),
        ("policy:  ", "policy:PATH needs a checkpoint path"),
        ("Random", "opponent='Random' is not a rung"),
    ],
)
def test_bad_rungs_name_the_key_and_the_valid_forms(text, message):
    with pytest.raises(ValueError) as err:
        parse_rung(text)
    assert message in str(err.value)


def test_the_key_is_named_as_the_caller_calls_it():
    with pytest.raises(ValueError, match=r"^--opponent='x' is not a rung"):
        parse_rung("x", key="--opponent")


def test_the_ladder_is_the_issues_ladder():
    assert LADDER == ("random", "mcts:10", "mcts:100", "mcts:1000")


def test_first_legal_plays_the_smallest_legal_id():
    state = spiel.load_game("tic_tac_toe").new_initial_state()
    state.apply_action(0)
    assert FirstLegalBot().step(state) == 1


@pytest.mark.parametrize(("case", "kind"), [("tic_tac_toe", "mcts"), ("kuhn_poker", "ismcts"),
                                            ("liars_dice", "mcts-clairvoyant")])
def test_mcts_rungs_search_information_sets_where_openspiel_can_resample(case, kind):
    bot = make_opponent("mcts:8", case, random.Random(0))
    assert bot.kind == kind


def test_more_simulations_play_better_against_random():
    def random_mover(seed):
        rng = random.Random(seed)

        def policy(messages):
            text = messages[-1]["content"].split("Legal actions (id: action):\n", 1)[1].split("\n\n", 1)[0]
            return f"<answer>{rng.choice([line.split(':')[0] for line in text.splitlines()])}</answer>"

        return policy

    def losses_of_random(opponent):
        games = [play_episode(EpisodeConfig("tic_tac_toe", s % 2, s, opponent), random_mover(s)) for s in range(20)]
        return sum(g.outcome == "loss" for g in games)

    assert losses_of_random("mcts:200") >= losses_of_random("random") + 5


def test_a_policy_bot_falls_back_to_a_seeded_random_legal_move():
    answers = iter(["<answer>4</answer>", "nonsense", "<answer>4</answer>"])
    bot = PolicyBot(lambda turn: next(answers), "tic_tac_toe", random.Random(3))
    state = spiel.load_game("tic_tac_toe").new_initial_state()
    assert bot.step(state) == 4 and bot.fallbacks == 0
    state.apply_action(4)
    first = bot.step(state)
    assert first in state.legal_actions() and bot.fallbacks == 1
    assert bot.step(state) in state.legal_actions() and bot.fallbacks == 2  # 4 is taken: illegal, falls back

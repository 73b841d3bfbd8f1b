"""The game-episode core (GameEpisode, play_episode, replay_episode) on real OpenSpiel."""

from __future__ import annotations

import math
import time

import pytest

from veritas_rl.games import spiel
from veritas_rl.games.episode import EpisodeConfig, GameEpisode, play_episode, replay_episode


def scripted(actions):
    """A policy that answers the given action ids in order (whatever it is shown)."""
    it = iter(actions)
    return lambda messages: f"<answer>{next(it)}</answer>"


def test_tic_tac_toe_scripted_win_against_first_legal():
    # x takes the centre; first_legal answers 0 then 1; x completes the 2-4-6 diagonal
    result = play_episode(EpisodeConfig("tic_tac_toe", seat=0, seed=0, opponent="first_legal"), scripted([4, 2, 6]))
    assert [(m.by, m.action, m.action_str) for m in result.moves] == [
        ("policy", 4, "x(1,1)"), ("opponent", 0, "o(0,0)"), ("policy", 2, "x(0,2)"), ("opponent", 1, "o(0,1)"),
        ("policy", 6, "x(2,0)")]
    assert (result.outcome, result.returns, result.reward) == ("win", [1.0, -1.0], 1.0)
    assert (result.model_turns, result.legal_moves, result.reason) == (3, 3, None)


def test_connect_four_scripted_vertical_win_and_loss_from_the_other_seat():
    win = play_episode(EpisodeConfig("connect_four", 0, 5, "first_legal"), scripted([3, 3, 3, 3]))
    assert [m.action for m in win.moves] == [3, 0, 3, 0, 3, 0, 3]
    assert (win.outcome, win.returns, win.reward) == ("win", [1.0, -1.0], 1.0)
    # seat 1: first_legal (x) stacks column 0 and wins on its fourth piece; o answers in column 6
    loss = play_episode(EpisodeConfig("connect_four", 1, 5, "first_legal"), scripted([6, 6, 6]))
    assert [m.action for m in loss.moves] == [0, 6, 0, 6, 0, 6, 0]
    assert (loss.outcome, loss.returns, loss.reward, loss.model_turns) == ("loss", [1.0, -1.0], 0.0, 3)


@pytest.mark.parametrize("seat", [0, 1])
def test_kuhn_poker_scripted_bet_wins_the_pot_when_first_legal_folds(seat):
    # seat 0 bets, first_legal (Pass = fold to a bet) folds: +1 ante. Seat 1: first_legal passes, the model bets,
    # first_legal passes again (folds): +1. Kuhn's utilities span [-2, 2], so +1 normalises to 0.75.
    config = EpisodeConfig("kuhn_poker", seat, 11, "first_legal")
    seen = []

    def bet(messages):
        seen.append(messages)
        return "<answer>Bet</answer>"  # by action string

    result = play_episode(config, bet)
    chance = [m for m in result.moves if m.by == "chance"]
    assert len(chance) == 2 and chance[0].action != chance[1].action and {c.action for c in chance} <= {0, 1, 2}
    player_moves = [(m.by, m.action) for m in result.moves if m.by != "chance"]
    assert player_moves == ([("policy", 1), ("opponent", 0)] if seat == 0 else
                            [("opponent", 0), ("policy", 1), ("opponent", 0)])
    mine = [-1.0, 1.0] if seat else [1.0, -1.0]
    assert (result.outcome, result.returns, result.reward) == ("win", mine, 0.75)
    # the model sees its own card (its information state), never the other one
    state = spiel.state_from_history("kuhn_poker", [c.action for c in chance])
    prompt = seen[0][0]["content"]
    assert f"State from your point of view:\n{chance[seat].action}" in prompt
    assert "imperfect-information" in prompt and state.information_state_string(seat)[0] == str(chance[seat].action)


def test_the_conversation_alternates_and_observations_name_the_opponents_move():
    conversations = []

    def policy(messages):
        conversations.append(messages)
        return f"<answer>{[4, 2, 6][len(conversations) - 1]}</answer>"

    play_episode(EpisodeConfig("tic_tac_toe", 0, 0, "first_legal"), policy)
    last = conversations[-1]
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[:1] == spiel.render_prompt("tic_tac_toe", spiel.load_game("tic_tac_toe").new_initial_state())
    board = "State from your point of view:\no..\n.x.\n...\n"
    assert last[2]["content"].startswith("Player 1 played 0: o(0,0).\n\n" + board)
    assert "\n0: " not in last[4]["content"] and "Legal actions (id: action):\n3: x(1,0)" in last[4]["content"]


def test_chance_outcomes_and_moves_before_the_first_turn_are_applied():
    episode = GameEpisode(EpisodeConfig("tic_tac_toe", 1, 3, "first_legal"))
    messages = episode.start()
    assert [m.action for m in episode.moves] == [0] and "x.." in messages[0]["content"]
    assert episode.step("<answer>4</answer>").observation.startswith("Player 0 played 1: x(0,1).")


@pytest.mark.parametrize(
    ("completion", "reason", "kind"),
    [
        ("<answer>4</answer>", "action id 4 is not legal here", "illegal"),
        ("", "no <answer>", "no_answer"),
        (None, "completion is NoneType, not str", "no_answer"),
        (b"<answer>1</answer>", "completion is bytes, not str", "no_answer"),
        ("<answer>1</answer><answer>2</answer>", "hedge", "hedge"),
        ("<think>" + "a" * 1000, "unclosed <think>", "no_answer"),
        ("<answer>1</answer>" + "x" * 200_001, "longer than 200000", "too_long"),
        ("<answer>" * 25_000, "no <answer>", "no_answer"),  # a flood, parsed in linear time
    ],
)
def test_an_invalid_move_ends_the_episode_with_the_minimum_utility(completion, reason, kind):
    episode = GameEpisode(EpisodeConfig("tic_tac_toe", 0, 2, "first_legal", legal_move_bonus=0.1))
    episode.start()
    assert not episode.step("<answer>4</answer>").done  # x4, o0
    start = time.perf_counter()
    out = episode.step(completion)
    assert time.perf_counter() - start < 0.5
    assert out.done and out.observation is None and episode.done
    assert out.info["legal"] is False and out.info["action"] is None and reason in out.info["reason"]
    assert out.info["kind"] == kind and out.info["outcome"] == "illegal"
    result = episode.result()
    assert result.outcome == "illegal" and result.returns == [-1.0, 1.0] and reason in result.reason
    assert result.normalised_return == 0.0 and result.reward == pytest.approx(0.1)  # the one legal move's bonus
    with pytest.raises(RuntimeError, match="over"):
        episode.step("<answer>1</answer>")


def test_legal_move_bonus_is_added_per_legal_move():
    plain = play_episode(EpisodeConfig("tic_tac_toe", 0, 0, "first_legal"), scripted([4, 2, 6]))
    shaped = play_episode(EpisodeConfig("tic_tac_toe", 0, 0, "first_legal", legal_move_bonus=0.05), scripted([4, 2, 6]))
    assert shaped.reward == pytest.approx(plain.reward + 3 * 0.05) and shaped.normalised_return == plain.reward


def test_max_turns_cuts_the_game_with_the_unfinished_returns():
    result = play_episode(EpisodeConfig("connect_four", 0, 0, "random", max_turns=2), scripted([3, 3]))
    assert (result.outcome, result.model_turns, result.returns) == ("max_turns", 2, [0.0, 0.0])
    # the unfinished returns are recorded, but the stop pays the minimum utility (no draw's 0.5 for stalling)
    assert (result.normalised_return, result.reward) == (0.0, 0.0)
    assert sum(m.by == "opponent" for m in result.moves) == 2  # the opponent answered the second move


@pytest.mark.parametrize(("case", "opponent"), [("tic_tac_toe", "mcts:10"), ("kuhn_poker", "mcts:10"),
                                                ("backgammon", "random"), ("leduc_poker", "random")])
def test_replaying_the_texts_reproduces_the_game(case, opponent):
    import random

    rng = random.Random(7)

    def policy(messages):  # any legal id shown in the last user message, with some noise around it
        text = messages[-1]["content"].split("Legal actions (id: action):\n", 1)[1]
        ids = [line.split(":", 1)[0] for line in text.split("\n\n", 1)[0].splitlines()]
        return f"<think>{rng.random()}</think>I pick <answer>{rng.choice(ids)}</answer>"

    config = EpisodeConfig(case, 1, 4, opponent, max_turns=30)
    first = play_episode(config, policy)
    assert first.outcome in ("win", "draw", "loss", "max_turns") and first.legal_moves == first.model_turns
    again = replay_episode(config, first.completions())
    assert again.to_dict() == first.to_dict()
    state = spiel.state_from_history(case, [m.action for m in first.moves])
    assert state.is_terminal() == (first.outcome != "max_turns")
    if state.is_terminal():
        assert list(state.returns()) == first.returns


def test_replay_needs_exactly_the_games_texts():
    config = EpisodeConfig("tic_tac_toe", 0, 0, "first_legal")
    with pytest.raises(ValueError, match="needs more than the 2 completions"):
        replay_episode(config, ["<answer>4</answer>", "<answer>2</answer>"])
    with pytest.raises(ValueError, match="ended after 3 of the 4 completions"):
        replay_episode(config, ["<answer>4</answer>", "<answer>2</answer>", "<answer>6</answer>", "<answer>7</answer>"])


def test_seeds_change_random_opponents_and_chance():
    games = {tuple(m.action for m in play_episode(EpisodeConfig("kuhn_poker", 0, s), scripted([0, 0, 0])).moves)
             for s in range(12)}
    assert len(games) > 3


def test_eval_and_training_play_the_same_games():
    from veritas_rl.games.play import play_game

    episode = play_episode(EpisodeConfig("connect_four", 1, 9, "mcts:5"), scripted([3, 3, 3, 4, 4, 4, 2, 2, 2, 5, 5]))
    it = iter([3, 3, 3, 4, 4, 4, 2, 2, 2, 5, 5])
    game = play_game("connect_four", lambda turn: f"<answer>{next(it)}</answer>", "mcts", seed=9, seat=1,
                     mcts_simulations=5)
    assert [m.action for m in game.trajectory] == [m.action for m in episode.moves]
    assert game.returns == episode.returns


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opponent": "mcts"}, "opponent='mcts' needs a simulation count, e.g. mcts:100"),
        ({"opponent": "mcts:0"}, "N in mcts:N must be an integer in 1..1000000"),
        ({"opponent": "alphazero"}, "valid forms: random | first_legal | mcts:N | policy:PATH"),
        ({"opponent": "policy:"}, "policy:PATH needs a checkpoint path"),
        ({"max_turns": 0}, "max_turns=0 must be an integer >= 1"),
        ({"legal_move_bonus": math.nan}, "legal_move_bonus=nan must be a finite number >= 0"),
        ({"seat": -1}, "seat=-1 must be >= 0"),
        ({"seed": "3"}, "seed='3' must be an integer"),
        ({"case": ""}, "case='' must be an OpenSpiel load string"),
    ],
)
def test_bad_configs_name_the_key(kwargs, message):
    with pytest.raises(ValueError) as err:
        EpisodeConfig(**{"case": "tic_tac_toe", "seat": 0, "seed": 0, **kwargs})
    assert message in str(err.value)


def test_seat_and_case_are_checked_against_the_game():
    with pytest.raises(ValueError, match=r"seat=2 is not valid for 'tic_tac_toe'; choose from 0..1"):
        GameEpisode(EpisodeConfig("tic_tac_toe", 2, 0))
    with pytest.raises(ValueError, match="case 'no_such_game': OpenSpiel cannot load it"):
        GameEpisode(EpisodeConfig("no_such_game", 0, 0))


def test_start_and_result_are_called_in_order():
    episode = GameEpisode(EpisodeConfig("tic_tac_toe", 0, 0))
    with pytest.raises(RuntimeError, match="start"):
        episode.step("<answer>4</answer>")
    episode.start()
    with pytest.raises(RuntimeError, match="not over"):
        episode.result()
    with pytest.raises(RuntimeError, match="already"):
        episode.start()

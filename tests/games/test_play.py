"""Full games (play_game) on real OpenSpiel."""

from __future__ import annotations

import json
import time

import pytest

from veritas_rl.games import spiel
from veritas_rl.games.play import GameResult, Turn, play_game, random_policy


def replay(result: GameResult):
    state = spiel.load_game(result.case).new_initial_state()
    for move in result.trajectory:
        state.apply_action(move.action)
    return state


@pytest.mark.parametrize("case", ["tic_tac_toe", "kuhn_poker", "goofspiel(num_cards=4)", "backgammon"])
def test_a_game_is_reproducible_and_its_trajectory_replays_to_its_returns(case):
    a = play_game(case, random_policy(1), "random", seed=5, seat=1)
    b = play_game(case, random_policy(1), "random", seed=5, seat=1)
    assert a.to_dict() == b.to_dict()
    state = replay(a)
    assert state.is_terminal() and list(state.returns()) == a.returns
    assert a.outcome in ("win", "draw", "loss") and not a.illegal_move
    # seats alternate correctly: the policy moves only for its seat, chance only at chance nodes
    for move in a.trajectory:
        assert (move.by == "policy") == (move.player == 1)
        assert (move.by == "chance") == (move.player == -1)
    policy_moves = [m for m in a.trajectory if m.by == "policy"]
    assert policy_moves and all(m.prompt and m.completion.startswith("<answer>") for m in policy_moves)
    if case in ("kuhn_poker", "backgammon"):
        assert any(m.by == "chance" for m in a.trajectory)


def test_different_seeds_give_different_games():
    games = {json.dumps([m.action for m in play_game("connect_four", random_policy(s), "random", seed=s).trajectory])
             for s in range(6)}
    assert len(games) == 6


def test_policy_sees_prompt_legal_actions_and_state():
    seen: list[Turn] = []

    def first_legal(turn: Turn) -> str:
        seen.append(turn)
        assert turn.state.current_player() == turn.player
        return f"<answer>{turn.legal[min(turn.legal)]}</answer>"  # by action string

    result = play_game("tic_tac_toe", first_legal, "random", seed=0, seat=0)
    assert seen and all(t.player == 0 for t in seen)
    for turn in seen:
        assert turn.legal == {a: turn.state.action_to_string(a) for a in turn.state.legal_actions()}
        assert turn.messages == spiel.render_prompt("tic_tac_toe", turn.state)
    assert [m.action for m in result.trajectory if m.by == "policy"] == [min(t.legal) for t in seen]


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        ("", "no <answer>"),
        ("<answer>4</answer>", "action id 4 is not legal"),
        (None, "not str"),
        ("<answer>ID</answer>", "format placeholder"),
        ("<answer>0</answer><answer>1</answer>", "hedge"),  # whatever is legal, two answers are a hedge
        ("<answer>0</answer>" + " " * 200_001, "longer than 200000"),  # the env's size bound
    ],
)
def test_an_invalid_answer_ends_the_game_as_an_illegal_move(completion, reason):
    # "4" is legal until the centre is taken (by x, or by the policy itself): then it ends the game
    def policy(turn: Turn):
        return completion

    result = play_game("tic_tac_toe", policy, "random", seed=3, seat=1)
    assert result.illegal_move and result.outcome == "illegal"
    assert reason in result.illegal_reason
    assert result.returns == [1.0, -1.0]  # the policy's seat gets the game's minimum utility
    assert result.trajectory[-1].by == "policy" and result.trajectory[-1].action is None


def test_max_moves_truncates():
    result = play_game("chess", random_policy(0), "random", seed=0, max_moves=6)
    assert result.truncated and sum(m.by != "chance" for m in result.trajectory) == 6


def test_seat_must_exist():
    with pytest.raises(ValueError, match=r"seat=2 is not valid for 'tic_tac_toe'; choose from 0..1"):
        play_game("tic_tac_toe", random_policy(0), seat=2)


def test_policy_samples_pair_each_prompt_with_its_completion():
    answers = iter(["<answer>4</answer>", "<answer>4</answer>"])  # the second "4" is the policy's own cell

    result = play_game("tic_tac_toe", lambda turn: next(answers), "random", seed=2, seat=0)
    samples = result.policy_samples()
    assert [s["legal"] for s in samples] == [True, False] and result.outcome == "illegal"
    assert samples[0]["action"] == 4 and samples[1]["action"] is None
    assert "4: x(1,1)" in samples[0]["prompt"][0]["content"]
    assert "4: " not in samples[1]["prompt"][0]["content"]  # the centre is taken by then


def test_the_policy_prompt_names_no_move_and_its_echo_ends_the_game():
    result = play_game("tic_tac_toe", lambda turn: turn.messages[0]["content"], "random", seed=1, seat=0)
    assert result.outcome == "illegal" and "format placeholder" in result.illegal_reason


def test_game_play_parses_floods_in_linear_time():
    start = time.perf_counter()
    result = play_game("tic_tac_toe", lambda turn: "<answer>" * 25_000, "random", seed=0, seat=0)
    assert result.outcome == "illegal" and "no <answer>" in result.illegal_reason
    assert time.perf_counter() - start < 0.5  # includes loading the game; the parse itself is ~1 ms

"""Full games (play_game), evaluation (evaluate / write_report) and ``veritas eval-games``, real OpenSpiel."""

from __future__ import annotations

import json

import pytest

from veritas_rl.cli import main as cli_main
from veritas_rl.games import spiel
from veritas_rl.games.evaluate import evaluate, markdown_table, write_report
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
    [("", "no <answer>"), ("<answer>4</answer>", "action id 4 is not legal"), (None, "not str")],
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


def test_mcts_beats_random_seat_balanced():
    report = evaluate("mcts", "random", ["tic_tac_toe"], num_episodes=6, seed=0, mcts_simulations=100, progress=False)
    s = report["cases"]["tic_tac_toe"]
    assert sum(s["by_seat"]["0"].values()) == 3
    assert sum(s["by_seat"]["1"].values()) == 3
    assert s["rates"]["loss"] == 0.0 and s["rates"]["win"] >= 0.5 and s["rates"]["illegal"] == 0.0
    assert sum(s["rates"].values()) == pytest.approx(1.0)


def test_evaluate_writes_json_markdown_and_png(tmp_path):
    report = evaluate("random", "random", ["tic_tac_toe", "kuhn_poker"], num_episodes=4, seed=1, progress=False)
    paths = write_report(report, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert set(data["cases"]) == {"tic_tac_toe", "kuhn_poker"}
    for case, s in data["cases"].items():
        assert s["episodes"] == 4 and sum(s["counts"].values()) == 4
        assert [e["seat"] for e in s["episodes_detail"]] == [0, 1, 0, 1]
    assert paths["markdown"].read_text() == markdown_table(report)
    assert "| `kuhn_poker` | 4 |" in paths["markdown"].read_text()
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # reproducible
    again = evaluate("random", "random", ["tic_tac_toe", "kuhn_poker"], num_episodes=4, seed=1, progress=False)
    assert again == report


def test_cli_eval_games(tmp_path, capsys):
    rc = cli_main(["eval-games", "--policy", "random", "--opponent", "mcts", "--mcts-simulations", "20",
                   "--cases", "tic_tac_toe", "--num-episodes", "2", "--out-dir", str(tmp_path), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| `tic_tac_toe` | 2 |" in out
    assert {p.name for p in tmp_path.iterdir()} == {"eval_games.json", "eval_games.md", "eval_games.png"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "greedy"], "--policy='greedy' is not valid; choose from: random, mcts, hf:PATH"),
        (["--cases", "no_such_game"], "case 'no_such_game': OpenSpiel cannot load it"),
        (["--num-episodes", "0"], "--num-episodes=0 must be >= 1"),
        (["--policy", "hf:/nonexistent/model-dir"], "hf:/nonexistent/model-dir: cannot load a model from it"),
    ],
)
def test_cli_eval_games_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli_main(["eval-games", "--out-dir", str(tmp_path), "--no-progress", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["eval-games", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--policy", "--opponent", "--cases", "--num-episodes", "--seed", "--out-dir"):
        assert flag in out


@pytest.fixture
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    yield 1
    torch.set_num_threads(before)


def test_hf_policy_plays_with_the_real_smollm2(smollm2_dir, one_torch_thread):
    from veritas_rl.games.evaluate import HFPolicy

    policy = HFPolicy(str(smollm2_dir), max_new_tokens=4, threads=one_torch_thread)
    result = play_game("tic_tac_toe", policy, "random", seed=0, seat=0, max_moves=2)
    first = result.trajectory[0]
    assert first.by == "policy" and isinstance(first.completion, str) and first.completion
    # the outcome is what the strict parser makes of the model's text
    action, _ = spiel.parse_action(first.completion, spiel.legal_map_from_state(
        spiel.load_game("tic_tac_toe").new_initial_state()))
    assert result.illegal_move == (action is None)
    assert policy(Turn("tic_tac_toe", 0, first.prompt, {}, None, [])) == first.completion  # greedy: deterministic


def test_policy_samples_pair_each_prompt_with_its_completion():
    answers = iter(["<answer>4</answer>", "<answer>4</answer>"])  # the second "4" is the policy's own cell

    result = play_game("tic_tac_toe", lambda turn: next(answers), "random", seed=2, seat=0)
    samples = result.policy_samples()
    assert [s["legal"] for s in samples] == [True, False] and result.outcome == "illegal"
    assert samples[0]["action"] == 4 and samples[1]["action"] is None
    assert "4: x(1,1)" in samples[0]["prompt"][0]["content"]
    assert "4: " not in samples[1]["prompt"][0]["content"]  # the centre is taken by then

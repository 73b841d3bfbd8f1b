"""Game evaluation (evaluate / write_report / HFPolicy) and ``veritas eval-games``, real OpenSpiel."""

from __future__ import annotations

import json

import pytest

from veritas_rl.cli import main as cli_main
from veritas_rl.eval.games import evaluate, markdown_table, write_report
from veritas_rl.games import spiel
from veritas_rl.games.play import Turn, play_game


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
        (["--policy", "greedy"], "--policy='greedy' is not a rung; valid forms: random | first_legal | mcts:N | policy:PATH (or hf:PATH)"),
        (["--opponent", "mcts:ten"], "--opponent='mcts:ten': N in mcts:N must be an integer"),
        (["--cases", "no_such_game"], "case 'no_such_game': OpenSpiel cannot load it"),
        (["--num-episodes", "0"], "argument --num-episodes: 0 is too small: expected an integer >= 1"),
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
    from veritas_rl.eval.games import HFPolicy

    policy = HFPolicy(str(smollm2_dir), max_new_tokens=4, threads=one_torch_thread)
    result = play_game("tic_tac_toe", policy, "random", seed=0, seat=0, max_moves=2)
    first = result.trajectory[0]
    assert first.by == "policy" and isinstance(first.completion, str) and first.completion
    # the outcome is what the strict parser makes of the model's text
    action, _ = spiel.parse_action(first.completion, spiel.legal_map_from_state(
        spiel.load_game("tic_tac_toe").new_initial_state()))
    assert result.illegal_move == (action is None)
    assert policy(Turn("tic_tac_toe", 0, first.prompt, {}, None, [])) == first.completion  # greedy: deterministic

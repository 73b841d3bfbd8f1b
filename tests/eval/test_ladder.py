"""The rating ladder: the Elo fit, the stored rung ratings, and ``veritas eval-games --ladder`` (real OpenSpiel)."""

from __future__ import annotations

import json

import pytest

from veritas_rl.cli import main as cli_main
from veritas_rl.eval.ladder import expected, fit_rating, fit_round_robin, ladder_report, load_anchors, policy_elo
from veritas_rl.games.opponents import LADDER


def test_fit_rating_inverts_the_expected_score():
    assert fit_rating([(0.0, 20.0, 40)]) == pytest.approx(0.0, abs=0.01)  # an even score: the opponent's rating
    # 75 % against a 100-rated player: 100 + 400 log10(3) = 291 without the prior; the virtual draw pulls it in
    r = fit_rating([(100.0, 300.0, 400)])
    assert 285 < r < 291 and expected(r, 100.0) < 0.75
    assert fit_rating([(0.0, 40.0, 40)]) > 600 and fit_rating([(0.0, 0.0, 40)]) < -600  # finite, large


def test_round_robin_recovers_ratings_it_was_built_from():
    true = {"random": 0.0, "a": 200.0, "b": 500.0}
    pairs = {}
    for x, y in (("random", "a"), ("random", "b"), ("a", "b")):
        n = 10_000
        wins = round(n * expected(true[x], true[y]))
        pairs[(x, y)] = {"win": wins, "draw": 0, "loss": n - wins}
    fitted = fit_round_robin(pairs)
    for name, rating in true.items():
        assert fitted[name] == pytest.approx(rating, abs=3)


def test_the_stored_anchors_are_what_their_games_give():
    anchors = load_anchors()
    for case in ("tic_tac_toe", "connect_four", "hex(board_size=5)", "kuhn_poker"):
        stored = anchors["cases"][case]
        assert stored["games_per_pair"] >= 40
        assert list(stored["ratings"]) == list(LADDER) and stored["ratings"]["random"] == 0.0
        pairs = {(p["a"], p["b"]): {k: p[k] for k in ("win", "draw", "loss")} for p in stored["pairs"]}
        assert len(pairs) == 6 and all(sum(c.values()) == stored["games_per_pair"] for c in pairs.values())
        assert fit_round_robin(pairs) == stored["ratings"]  # refitting the stored games gives the stored ratings
    board = anchors["cases"]["connect_four"]["ratings"]
    assert board["random"] < board["mcts:10"] < board["mcts:100"]  # search helps where a game is long


def test_policy_elo_sits_between_the_rungs_it_beats_and_loses_to():
    anchors = {"cases": {"g": {"ratings": {"random": 0.0, "mcts:10": 300.0, "mcts:100": 600.0}}}}
    est = policy_elo("g", {"random": {"win": 10}, "mcts:10": {"win": 5, "loss": 5}, "mcts:100": {"loss": 10}}, anchors)
    assert 250 < est["elo"] < 350 and est["bound"] is None and est["anchored_on"] == ["mcts:10", "mcts:100", "random"]
    assert policy_elo("g", {"random": {"illegal": 10}}, anchors)["bound"] == "below"  # illegal moves are losses
    assert policy_elo("other", {"random": {"win": 1}}, anchors) is None


def test_ladder_report_plays_every_rung():
    report = ladder_report("first_legal", ["tic_tac_toe"], 2, seed=0, progress=False)
    assert report["rungs"] == list(LADDER) and set(report["per_rung"]) == set(LADDER)
    for rung, rep in report["per_rung"].items():
        assert rep["opponent"] == rung and rep["cases"]["tic_tac_toe"]["episodes"] == 2
    est = report["elo"]["tic_tac_toe"]
    assert est is not None and est["anchored_on"] == sorted(LADDER)
    assert report["anchors"]["tic_tac_toe"] == load_anchors()["cases"]["tic_tac_toe"]["ratings"]


def test_cli_ladder_writes_json_and_markdown(tmp_path, capsys):
    rc = cli_main(["eval-games", "--ladder", "--policy", "mcts:50", "--cases", "kuhn_poker", "--num-episodes", "2",
                   "--out-dir", str(tmp_path), "--no-progress", "--label", "MCTS (50 simulations)"])
    assert rc == 0
    out = capsys.readouterr().out
    for rung in LADDER:
        assert f"| MCTS (50 simulations) | {rung} | `kuhn_poker` | 2 |" in out
    assert "| MCTS (50 simulations) | `kuhn_poker` | " in out and "mcts:1000: " in out
    data = json.loads((tmp_path / "ladder.json").read_text())
    assert data["policy"] == "mcts:50" and (tmp_path / "ladder.md").read_text() == out

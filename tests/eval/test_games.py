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
        (["--policy", "greedy"],
         "--policy='greedy' is not a rung; valid forms: random | first_legal | mcts:N | policy:PATH (or hf:PATH)"),
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


def test_every_rung_is_a_policy_and_an_opponent(tmp_path, capsys):
    rc = cli_main(["eval-games", "--policy", "first_legal", "--opponent", "mcts:10", "--cases", "tic_tac_toe",
                   "--num-episodes", "4", "--out-dir", str(tmp_path), "--no-progress", "--label", "first legal"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| first legal | mcts:10 | `tic_tac_toe` | 4 |" in out  # the benchmarks table's row format
    data = json.loads((tmp_path / "eval_games.json").read_text())
    assert data["opponent"] == "mcts:10" and data["episode"] == "move"
    # mcts:N is mcts with N simulations: the same games as the bare name with --mcts-simulations N
    a = evaluate("random", "mcts:10", ["tic_tac_toe"], 4, seed=2, progress=False)["cases"]
    b = evaluate("random", "mcts", ["tic_tac_toe"], 4, seed=2, mcts_simulations=10, progress=False)["cases"]
    assert a == b


def test_conversation_turns_show_the_game_so_far():
    seen = []

    def policy(turn: Turn) -> str:
        seen.append(turn.messages)
        return f"<answer>{min(turn.legal)}</answer>"

    play_game("tic_tac_toe", policy, "first_legal", seed=0, seat=0, conversation=True)
    assert [len(m) for m in seen] == [1, 3, 5, 7]  # x0 o1 x2 o3 x4 o5 x6: the 2-4-6 diagonal
    assert seen[2][1] == {"role": "assistant", "content": "<answer>0</answer>"}
    assert seen[2][2]["content"].startswith("Player 1 played 1: o(0,1).")


@pytest.fixture(scope="module")
def checkpoint_forms(tmp_path_factory, smollm2_dir):
    """A TRL-shaped run dir: run/checkpoint-2 and run/final hold a LoRA adapter (r=4) on the real SmolLM2."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = tmp_path_factory.mktemp("run")
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name in ("checkpoint-2", "final"):
        peft.save_pretrained(str(run / name))
    return {"hf dir": str(smollm2_dir), "embedded": "embedded:smollm2-135m", "run dir": str(run),
            "checkpoint-N": str(run / "checkpoint-2"), "adapter dir": str(run / "final")}


@pytest.mark.slow
def test_eval_games_loads_every_checkpoint_form(checkpoint_forms, one_torch_thread, tmp_path, capsys):
    from peft import PeftModel

    from veritas_rl.eval.hf_policy import HFPolicy

    state = spiel.load_game("tic_tac_toe").new_initial_state()
    turn = Turn("tic_tac_toe", 0, spiel.render_prompt("tic_tac_toe", state), {}, None, [])
    replies = {}
    for form, spec in checkpoint_forms.items():
        policy = HFPolicy(spec, max_new_tokens=6, threads=one_torch_thread)
        adapter = {"run dir": "final", "checkpoint-N": "checkpoint-2", "adapter dir": "final"}.get(form)
        assert (policy.adapter is None) == (adapter is None), form
        if adapter:
            assert policy.adapter.endswith(adapter) and isinstance(policy.model, PeftModel), form
        replies[form] = policy(turn)
    # a fresh LoRA adapter (B = 0) changes nothing: every form answers as the base model it sits on
    assert len(set(replies.values())) == 1, replies
    rc = cli_main(["eval-games", "--policy", f"hf:{checkpoint_forms['run dir']}", "--cases", "tic_tac_toe",
                   "--num-episodes", "2", "--max-new-tokens", "4", "--threads", "1", "--max-moves", "2",
                   "--out-dir", str(tmp_path), "--no-progress"])
    assert rc == 0 and "| `tic_tac_toe` | 2 |" in capsys.readouterr().out


@pytest.mark.slow
def test_a_frozen_checkpoint_is_an_opponent(smollm2_dir, one_torch_thread):
    from veritas_rl.games.opponents import make_opponent

    bot = make_opponent(f"policy:{smollm2_dir}", "tic_tac_toe", __import__("random").Random(0), max_new_tokens=4,
                        threads=one_torch_thread)
    result = play_game("tic_tac_toe", lambda turn: f"<answer>{min(turn.legal)}</answer>", bot, seed=0, seat=0)
    # the untrained model never names a legal move: every one of its turns fell back to a random legal move
    opponent_moves = sum(m.by == "opponent" for m in result.trajectory)
    assert opponent_moves >= 2 and bot.fallbacks == opponent_moves and result.outcome in ("win", "draw", "loss")

"""The `veritas` console script: envs, sample, score, --help, and clear errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from veritas_rl.cli import build_parser, main
from veritas_rl.envs import names


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_is_instant_and_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "veritas_rl.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("envs", "sample", "score", "train", "eval-games", "audit"):
        assert command in out.stdout
    # --help imports no heavy framework
    probe = "import sys; from veritas_rl.cli import build_parser; build_parser(); print(sorted(m for m in ('torch','verl','trl','pyspiel') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["envs", "sample", "score", "train", "eval-games", "audit"])
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: veritas" in capsys.readouterr().out


def test_envs_json_lists_every_registered_env(capsys):
    code, out, _ = run(capsys, "envs", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["name"] for r in rows] == names()
    lgc = next(r for r in rows if r["name"] == "lgc-v2")
    assert "lgc_v2" in lgc["aliases"] and "task_types" in lgc["config_keys"]


def test_sample_is_deterministic_and_honours_config_and_ids(capsys):
    _, first, _ = run(capsys, "sample", "lgc-v2", "--n", "3", "--seed", "7", "--config", '{"task_types": ["sudoku"]}')
    _, again, _ = run(capsys, "sample", "lgc-v2", "--n", "3", "--seed", "7", "--config", '{"task_types": ["sudoku"]}')
    assert first == again
    rows = [json.loads(line) for line in first.splitlines()]
    assert len(rows) == 3 and len({r["task_id"] for r in rows}) == 3
    assert all(r["task_id"] // 100_000_000 == 7 for r in rows)  # sudoku is type 7
    _, other, _ = run(capsys, "sample", "lgc-v2", "--n", "3", "--seed", "8", "--config", '{"task_types": ["sudoku"]}')
    assert other != first
    _, by_id, _ = run(capsys, "sample", "lgc-v2", "--task-ids", "100000005,700000001")
    assert [json.loads(line)["task_id"] for line in by_id.splitlines()] == [100000005, 700000001]


def test_sample_then_score_round_trip(tmp_path, capsys):
    _, out, _ = run(capsys, "sample", "math", "--n", "4", "--with-oracle")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(out)
    rows = [json.loads(line) for line in out.splitlines()]
    completions = tmp_path / "completions.jsonl"
    completions.write_text(
        "\n".join(json.dumps({"completion": r["oracle"] if i % 2 == 0 else "no idea"}) for i, r in enumerate(rows))
    )
    code, scored, _ = run(capsys, "score", "math", "--tasks", str(tasks), "--completions", str(completions))
    results = [json.loads(line) for line in scored.splitlines()]
    assert code == 0
    assert [r["task_id"] for r in results] == [r["task_id"] for r in rows]
    assert [r["score"] for r in results] == [1.0, 0.0, 1.0, 0.0]
    assert results[1]["info"]["reason"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "nope"], "unknown env 'nope'"),
        (["sample", "lgc-v2", "--config", "{bad"], "--config is not valid JSON"),
        (["sample", "lgc-v2", "--config", "[1]"], "--config must be a JSON object"),
        (["sample", "lgc-v2", "--config", '{"colour": 1}'], "unknown config key(s) 'colour'"),
        (["sample", "lgc-v2", "--task-ids", "1,x"], "--task-ids must be comma-separated integers"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_score_rejects_misaligned_files(tmp_path, capsys):
    tasks = tmp_path / "t.jsonl"
    _, out, _ = run(capsys, "sample", "answer-tag", "--n", "2")
    tasks.write_text(out)
    completions = tmp_path / "c.jsonl"
    completions.write_text(json.dumps({"completion": "<answer>1</answer>"}) + "\n")
    with pytest.raises(SystemExit):
        main(["score", "answer-tag", "--tasks", str(tasks), "--completions", str(completions)])
    assert "has 2 tasks but" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "math", "--n", "-3"], "argument --n: -3 is too small: expected an integer >= 1"),
        (["sample", "math", "--n", "0"], "argument --n: 0 is too small"),
        (["sample", "math", "--n", "three"], "argument --n: 'three' is not an integer >= 1"),
        (["eval-games", "--num-episodes", "0"], "argument --num-episodes: 0 is too small"),
        (["eval-games", "--mcts-simulations", "-1"], "argument --mcts-simulations: -1 is too small"),
        (["eval-games", "--max-moves", "0"], "argument --max-moves: 0 is too small"),
        (["eval-games", "--threads", "0"], "argument --threads: 0 is too small"),
        (["eval-games", "--max-new-tokens", "0"], "argument --max-new-tokens: 0 is too small"),
        (["eval-games", "--uct-c", "-0.5"], "argument --uct-c: -0.5 is out of range: expected a number >= 0"),
        (["eval-games", "--uct-c", "nan"], "argument --uct-c: nan is out of range"),
        (["train", "grpo", "--env", "math", "--top-p", "1.5"], "argument --top-p: 1.5 is out of range: expected a number (0, 1]"),
        (["train", "grpo", "--env", "math", "--top-p", "0"], "argument --top-p: 0 is out of range"),
        (["train", "sft", "--env", "math", "--lora-alpha", "0"], "argument --lora-alpha: 0 is too small"),
        (["train", "sft", "--env", "math", "--weight-decay", "-0.1"], "argument --weight-decay: -0.1 is out of range"),
        (["train", "sft", "--env", "math", "--epochs", "0"], "argument --epochs: 0 is out of range: expected a number > 0"),
        (["train", "grpo", "--env", "math", "--beta", "-1"], "argument --beta: -1 is out of range"),
        (["train", "sft", "--env", "math", "--max-grad-norm", "inf"], "argument --max-grad-norm: inf is out of range"),
        # counts TrainSettings checks itself: the same exit 2, naming the setting
        (["train", "grpo", "--env", "math", "--batch-size", "0"], "batch_size=0 must be >= 1"),
        (["train", "sft", "--env", "math", "--max-steps", "-3"], "max_steps=-3 must be >= 1, or -1"),
    ],
)
def test_numeric_flags_refuse_nonsense_naming_the_flag(argv, message, capsys):
    """`veritas sample --n -3` printed nothing and exited 0; every count/size flag now refuses what makes no sense."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_numeric_flags_keep_their_valid_edge_values(capsys):
    code, out, _ = run(capsys, "sample", "math", "--n", "1", "--seed", "-4")  # seeds may be any integer
    assert code == 0 and len(out.splitlines()) == 1
    args = build_parser().parse_args(["eval-games", "--uct-c", "0", "--max-moves", "1", "--num-episodes", "1"])
    assert (args.uct_c, args.max_moves, args.num_episodes) == (0.0, 1, 1)
    args = build_parser().parse_args(["train", "grpo", "--env", "math", "--top-p", "1", "--weight-decay", "0", "--beta", "0"])
    assert (args.top_p, args.weight_decay, args.beta) == (1.0, 0.0, 0.0)


def test_tasks_are_the_same_in_every_process_whatever_the_hash_seed(tmp_path):
    """polynomial_multiplication builds its items from sets of strings (hash order): the console command runs
    under one PYTHONHASHSEED, so separate processes (the scoring guard's workers among them) see one task."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    config = json.dumps({"dataset": "polynomial_multiplication", "size": 10})
    cmd = [sys.executable, "-m", "veritas_rl.cli"]

    def sample():
        return subprocess.run([*cmd, "sample", "reasoning-gym", "--config", config, "--n", "6", "--with-oracle"],
                              capture_output=True, text=True, check=True, env=env).stdout

    first, second = sample(), sample()
    assert first == second and len(first.splitlines()) == 6
    tasks, completions = tmp_path / "tasks.jsonl", tmp_path / "completions.jsonl"
    tasks.write_text(first)
    completions.write_text("".join(json.dumps({"completion": json.loads(r)["oracle"]}) + "\n" for r in first.splitlines()))
    scored = subprocess.run([*cmd, "score", "reasoning-gym", "--config", config, "--tasks", str(tasks),
                             "--completions", str(completions)], capture_output=True, text=True, check=True, env=env)
    assert [json.loads(r)["score"] for r in scored.stdout.splitlines()] == [1.0] * 6, scored.stdout[:500]

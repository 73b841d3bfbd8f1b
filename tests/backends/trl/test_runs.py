"""Real TRL runs on CPU with SmolLM2-135M: GRPO (+ resume), SFT, and the zero-reward breaker."""

from __future__ import annotations

import json

import pytest
import torch

from veritas_rl.cli import main
from veritas_rl.envs import make
from veritas_rl.backends.trl.runner import run
from veritas_rl.backends.trl.settings import build_settings
from veritas_rl.backends.trl.timing import StepTimer

pytestmark = pytest.mark.slow

# two-term sums graded on the last number of the reply: the base model gets some right, so groups differ
SUMS = {"rg_dataset": "basic_arithmetic", "last_number_fallback": True, "rg_config": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1,
                                                        "operators": ["+"], "allow_parentheses": False,
                                                        "allow_negation": False}}
# one prompt x four completions per step, short answers, a small LoRA, one torch thread (the CI box is shared)
GRPO = {
    "env": "math", "env_config": SUMS, "train_size": 16, "eval": False, "num_generations": 4, "batch_size": 4,
    "max_new_tokens": 12, "lora_rank": 4, "lora_alpha": 8, "learning_rate": 5e-4, "save_steps": 2,
    "zero_reward_patience": 0, "save_final_model": False, "cpu_threads": 1, "seed": 3,
}


def _flags(settings: dict) -> list[str]:
    out = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, dict):
            out += [flag, json.dumps(value)]
        elif isinstance(value, bool):
            out.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            out += [flag, str(value)]
    return out


def _adapter(checkpoint):
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "adapter_model.safetensors"))


def test_grpo_two_steps_then_resume_equals_four_straight(smollm2_dir, tmp_path):
    # A: 2 steps through the CLI (as if killed after checkpoint-2), then `--resume auto` to step 4
    common = {**GRPO, "model": str(smollm2_dir), "output_dir": str(tmp_path / "a"), "run_name": "a"}
    assert main(["train", "grpo", *_flags({**common, "max_steps": 2})]) == 0
    run_a = tmp_path / "a" / "a"
    assert (run_a / "checkpoint-2" / "trainer_state.json").is_file()
    assert main(["train", "grpo", *_flags({**common, "max_steps": 4, "resume": "auto"})]) == 0
    report_a = json.loads((run_a / "report.json").read_text())
    assert report_a["resumed_from"] == "checkpoint-2" and report_a["steps"] == 4

    # B: 4 steps straight, same seed
    b = run(build_settings(None, {**GRPO, "model": str(smollm2_dir), "output_dir": str(tmp_path / "b"),
                                  "run_name": "b", "max_steps": 4}))
    assert b.steps == 4 and b.report["resumed_from"] is None

    # the weights moved, and moved the same way with and without the interruption
    start, wa, wb = _adapter(run_a / "checkpoint-2"), _adapter(run_a / "checkpoint-4"), _adapter(b.run_dir / "checkpoint-4")
    assert wa.keys() == wb.keys()
    assert any(not torch.equal(start[k], wa[k]) for k in wa)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-6)
    state_a = json.loads((run_a / "checkpoint-4" / "trainer_state.json").read_text())
    hist_a = {e["step"]: e for e in state_a["log_history"] if "reward" in e}
    assert [step for step, _ in report_a["reward_curve"]] == [1, 2, 3, 4]  # the plot spans both halves
    hist_b = {e["step"]: e for e in b.trainer.state.log_history if "reward" in e}
    assert sorted(hist_a) == sorted(hist_b) == [1, 2, 3, 4]
    for step in (1, 2, 3, 4):
        assert hist_a[step]["reward"] == pytest.approx(hist_b[step]["reward"], abs=1e-6)
        assert hist_a[step]["loss"] == pytest.approx(hist_b[step]["loss"], abs=1e-4)
    assert any(e["reward"] > 0 for e in hist_b.values())  # there was a learning signal to resume

    # the logged rewards are the env's own scores of the logged completions
    env = make("math", **SUMS)
    by_prompt = {}
    for i in range(16):
        task = env.task(env.task_id_at(i))
        by_prompt[task.prompt[-1]["content"]] = task
    trainer = b.trainer
    prompts, completions = list(trainer._logs["prompt"]), list(trainer._logs["completion"])
    logged = list(trainer._logs["rewards"]["env_reward"])
    assert len(completions) == len(logged) == GRPO["batch_size"]
    rescored = [env.score(by_prompt[p[-1]["content"]], c[-1]["content"]).value for p, c in zip(prompts, completions)]
    assert rescored == pytest.approx(logged)
    assert hist_b[4]["reward"] == pytest.approx(sum(logged) / len(logged))

    # readable artefacts in the run dir
    for name in ("report.json", "report.md", "reward.png", "metrics.jsonl", "settings.json"):
        assert (b.run_dir / name).is_file(), name
    lines = [json.loads(x) for x in (b.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "reward" in x] == [1, 2, 3, 4]

    # where each step went (timing_s/*): one batch per step here, so every step generated and scored
    timer = next(c for c in b.trainer.callback_handler.callbacks if isinstance(c, StepTimer))
    assert len(timer.rows) == 4
    for line, row in zip((x for x in lines if "reward" in x), timer.rows):
        assert line["timing_s/step"] == pytest.approx(row["step"])
        assert row["step"] >= row["rollout"] >= row["gen"] + row["reward"] > 0
        assert row["gen"] > 0 and row["reward"] > 0 and row["sync_weights"] == 0  # no vLLM on a CPU
        assert row["update"] == pytest.approx(row["step"] - row["rollout"]) and row["update"] > 0
        assert 0 < line["timing_s/gen_share"] < 1
    assert b.report["timing"]["steps"] == 4 and b.report["timing"]["warmup_steps_left_out"] == 1
    assert b.report["timing"]["median_step"] == pytest.approx(sorted(r["step"] for r in timer.rows[1:])[1], abs=1e-3)
    assert "Median seconds per step" in (b.run_dir / "report.md").read_text()


def test_held_out_curve_scores_the_weights_of_each_step(smollm2_dir, tmp_path):
    from veritas_rl.backends.trl.data import split_indices, tasks_at
    from veritas_rl.eval.greedy import greedy_accuracy
    from veritas_rl.models import load_causal_lm, resolve_checkpoint

    settings = {**GRPO, "model": str(smollm2_dir), "output_dir": str(tmp_path), "run_name": "c", "max_steps": 2,
                "eval": True, "eval_size": 4, "eval_steps": 1, "save_steps": 1, "save_total_limit": 3,
                "learning_rate": 2e-3}
    result = run(build_settings(None, settings))
    lines = [json.loads(x) for x in (result.run_dir / "eval_curve.jsonl").read_text().splitlines()]
    assert [p["step"] for p in lines] == [0, 1, 2] and all(p["n"] == 4 for p in lines)
    assert lines[0]["accuracy"] == result.before["accuracy"] and lines[0]["kinds"] == result.before["kinds"]
    assert lines[2]["accuracy"] == result.after["accuracy"] and lines[2]["kinds"] == result.after["kinds"]
    assert result.report["eval_curve"] == lines and (result.run_dir / "eval_curve.png").is_file()
    # the step-1 point is what checkpoint-1's weights decode greedily (not the base's, not the final ones)
    env = make("math", **SUMS)
    _, eval_idx = split_indices(env, GRPO["train_size"], 4)
    base, adapter = resolve_checkpoint(str(result.run_dir / "checkpoint-1"))
    model, tok = load_causal_lm(base, adapter=adapter)
    again = greedy_accuracy(model, tok, env, tasks_at(env, eval_idx), GRPO["max_new_tokens"])
    assert lines[1]["mean_score"] == pytest.approx(again.mean_score) and lines[1]["kinds"] == again.kinds


def test_sft_two_steps_with_before_after_eval(smollm2_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)  # restored after the test (the run sets it)
    s = build_settings(None, {
        "mode": "sft", "env": "answer-tag", "model": str(smollm2_dir), "train_size": 8, "eval_size": 4,
        "eval_batch_size": 4, "max_new_tokens": 8, "max_steps": 2, "batch_size": 4, "lora_rank": 4,
        "learning_rate": 1e-3, "save_steps": 2, "output_dir": str(tmp_path), "cpu_threads": 1,
        "report_to": "tensorboard",
    })
    result = run(s)
    assert result.steps == 2 and result.stopped_by is None
    losses = [e["loss"] for e in result.trainer.state.log_history if "loss" in e]
    assert len(losses) == 2 and all(0.0 < x < 20.0 for x in losses)
    assert (result.run_dir / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert (result.run_dir / "final" / "adapter_model.safetensors").is_file()
    report = json.loads((result.run_dir / "report.json").read_text())
    assert report["before"]["n"] == report["after"]["n"] == 4
    assert 0.0 <= report["after"]["accuracy"] <= 1.0
    assert "| before | 4 |" in (result.run_dir / "report.md").read_text()
    assert list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_zero_reward_breaker_stops_a_run_that_cannot_score(smollm2_dir, tmp_path, caplog):
    # one new token can never hold "<answer>N</answer>": every completion scores 0.0
    argv = ["train", "grpo", "--env", "answer-tag", "--model", str(smollm2_dir), "--output-dir", str(tmp_path),
            "--train-size", "8", "--no-eval", "--num-generations", "2", "--batch-size", "4", "--max-new-tokens", "1",
            "--max-steps", "6", "--zero-reward-patience", "2", "--lora-rank", "4", "--cpu-threads", "1"]
    assert main(argv) == 3
    (run_dir,) = tmp_path.iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["stopped_by"] == "zero-reward breaker" and report["steps"] == 2
    assert "last 2 steps" in report["message"] and "zero-reward breaker" in caplog.text
    assert all(r == 0.0 for _, r in report["reward_curve"])

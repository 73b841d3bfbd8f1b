"""benchmarks/curriculum.py: every --task preset is a valid curriculum for its target, through the real schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import curriculum as bench  # noqa: E402

from veritas_rl.curriculum.schema import load_curriculum, stage_configs  # noqa: E402


@pytest.mark.parametrize("task", sorted(bench.TASKS))
def test_each_task_preset_is_a_valid_ladder_ending_at_or_below_its_target(task, tmp_path):
    args = bench.build_parser().parse_args(["--task", task, "--out", str(tmp_path)])
    bench.resolve_task(args)
    target = bench.target_config(args)
    settings = bench.arm_settings(args, "curriculum", tmp_path)
    assert settings["env_config"] == target and settings["max_new_tokens"] == bench.TASKS[task]["max_new_tokens"]
    # the same prompts x completions per step whatever the micro-batching
    assert settings["batch_size"] * settings["grad_accum"] == args.prompts_per_step * args.num_generations
    spec = load_curriculum(settings["curriculum"], failure_replay=True)
    configs = stage_configs(spec, bench.ENV, target)  # builds each stage's real lgc-v2 env
    assert len(configs) >= 3 and spec.replay.enabled
    # the stages climb: operators and values never decrease, and the last stage is the target itself
    ops = [c.get("operation_max_ops", 2) for c in configs]
    values = [c.get("operation_max_value", 9) for c in configs]
    assert ops == sorted(ops) and values == sorted(values)
    assert (ops[-1], values[-1]) == (target.get("operation_max_ops", 2), target.get("operation_max_value", 9))


def test_flags_override_the_preset(tmp_path):
    ladder = tmp_path / "mine.yaml"
    ladder.write_text(json.dumps(bench.LADDER))
    args = bench.build_parser().parse_args(["--task", "operation-qwen", "--max-new-tokens", "64", "--model", "x",
                                            "--env-config", '{"task_types": ["operation"]}', "--ladder", str(ladder),
                                            "--out", str(tmp_path)])
    bench.resolve_task(args)
    (tmp_path / "out").mkdir()
    s = bench.arm_settings(args, "curriculum", tmp_path / "out")
    assert (s["max_new_tokens"], s["model"], s["env_config"]) == (64, "x", {"task_types": ["operation"]})
    assert json.loads(Path(s["curriculum"]).read_text()) == bench.LADDER


def test_a_grad_accum_that_does_not_divide_the_step_is_refused(tmp_path):
    args = bench.build_parser().parse_args(["--grad-accum", "3", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--grad-accum 3: must be >= 1 and divide prompts x completions \\(128\\)"):
        bench.resolve_task(args)

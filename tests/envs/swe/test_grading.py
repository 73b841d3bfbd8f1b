"""FAIL_TO_PASS / PASS_TO_PASS grading of real test runs, and the test command a row gives."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.envs.swe_fixture import fenced
from veritas_rl.envs import make


def test_wrong_patch_scores_zero(env, fx):
    score = env.score(env.task(0), fenced(fx.patches["wrong0"]))
    assert score.value == 0.0
    assert score.info["f2p_failed"] == ["tests/test_calc.py::test_clamp_above"]
    assert "FAIL_TO_PASS" in score.info["reason"]


def test_patch_breaking_pass_to_pass_scores_zero(env, fx):
    score = env.score(env.task(0), fenced(fx.patches["breaks_p2p0"]))
    assert score.value == 0.0
    assert score.info["f2p_passed"] == ["tests/test_calc.py::test_clamp_above"]  # the bug itself is fixed
    assert score.info["p2p_broken"] == ["tests/test_calc.py::test_add"]


def test_edits_to_the_tasks_tests_are_refused_before_running(env, fx):
    # the patch breaks add() and rewrites test_add to agree: refused, nothing runs
    runs = env.test_runs
    score = env.score(env.task(0), fenced(fx.patches["cheats0"]))
    assert score.value == 0.0 and score.kind == "illegal"
    assert "tests/test_calc.py" in score.info["reason"] and env.test_runs == runs


def test_partial_mode_is_the_fraction_of_fail_to_pass(fx, env):
    partial = make("swe-synth", **fx.config(reward_mode="partial"))
    task = partial.task(1)
    half = partial.score(task, fenced(fx.patches["half1"]))
    assert half.value == 0.5, half.info
    assert half.info["f2p_failed"] == ["tests/test_text.py::test_on_off"]
    assert partial.score(task, partial.oracle(task)).value == 1.0
    # binary mode: the same half fix is worth nothing
    assert env.score(env.task(1), fenced(fx.patches["half1"])).value == 0.0
    # partial mode still gives 0 when a PASS_TO_PASS test breaks, even with every FAIL_TO_PASS passing
    broken = partial.score(partial.task(0), fenced(fx.patches["breaks_p2p0"]))
    assert broken.value == 0.0 and broken.info["f2p_passed"]


EVAL_SCRIPT = """#!/bin/bash
set -uxo pipefail
source /opt/miniconda3/bin/activate
conda activate testbed
cd /testbed
git checkout {base} tests/test_calc.py
git apply -v - <<'EOF_114329324912'
(the test patch)
EOF_114329324912
: '>>>>> Start Test Output'
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 pytest -rA -p no:cacheprovider {tests}
: '>>>>> End Test Output'
git checkout {base} tests/test_calc.py
"""


@pytest.mark.parametrize("tests, resolved", [("tests/test_calc.py", True), ("tests/test_calc.py::test_add", False)])
def test_the_rows_eval_script_gives_the_test_command(fx, tmp_path, tests, resolved):
    # swebench>=5 rows carry their harness eval_script; its test section runs (with our venv's pytest)
    cache = tmp_path / "cache"
    shutil.copytree(fx.cache_dir, cache)
    row = json.loads((cache / "task_0.json").read_text())
    row["eval_script"] = EVAL_SCRIPT.format(base=row["base_commit"], tests=tests)
    (cache / "task_0.json").write_text(json.dumps(row))
    env = make("swe-synth", **fx.config(cache_dir=str(cache), test_cmd=None))
    task = env.task(0)
    assert task.extra["eval_test_cmd"] == f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 pytest -rA -p no:cacheprovider {tests}"
    score = env.score(task, env.oracle(task))
    if resolved:
        assert score.value == 1.0, score.info
    else:  # only test_add ran: the FAIL_TO_PASS test is missing from the log, which is a failure
        assert score.value == 0.0 and score.info["f2p_failed"] == ["tests/test_calc.py::test_clamp_above"]

"""Reward hacks found by red-teaming the local backend, each a real patch on the git fixture scored by
the env in the real sandbox (no mocks); every one scored 1.0, raised, hung or deleted a file before
its fix. See /tmp/swe_redteam/repro.py for the whole table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.envs.swe_fixture import CALC_FIXED, CALC_V0, TEST_CALC_NEW, fenced, patch_for
from veritas_rl.envs import make
from veritas_rl.envs.swe.patches import diff_answer, refused_config_change
from veritas_rl.envs.swe.sandbox import bwrap_mode, run_sandboxed, sandbox_env

pytestmark = pytest.mark.skipif(isinstance(bwrap_mode(), str), reason="bubblewrap cannot run here")

TOUCH = {"calc/__init__.py": CALC_V0 + "\n# touched\n"}
ALL_PASS_PLUGIN = '''import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
'''
# stands in for pytest (python -m pytest finds it first): writes a junit report where every test passed
FORGING_RUNNER = '''import os, shlex, sys
args = shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
path = next(a.split("=", 1)[1] for a in args if a.startswith("--junitxml="))
cases = "".join(f'<testcase classname="tests.test_calc" name="{n}" file="tests/test_calc.py"/>'
                for n in ("test_add", "test_clamp_inside", "test_clamp_below", "test_clamp_above"))
open(path, "w").write(f'<?xml version="1.0"?><testsuites><testsuite tests="4">{cases}</testsuite></testsuites>')
sys.exit(0)
'''


def symlink_diff(path: str, target: str) -> str:
    return (f"diff --git a/{path} b/{path}\nnew file mode 120000\n--- /dev/null\n+++ b/{path}\n"
            f"@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n")


def score(fx, env, files: dict[str, str], extra: str = "", task_id: int = 0):
    task = env.task(task_id)
    patch = patch_for(fx, task.extra["base_commit"], files) if files else ""
    return env.score(task, fenced(patch + extra))


# -- xfail / skip raised by the code under test ----------------------------------------------------


def test_xfail_raised_by_the_code_under_test_is_no_pass(fx, env):
    # no fix: clamp() calls pytest.xfail() where it is wrong, and swebench counts XFAIL as a pass
    code = CALC_V0.replace("    if x < lo:\n", "    if x > hi:\n        import pytest; pytest.xfail('upper bound')\n"
                           "    if x < lo:\n")
    result = score(fx, env, {"calc/__init__.py": code})
    assert result.value == 0.0, result.info
    assert result.info["f2p_failed"] == ["tests/test_calc.py::test_clamp_above"]
    assert result.info["held_to_gold"] == ["tests/test_calc.py::test_clamp_above"]


@pytest.mark.parametrize("skip", ["import pytest; pytest.skip('later')", "import unittest; raise unittest.SkipTest('x')"],
                         ids=["pytest_skip", "unittest_skiptest"])
def test_skip_raised_by_the_code_under_test_breaks_pass_to_pass(fx, env, skip):
    # clamp is fixed, add() is broken and hides it by skipping the test that calls it
    result = score(fx, env, {"calc/__init__.py": CALC_FIXED.replace("    return a + b\n", f"    {skip}\n")})
    assert result.value == 0.0, result.info
    assert result.info["p2p_broken"] == ["tests/test_calc.py::test_add"]
    assert "PASS_TO_PASS" in result.info["reason"]


def test_a_skip_the_gold_patch_has_too_still_counts(fx):
    # a PASS_TO_PASS test that is skipped in this sandbox whatever the patch (a marker, a missing
    # optional dependency): swebench's leniency stays, held to the gold patch's run
    env = make("swe-synth", **fx.config())
    task = env.task(0)
    base = task.extra["base_commit"]
    skipped = TEST_CALC_NEW + '\n\n@__import__("pytest").mark.skip(reason="needs numpy")\ndef test_numpy():\n    pass\n'
    task.extra["test_patch"] = patch_for(fx, base, {"tests/test_calc.py": skipped})
    task.extra["PASS_TO_PASS"] = [*task.extra["PASS_TO_PASS"], "tests/test_calc.py::test_numpy"]
    result = env.score(task, env.oracle(task))  # the gold patch is its own baseline (a cache hit)
    assert result.value == 1.0, result.info
    helper = patch_for(fx, base, {"calc_helpers.py": "X = 1\n"})
    other = env.score(task, fenced(fx.patches["gold0"] + helper))  # another patch, the same statuses
    assert other.value == 1.0, other.info
    assert env.test_runs == 2  # the two patches; the baseline came from the cache


# -- the test runner shadowed, plugins through package metadata --------------------------------------


@pytest.mark.parametrize("files", [{"pytest.py": FORGING_RUNNER},
                                   {"pytest/__init__.py": "", "pytest/__main__.py": FORGING_RUNNER},
                                   {"argparse.py": FORGING_RUNNER}],
                         ids=["pytest_py", "pytest_package", "stdlib_argparse"])
def test_a_new_top_level_module_shadowing_the_runner_is_refused(fx, env, files):
    runs = env.test_runs
    result = score(fx, env, {**TOUCH, **files})
    assert result.value == 0.0 and result.kind == "illegal", result.info
    assert "shadows the module" in result.info["reason"] and env.test_runs == runs


def test_a_new_top_level_module_of_its_own_name_is_allowed(fx, env):
    helper = patch_for(fx, env.task(0).extra["base_commit"], {"calc_helpers.py": "def upper(x, hi):\n    return min(x, hi)\n"})
    result = env.score(env.task(0), fenced(fx.patches["gold0"] + helper))
    assert result.value == 1.0, result.info


@pytest.mark.parametrize("meta", ["calc_hack-1.0.dist-info", "calc_hack.egg-info"])
def test_package_metadata_declaring_a_pytest_plugin_is_refused(fx, meta):
    env = make("swe-synth", **fx.config(test_cmd=None))  # plugin autoloading on, as by default
    entry = {f"{meta}/METADATA": "Metadata-Version: 2.1\nName: calc-hack\nVersion: 1.0\n",
             f"{meta}/entry_points.txt": "[pytest11]\ncalc_hack = calc_hack\n"}
    result = score(fx, env, {**TOUCH, "calc_hack.py": ALL_PASS_PLUGIN, **entry})
    assert result.value == 0.0 and result.kind == "illegal", result.info
    assert "installed-package metadata" in result.info["reason"] and env.test_runs == 0


# -- test configuration the scorer reads differently from pytest ----------------------------------


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom"])
def test_config_symlinked_to_a_device_is_refused_without_reading_it(fx, env, target):
    start = time.monotonic()
    result = score(fx, env, {}, symlink_diff("setup.cfg", target))
    assert time.monotonic() - start < 30  # the scorer read /dev/zero until it ran out of memory before
    assert result.value == 0.0 and result.kind == "illegal", result.info
    assert "symlink out of the repository" in result.info["reason"]


def test_config_symlinked_through_proc_self_is_refused(fx, env):
    # /proc/self/cwd is the scorer's cwd outside the sandbox and the checkout inside: pytest read a
    # [tool:pytest] section the scorer never saw, and loaded an all-pass plugin from it
    cfg = {"calc/t.cfg": "[tool:pytest]\naddopts = -p calc.plug\n", "calc/plug.py": ALL_PASS_PLUGIN}
    result = score(fx, env, {**TOUCH, **cfg}, symlink_diff("pyproject.toml", "/proc/self/cwd/calc/t.toml")
                   + symlink_diff("setup.cfg", "/proc/self/cwd/calc/t.cfg"))
    assert result.value == 0.0 and result.kind == "illegal", result.info
    assert "symlink out of the repository" in result.info["reason"]


@pytest.mark.parametrize("brk", ["\x0c", "\u2028", "\x85", "\x1c"])
def test_setup_cfg_section_behind_a_line_break_configparser_ignores_is_refused(fx, env, brk):
    # iniconfig (pytest) ends a line at every str.splitlines break, configparser only at \n
    cfg = f"[metadata]\nname = calc{brk}[tool:pytest]\naddopts = -p calc.plug\n"
    assert refused_config_change("setup.cfg", None, cfg)
    result = score(fx, env, {**TOUCH, "calc/plug.py": ALL_PASS_PLUGIN, "setup.cfg": cfg})
    assert result.value == 0.0 and result.kind == "illegal", result.info
    assert "test configuration in setup.cfg" in result.info["reason"]


def test_setup_cfg_with_crlf_and_no_test_section_is_allowed():
    assert refused_config_change("setup.cfg", None, "[metadata]\r\nname = calc\r\n") is None
    assert refused_config_change("pyproject.toml", None, "[project]\r\nname = 'calc'\r\n") is None


# -- the scorer's own file system, and garbage ------------------------------------------------------


def test_a_symlink_over_a_new_test_directory_is_refused_and_deletes_nothing(fx, tmp_path):
    # the test patch adds newtests/test_new.py; the patch makes newtests a symlink: the scorer, resetting
    # the test files, unlinked test_new.py in the symlink's target (outside the checkout, as the scorer)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "test_new.py").write_text("precious\n")
    env = make("swe-synth", **fx.config())
    task = env.task(0)
    test = "from calc import clamp\n\n\ndef test_new():\n    assert clamp(11, 0, 10) == 10\n"
    task.extra["test_patch"] = patch_for(fx, task.extra["base_commit"], {"newtests/test_new.py": test})
    task.extra["FAIL_TO_PASS"], task.extra["PASS_TO_PASS"] = ["newtests/test_new.py::test_new"], []
    result = env.score(task, fenced(fx.patches["gold0"] + symlink_diff("newtests", str(victim))))
    assert (victim / "test_new.py").read_text() == "precious\n"
    assert result.value == 0.0 and result.kind == "illegal", result.info
    assert "newtests is a symlink" in result.info["reason"]
    assert env.score(task, env.oracle(task)).value == 1.0  # the row itself grades


def test_a_lone_surrogate_in_the_diff_scores_zero(fx, env):
    patch = patch_for(fx, env.task(0).extra["base_commit"], {"calc/__init__.py": CALC_V0 + "\n# x\n"})
    answer = fenced(patch.replace("# x", "# \ud800"))
    assert diff_answer(answer)[2] == "no_answer"
    result = env.score(env.task(0), answer)  # raised UnicodeEncodeError before
    assert result.value == 0.0 and result.kind == "no_answer" and "UTF-8" in result.info["reason"]


def test_test_output_is_cut_at_its_bound(tmp_path):
    # a slow printer stays under the memory cgroup (written-back page cache is reclaimed): only the
    # output bound stops it before the timeout; the log on the scorer's disk stays near the bound
    code = "import os, time\nb = b'x' * (1 << 20)\nwhile True:\n    os.write(1, b); time.sleep(0.005)\n"
    log = tmp_path / "out.log"
    start = time.monotonic()
    run = run_sandboxed([sys.executable, "-c", code], tmp_path, sandbox_env(tmp_path, Path("/tmp/home")), 60, 256,
                        True, log, sandbox="bwrap", max_processes=16, max_output_bytes=32 << 20)
    assert run.output_overflow and not run.timed_out and time.monotonic() - start < 30
    assert log.stat().st_size < 64 << 20


def test_files_the_tests_write_are_bounded(tmp_path):
    code = "f = open('big.bin', 'wb')\ntry:\n    f.write(b'x' * (8 << 20))\nexcept OSError as e:\n    print('refused', e.errno)\n"
    run = run_sandboxed([sys.executable, "-c", code], tmp_path, sandbox_env(tmp_path, Path("/tmp/home")), 60, 256,
                        True, tmp_path / "out.log", sandbox="bwrap", max_file_bytes=1 << 20)
    assert "refused 27" in run.output, run.output  # EFBIG
    assert (tmp_path / "big.bin").stat().st_size <= 1 << 20

"""swe-synth on a real git repository (tests/envs/swe_fixture.py): real worktrees, patches and pytest runs."""

from __future__ import annotations

import json
import pickle
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.envs.swe_fixture import build_swe_fixture, git
from veritas_rl.envs import make
from veritas_rl.envs.swe import SweDataError, extract_diff, network_isolation_prefix, run_sandboxed, sandbox_env

CALC_P2P = ["tests/test_calc.py::test_add", "tests/test_calc.py::test_clamp_inside",
            "tests/test_calc.py::test_clamp_below"]


def fenced(patch: str) -> str:
    return f"Here is the fix.\n```diff\n{patch}```\n"


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_swe_fixture(tmp_path_factory.getbasetemp() / "swe-fixture")


@pytest.fixture(scope="module")
def env(fx):
    return make("swe-synth", **fx.config())


def repo_state(repo):
    return (git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain", "--ignored"),
            git(repo, "worktree", "list", "--porcelain"), git(repo, "branch", "--list"))


# -- rewards -------------------------------------------------------------------------------------


def test_gold_patch_scores_one_with_the_default_test_command(fx):
    env = make("swebench", **fx.config(test_cmd=None))
    task = env.task(0)
    score = env.score(task, env.oracle(task))
    assert score.value == 1.0, score.info
    assert score.info["f2p_passed"] == ["tests/test_calc.py::test_clamp_above"]
    assert score.info["p2p_broken"] == []


def test_wrong_patch_scores_zero(env, fx):
    score = env.score(env.task(0), fenced(fx.patches["wrong0"]))
    assert score.value == 0.0
    assert score.info["f2p_failed"] == ["tests/test_calc.py::test_clamp_above"]
    assert "FAIL_TO_PASS" in score.info["reason"]


def test_patch_that_does_not_apply_scores_zero_without_running_tests(env, fx):
    runs = env.test_runs
    score = env.score(env.task(0), fenced(fx.patches["misapplies0"]))
    assert score.value == 0.0
    assert "patch does not apply" in score.info["reason"] and "calc/__init__.py" in score.info["reason"]
    assert env.test_runs == runs


def test_patch_breaking_pass_to_pass_scores_zero(env, fx):
    score = env.score(env.task(0), fenced(fx.patches["breaks_p2p0"]))
    assert score.value == 0.0
    assert score.info["f2p_passed"] == ["tests/test_calc.py::test_clamp_above"]  # the bug itself is fixed
    assert score.info["p2p_broken"] == ["tests/test_calc.py::test_add"]


def test_edits_to_the_tests_are_reset_before_grading(env, fx):
    # the patch breaks add() and rewrites test_add to agree; the harness resets test files first
    score = env.score(env.task(0), fenced(fx.patches["cheats0"]))
    assert score.value == 0.0
    assert score.info["p2p_broken"] == ["tests/test_calc.py::test_add"]


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


def test_infinite_loop_scores_zero_within_the_timeout(fx, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = make("swe-synth", **fx.config(test_timeout_s=4, work_dir=str(work)))
    before = repo_state(fx.repo_dir)
    start = time.monotonic()
    score = env.score(env.task(0), fenced(fx.patches["loops0"]))
    elapsed = time.monotonic() - start
    assert score.value == 0.0 and "timed out after 4s" in score.info["reason"]
    assert elapsed < 4 + 10, elapsed
    assert list(work.iterdir()) == []  # the temporary worktree is gone, also after a kill
    assert repo_state(fx.repo_dir) == before
    # nothing of the killed test run survives (its process group was killed)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "test_clamp" not in ps and str(work) not in ps


def test_patch_writing_outside_the_worktree_is_refused(env, fx, tmp_path):
    outside = "../../escaped-7f3a.txt"
    patch = (f"diff --git a/{outside} b/{outside}\nnew file mode 100644\n--- /dev/null\n+++ b/{outside}\n"
             "@@ -0,0 +1 @@\n+escaped\n")
    score = env.score(env.task(0), fenced(patch))
    assert score.value == 0.0 and "patch does not apply" in score.info["reason"]
    assert "invalid path" in score.info["reason"]


def test_repos_dir_working_tree_is_untouched(fx, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    before = repo_state(fx.repo_dir)
    files_before = sorted(p.relative_to(fx.repo_dir).as_posix() for p in fx.repo_dir.rglob("*")
                          if ".git" not in p.parts)
    env = make("swe-synth", **fx.config(work_dir=str(work)))
    for name, task_id in (("gold1", 1), ("misapplies0", 0), ("cheats0", 0)):
        env.score(env.task(task_id), fenced(fx.patches[name]))
    after = repo_state(fx.repo_dir)
    assert after == before
    assert after[1] == ""  # clean: no untracked, modified or ignored files
    assert after[2].count("worktree ") == 1  # only the main working tree
    assert sorted(p.relative_to(fx.repo_dir).as_posix() for p in fx.repo_dir.rglob("*")
                  if ".git" not in p.parts) == files_before
    assert list(work.iterdir()) == []


# -- caching -------------------------------------------------------------------------------------


def test_identical_patches_are_scored_once(fx, tmp_path):
    env = make("swe-synth", **fx.config(result_cache_dir=str(tmp_path / "results")))
    task = env.task(1)
    first = env.score(task, env.oracle(task))
    assert (env.test_runs, env.cache_hits) == (1, 0)
    # same diff, different surrounding text: still a cache hit
    again = env.score(task, "<think>hmm</think>I would change parse_bool.\n" + env.oracle(task))
    assert (env.test_runs, env.cache_hits) == (1, 1)
    assert again.value == first.value == 1.0
    # a new env (another worker) reads the on-disk cache
    other = make("swe-synth", **fx.config(result_cache_dir=str(tmp_path / "results")))
    assert other.score(other.task(1), other.oracle(other.task(1))).value == 1.0
    assert (other.test_runs, other.cache_hits) == (0, 1)
    assert len(list((tmp_path / "results").rglob("*.json"))) == 1


def test_concurrent_identical_patches_run_the_tests_once(fx):
    from concurrent.futures import ThreadPoolExecutor

    env = make("swe-synth", **fx.config())
    task = env.task(0)
    with ThreadPoolExecutor(4) as pool:  # as verl's reward loop scores a GRPO group
        scores = list(pool.map(lambda _: env.score(task, env.oracle(task)), range(4)))
    assert [s.value for s in scores] == [1.0] * 4
    assert (env.test_runs, env.cache_hits) == (1, 3)
    clone = pickle.loads(pickle.dumps(env))  # Ray ships envs between processes; the results travel along
    assert clone.score(task, env.oracle(task)).value == 1.0 and clone.test_runs == 1


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


# -- data and task selection ---------------------------------------------------------------------


def test_tasks_come_from_the_cache_dir(fx, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(fx.cache_dir, cache)
    row = json.loads((cache / "task_1.json").read_text())
    row["problem_statement"] = "A marker problem statement 7c1e."
    (cache / "task_1.json").write_text(json.dumps(row))
    env = make("swe-synth", **fx.config(cache_dir=str(cache)))
    task = env.task(1)
    assert "A marker problem statement 7c1e." in task.prompt[0]["content"]
    assert task.extra["instance_id"] == "veritas-fixtures__calc-2"
    assert task.extra["FAIL_TO_PASS"] == json.loads(fx.rows[1]["FAIL_TO_PASS"])  # JSON string -> list
    assert json.loads(task.ground_truth)["PASS_TO_PASS"] == json.loads(fx.rows[1]["PASS_TO_PASS"])
    assert env.task(0).prompt == make("swe-synth", **fx.config()).task(0).prompt


def test_task_selection_by_ids_and_by_range(fx):
    by_ids = make("swe-synth", **fx.config(task_ids=[1]))
    by_range = make("swe-synth", **fx.config(task_id_range=[1, 2]))
    for env in (by_ids, by_range):
        assert env.num_tasks == 1 and env.task_id_at(0) == 1
        assert env.task(1).extra["instance_id"] == "veritas-fixtures__calc-2"
        with pytest.raises(ValueError, match="task_id 0 is not among the selected rows"):
            env.task(0)
    both = make("swe-synth", **fx.config(task_ids="1,0"))
    assert [both.task_id_at(i) for i in range(both.num_tasks)] == [1, 0]


def test_missing_rows_name_the_download_command(fx):
    expected = r"4 selected row.*task_2\.json.*python -m veritas_rl\.envs\.swe download.*--start 2 --stop 6"
    with pytest.raises(SweDataError, match=expected):
        make("swe-synth", **fx.config(task_id_range=[0, 6]))


def test_offline_without_cache_says_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SweDataError) as err:
        make("swe-synth", cache_dir=str(tmp_path / "empty"), task_id_range=[0, 3])
    text = str(err.value)
    assert "princeton-nlp/SWE-bench_Lite" in text
    assert f"--cache-dir {tmp_path / 'empty'} --start 0 --stop 3" in text
    assert "task_<row index>.json" in text


# -- prompt and parsing --------------------------------------------------------------------------


def test_prompt_has_the_issue_and_code_context_within_budget(fx):
    task = make("swe-synth", **fx.config()).task(0)
    content = task.prompt[0]["content"]
    assert "clamp(11, 0, 10) returns 11" in content and "```diff" in content
    assert "[start of calc/__init__.py]" in content and "def clamp(x, lo, hi):" in content
    assert "if x > hi" not in content  # the code is shown at base_commit, not fixed
    small = make("swe-synth", **fx.config(code_context_chars=120)).task(0).prompt[0]["content"]
    context = small.split("<code>\n", 1)[1].split("</code>", 1)[0]
    assert "(truncated)" in context and len(context) <= 120 + len("\n... (truncated)\n")
    bare = make("swe-synth", **fx.config(include_code_context=False)).task(0).prompt[0]["content"]
    assert "<code>" not in bare and "clamp(11, 0, 10) returns 11" in bare


DIFF = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
MD_DIFF = "--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,3 @@\n ```\n-old\n+new\n ```\n"


@pytest.mark.parametrize(
    "answer, expected",
    [
        (f"```diff\n{DIFF}```", DIFF),
        (DIFF, DIFF),
        (f"first\n```diff\n{DIFF.replace('+b', '+c')}```\nbetter:\n```diff\n{DIFF}```", DIFF),
        (f"```python\nprint(1)\n```\n```diff\n{DIFF}```", DIFF),
        (f"```\n{DIFF}```", DIFF),
        (f"```diff\n{MD_DIFF}```\nThat is all.", MD_DIFF),  # fences inside the patched file
        ("I think the fix is to change clamp.", None),
        ("```diff\n--- a/x.py\n@@ -1 +1 @@\n-a\n+b\n```", None),
        ("```diff\n--- a/x.py\n+++ b/x.py\n-a\n+b\n```", None),
    ],
)
def test_extract_diff(answer, expected):
    diff, reason = extract_diff(answer)
    assert diff == expected
    assert (reason == "ok") == (expected is not None) and (expected is not None or "malformed diff" in reason)


def test_malformed_diff_scores_zero_with_reason(env):
    score = env.score(env.task(0), "```diff\n--- a/calc/__init__.py\nchange the return\n```")
    assert score.value == 0.0 and score.info["reason"].startswith("malformed diff")


# -- sandbox -------------------------------------------------------------------------------------


def _sandboxed_python(tmp_path, code, **kw):
    env = sandbox_env(tmp_path, tmp_path)
    args = dict(timeout_s=30, memory_mb=0, isolate_network=True, log_path=tmp_path / "out.log")
    args.update(kw)
    return run_sandboxed([sys.executable, "-c", code], tmp_path, env, **args)


@pytest.mark.skipif(not network_isolation_prefix(), reason="this OS allows no unprivileged network namespace")
def test_sandbox_has_no_network(tmp_path):
    outside = [name for _, name in socket.if_nameindex()]
    assert outside != ["lo"]  # the machine itself has an interface besides loopback
    run = _sandboxed_python(tmp_path, "import socket; print([n for _, n in socket.if_nameindex()])")
    assert run.returncode == 0 and run.output.strip() == "['lo']"


def test_sandbox_memory_limit_and_environment(tmp_path, monkeypatch):
    run = _sandboxed_python(tmp_path, "b = bytearray(1024 * 1024 * 1024)", memory_mb=256)
    assert run.returncode != 0 and "MemoryError" in run.output
    monkeypatch.setenv("VERITAS_TEST_API_TOKEN", "s3cret")
    run = _sandboxed_python(tmp_path, "import os; print(os.environ.get('VERITAS_TEST_API_TOKEN'), os.environ['HOME'])")
    assert run.output.split() == ["None", str(tmp_path)]


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ({"backend": "podman"}, r"backend='podman' is not valid; choose from: local, docker"),
        ({"reward_mode": "dense"}, r"reward_mode='dense' is not valid; choose from: binary, partial"),
        ({"task_id_range": [5, 2]}, r"task_id_range"),
        ({"cache_dir": None}, r"use_cache_only=True needs cache_dir"),
        ({"repos_dir": "/nonexistent/repos"}, r"repos_dir='/nonexistent/repos' is not a directory"),
        ({"test_timeout_s": 0}, r"test_timeout_s"),
    ],
)
def test_bad_config_fails_at_construction(fx, override, message):
    with pytest.raises(ValueError, match=message):
        make("swe-synth", **fx.config(**override))


def test_local_backend_without_the_clone_says_how_to_clone(fx, tmp_path):
    env = make("swe-synth", **fx.config(repos_dir=str(tmp_path)))
    with pytest.raises(ValueError, match=r"git clone https://github.com/veritas-fixtures/calc"):
        env.score(env.task(0), env.oracle(env.task(0)))


def test_docker_backend_needs_an_engine(fx):
    import docker

    try:
        docker.from_env(timeout=5).ping()
        pytest.skip("a Docker engine is running here: the docker backend is exercised by tests marked docker")
    except docker.errors.DockerException:
        pass
    with pytest.raises(ValueError, match=r"backend='docker' needs a running Docker engine"):
        make("swe-synth", **fx.config(backend="docker"))


def test_rows_through_the_datasets_loader_fill_the_cache(fx, tmp_path):
    # a local dataset directory goes through the same datasets.load_dataset call as a hub id
    source = tmp_path / "dataset"
    source.mkdir()
    (source / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in fx.rows))
    cache = tmp_path / "cache"
    env = make("swe-synth", **fx.config(dataset_name=str(source), cache_dir=str(cache), use_cache_only=False,
                                        task_id_range=[0, 100]))
    assert env.num_tasks == 2  # the range is clipped to the split size
    assert sorted(p.name for p in cache.iterdir()) == ["task_0.json", "task_1.json"]
    cached = make("swe-synth", **fx.config(cache_dir=str(cache)))
    assert cached.task(1) == env.task(1)

    from veritas_rl.envs.swe import main

    out = tmp_path / "downloaded"
    assert main(["download", "--dataset", str(source), "--cache-dir", str(out), "--start", "1"]) == 0
    downloaded = json.loads((out / "task_1.json").read_text())
    assert downloaded.pop("created_at").startswith("2026-01-01")  # a timestamp column, written as ISO 8601
    assert downloaded == {k: v for k, v in fx.rows[1].items() if k != "created_at"}
    assert not (out / "task_0.json").exists()

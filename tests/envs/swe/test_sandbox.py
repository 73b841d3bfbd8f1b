"""The local sandbox: time, memory, network, environment, and the clone in repos_dir left alone."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from tests.envs.swe_fixture import fenced, repo_state
from veritas_rl.envs import make
from veritas_rl.envs.swe.sandbox import network_isolation_prefix, run_sandboxed, sandbox_env


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
    assert score.value == 0.0 and score.kind == "illegal"
    assert "outside the repository" in score.info["reason"]


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
    assert run.returncode != 0
    assert run.oom_killed or "MemoryError" in run.output  # cgroup OOM kill, or RLIMIT_AS without cgroups
    monkeypatch.setenv("VERITAS_TEST_API_TOKEN", "s3cret")
    run = _sandboxed_python(tmp_path, "import os; print(os.environ.get('VERITAS_TEST_API_TOKEN'), os.environ['HOME'])")
    assert run.output.split() == ["None", str(tmp_path)]


def test_what_the_tests_need_from_under_tmp_comes_back_read_only(tmp_path):
    # a checkout and its .venv cloned under /tmp (as CI does) must stay reachable under the private /tmp
    from pathlib import Path

    from veritas_rl.envs.swe.sandbox import BwrapMode, bwrap_args, bwrap_mode

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "probe.py").write_text("print('reachable')\n")
    assert str(tmp_path).startswith("/tmp/")
    args = bwrap_args(BwrapMode(("bwrap",), (), "caller", False), Path("/"), {}, [], [], True, [lib])
    assert args.index("--tmpfs") < args.index(str(lib)) and args[args.index(str(lib)) - 1] == "--ro-bind"
    mode = bwrap_mode()
    if isinstance(mode, str):
        pytest.skip(mode)
    cmd = [*bwrap_args(mode, Path("/"), {"PATH": "/usr/bin:/bin"}, [], [], True, [lib]),
           sys.executable, str(lib / "probe.py")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "reachable", out.stderr
    write = [*bwrap_args(mode, Path("/"), {"PATH": "/usr/bin:/bin"}, [], [], True, [lib]),
             "/bin/sh", "-c", f"echo x > {lib}/new.txt"]
    assert subprocess.run(write, capture_output=True, timeout=60).returncode != 0
    assert not (lib / "new.txt").exists()

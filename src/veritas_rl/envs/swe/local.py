"""The ``local`` backend of swe-synth: one patch evaluated in a throw-away clone, in the sandbox.

1. ``git clone --shared --no-checkout`` of ``repos_dir/<owner>__<name>`` into a temp dir, checkout of
   ``base_commit`` there (the original clone is only read: no worktree, no ref, no lock is written);
2. the paths the patch touches, as git reads them (``git apply --numstat -z``), are checked: test
   infrastructure (``conftest.py``, ``pytest.ini``, ``tox.ini``, ``sitecustomize.py``, ``*.pth``, ...),
   the task's test files, paths outside the repository, package metadata (``*.dist-info``: pytest11
   plugins) and new top-level modules that shadow one of the test interpreter (``pytest.py``,
   ``argparse.py``) are refused (kind ``illegal``) before anything runs; so is a change to the test
   sections of ``setup.cfg`` / ``pyproject.toml`` (read as pytest reads them, symlinks only within the
   checkout) and a symlink over a directory of the task's tests;
3. ``git apply --check`` and ``git apply``; the test files are reset to ``base_commit`` and the test
   patch is applied (as the SWE-bench harness does);
4. the test command runs in the sandbox (:func:`~veritas_rl.envs.swe.sandbox.run_sandboxed`); pytest
   writes its junit XML report into a FIFO in a directory the sandbox sees read-only, which we drain
   while it runs; the report (not the log) is graded and must agree with the exit code;
5. the temp dir is deleted (no git command runs in the clone after the tests: its hooks and config
   are the tested code's to write).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

from veritas_rl.envs.base import Task
from veritas_rl.envs.swe.grading import (
    JUNIT_ADDOPTS,
    LOG_GRADED_REPOS,
    check_consistent,
    grade,
    parse_junit,
    parse_test_output,
    test_command,
)
from veritas_rl.envs.swe.patches import patch_files, refused_config_change, refused_path, shadowed_module
from veritas_rl.envs.swe.sandbox import MAX_LOG_BYTES, OUTPUT_TAIL_CHARS, RunResult, _git, run_sandboxed, sandbox_env


def numstat_paths(numstat_z: str) -> list[str]:
    """Every path in ``git apply --numstat -z`` output (both sides of a rename or copy)."""
    tokens = numstat_z.split("\0")
    paths: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token:
            continue
        fields = token.split("\t", 2)
        if len(fields) < 3:
            continue
        if fields[2]:
            paths.append(fields[2])
        else:  # a rename or copy: the old and the new path follow
            paths.extend(t for t in tokens[i:i + 2] if t)
            i += 2
    return list(dict.fromkeys(paths))


def _rmtree(path: Path) -> None:
    """``rm -rf``, also through directories the tests made unwritable."""
    def retry(func, target, _exc):
        try:
            os.chmod(os.path.dirname(target), stat.S_IRWXU)
            func(target)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry)


def evaluate_local(task: Task, patch: str, config: Any, repo_dir: Path, on_run: Callable[[], None]) -> dict[str, Any]:
    """Test results of ``patch`` (a dict: ``f2p_passed``/``f2p_failed``/``p2p_broken``, or ``error`` and
    ``kind``). ``config`` is the env's :class:`~veritas_rl.envs.swe.env.SweConfig`; ``on_run`` is
    called when the tests are about to run."""
    tmp = Path(tempfile.mkdtemp(prefix="veritas-swe-", dir=config.work_dir))
    os.chmod(tmp, 0o711)  # the sandbox user may pass through to its binds, not list or read the rest
    try:
        return _evaluate_in(tmp, task, patch, config, repo_dir, on_run)
    finally:
        _rmtree(tmp)


def _evaluate_in(tmp: Path, task: Task, patch: str, cfg: Any, repo_dir: Path,
                 on_run: Callable[[], None]) -> dict[str, Any]:
    base, timeout = task.extra["base_commit"], cfg.git_timeout_s
    clone = tmp / "repo"
    _git(["clone", "--shared", "--no-checkout", "--quiet", str(repo_dir), str(clone)], tmp, timeout)
    _git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", base], clone, timeout)
    patch_file = tmp / "model.patch"
    patch_file.write_text(patch, encoding="utf-8")
    numstat = _git(["apply", "--numstat", "-z", str(patch_file)], clone, timeout, check=False)
    if numstat.returncode != 0:
        return {"error": f"patch does not apply at {base[:12]}: {numstat.stderr.strip()[-OUTPUT_TAIL_CHARS:]}"}
    touched = numstat_paths(numstat.stdout)
    test_files = patch_files(task.extra["test_patch"])
    for path in [*touched, *patch_files(patch)]:
        why = refused_path(path, test_files) or _refused_new_module(clone, path)
        if why:
            return {"error": f"refused: {why}", "kind": "illegal"}
    check = _git(["apply", "--check", "--whitespace=nowarn", str(patch_file)], clone, timeout, check=False)
    if check.returncode != 0:
        return {"error": f"patch does not apply at {base[:12]}: {check.stderr.strip()[-OUTPUT_TAIL_CHARS:]}"}
    configs = [p for p in touched if p.rsplit("/", 1)[-1] in ("setup.cfg", "pyproject.toml")]
    before = {p: read_config(clone, p)[0] for p in configs}
    _git(["apply", "--whitespace=nowarn", str(patch_file)], clone, timeout)
    for path in configs:
        after, why = read_config(clone, path)
        why = why or refused_config_change(path, before[path], after)
        if why:
            return {"error": f"refused: {why}", "kind": "illegal"}
    # as the SWE-bench harness: the test files are reset to base_commit before the test patch
    for path in test_files:
        link = _symlinked_parent(clone, path)
        if link:  # git would write the test file through it, and we would delete through it
            return {"error": f"refused: {link} is a symlink, and the task's test file {path} lies under it",
                    "kind": "illegal"}
        if _git(["cat-file", "-e", f"{base}:{path}"], clone, timeout, check=False).returncode == 0:
            _git(["checkout", base, "--", path], clone, timeout)
        elif (clone / path).exists():
            (clone / path).unlink()
    test_patch_file = tmp / "test.patch"
    test_patch_file.write_text(task.extra["test_patch"], encoding="utf-8")
    applied = _git(["apply", "--whitespace=nowarn", str(test_patch_file)], clone, timeout, check=False)
    if applied.returncode != 0:
        return {"error": f"test_patch does not apply on top of the patch: {applied.stderr.strip()}"}

    junit = task.extra["repo"] not in LOG_GRADED_REPOS
    fifo = None
    extra: dict[str, str] = {}
    if junit:
        results = tmp / "results"
        results.mkdir(mode=0o755)
        fifo = results / "junit.xml"
        os.mkfifo(fifo)
        os.chmod(fifo, 0o666)  # the sandbox user writes it; the directory stays read-only to it
        extra["PYTEST_ADDOPTS"] = JUNIT_ADDOPTS.format(path=shlex.quote(str(fifo)))
    if cfg.sandbox == "bwrap":
        home = Path("/tmp/home")  # the sandbox's private tmpfs
    else:
        home = tmp / "home"
        home.mkdir()
    on_run()
    run = run_sandboxed(test_command(cfg, task), clone, sandbox_env(clone, home, extra), cfg.test_timeout_s,
                        cfg.memory_limit_mb, cfg.isolate_network, tmp / "test.log", sandbox=cfg.sandbox,
                        max_processes=cfg.max_processes, writable=[clone], readable=[repo_dir],
                        report_fifo=fifo)
    return grade_run(run, task, cfg, junit)


#: the largest setup.cfg / pyproject.toml read to compare its test sections (no real one comes close)
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def read_config(clone: Path, rel: str) -> tuple[str | None, str | None]:
    """``(text, why_refused)`` of the config file ``rel`` as pytest will read it in the sandbox:
    ``None`` text when there is none. A symlink is followed only within the checkout (the scorer
    would read its own /dev/zero, /proc/self/cwd or home where pytest reads the sandbox's: a hang, or
    another file than pytest's), only regular files are read, and at most :data:`MAX_CONFIG_BYTES`."""
    path = clone / rel
    if not os.path.lexists(path):
        return None, None
    root = os.path.realpath(clone)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        return None, f"{rel} is a symlink out of the repository ({os.readlink(path)!r})"
    try:
        st = os.stat(real)
    except OSError:
        return None, None  # a dangling link within the checkout: pytest reads nothing either
    if not stat.S_ISREG(st.st_mode):
        return None, f"{rel} is not a regular file"
    if st.st_size > MAX_CONFIG_BYTES:
        return None, f"{rel} is larger than {MAX_CONFIG_BYTES >> 20} MiB"
    with open(real, "rb") as fh:
        data = fh.read(MAX_CONFIG_BYTES + 1)
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return "\0not utf-8", None


def _refused_new_module(clone: Path, path: str) -> str | None:
    """Why ``path`` may not be added: a new top-level entry that shadows a module of the test
    interpreter (see :func:`~veritas_rl.envs.swe.patches.shadowed_module`); entries the repository
    already has at ``base_commit`` are its own."""
    top = path.split("/", 1)[0]
    if not top or os.path.lexists(clone / top):
        return None
    name = shadowed_module(path, clone)
    if name is None:
        return None
    return f"the patch adds {top!r} at the repository root, which shadows the module {name!r} the tests import"


def _symlinked_parent(clone: Path, rel: str) -> str | None:
    """The first directory on the way to ``rel`` in the checkout that is a symlink, or ``None``."""
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        if os.path.islink(clone / sub):
            return sub
    return None


def grade_run(run: RunResult, task: Task, cfg: Any, junit: bool) -> dict[str, Any]:
    """The result dict of one test run: from the junit report (cross-checked with the exit code), or
    from the log for the repos whose runner is not pytest."""
    tail = run.output[-OUTPUT_TAIL_CHARS:]
    seconds = round(run.seconds, 3)
    if run.timed_out:
        return {"error": f"tests timed out after {cfg.test_timeout_s:g}s", "kind": "timeout", "seconds": seconds}
    if run.output_overflow:
        return {"error": f"the test output passed {MAX_LOG_BYTES >> 20} MiB; the run was killed", "kind": "too_long",
                "output_tail": tail[-200:], "seconds": seconds}
    oom = f"; the run hit its memory limit ({cfg.memory_limit_mb} MiB)" if run.oom_killed else ""
    if junit:
        if run.report_overflow:
            return {"error": "the junit report is larger than any pytest run writes (forged)", "kind": "illegal",
                    "seconds": seconds}
        if not run.report:
            return {"error": f"pytest wrote no junit report (exit code {run.returncode}){oom}", "output_tail": tail,
                    "seconds": seconds}
        status = parse_junit(run.report)
        if isinstance(status, str):
            return {"error": status, "kind": "illegal", "output_tail": tail, "seconds": seconds}
    else:
        status = parse_test_output(run.output, task.extra["repo"], task.extra.get("log_parser"))
    if not status:
        return {"error": f"no test results in the output (exit code {run.returncode}){oom}", "output_tail": tail,
                "seconds": seconds}
    mismatch = check_consistent(status, run.returncode)
    if mismatch:
        return {"error": mismatch, "kind": "illegal", "output_tail": tail, "seconds": seconds}
    graded = grade(status, list(task.extra["FAIL_TO_PASS"]), list(task.extra["PASS_TO_PASS"]))
    return {**graded, "returncode": run.returncode, "seconds": seconds}

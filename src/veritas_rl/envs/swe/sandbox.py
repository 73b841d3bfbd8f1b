"""Running the tests of a patch: the sandboxed subprocess (own session, memory limit, no network) and
the git calls that prepare its checkout."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: how much of the test output is kept (tail) for parsing and for ``Score.info``
MAX_TEST_OUTPUT_BYTES = 8_000_000
OUTPUT_TAIL_CHARS = 2_000

#: environment variables never passed to the test command (names matched case-insensitively)
SECRET_ENV_PATTERN = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY|PRIVATE_KEY", re.I)


_NETNS_PREFIX: list[str] | None = None
_NETNS_LOCK = threading.Lock()


def network_isolation_prefix() -> list[str]:
    """``["unshare", "-n"]`` (root) or ``["unshare", "-rn"]`` (user namespaces), else ``[]``; probed once."""
    global _NETNS_PREFIX
    with _NETNS_LOCK:
        if _NETNS_PREFIX is None:
            _NETNS_PREFIX = []
            exe = shutil.which("unshare")
            if exe and sys.platform.startswith("linux"):
                for flags in ("-n", "-rn"):
                    try:
                        probe = subprocess.run([exe, flags, "true"], capture_output=True, timeout=10)
                    except (OSError, subprocess.TimeoutExpired):
                        continue
                    if probe.returncode == 0:
                        _NETNS_PREFIX = [exe, flags]
                        break
            if not _NETNS_PREFIX:
                log.warning("network isolation unavailable (no working `unshare -n`): tests run with network")
        return list(_NETNS_PREFIX)


def _limit_resources(memory_bytes: int) -> None:  # runs in the child between fork and exec
    import resource

    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class _Limits:
    """Picklable ``preexec_fn`` (no closures: the env travels to Ray workers)."""

    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes

    def __call__(self) -> None:
        _limit_resources(self.memory_bytes)


def sandbox_env(worktree: Path, home: Path) -> dict[str, str]:
    """The test command's environment: ours minus secrets, HOME in the temp dir, this interpreter's bin
    dir first on ``PATH``, the worktree first on ``PYTHONPATH`` (so it shadows an installed copy)."""
    env = {k: v for k, v in os.environ.items() if not SECRET_ENV_PATTERN.search(k) and not k.startswith("PYTEST_")}
    env["HOME"] = str(home)
    # this interpreter's bin dir first: `pytest`, `python` and `#!/usr/bin/env python` scripts are ours
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), *filter(None, [os.environ.get("PATH")])])
    env["PYTHONPATH"] = os.pathsep.join([str(worktree), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


@dataclass
class RunResult:
    returncode: int | None  # None on timeout
    output: str
    seconds: float
    timed_out: bool


def run_sandboxed(cmd: list[str], cwd: Path, env: dict[str, str], timeout_s: float, memory_mb: int,
                  isolate_network: bool, log_path: Path) -> RunResult:
    """Run ``cmd`` in its own session/process group with a memory limit (``prlimit --as``, or
    ``setrlimit`` in the child where util-linux is missing) and no network where possible
    (``unshare -n``); on timeout the whole group is killed. Output goes to ``log_path`` (a file, not a pipe, so a
    grandchild that survives cannot block us)."""
    prefix = network_isolation_prefix() if isolate_network else []
    memory_bytes = memory_mb * 1024 * 1024
    prlimit = shutil.which("prlimit")
    preexec = None
    if prlimit:  # util-linux's prlimit: no Python code between fork and exec (verl scores from threads)
        prefix = [*prefix, prlimit, "--core=0", *([f"--as={memory_bytes}"] if memory_bytes else []), "--"]
    else:
        preexec = _Limits(memory_bytes)
    start = time.monotonic()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [*prefix, *cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=preexec,
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group: stragglers too, also after a normal exit
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    seconds = time.monotonic() - start
    with open(log_path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - MAX_TEST_OUTPUT_BYTES))
        output = fh.read().decode("utf-8", errors="replace")
    return RunResult(None if timed_out else proc.returncode, output, seconds, timed_out)


def _git(args: list[str], cwd: Path, timeout_s: float, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout_s, env=env)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc

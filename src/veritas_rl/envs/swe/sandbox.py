"""Running the tests of a patch in a sandbox, and the git calls that prepare their checkout.

``sandbox="bwrap"`` (the default) runs the test command under Debian's ``bubblewrap``:

* new PID, mount, network, IPC, UTS and user namespaces; ``--die-with-parent``; when the command
  ends, the PID namespace ends with it, so ``setsid`` and double-forked children die too;
* ``/`` bound read-only, fresh ``/dev`` and ``/proc``, private tmpfs ``/tmp`` (``HOME`` is
  ``/tmp/home``), ``/run`` and the scorer's own home; the checkout is the only writable bind;
* as root, the command runs as uid/gid 65534 (``setpriv``, then an unprivileged ``bwrap``): it owns
  nothing outside the checkout; not as root, it runs as the calling user in its own user namespace;
* a per-run cgroup (v2, or v1 ``memory`` + ``pids``) limits the *total* memory and the number of
  processes; where no cgroup is writable, ``prlimit`` sets RLIMIT_AS (per process) and RLIMIT_NPROC
  (per uid, not enforced for root) instead, and a warning says so once;
* the environment is an allow-list (:data:`ENV_ALLOW`), not the scorer's environment minus a filter.

``sandbox="none"`` keeps the older, weaker wrapper (own session, ``unshare -n``, the same limits) and
must be asked for. Test results travel through a FIFO (:func:`run_sandboxed`'s ``report_fifo``), read
while the command runs.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SANDBOXES = ("bwrap", "none")

#: how much of the test output is kept (tail) for parsing and for ``Score.info``
MAX_TEST_OUTPUT_BYTES = 8_000_000
OUTPUT_TAIL_CHARS = 2_000
#: the most bytes read from the report FIFO; more marks the report as overflowing
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: the most bytes of test output (stdout + stderr, a file on the scorer's disk): more and the run is
#: killed (``RunResult.output_overflow``); the memory cgroup does not bound it (written-back page cache is
#: reclaimed), so without it a printing loop fills the disk for the whole timeout
MAX_LOG_BYTES = 256 * 1024 * 1024
#: RLIMIT_FSIZE of the test processes: no file they write (in the checkout, the log) grows past it
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024
#: how often the run is looked at (exit, report FIFO, log size)
POLL_S = 0.05
#: size of the private /tmp inside the sandbox (also charged to the memory cgroup)
TMPFS_BYTES = 1024 * 1024 * 1024

#: the uid/gid the tests run as when the scorer is root
SANDBOX_UID = 65534

#: the only variables of the scorer's environment that reach the tests (plus those set explicitly)
ENV_ALLOW = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "PYTHONHASHSEED",
             "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


def sandbox_env(worktree: Path, home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test command's environment, built from :data:`ENV_ALLOW`: ``HOME`` is ``home``, this
    interpreter's bin dir first on ``PATH``, the worktree first on ``PYTHONPATH`` (so it shadows an
    installed copy), no bytecode written, git never prompts; ``extra`` last."""
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env["HOME"] = str(home)
    # this interpreter's bin dir first: `pytest`, `python` and `#!/usr/bin/env python` scripts are ours
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH") or "/usr/bin:/bin"])
    env["PYTHONPATH"] = str(worktree)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("LANG", "C.UTF-8")
    env.update(extra or {})
    return env


# -- probes (once per process) -------------------------------------------------------------------

_PROBES: dict[str, object] = {}
_PROBE_LOCK = threading.Lock()


def network_isolation_prefix() -> list[str]:
    """``["unshare", "-n"]`` (root) or ``["unshare", "-rn"]`` (user namespaces), else ``[]``; probed once.
    Used by ``sandbox="none"`` (bwrap has its own network namespace)."""
    with _PROBE_LOCK:
        if "unshare" not in _PROBES:
            prefix: list[str] = []
            exe = shutil.which("unshare")
            if exe and sys.platform.startswith("linux"):
                for flags in ("-n", "-rn"):
                    try:
                        probe = subprocess.run([exe, flags, "true"], capture_output=True, timeout=10)
                    except (OSError, subprocess.TimeoutExpired):
                        continue
                    if probe.returncode == 0:
                        prefix = [exe, flags]
                        break
            if not prefix:
                log.warning("network isolation unavailable (no working `unshare -n`): tests run with network")
            _PROBES["unshare"] = prefix
        return list(_PROBES["unshare"])  # type: ignore[arg-type]


@dataclass(frozen=True)
class BwrapMode:
    """How bwrap runs here: ``user`` is ``"65534"`` (setpriv to uid 65534, then unprivileged bwrap),
    ``"65534-in-userns"`` (root's bwrap, uid 65534 inside a user namespace mapped to root) or
    ``"caller"`` (not root: the caller's uid in its own user namespace)."""

    prefix: tuple[str, ...]  # what comes before the bwrap options (setpriv ... bwrap)
    user_args: tuple[str, ...]  # bwrap's --uid/--gid options
    user: str
    chown: bool  # the writable binds must belong to SANDBOX_UID


def _bwrap_candidates(bwrap: str) -> list[BwrapMode]:
    ids = ("--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID))
    if os.geteuid() != 0:
        return [BwrapMode((bwrap,), (), "caller", False)]
    out = []
    setpriv = shutil.which("setpriv")
    if setpriv:
        drop = (setpriv, f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups", "--")
        out.append(BwrapMode((*drop, bwrap), ids, str(SANDBOX_UID), True))
    out.append(BwrapMode((bwrap,), ("--unshare-user", *ids), f"{SANDBOX_UID}-in-userns", False))
    return out


def bwrap_mode() -> BwrapMode | str:
    """The first way of running bwrap that works here (probed once), or why none does."""
    with _PROBE_LOCK:
        if "bwrap" not in _PROBES:
            bwrap = shutil.which("bwrap")
            result: BwrapMode | str = ("bubblewrap is not installed (`apt-get install -y bubblewrap`); or set "
                                       "sandbox='none' to run the tests without it (no file system isolation)")
            if bwrap:
                errors = []
                for mode in _bwrap_candidates(bwrap):
                    # this interpreter must start in there (it may live where uid 65534 cannot reach)
                    cmd = [*bwrap_args(mode, Path("/"), {"PATH": "/usr/bin:/bin"}, [], [], True),
                           sys.executable, "-c", "import sys"]
                    try:
                        probe = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd="/")
                    except (OSError, subprocess.TimeoutExpired) as err:
                        errors.append(f"{mode.user}: {err}")
                        continue
                    if probe.returncode == 0:
                        result = mode
                        break
                    errors.append(f"{mode.user}: {probe.stderr.strip()}")
                else:
                    result = (f"bwrap cannot create its namespaces here ({'; '.join(errors)}); run as root or "
                              "enable unprivileged user namespaces, or set sandbox='none'")
            _PROBES["bwrap"] = result
        return _PROBES["bwrap"]  # type: ignore[return-value]


@dataclass(frozen=True)
class CgroupRoots:
    """Where per-run cgroups are made: one dir (v2) or the v1 ``memory`` and ``pids`` dirs."""

    version: int
    memory: Path
    pids: Path


def _own_cgroup(controller: str) -> str | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (controller == "" and controllers == ""):
            return path
    return None


def _probe_cgroups() -> CgroupRoots | None:
    base = Path("/sys/fs/cgroup")
    candidates = []
    own = _own_cgroup("")
    if own is not None and (base / "cgroup.controllers").is_file():
        here = base / own.lstrip("/")
        candidates.append(CgroupRoots(2, here, here))
    mem, pids = _own_cgroup("memory"), _own_cgroup("pids")
    if mem is not None and pids is not None and (base / "memory").is_dir() and (base / "pids").is_dir():
        candidates.append(CgroupRoots(1, base / "memory" / mem.lstrip("/"), base / "pids" / pids.lstrip("/")))
    for roots in candidates:
        probe = f"veritas-probe-{os.getpid()}"
        made = []
        try:
            for root in dict.fromkeys((roots.memory, roots.pids)):
                (root / probe).mkdir()
                made.append(root / probe)
            files = (["memory.max", "pids.max"] if roots.version == 2 else ["memory.limit_in_bytes", "pids.max"])
            dirs = [roots.memory / probe, roots.pids / probe]
            if all((d / f).exists() for d, f in zip(dirs, files)):
                return roots
        except OSError:
            pass
        finally:
            for path in made:
                try:
                    path.rmdir()
                except OSError:
                    pass
    return None


def cgroup_roots() -> CgroupRoots | None:
    """Writable cgroup roots for per-run limits (probed once), or ``None``."""
    with _PROBE_LOCK:
        if "cgroup" not in _PROBES:
            _PROBES["cgroup"] = _probe_cgroups() if sys.platform.startswith("linux") else None
            if _PROBES["cgroup"] is None:
                log.warning("no writable cgroup: the memory limit is per process (RLIMIT_AS) and the process "
                            "limit is RLIMIT_NPROC (not enforced for root)")
        return _PROBES["cgroup"]  # type: ignore[return-value]


class RunCgroup:
    """One run's cgroup(s): created with the limits, joined by the command's first process (a tiny
    ``sh`` wrapper, so no Python runs between fork and exec), emptied with SIGKILL and removed."""

    _count = 0

    def __init__(self, roots: CgroupRoots, memory_bytes: int, max_processes: int):
        RunCgroup._count += 1
        name = f"veritas-swe-{os.getpid()}-{threading.get_ident()}-{RunCgroup._count}"
        self.roots = roots
        self.dirs = list(dict.fromkeys((roots.memory / name, roots.pids / name)))
        for path in self.dirs:
            path.mkdir()
        if roots.version == 2:
            if memory_bytes:
                (roots.memory / name / "memory.max").write_text(str(memory_bytes))
                if (roots.memory / name / "memory.swap.max").exists():
                    (roots.memory / name / "memory.swap.max").write_text("0")
        elif memory_bytes:
            (roots.memory / name / "memory.limit_in_bytes").write_text(str(memory_bytes))
            memsw = roots.memory / name / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                memsw.write_text(str(memory_bytes))
        if max_processes:
            (roots.pids / name / "pids.max").write_text(str(max_processes))
        self.memory_dir = roots.memory / name
        self.oom = False

    def wrapper(self) -> list[str]:
        script = 'for d; do [ "$d" = -- ] && break; echo $$ > "$d/cgroup.procs" || exit 125; shift; done; shift; exec "$@"'
        return ["/bin/sh", "-c", script, "sh", *map(str, self.dirs), "--"]

    def oom_killed(self) -> bool:
        if self.roots.version == 2:
            events = self.memory_dir / "memory.events"
            text = events.read_text() if events.exists() else ""
            return any(line.split()[:1] == ["oom_kill"] and line.split()[1] != "0" for line in text.splitlines())
        control = self.memory_dir / "memory.oom_control"
        text = control.read_text() if control.exists() else ""
        return any(line.split()[:1] == ["oom_kill"] and line.split()[1] != "0" for line in text.splitlines())

    def destroy(self) -> None:
        """SIGKILL whatever is left in the cgroup, wait until it is empty, remove it."""
        deadline = time.monotonic() + 10
        for path in self.dirs:
            if path == self.memory_dir:
                self.oom = self.oom_killed()
            while True:
                try:
                    pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
                except FileNotFoundError:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if not pids:
                    try:
                        path.rmdir()
                        break
                    except OSError as err:
                        if err.errno != errno.EBUSY:
                            raise
                if time.monotonic() > deadline:
                    log.warning("cgroup %s not empty after 10 s; left behind", path)
                    break
                time.sleep(0.02)


# -- the run -------------------------------------------------------------------------------------


@dataclass
class RunResult:
    returncode: int | None  # None on timeout
    output: str
    seconds: float
    timed_out: bool
    report: bytes | None = None  # what was written into report_fifo (None without one)
    report_overflow: bool = False
    oom_killed: bool = False
    output_overflow: bool = False  # the output passed MAX_LOG_BYTES and the run was killed


def chown_tree(root: Path, uid: int) -> None:
    """``lchown -R root uid:uid`` (the sandbox user must own the checkout it writes)."""
    os.lchown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, uid)


def needed_paths(extra: list[Path]) -> list[Path]:
    """What the tests read besides ``/``'s world-readable files: this interpreter's installation and
    venv, the import path, and ``extra`` (e.g. the clone whose objects the checkout borrows)."""
    paths = [sys.base_prefix, sys.prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             *[p for p in sys.path if p], *extra]
    out = sorted({Path(p).resolve() for p in paths})
    return [p for p in out if not any(q in p.parents for q in out)]  # outermost only


def bwrap_args(mode: BwrapMode, cwd: Path, env: dict[str, str], writable: list[Path], readonly: list[Path],
               isolate_network: bool, extra_readonly: list[Path] | None = None) -> list[str]:
    """bwrap's command line (everything before the test command)."""
    extra_readonly = list(extra_readonly or [])
    args = [*mode.prefix, "--die-with-parent", "--new-session", "--unshare-all", *mode.user_args]
    if not isolate_network:
        args.append("--share-net")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
             "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp", "--dir", "/tmp/home", "--tmpfs", "/run"]
    hidden = [Path("/tmp"), Path("/run")]
    home = Path.home().resolve()
    if home != Path("/") and home.is_dir() and not any(h == home or h in home.parents for h in hidden):
        # the scorer's home (tokens, ssh keys, caches) is hidden too
        args += ["--tmpfs", str(home)]
        hidden.append(home)
    # what the tests need from a hidden place comes back read-only: the interpreter, the venv and the
    # import path may live in the home or under /tmp (a checkout and its .venv cloned there, as CI does)
    for path in needed_paths(extra_readonly):
        if any(h == path or h in path.parents for h in hidden) and path.exists():
            args += ["--ro-bind", str(path), str(path)]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    for path in readonly:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--chdir", str(cwd), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--cap-drop", "ALL", "--"]
    return args


def run_sandboxed(cmd: list[str], cwd: Path, env: dict[str, str], timeout_s: float, memory_mb: int,
                  isolate_network: bool, log_path: Path, *, sandbox: str = "none", max_processes: int = 0,
                  writable: list[Path] | None = None, readable: list[Path] | None = None,
                  report_fifo: Path | None = None, max_output_bytes: int = MAX_LOG_BYTES,
                  max_file_bytes: int = MAX_FILE_BYTES) -> RunResult:
    """Run ``cmd`` in ``cwd`` under ``sandbox`` (see the module docstring) within ``timeout_s``;
    ``memory_mb`` and ``max_processes`` (0 = no limit) bound the whole run. ``writable`` are the paths
    the command may write (default ``[cwd]``), ``readable`` paths it must be able to read even where
    they are under the scorer's (hidden) home. ``report_fifo``, a FIFO in a directory that is bound
    read-only, is drained while the command runs; what was written into it is ``RunResult.report``.
    Output goes to ``log_path`` (a file, not a pipe, so a grandchild that survives cannot block us), at
    most ``max_output_bytes`` of it; every file the command writes is bounded by ``max_file_bytes``
    (RLIMIT_FSIZE).
    On timeout, output overflow, or after a normal exit, the process group and the cgroup are killed."""
    writable = [cwd] if writable is None else writable
    memory_bytes = memory_mb * 1024 * 1024
    roots = cgroup_roots()
    group = RunCgroup(roots, memory_bytes, max_processes) if roots is not None else None
    prefix: list[str] = [] if group is None else group.wrapper()
    prlimit = shutil.which("prlimit")
    if prlimit:  # util-linux's prlimit: no Python code between fork and exec (verl scores from threads)
        limits = ["--core=0", *([f"--fsize={max_file_bytes}"] if max_file_bytes else [])]
        if group is None:
            limits += [*([f"--as={memory_bytes}"] if memory_bytes else []),
                       *([f"--nproc={max_processes}"] if max_processes else [])]
        prefix += [prlimit, *limits, "--"]
    if sandbox == "bwrap":
        mode = bwrap_mode()
        if isinstance(mode, str):
            raise RuntimeError(f"sandbox='bwrap': {mode}")
        readonly = [report_fifo.parent] if report_fifo is not None else []
        if mode.chown:
            for path in writable:
                chown_tree(path, SANDBOX_UID)
        inner = bwrap_args(mode, cwd, env, writable, readonly, isolate_network, readable)
        popen_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    else:
        inner = network_isolation_prefix() if isolate_network else []
        popen_env = env
    reader = writer = None
    if report_fifo is not None:
        reader = os.open(report_fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer = os.open(report_fifo, os.O_WRONLY | os.O_NONBLOCK)  # ours: no EOF storm between writers
    report = bytearray()
    overflow = False

    def drain() -> None:
        nonlocal overflow
        while reader is not None:
            try:
                chunk = os.read(reader, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                return
            if len(report) + len(chunk) > MAX_REPORT_BYTES:
                overflow = True
            else:
                report.extend(chunk)

    start = time.monotonic()
    timed_out = output_overflow = False
    try:
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [*prefix, *inner, *cmd], cwd=cwd, env=popen_env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
            try:
                deadline = start + timeout_s
                while proc.poll() is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        timed_out = True
                        break
                    if max_output_bytes and os.fstat(out.fileno()).st_size > max_output_bytes:
                        output_overflow = True
                        break
                    if reader is not None:
                        select.select([reader], [], [], min(left, POLL_S))
                        drain()
                    else:
                        try:
                            proc.wait(timeout=min(left, POLL_S))
                        except subprocess.TimeoutExpired:
                            pass
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the group: stragglers too, also after a normal exit
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
                if group is not None:
                    group.destroy()
                drain()
        oom = group.oom if group is not None else False
    finally:
        for fd in (reader, writer):
            if fd is not None:
                os.close(fd)
    seconds = time.monotonic() - start
    with open(log_path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - MAX_TEST_OUTPUT_BYTES))
        output = fh.read().decode("utf-8", errors="replace")
    return RunResult(None if timed_out else proc.returncode, output, seconds, timed_out,
                     bytes(report) if report_fifo is not None else None, overflow, oom, output_overflow)


def _git(args: list[str], cwd: Path, timeout_s: float, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout_s, env=env)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc

"""SWE-bench environment (``swe-synth``): fix a real repository, graded by running its tests.

Tasks are SWE-bench rows (``instance_id``, ``repo``, ``base_commit``, ``problem_statement``, ``patch``,
``test_patch``, ``FAIL_TO_PASS``, ``PASS_TO_PASS``, ...) from a Hugging Face dataset (default
``princeton-nlp/SWE-bench_Lite``, split ``test``) through the real ``datasets`` loader, or from a local
``cache_dir`` of ``task_{id}.json`` files (one row each; ``id`` is the row index in the split).

**Task ids.** A task id is the row index in the dataset split (the ``{id}`` of ``task_{id}.json``).
``task_ids`` or ``task_id_range`` (``[start, stop)``, default the first 100) select which rows this env
serves; ``num_tasks`` is the number selected and ``task_id_at(i)`` is the ``i``-th selected id.

**Answer.** A unified diff, taken from the last fenced ````diff`` (or ````patch``) block, else from the
raw answer text. A malformed diff scores 0 with the reason.

**Reward.** 1.0 when the patch applies cleanly at ``base_commit`` and, with ``test_patch`` applied,
every FAIL_TO_PASS test passes and every PASS_TO_PASS test still passes; else 0.0. With
``reward_mode="partial"`` the reward is the fraction of FAIL_TO_PASS tests passing, 0 if any
PASS_TO_PASS test breaks.

**Backends.** ``local`` checks the repository out from ``repos_dir/<owner>__<name>`` with
``git worktree add --detach`` into a temporary directory, applies the patch and the test patch, runs
the test command in a subprocess (own process group killed on timeout, ``RLIMIT_AS`` memory limit,
no network via ``unshare -n`` where the OS allows it) and removes the worktree afterwards.
``docker`` hands the instance to the official ``swebench`` harness (needs a Docker engine and a
dataset that ships ``image``/``eval_script``/``log_parser``/``eval_type`` columns). Results are
cached by ``(instance_id, sha256(patch))`` in memory and optionally on disk.

Pre-download rows for offline use::

    python -m veritas_rl.envs.swe download --cache-dir data/swe_lite --start 0 --stop 300
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veritas_rl.envs.base import Env, Score, Task, check_choice, register_env

log = logging.getLogger(__name__)

DEFAULT_DATASET = "princeton-nlp/SWE-bench_Lite"
KNOWN_DATASETS = ("princeton-nlp/SWE-bench_Lite", "princeton-nlp/SWE-bench_Verified")
BACKENDS = ("local", "docker")
REWARD_MODES = ("binary", "partial")

#: how much of the test output is kept (tail) for parsing and for ``Score.info``
MAX_TEST_OUTPUT_BYTES = 8_000_000
OUTPUT_TAIL_CHARS = 2_000

#: environment variables never passed to the test command (names matched case-insensitively)
SECRET_ENV_PATTERN = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY|PRIVATE_KEY", re.I)

#: test commands of SWE-bench repos that do not run under plain pytest; ``{tests}`` gets the test
#: directives derived from the files the test patch touches (see :func:`test_directives`)
REPO_TEST_COMMANDS = {
    "django/django": "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 {tests}",
    "sympy/sympy": "bin/test -C --verbose {tests}",
}
DEFAULT_TEST_COMMAND = "{python} -m pytest -rA --tb=no -p no:cacheprovider {tests}"

INSTRUCTIONS = (
    "You are given a problem report for the repository {repo} (checked out at commit {commit}). "
    "Write a patch that resolves it. Answer with a single unified diff against the repository root "
    "(`diff --git a/path b/path`, `--- a/path`, `+++ b/path`, `@@` hunks), inside a ```diff fenced block. "
    "Do not modify the tests: the repository's own tests decide whether the problem is resolved."
)


@dataclass(frozen=True)
class SweConfig:
    """Configuration of the ``swe-synth`` environment (all keys validated at construction)."""

    dataset_name: str = DEFAULT_DATASET  # a HF dataset id (or a local dataset dir) with SWE-bench rows
    split: str = "test"
    cache_dir: str | None = None  # dir of task_{id}.json rows; filled from the hub when it misses
    use_cache_only: bool = False  # never touch the hub: every selected row must be in cache_dir
    task_ids: tuple[int, ...] | None = None  # row indices to serve (overrides task_id_range)
    task_id_range: tuple[int, ...] = (0, 100)  # [start, stop) row indices, clipped to the split size
    repos_dir: str | None = None  # one clone per repo: repos_dir/<owner>__<name>
    backend: str = "local"  # "local" | "docker"
    reward_mode: str = "binary"  # "binary" | "partial"
    test_timeout_s: float = 1800.0  # wall clock for the whole test command
    git_timeout_s: float = 120.0  # each git call (worktree add, apply, show)
    memory_limit_mb: int = 8192  # RLIMIT_AS of the test command; 0 = no limit
    isolate_network: bool = True  # run tests under `unshare -n` when the OS allows it
    test_cmd: str | None = None  # override: shell command, {tests} and {python} are substituted
    include_code_context: bool = True  # add the files the gold patch touches (at base_commit) to the prompt
    code_context_chars: int = 20_000  # character budget of that context
    work_dir: str | None = None  # where temporary worktrees go (default: the system temp dir)
    result_cache_dir: str | None = None  # also keep test results on disk, keyed by instance and patch hash
    docker_run_id: str = "veritas"  # docker backend: run id of the swebench harness (log dir name)

    def __post_init__(self):
        check_choice("backend", self.backend, BACKENDS)
        check_choice("reward_mode", self.reward_mode, REWARD_MODES)
        if not self.dataset_name:
            raise ValueError(f"dataset_name={self.dataset_name!r}: expected a dataset id such as {DEFAULT_DATASET!r}")
        if self.task_ids is not None:
            if not self.task_ids:
                raise ValueError("task_ids=(): expected at least one row index (or leave it unset)")
            if any(int(t) < 0 for t in self.task_ids):
                raise ValueError(f"task_ids={self.task_ids!r}: row indices must be >= 0")
        if len(self.task_id_range) != 2 or not 0 <= self.task_id_range[0] < self.task_id_range[1]:
            raise ValueError(f"task_id_range={self.task_id_range!r}: expected [start, stop) with 0 <= start < stop")
        for key in ("test_timeout_s", "git_timeout_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}={getattr(self, key)!r}: expected a positive number of seconds")
        if self.memory_limit_mb < 0:
            raise ValueError(f"memory_limit_mb={self.memory_limit_mb!r}: expected >= 0 (0 = no limit)")
        if self.code_context_chars < 0:
            raise ValueError(f"code_context_chars={self.code_context_chars!r}: expected >= 0")
        if self.use_cache_only and not self.cache_dir:
            raise ValueError("use_cache_only=True needs cache_dir (a directory of task_{id}.json rows)")
        if self.repos_dir is not None and not Path(self.repos_dir).is_dir():
            raise ValueError(f"repos_dir={self.repos_dir!r} is not a directory (one clone per repo: <owner>__<name>)")

    @property
    def selected_ids(self) -> tuple[int, ...]:
        if self.task_ids is not None:
            return tuple(dict.fromkeys(int(t) for t in self.task_ids))
        return tuple(range(int(self.task_id_range[0]), int(self.task_id_range[1])))


class SweDataError(ValueError):
    """The selected rows cannot be loaded (offline without a cache, missing files, bad rows)."""


# -- loading rows --------------------------------------------------------------------------------

REQUIRED_KEYS = ("instance_id", "repo", "base_commit", "problem_statement", "patch", "test_patch",
                 "FAIL_TO_PASS", "PASS_TO_PASS")


def cache_path(cache_dir: str | os.PathLike, task_id: int) -> Path:
    return Path(cache_dir) / f"task_{int(task_id)}.json"


def _check_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    missing = [k for k in REQUIRED_KEYS if k not in row]
    if missing:
        raise SweDataError(f"{where}: not a SWE-bench row, missing {', '.join(missing)}")
    return row


def _download_hint(config: SweConfig, ids: list[int]) -> str:
    lo, hi = min(ids), max(ids) + 1
    target = config.cache_dir or "DIR"
    return (
        f"download the rows once where the hub is reachable: python -m veritas_rl.envs.swe download "
        f"--dataset {config.dataset_name} --split {config.split} --cache-dir {target} --start {lo} --stop {hi} "
        f"(or put SWE-bench rows as JSON files task_<row index>.json into {target}), then set "
        f"cache_dir={target} (and use_cache_only=true to never touch the hub)"
    )


def load_hub_rows(dataset_name: str, split: str, ids: list[int] | None) -> tuple[dict[int, dict[str, Any]], int]:
    """Rows ``ids`` (all when ``None``) of ``dataset_name[split]`` through ``datasets``; also the split size."""
    import datasets

    ds = datasets.load_dataset(dataset_name, split=split)
    size = len(ds)
    wanted = range(size) if ids is None else [i for i in ids if i < size]
    return {i: dict(ds[i]) for i in wanted}, size


def load_rows(config: SweConfig) -> dict[int, dict[str, Any]]:
    """The selected rows, from ``cache_dir`` first and the hub for the rest (written back to the cache)."""
    ids = list(config.selected_ids)
    rows: dict[int, dict[str, Any]] = {}
    if config.cache_dir:
        for task_id in ids:
            path = cache_path(config.cache_dir, task_id)
            if path.is_file():
                try:
                    rows[task_id] = _check_row(json.loads(path.read_text(encoding="utf-8")), str(path))
                except json.JSONDecodeError as err:
                    raise SweDataError(f"{path}: not valid JSON ({err})") from None
    missing = [t for t in ids if t not in rows]
    if not missing:
        return rows
    if config.use_cache_only:
        raise SweDataError(
            f"use_cache_only: {len(missing)} selected row(s) not in cache_dir={config.cache_dir!r} "
            f"(first missing: {cache_path(config.cache_dir, missing[0])}); " + _download_hint(config, missing)
        )
    try:
        hub_rows, size = load_hub_rows(config.dataset_name, config.split, missing)
    except Exception as err:  # network, auth, unknown dataset: all end the same way, with the cause chained
        raise SweDataError(
            f"cannot load {config.dataset_name!r} split {config.split!r} from the Hugging Face hub "
            f"({type(err).__name__}: {err}); " + _download_hint(config, missing)
        ) from err
    beyond = [t for t in missing if t >= size]
    if config.task_ids is not None and beyond:
        raise SweDataError(f"task_ids {beyond} are beyond the {size} rows of {config.dataset_name}[{config.split}]")
    for task_id, row in hub_rows.items():
        rows[task_id] = _check_row(row, f"{config.dataset_name}[{config.split}][{task_id}]")
        if config.cache_dir:
            path = cache_path(config.cache_dir, task_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(row, default=_json_default), encoding="utf-8")
    return rows


def _json_default(value: Any) -> str:
    """Timestamps (``created_at`` loads as one from some dataset revisions) as ISO 8601."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _json_list(value: Any) -> list[str]:
    """FAIL_TO_PASS / PASS_TO_PASS arrive as JSON strings in the dataset and as lists elsewhere."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    return [str(v) for v in (value or [])]


# -- diffs ---------------------------------------------------------------------------------------

#: a fenced block; the closing fence must start its line (a diff line never does: they start with
#: ' ', '+', '-', '@' or a header), so a patch that edits Markdown fences is not cut short
_FENCE = re.compile(r"^[ \t]*```[ \t]*(diff|patch)?[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_DIFF_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)
_PLUS_FILE = re.compile(r"^\+\+\+ (?:b/)?(\S+)", re.M)
_MINUS_FILE = re.compile(r"^--- (?:a/)?(\S+)", re.M)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@", re.M)


def extract_diff(answer: str) -> tuple[str | None, str]:
    """``(diff, reason)``: the last fenced diff block (or the raw text), checked for diff structure."""
    blocks = list(_FENCE.finditer(answer))
    tagged = [m for m in blocks if m.group(1)]
    if tagged:
        text = tagged[-1].group(2)
    elif blocks:
        text = blocks[-1].group(2)
    else:
        text = answer
    # models often indent or pad; a diff starts at its first header line
    start = re.search(r"^(diff --git |--- )", text, re.M)
    if start is None:
        return None, "malformed diff: no 'diff --git' or '--- a/...' file header"
    text = text[start.start():]
    if not _PLUS_FILE.search(text) or not _MINUS_FILE.search(text):
        return None, "malformed diff: a file header needs both '--- a/path' and '+++ b/path' lines"
    if not _HUNK.search(text) and "new mode" not in text and "rename from" not in text:
        return None, "malformed diff: no '@@ -l,n +l,n @@' hunk header"
    if not text.endswith("\n"):
        text += "\n"
    return text, "ok"


def patch_files(patch: str) -> list[str]:
    """Paths a unified diff touches (``b/`` side, falling back to ``---`` headers), in order."""
    files = [m.group(2) for m in _DIFF_FILE.finditer(patch)]
    if not files:
        files = [p for p in _PLUS_FILE.findall(patch) if p != "/dev/null"]
    return list(dict.fromkeys(files))


def test_directives(repo: str, test_patch: str) -> list[str]:
    """What to pass the test runner: the test files the test patch touches (SWE-bench's convention)."""
    from swebench.harness.constants import NON_TEST_EXTS  # data files the test patch adds are no tests

    files = [f for f in patch_files(test_patch) if not any(f.endswith(ext) for ext in NON_TEST_EXTS)]
    if repo == "django/django":  # tests/foo/test_bar.py -> foo.test_bar
        out = []
        for f in files:
            f = f[: -len(".py")] if f.endswith(".py") else f
            f = f[len("tests/"):] if f.startswith("tests/") else f
            out.append(f.replace("/", "."))
        return out
    return files


def eval_script_test_command(eval_script: str | None) -> str:
    """The test command of a swebench>=5 ``eval_script``: the lines between its start and end markers
    (``>>>>> Start Test Output`` / ``>>>>> End Test Output``); ``""`` when the row has none."""
    if not eval_script:
        return ""
    lines = eval_script.splitlines()
    start = next((i for i, line in enumerate(lines) if ">>>>> Start Test Output" in line), None)
    end = next((i for i, line in enumerate(lines) if ">>>>> End Test Output" in line), None)
    if start is None or end is None or end <= start + 1:
        return ""
    return "\n".join(lines[start + 1 : end]).strip()


# -- sandboxing ----------------------------------------------------------------------------------

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


# -- grading -------------------------------------------------------------------------------------


def parse_test_output(output: str, repo: str, log_parser: str | None = None) -> dict[str, str]:
    """Per-test status (``PASSED``/``FAILED``/``ERROR``/``SKIPPED``/``XFAIL``) with swebench's parsers:
    the row's ``log_parser`` when it names one, else the repo's, else the pytest ``-rA`` parser."""
    try:
        from swebench.harness.log_parsers import PARSER_REGISTRY
        from swebench.harness.log_parsers.python import MAP_REPO_TO_PARSER_PY, parse_log_pytest
        from swebench.types import TestSpec
    except ImportError as err:
        raise ImportError("swe-synth grades test logs with swebench: pip install 'veritas-rl[swe]' "
                          "(swebench==5.0.2)") from err
    parser = PARSER_REGISTRY.get(log_parser or "") or MAP_REPO_TO_PARSER_PY.get(repo) or parse_log_pytest
    spec = TestSpec(instance_id="", image="", eval_script_list=[], repo=repo, version="",
                    FAIL_TO_PASS=[], PASS_TO_PASS=[], log_parser=log_parser or "", eval_type="pass_and_fail")
    return parser(output, spec)


def grade(status: dict[str, str], fail_to_pass: list[str], pass_to_pass: list[str]) -> dict[str, Any]:
    """Which FAIL_TO_PASS tests pass and which PASS_TO_PASS tests broke (swebench's semantics:
    XFAIL counts as a pass, a skipped PASS_TO_PASS test is not a regression, a missing test fails)."""
    from swebench.harness.grading import test_maintained, test_passed

    return {
        "f2p_passed": [t for t in fail_to_pass if test_passed(t, status)],
        "f2p_failed": [t for t in fail_to_pass if not test_passed(t, status)],
        "p2p_broken": [t for t in pass_to_pass if not test_maintained(t, status)],
    }


def reward_from(result: dict[str, Any], fail_to_pass: list[str], reward_mode: str) -> Score:
    """Turn a cached evaluation result into a :class:`Score`."""
    if result.get("error"):
        return Score.zero(result["error"], **{k: v for k, v in result.items() if k != "error"})
    info = {k: result[k] for k in ("f2p_passed", "f2p_failed", "p2p_broken", "seconds") if k in result}
    if result["p2p_broken"]:
        return Score.zero(f"{len(result['p2p_broken'])} PASS_TO_PASS test(s) broke", **info)
    total = len(fail_to_pass)
    fraction = len(result["f2p_passed"]) / total if total else 1.0
    if reward_mode == "partial":
        if fraction == 0.0:
            return Score.zero("no FAIL_TO_PASS test passes", **info)
        return Score(fraction, {"reason": f"{len(result['f2p_passed'])}/{total} FAIL_TO_PASS pass", **info})
    if fraction < 1.0:
        return Score.zero(f"{len(result['f2p_failed'])}/{total} FAIL_TO_PASS test(s) still fail", **info)
    return Score(1.0, {"reason": "resolved", **info})


# -- the environment -----------------------------------------------------------------------------


class SweEnv(Env):
    """SWE-bench: resolve a GitHub issue with a patch, graded by the repository's own tests."""

    config: SweConfig

    def __init__(self, config: SweConfig):
        super().__init__(config)
        self._rows = load_rows(config)
        self._ids = tuple(t for t in config.selected_ids if t in self._rows)
        if not self._ids:
            raise SweDataError(f"no rows selected: task_ids={config.task_ids!r} task_id_range={config.task_id_range!r}")
        self._results: dict[tuple[str, str], dict[str, Any]] = {}
        self._pending: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()
        self._context_cache: dict[int, str] = {}
        #: how many times the test command actually ran (cache hits do not count)
        self.test_runs = 0
        self.cache_hits = 0
        if config.backend == "docker":
            self._docker = _docker_client()

    def __getstate__(self) -> dict[str, Any]:  # picklable for Ray: no lock, no docker client
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_docker", "_pending")}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._pending = {}
        if self.config.backend == "docker":
            self._docker = _docker_client()

    # -- tasks ---------------------------------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        return len(self._ids)

    def task_id_at(self, index: int) -> int:
        if not 0 <= index < len(self._ids):
            raise IndexError(f"index {index} outside [0, {len(self._ids)})")
        return self._ids[index]

    def row(self, task_id: int) -> dict[str, Any]:
        row = self._rows.get(int(task_id))
        if row is None:
            shown = ", ".join(map(str, self._ids[:10])) + (", ..." if len(self._ids) > 10 else "")
            raise ValueError(f"task_id {task_id} is not among the selected rows ({shown}); "
                             "task ids are row indices of the dataset split, selected by task_ids/task_id_range")
        return row

    def repo_dir(self, repo: str) -> Path | None:
        if not self.config.repos_dir:
            return None
        return Path(self.config.repos_dir) / repo.replace("/", "__")

    def code_context(self, row: dict[str, Any]) -> str:
        """The files the gold patch touches, at ``base_commit``, within ``code_context_chars``."""
        repo_dir = self.repo_dir(row["repo"])
        if repo_dir is None or not (repo_dir / ".git").exists():
            return ""
        budget = self.config.code_context_chars
        parts: list[str] = []
        for path in patch_files(row["patch"]):
            shown = _git(["show", f"{row['base_commit']}:{path}"], repo_dir, self.config.git_timeout_s, check=False)
            if shown.returncode != 0:
                continue  # a file the patch creates
            header = f"[start of {path}]\n"
            footer = f"[end of {path}]\n"
            room = budget - len(header) - len(footer)
            if room <= 0:
                break
            body = shown.stdout if len(shown.stdout) <= room else shown.stdout[:room] + "\n... (truncated)\n"
            body = body if body.endswith("\n") else body + "\n"
            parts.append(header + body + footer)
            budget -= len(parts[-1])
        return "".join(parts)

    def task(self, task_id: int) -> Task:
        task_id = int(task_id)
        row = self.row(task_id)
        fail_to_pass, pass_to_pass = _json_list(row["FAIL_TO_PASS"]), _json_list(row["PASS_TO_PASS"])
        text = INSTRUCTIONS.format(repo=row["repo"], commit=row["base_commit"][:12])
        text += f"\n\n<issue>\n{row['problem_statement'].strip()}\n</issue>\n"
        if self.config.include_code_context and self.config.code_context_chars:
            if task_id not in self._context_cache:
                self._context_cache[task_id] = self.code_context(row)
            context = self._context_cache[task_id]
            if context:
                text += f"\n<code>\n{context}</code>\n"
        text += "\nAnswer with the patch in a ```diff block."
        return Task(
            env=self.name,
            task_id=task_id,
            prompt=[{"role": "user", "content": text}],
            ground_truth=json.dumps({"instance_id": row["instance_id"], "FAIL_TO_PASS": fail_to_pass,
                                     "PASS_TO_PASS": pass_to_pass}),
            extra={
                "instance_id": row["instance_id"],
                "repo": row["repo"],
                "base_commit": row["base_commit"],
                "version": str(row.get("version") or ""),
                "environment_setup_commit": str(row.get("environment_setup_commit") or ""),
                "gold_patch": row["patch"],
                "test_patch": row["test_patch"],
                "FAIL_TO_PASS": fail_to_pass,
                "PASS_TO_PASS": pass_to_pass,
                "log_parser": str(row.get("log_parser") or ""),
                "eval_test_cmd": eval_script_test_command(row.get("eval_script")),
            },
        )

    def oracle(self, task: Task) -> str | None:
        return f"```diff\n{task.extra['gold_patch']}```\n" if task.extra.get("gold_patch") else None

    # -- scoring -------------------------------------------------------------------------------
    def _score(self, task: Task, answer: str) -> Score:
        patch, why = extract_diff(answer)
        if patch is None:
            return Score.zero(why)
        result = self.evaluate(task, patch)
        return reward_from(result, list(task.extra["FAIL_TO_PASS"]), self.config.reward_mode)

    def evaluate(self, task: Task, patch: str) -> dict[str, Any]:
        """Test results of ``patch`` for ``task``, cached by instance and patch hash. Concurrent calls
        with the same patch (a GRPO group often repeats one) wait for the first instead of re-running."""
        key = (str(task.extra["instance_id"]), hashlib.sha256(patch.encode()).hexdigest())
        while True:
            with self._lock:
                cached = self._results.get(key)
                pending = self._pending.get(key) if cached is None else None
                owner = cached is None and pending is None
                if owner:
                    pending = self._pending[key] = threading.Event()
            if pending is None or owner:
                break
            pending.wait()  # another thread is evaluating this patch; then look again
        if cached is None:
            cached = self._disk_cache_get(key)
        if cached is not None:
            with self._lock:
                self.cache_hits += 1
                self._results[key] = cached
                done = self._pending.pop(key, None) if owner else None
            if done is not None:
                done.set()
            return cached
        try:
            if self.config.backend == "docker":
                result = self._evaluate_docker(task, patch)
            else:
                result = self._evaluate_local(task, patch)
            with self._lock:
                self._results[key] = result
            self._disk_cache_put(key, result)
        finally:
            with self._lock:
                done = self._pending.pop(key)
            done.set()
        return result

    def _disk_cache_file(self, key: tuple[str, str]) -> Path | None:
        if not self.config.result_cache_dir:
            return None
        return Path(self.config.result_cache_dir) / key[0].replace("/", "__") / f"{key[1]}.json"

    def _disk_cache_get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        path = self._disk_cache_file(key)
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None  # a torn write from a killed worker: evaluate again

    def _disk_cache_put(self, key: tuple[str, str], result: dict[str, Any]) -> None:
        path = self._disk_cache_file(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result), encoding="utf-8")
        os.replace(tmp, path)

    def test_command(self, task: Task, worktree: Path) -> list[str]:
        repo = task.extra["repo"]
        tests = test_directives(repo, task.extra["test_patch"])
        if self.config.test_cmd:
            template = self.config.test_cmd
        elif task.extra.get("eval_test_cmd"):  # the row's own (swebench>=5 eval_script), used verbatim
            return ["bash", "-c", task.extra["eval_test_cmd"]]
        else:
            template = REPO_TEST_COMMANDS.get(repo) or DEFAULT_TEST_COMMAND
        command = template.format(python=shlex.quote(sys.executable), tests=" ".join(map(shlex.quote, tests)))
        return ["bash", "-c", command]

    def _evaluate_local(self, task: Task, patch: str) -> dict[str, Any]:
        cfg = self.config
        repo_dir = self.repo_dir(task.extra["repo"])
        if repo_dir is None:
            raise ValueError("backend='local' needs repos_dir (a directory with one clone per repo, "
                             f"e.g. git clone https://github.com/{task.extra['repo']} <repos_dir>/"
                             f"{task.extra['repo'].replace('/', '__')})")
        if not (repo_dir / ".git").exists():
            raise ValueError(f"no clone of {task.extra['repo']} at {repo_dir}: "
                             f"git clone https://github.com/{task.extra['repo']} {repo_dir}")
        base = task.extra["base_commit"]
        tmp = Path(tempfile.mkdtemp(prefix="veritas-swe-", dir=cfg.work_dir))
        worktree = tmp / f"wt-{tmp.name}"
        added = False
        try:
            _git(["worktree", "add", "--detach", str(worktree), base], repo_dir, cfg.git_timeout_s)
            added = True
            patch_file = tmp / "model.patch"
            patch_file.write_text(patch, encoding="utf-8")
            check = _git(["apply", "--check", "--whitespace=nowarn", str(patch_file)], worktree,
                         cfg.git_timeout_s, check=False)
            if check.returncode != 0:
                return {"error": f"patch does not apply at {base[:12]}: {check.stderr.strip()[-OUTPUT_TAIL_CHARS:]}"}
            _git(["apply", "--whitespace=nowarn", str(patch_file)], worktree, cfg.git_timeout_s)
            # as the SWE-bench harness: the test files are reset to base_commit before the test patch
            test_files = patch_files(task.extra["test_patch"])
            for path in test_files:
                if _git(["cat-file", "-e", f"{base}:{path}"], worktree, cfg.git_timeout_s, check=False).returncode == 0:
                    _git(["checkout", base, "--", path], worktree, cfg.git_timeout_s)
                elif (worktree / path).exists():
                    (worktree / path).unlink()
            test_patch_file = tmp / "test.patch"
            test_patch_file.write_text(task.extra["test_patch"], encoding="utf-8")
            applied = _git(["apply", "--whitespace=nowarn", str(test_patch_file)], worktree, cfg.git_timeout_s,
                           check=False)
            if applied.returncode != 0:
                return {"error": f"test_patch does not apply on top of the patch: {applied.stderr.strip()}"}
            home = tmp / "home"
            home.mkdir()
            with self._lock:
                self.test_runs += 1
            run = run_sandboxed(self.test_command(task, worktree), worktree, sandbox_env(worktree, home),
                                cfg.test_timeout_s, cfg.memory_limit_mb, cfg.isolate_network, tmp / "test.log")
        finally:
            if added:
                _git(["worktree", "remove", "--force", str(worktree)], repo_dir, cfg.git_timeout_s, check=False)
            shutil.rmtree(tmp, ignore_errors=True)
            _git(["worktree", "prune"], repo_dir, cfg.git_timeout_s, check=False)
        tail = run.output[-OUTPUT_TAIL_CHARS:]
        if run.timed_out:
            return {"error": f"tests timed out after {cfg.test_timeout_s:g}s", "seconds": round(run.seconds, 3)}
        status = parse_test_output(run.output, task.extra["repo"], task.extra.get("log_parser"))
        if not status:
            return {"error": f"no test results in the output (exit code {run.returncode})", "output_tail": tail,
                    "seconds": round(run.seconds, 3)}
        failed_any = any(s in ("FAILED", "ERROR") for s in status.values())
        if run.returncode != 0 and not failed_any:
            return {"error": f"test command exited {run.returncode} but reported no failure", "output_tail": tail,
                    "seconds": round(run.seconds, 3)}
        graded = grade(status, list(task.extra["FAIL_TO_PASS"]), list(task.extra["PASS_TO_PASS"]))
        return {**graded, "returncode": run.returncode, "seconds": round(run.seconds, 3)}

    def _evaluate_docker(self, task: Task, patch: str) -> dict[str, Any]:
        """The official harness (image per instance). Thin: needs rows with the harness columns."""
        from swebench.harness.constants import FAIL_TO_PASS, PASS_TO_PASS
        from swebench.harness.run_evaluation import run_instance
        from swebench.harness.utils import make_test_spec

        row = next((r for r in self._rows.values() if r["instance_id"] == task.extra["instance_id"]), None)
        needed = ("image", "eval_script", "log_parser", "eval_type")
        if row is None or any(k not in row for k in needed):
            raise ValueError(f"backend='docker' needs rows with the swebench>=5 harness columns {needed}; "
                             f"{task.extra['instance_id']} lacks them (use a dataset that ships them, "
                             "or backend='local')")
        spec = make_test_spec(row)
        pred = {"instance_id": row["instance_id"], "model_patch": patch, "model_name_or_path": "veritas"}
        out = run_instance(spec, pred, self._docker, self.config.docker_run_id, timeout=int(self.config.test_timeout_s))
        if out is None:
            return {"error": "swebench harness: the patch did not apply, or the tests errored or timed out "
                             f"(logs under logs/run_evaluation/{self.config.docker_run_id})"}
        report = out[1][row["instance_id"]]
        status = report.get("tests_status")
        if not report.get("patch_successfully_applied") or status is None:
            return {"error": "swebench harness: no test results (patch not applied or log unparseable)"}
        return {"f2p_passed": status[FAIL_TO_PASS]["success"], "f2p_failed": status[FAIL_TO_PASS]["failure"],
                "p2p_broken": status[PASS_TO_PASS]["failure"]}


def _docker_client():
    try:
        import docker
    except ImportError as err:
        raise ImportError("backend='docker' needs the docker SDK: pip install 'veritas-rl[swe]'") from err
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as err:  # the SDK raises DockerException, requests' and urllib3's errors alike
        raise ValueError(f"backend='docker' needs a running Docker engine ({type(err).__name__}: {err}); "
                         "start Docker, or choose backend='local'") from err
    return client


register_env("swe-synth", SweEnv, SweConfig, aliases=("swe_synth", "swesynth", "swebench"))


# -- pre-download ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m veritas_rl.envs.swe",
        description="Tools of the swe-synth env. `download` writes SWE-bench rows as task_{id}.json files "
        "into a cache dir, for machines without the Hugging Face hub.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("download", help="save dataset rows into --cache-dir", description="Save rows "
                       "[start, stop) of a SWE-bench dataset split as task_{id}.json files.")
    p.add_argument("--dataset", default=DEFAULT_DATASET, help=f"HF dataset id (default {DEFAULT_DATASET})")
    p.add_argument("--split", default="test", help="split (default test)")
    p.add_argument("--cache-dir", required=True, help="output directory")
    p.add_argument("--start", type=int, default=0, help="first row index (default 0)")
    p.add_argument("--stop", type=int, default=None, help="one past the last row index (default: all rows)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        rows, size = load_hub_rows(args.dataset, args.split, None)
    except OSError as err:  # offline, unknown dataset: say so in one line
        log.error("cannot load %s[%s] from the Hugging Face hub: %s", args.dataset, args.split, err)
        return 1
    stop = size if args.stop is None else min(args.stop, size)
    out = Path(args.cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    for task_id in tqdm(range(args.start, stop), desc="rows", unit="row"):
        cache_path(out, task_id).write_text(json.dumps(rows[task_id], default=_json_default), encoding="utf-8")
    log.info("wrote %d rows of %s[%s] to %s", max(0, stop - args.start), args.dataset, args.split, out)
    return 0


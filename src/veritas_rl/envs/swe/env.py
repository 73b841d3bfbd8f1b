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
PASS_TO_PASS test breaks. An XFAIL or SKIPPED status counts (swebench's leniency) only where the gold
patch's run in the same sandbox has it too: the patch's code can call ``pytest.xfail()`` itself.

**Backends.** ``local`` (:mod:`~veritas_rl.envs.swe.local`) checks the base commit out in a
throw-away ``git clone --shared`` of ``repos_dir/<owner>__<name>`` (the original is only read),
refuses patches that touch test infrastructure or the task's tests (kind ``illegal``), applies the
patch and the test patch and runs the tests in the sandbox of :mod:`~veritas_rl.envs.swe.sandbox`
(``sandbox="bwrap"``: namespaces, read-only root, private ``/tmp``, unprivileged uid, cgroup limits);
results come from pytest's junit report read through a FIFO, cross-checked with the exit code.
``docker`` hands the instance to the official ``swebench`` harness (needs a Docker engine and a
dataset that ships ``image``/``eval_script``/``log_parser``/``eval_type`` columns). Results are
cached by ``(instance_id, sha256(patch))`` in memory and optionally on disk.

Pre-download rows for offline use::

    python -m veritas_rl.envs.swe download --cache-dir data/swe_lite --start 0 --stop 300
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veritas_rl.envs.base import Env, Score, Task, check_choice, register_env
from veritas_rl.envs.swe.docker import docker_client, evaluate_docker
from veritas_rl.envs.swe.grading import (
    eval_script_test_command,
    hold_to_baseline,
    needs_baseline,
    reward_from,
    test_command,
)
from veritas_rl.envs.swe.local import evaluate_local
from veritas_rl.envs.swe.patches import diff_answer, patch_files
from veritas_rl.envs.swe.rows import DEFAULT_DATASET, SweDataError, _json_list, load_rows
from veritas_rl.envs.swe.sandbox import SANDBOXES, _git, bwrap_mode

BACKENDS = ("local", "docker")
#: the version of the cached result dicts (bumped when what a result holds or means changes: v2 has
#: the ``statuses`` of the graded tests)
RESULT_VERSION = "v2"
REWARD_MODES = ("binary", "partial")

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
    sandbox: str = "bwrap"  # "bwrap" (namespaces, read-only root, unprivileged uid) | "none" (weaker, asked for)
    memory_limit_mb: int = 8192  # the whole test run (cgroup), else per process (RLIMIT_AS); 0 = no limit
    max_processes: int = 1024  # processes of the whole test run (cgroup pids.max, else RLIMIT_NPROC); 0 = no limit
    isolate_network: bool = True  # tests get an empty network namespace
    test_cmd: str | None = None  # override: shell command, {tests} and {python} are substituted
    include_code_context: bool = True  # add the files the gold patch touches (at base_commit) to the prompt
    code_context_chars: int = 20_000  # character budget of that context
    work_dir: str | None = None  # where temporary worktrees go (default: the system temp dir)
    result_cache_dir: str | None = None  # also keep test results on disk, keyed by instance and patch hash
    docker_run_id: str = "veritas"  # docker backend: run id of the swebench harness (log dir name)

    def __post_init__(self):
        check_choice("backend", self.backend, BACKENDS)
        check_choice("reward_mode", self.reward_mode, REWARD_MODES)
        check_choice("sandbox", self.sandbox, SANDBOXES)
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
        for key in ("memory_limit_mb", "max_processes"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}={getattr(self, key)!r}: expected >= 0 (0 = no limit)")
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
            self._docker = docker_client()
        elif config.repos_dir:
            self._check_sandbox()

    def __getstate__(self) -> dict[str, Any]:  # picklable for Ray: no lock, no docker client
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_docker", "_pending")}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._pending = {}
        if self.config.backend == "docker":
            self._docker = docker_client()

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
        patch, why, kind = diff_answer(answer)
        if patch is None:
            return Score.zero(why, kind=kind)
        result = self.evaluate(task, patch)
        fail_to_pass, pass_to_pass = list(task.extra["FAIL_TO_PASS"]), list(task.extra["PASS_TO_PASS"])
        if needs_baseline(result):
            # an xfail or a skip counts only where the gold patch has it too (the patch's code can call
            # pytest.xfail() / pytest.skip() itself); the gold run is cached like any other patch
            gold = task.extra.get("gold_patch")
            baseline = self.evaluate(task, gold if gold.endswith("\n") else gold + "\n") if gold else None
            result = hold_to_baseline(result, baseline, fail_to_pass, pass_to_pass)
        return reward_from(result, fail_to_pass, self.config.reward_mode)

    def evaluate(self, task: Task, patch: str) -> dict[str, Any]:
        """Test results of ``patch`` for ``task``, cached by instance and patch hash. Concurrent calls
        with the same patch (a GRPO group often repeats one) wait for the first instead of re-running."""
        # the grading version is part of the key: results cached before a grading change are not reused
        key = (str(task.extra["instance_id"]), hashlib.sha256(f"{RESULT_VERSION}\0{patch}".encode()).hexdigest())
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

    def test_command(self, task: Task, worktree: Path | None = None) -> list[str]:
        """The test command of ``task`` (runs in the checkout; ``worktree`` is not needed)."""
        return test_command(self.config, task)

    def _evaluate_local(self, task: Task, patch: str) -> dict[str, Any]:
        repo_dir = self.repo_dir(task.extra["repo"])
        if repo_dir is None:
            raise ValueError("backend='local' needs repos_dir (a directory with one clone per repo, "
                             f"e.g. git clone https://github.com/{task.extra['repo']} <repos_dir>/"
                             f"{task.extra['repo'].replace('/', '__')})")
        if not (repo_dir / ".git").exists():
            raise ValueError(f"no clone of {task.extra['repo']} at {repo_dir}: "
                             f"git clone https://github.com/{task.extra['repo']} {repo_dir}")
        self._check_sandbox()
        return evaluate_local(task, patch, self.config, repo_dir, self._count_run)

    def _count_run(self) -> None:
        with self._lock:
            self.test_runs += 1

    def _check_sandbox(self) -> None:
        """``sandbox='bwrap'`` where bwrap cannot run is a configuration error, never a silent fallback."""
        if self.config.sandbox == "bwrap":
            mode = bwrap_mode()
            if isinstance(mode, str):
                raise ValueError(f"sandbox='bwrap': {mode}")

    def _evaluate_docker(self, task: Task, patch: str) -> dict[str, Any]:
        return evaluate_docker(task, patch, self._rows.values(), self._docker, self.config.docker_run_id,
                               self.config.test_timeout_s)


register_env("swe-synth", SweEnv, SweConfig, aliases=("swe_synth", "swesynth", "swebench"))

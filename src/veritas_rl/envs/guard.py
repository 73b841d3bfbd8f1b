"""The score guard: a hard wall-clock bound on every score, enforced from outside the scoring thread.

A stuck C-level call (big-int arithmetic such as ``10**(10**8)``, a sympy simplification, a catastrophic
regex) holds the GIL, so nothing in the calling process can interrupt it, and math-verify's own
timeout is signal based (main thread only: off in verl's reward thread pool). The guard therefore
scores in a separate **worker process** and kills it when a score overruns its budget::

    guard = get_guard()                                   # one per process, settings from the environment
    score = guard.score("lgc-v2", '{"task_types": ["sudoku"]}', task_json, completion)
    scores = guard.score_many([Request(env, config, task, completion), ...])   # one message per batch

An overrun scores ``Score.zero("timeout after 5s", kind="timeout")``; the worker is SIGKILLed, restarted,
and the rest of the batch goes on. Both backends (verl's ``compute_score``, TRL's ``EnvReward``) score
through this module; with ``VERITAS_SCORE_ISOLATION=inline`` the same code runs in the calling thread.

**Settings** (environment, read when the process's guard is first used; see docs/training.md):

- ``VERITAS_SCORE_ISOLATION``: ``process`` (default) or ``inline`` (no worker, no bound);
- ``VERITAS_SCORE_TIMEOUT_S``: the budget of every guarded score (default 5 s; ``ENV_TIMEOUT_S`` below);
- ``VERITAS_SCORE_WORKERS``: worker processes per calling process (default 1).

``swe-synth`` is never isolated: it spends its time in test suites that run in their own process
group under the env's ``test_timeout_s``/``git_timeout_s`` (the GIL is free while it waits), and a
SIGKILLed worker would orphan that process group, its git worktree and any docker container.

**Start method: a fresh interpreter** (``subprocess`` fork+exec of ``sys.executable``, the isolation of
multiprocessing's ``spawn``). Scoring is called from inside Ray actors, vLLM and torch processes full
of threads, CUDA contexts and held locks; ``fork`` would copy all of that into the worker (a lock held
by another thread stays held forever). multiprocessing's ``spawn`` and ``forkserver`` are fork-safe
too, but every worker they start re-imports the caller's ``__main__`` (an unguarded script re-runs its
top-level code in each worker, and recursed when tried; in a Ray actor it re-imports Ray's
``default_worker.py``), and they refuse to start from a daemonic process. The worker needs nothing
from ``__main__``: it gets the caller's ``sys.path``, imports the envs and receives each env's class
and built config (pickled by reference: an env registered outside ``veritas_rl.envs`` must live in
an importable module). A (re)start costs one interpreter plus the env imports (~0.5 s).

**No leaks.** Workers exit on EOF of their socket, are closed by ``atexit`` and a finalizer, and ask
the kernel for SIGKILL when the caller's thread that started them dies (``PR_SET_PDEATHSIG``), so a
SIGKILLed caller leaves nothing behind, a stuck worker included.

**Throughput.** One message per batch (many threads' requests are coalesced by the dispatcher thread
while the worker is busy), tasks travel as their JSON strings or ids, each env config crosses once per
worker lifetime, and the worker caches envs and parsed tasks. The worker writes the index and start
time of the score in flight to shared memory, so the caller times out the right item without a
message per score.

Why this module is long: it is one mechanism whose parts only make sense together — the request
checks both backends share (run wherever the score runs, so the worker and ``inline`` raise the same
``ValueError``), the worker loop, and the dispatcher that coalesces, times out, kills and restarts.
"""

from __future__ import annotations

import atexit
import ctypes
import dataclasses
import json
import logging
import math
import mmap
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.connection import Connection
from typing import Any, Mapping, NamedTuple, Sequence

from veritas_rl.envs.base import Env, EnvSpec, Score, Task, build_config, make_cached, register_env, resolve_name, spec
from veritas_rl.jsonio import parse_json_object

log = logging.getLogger(__name__)

ISOLATION_VAR = "VERITAS_SCORE_ISOLATION"
TIMEOUT_VAR = "VERITAS_SCORE_TIMEOUT_S"
WORKERS_VAR = "VERITAS_SCORE_WORKERS"
ISOLATIONS = ("process", "inline")
DEFAULT_TIMEOUT_S = 5.0
#: per-env budgets overriding the default; ``None`` = not isolated (scored inline, bounded by the env itself)
ENV_TIMEOUT_S: dict[str, float | None] = {"swe-synth": None}
#: most scores sent in one message when requests from several callers are coalesced
MAX_BATCH = 4096
#: the worker sends the results it has after this long, so a kill loses little finished work
_FLUSH_S = 0.05
_TASK_KEYS = ("env", "task_id", "prompt", "ground_truth")


@dataclass(frozen=True)
class GuardSettings:
    """How scores are isolated: ``isolation`` (``process`` | ``inline``), ``timeout_s`` (``None``: per env), ``workers``."""

    isolation: str = "process"
    timeout_s: float | None = None
    workers: int = 1

    def __post_init__(self):
        if self.isolation not in ISOLATIONS:
            raise ValueError(f"{ISOLATION_VAR}={self.isolation!r} is not valid; choose from: {', '.join(ISOLATIONS)}")
        if self.timeout_s is not None and not (isinstance(self.timeout_s, (int, float)) and math.isfinite(self.timeout_s)
                                               and self.timeout_s > 0):
            raise ValueError(f"{TIMEOUT_VAR}={self.timeout_s!r}: expected a number of seconds > 0")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"{WORKERS_VAR}={self.workers!r}: expected an integer >= 1")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "GuardSettings":
        environ = os.environ if environ is None else environ
        isolation = environ.get(ISOLATION_VAR, "").strip().lower() or "process"
        timeout = environ.get(TIMEOUT_VAR, "").strip()
        workers = environ.get(WORKERS_VAR, "").strip()
        try:
            timeout_s = float(timeout) if timeout else None
        except ValueError:
            raise ValueError(f"{TIMEOUT_VAR}={timeout!r}: expected a number of seconds > 0") from None
        try:
            n = int(workers) if workers else 1
        except ValueError:
            raise ValueError(f"{WORKERS_VAR}={workers!r}: expected an integer >= 1") from None
        return cls(isolation=isolation, timeout_s=timeout_s, workers=n)

    def budget(self, env_name: str) -> float | None:
        """Seconds one score of ``env_name`` may take in the worker; ``None`` = scored inline, unbounded here."""
        if self.isolation == "inline" or (env_name in ENV_TIMEOUT_S and ENV_TIMEOUT_S[env_name] is None):
            return None
        if self.timeout_s is not None:
            return float(self.timeout_s)
        return float(ENV_TIMEOUT_S.get(env_name) or DEFAULT_TIMEOUT_S)


class GroundTruth(NamedTuple):
    """A task known only by its ground truth (static question/answer parquet): scored against it."""

    ground_truth: Any
    extra: Mapping[str, Any]


class Request(NamedTuple):
    """One score: ``env`` (name or alias), ``config`` (mapping or its JSON), ``task``, ``completion``.

    ``task`` is a :class:`Task`, its ``to_dict()`` (or that as a JSON string, what the datasets carry),
    an ``int`` task id (rebuilt by the env) or a :class:`GroundTruth`.
    """

    env: str
    config: Any
    task: Any
    completion: Any


# -- wiring checks (our data, not model output: these raise ValueError) ------------------------


def config_json(raw: Any, where: str = "env_config") -> str:
    """The canonical JSON of an env config given as a mapping, its JSON, or ``None``/``""`` (= ``{}``)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return "{}"
    if isinstance(raw, str):
        return _config_json_of_str(raw, where)
    if isinstance(raw, Mapping):
        try:
            return json.dumps(dict(raw), sort_keys=True, default=_jsonable)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: not JSON-serialisable ({e}): {raw!r:.200}") from None
    raise ValueError(f"{where} must be a mapping or its JSON string, got {type(raw).__name__}: {raw!r:.200}")


@lru_cache(maxsize=1024)
def _config_json_of_str(raw: str, where: str) -> str:
    return json.dumps(parse_json_object(where, raw), sort_keys=True)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars from parquet
        return value.tolist()
    try:  # OmegaConf containers, tuples, sets
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf comes with verl
        pass
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def task_id_of(raw: Any, where: str = "task_id") -> int:
    """An integer task id from an int, a numpy integer or a decimal string; anything else is a ValueError."""
    if isinstance(raw, bool):
        raise ValueError(f"{where} must be an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw)
    if hasattr(raw, "dtype") and getattr(raw.dtype, "kind", "") in "iu" and getattr(raw, "ndim", 1) == 0:
        return int(raw)
    raise ValueError(f"{where} must be an integer, got {type(raw).__name__}: {raw!r:.80}")


def ground_truth_text(raw: Any, where: str = "ground_truth") -> str:
    """The gold answer as text: a string as is, a finite number (a numeric parquet column, a numpy scalar) as
    its ``str``; anything else is a ``ValueError`` naming ``where``. Scored as text, a missing gold (``None``,
    or NaN, pandas' missing value) would pay the answer ``None`` / ``nan``, and a list its ``repr``."""
    if isinstance(raw, str):
        return raw
    if getattr(raw, "ndim", None) == 0 and hasattr(raw, "item"):  # numpy scalars
        raw = raw.item()
    if isinstance(raw, int) or (isinstance(raw, float) and math.isfinite(raw)):  # bool included
        return str(raw)
    why = "missing" if raw is None or (isinstance(raw, float) and math.isnan(raw)) else "not an answer"
    raise ValueError(f"{where} is {why}: expected the gold answer as a string (or a number), got "
                     f"{type(raw).__name__}: {raw!r:.120}")


def task_from_mapping(data: Mapping[str, Any]) -> Task:
    """:meth:`Task.from_dict` with a ``ValueError`` naming the field for a malformed serialised task."""
    missing = [k for k in _TASK_KEYS if k not in data]
    if missing:
        raise ValueError(f"serialised task is missing key(s) {', '.join(map(repr, missing))} "
                         f"(has: {', '.join(map(repr, sorted(map(str, data)))) or 'nothing'})")
    env, prompt, extra = data["env"], data["prompt"], data.get("extra")
    if not isinstance(env, str):
        raise ValueError(f"serialised task 'env' must be a string, got {env!r:.80}")
    task_id = task_id_of(data["task_id"], "serialised task 'task_id'")
    if isinstance(prompt, (str, bytes, Mapping)) or not hasattr(prompt, "__iter__") or \
            not all(isinstance(m, Mapping) for m in prompt):
        raise ValueError(f"serialised task 'prompt' must be a list of chat messages (mappings), got {prompt!r:.120}")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"serialised task 'extra' must be a mapping, got {type(extra).__name__}")
    return Task(env=env, task_id=task_id, prompt=[dict(m) for m in prompt],
                ground_truth=ground_truth_text(data["ground_truth"], "serialised task 'ground_truth'"),
                extra=dict(extra or {}))


@lru_cache(maxsize=4096)
def _task_from_json(raw: str) -> Task:
    # GRPO scores every task rollout.n times: parse each serialised task once
    return task_from_mapping(parse_json_object("serialised task", raw))


def materialize_task(env: Env, task: Any) -> Task:
    """The :class:`Task` a request names (see :class:`Request`); a task of another env is a ValueError."""
    if isinstance(task, GroundTruth):
        # a numeric parquet column becomes text; a missing gold (None, NaN) raises
        gt = ground_truth_text(task.ground_truth, "ground_truth (verl: reward_model.ground_truth)")
        return Task(env=env.name, task_id=-1, prompt=[], ground_truth=gt, extra=dict(task.extra or {}))
    if isinstance(task, int) and not isinstance(task, bool):
        try:
            return env.task(task)
        except (IndexError, KeyError, ValueError, OverflowError) as e:
            raise ValueError(f"task_id={task} is not a task of env {env.name!r}: {type(e).__name__}: {e}") from None
    if isinstance(task, Task):
        result = task
        if not isinstance(result.ground_truth, str):
            gt = ground_truth_text(result.ground_truth, "Task.ground_truth")
            result = dataclasses.replace(result, ground_truth=gt)
    elif isinstance(task, str):
        result = _task_from_json(task)
    elif isinstance(task, Mapping):
        result = task_from_mapping(task)
    else:
        raise ValueError(f"task must be a Task, its dict or JSON, a task id or GroundTruth; got "
                         f"{type(task).__name__}: {task!r:.80}")
    if result.env != env.name:
        try:
            same = resolve_name(result.env) == env.name
        except ValueError:
            same = False
        if not same:
            raise ValueError(f"the serialised task belongs to env {result.env!r}, but the request routes it to env "
                             f"{env.name!r} (extra_info['env'] / the `env` column); they must agree")
    return result


def score_one(env: Env, task: Any, completion: Any) -> Score:
    """The one scoring path: rebuild the task and call ``env.score`` (run by the worker and by ``inline``)."""
    return env.score(materialize_task(env, task), completion)


# -- the worker process ------------------------------------------------------------------------


class _RemoteError:
    """An exception raised while scoring in the worker (a bug or a wiring error): re-raised by the caller."""

    def __init__(self, exc: BaseException):
        self.text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            pickle.dumps(exc)
            self.exc = exc
        except Exception:  # an unpicklable exception still reaches the caller, by type name and message
            self.exc = RuntimeError(f"{type(exc).__name__}: {exc}")

    def raise_(self):
        exc = self.exc
        exc.__cause__ = _RemoteTraceback(self.text)
        raise exc


class _RemoteTraceback(Exception):
    def __str__(self):
        return "\n(in the scoring worker)\n" + self.args[0]


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this worker when the caller's thread that started it exits; best effort elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the caller died before prctl took effect
        os._exit(0)


def _worker_main(conn, progress) -> None:
    """Loop: receive ``(new env defs, items)``, score each item, send ``(offset, results)`` chunks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle; it closes us
    envs: list[Any] = []
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        defs, items = message
        for env_spec, config in defs:  # trusted code, outside any budget (some envs load data)
            try:
                if env_spec.env_cls.name != env_spec.name:  # registered by the caller outside veritas_rl.envs
                    register_env(env_spec.name, env_spec.env_cls, env_spec.config_cls, aliases=env_spec.aliases)
                env = env_spec.env_cls(config)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller for each score of this env
                envs.append(_RemoteError(e))
                continue
            _warm_up(env)
            envs.append(env)
        out: list[Any] = []
        offset = 0
        flushed = time.monotonic()
        for i, (key, task, completion) in enumerate(items):
            now = time.monotonic()
            progress[1] = now  # start time first, then the index the caller keys its deadline on
            progress[0] = i
            env = envs[key]
            if isinstance(env, _RemoteError):
                out.append(env)
            else:
                try:
                    s = score_one(env, task, completion)
                    out.append((s.value, s.info))
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller
                    out.append(_RemoteError(e))
            if now - flushed > _FLUSH_S and i + 1 < len(items):
                conn.send((offset, out))
                offset, out, flushed = i + 1, [], now
        progress[0] = -1
        conn.send((offset, out))


#: tasks generated and oracle-scored when a worker builds an env, outside any budget (interleaved task types)
WARMUP_TASKS = 16


def _warm_up(env: Env) -> None:
    """Generate and score the oracle of the first tasks so that lazy imports and per-config caches are
    paid here, not inside a score's budget (lgc-v2's cryptarithm imports reasoning-gym on its first
    score: ~2 s, more on a busy machine, and a restart after a timeout would pay it again)."""
    try:
        for i in range(min(WARMUP_TASKS, env.num_tasks)):
            task = env.task(env.task_id_at(i))
            env.score(task, env.oracle(task) or "0")  # no oracle: still reach the scorer
    except Exception:  # noqa: BLE001 - only an optimisation: a real score will surface the bug
        log.warning("score guard: warming up env %r failed", env.name, exc_info=True)


#: the worker: a fresh interpreter given the caller's ``sys.path``, then :func:`_worker_entry`
_WORKER_CODE = ("import sys, json; sys.path[:0] = json.loads(sys.argv[1]); "
                "from veritas_rl.envs.guard import _worker_entry; _worker_entry()")


def _worker_entry() -> None:
    """``python -c _WORKER_CODE PATH_JSON SOCKET_FD PROGRESS_FD PARENT_PID``: serve until EOF."""
    sock_fd, progress_fd, parent = (int(a) for a in sys.argv[2:5])
    _die_with_parent(parent)
    import veritas_rl.envs  # noqa: F401 - register the built-in envs before the first message

    progress_map = mmap.mmap(progress_fd, 16)
    _worker_main(Connection(sock_fd), (ctypes.c_double * 2).from_buffer(progress_map))


def _progress_file() -> int:
    """A 16-byte shared file (memfd where the OS has it) the worker maps for its progress."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("veritas-score-progress")
    else:  # pragma: no cover - not Linux
        fd = os.dup(tempfile.TemporaryFile().fileno())
    os.ftruncate(fd, 16)
    return fd


_SPAWNER: tuple[int, queue.SimpleQueue] | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawn(argv: list[str], fds: tuple[int, ...]) -> subprocess.Popen:
    """``Popen`` from one long-lived thread of this process.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that started the worker exits, and a worker may be
    (re)started from any caller's thread (a verl executor thread, a short-lived one in a test); the
    spawner thread lives as long as the process, so the worker dies with the process and only then.
    """
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None or _SPAWNER[0] != os.getpid():  # none yet, or a forked child's stale copy
            requests: queue.SimpleQueue = queue.SimpleQueue()
            threading.Thread(target=_spawner_loop, args=(requests,), name="veritas-score-spawner", daemon=True).start()
            _SPAWNER = (os.getpid(), requests)
        requests = _SPAWNER[1]
    box: list[Any] = []
    done = threading.Event()
    requests.put((argv, fds, box, done))
    done.wait()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _spawner_loop(requests: queue.SimpleQueue) -> None:
    while True:
        argv, fds, box, done = requests.get()
        try:
            box.append(subprocess.Popen(argv, pass_fds=fds, stdin=subprocess.DEVNULL, close_fds=True))
        except BaseException as e:  # noqa: BLE001 - raised in the thread that asked
            box.append(e)
        done.set()


class _Route(NamedTuple):
    key: int  # index into the env definitions the workers receive
    name: str
    budget: float | None
    config: Any  # the built config dataclass (validated here, in the caller)
    config_dict: dict


class _Job:
    __slots__ = ("items", "budgets", "results", "done")

    def __init__(self, items, budgets):
        self.items, self.budgets, self.results, self.done = items, budgets, None, threading.Event()


class _Shared:
    """State the dispatcher threads share (kept apart from :class:`ScoreGuard` so it can be collected)."""

    def __init__(self, settings: GuardSettings):
        self.settings = settings
        self.defs: list[tuple[EnvSpec, Any]] = []  # (registry entry, built config) per route, append-only
        self.lock = threading.Lock()
        self.stats = {"scored": 0, "batches": 0, "timeouts": 0, "crashes": 0, "starts": 0}
        self.closed = False

    def count(self, key: str, n: int) -> None:
        with self.lock:
            self.stats[key] += n


class _Slot:
    """One worker process and the dispatcher thread that feeds it batches and enforces the budgets."""

    def __init__(self, shared: _Shared, index: int):
        self.shared = shared
        self.proc = self.conn = self.progress = self.progress_map = None
        self.known = 0  # env definitions the current worker process has received
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()  # held by whichever thread talks to the worker
        self.pending = 0  # items queued or in flight (under shared.lock): callers pick the least loaded slot
        self.failed_starts = 0
        self.thread = threading.Thread(target=self._loop, name=f"veritas-score-guard-{index}", daemon=True)

    # -- process lifetime ---------------------------------------------------------------------
    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        progress_fd = _progress_file()
        paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
        try:
            proc = _spawn([sys.executable, "-c", _WORKER_CODE, json.dumps(paths), str(theirs.fileno()),
                           str(progress_fd), str(os.getpid())], (theirs.fileno(), progress_fd))
            self.progress_map = mmap.mmap(progress_fd, 16)
        finally:
            theirs.close()
            os.close(progress_fd)
        self.progress = (ctypes.c_double * 2).from_buffer(self.progress_map)
        self.progress[0] = -1
        self.proc, self.conn, self.known = proc, Connection(ours.detach()), 0
        self.shared.count("starts", 1)

    def _stop(self, kill: bool) -> None:
        proc, conn = self.proc, self.conn
        self.proc = self.conn = self.progress = None
        if proc is None:
            return
        if not kill:
            try:
                conn.send(None)
                proc.wait(2.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait(5.0)
        conn.close()
        self.progress_map.close()

    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    # -- dispatch -----------------------------------------------------------------------------
    def submit(self, job: _Job, wait: bool) -> None:
        """Queue ``job``; with ``wait`` and an idle worker, run it in this thread (no hand-off to the dispatcher)."""
        with self.shared.lock:
            self.pending += len(job.items)
        if wait and self.queue.empty() and self.lock.acquire(blocking=False):
            try:
                self._serve(job)
            finally:
                self.lock.release()
        else:
            self.queue.put(job)

    def _loop(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                break
            with self.lock:
                self._serve(job)
        self._stop(kill=False)

    def _serve(self, job: _Job) -> None:
        jobs, n = [job], len(job.items)
        while n < MAX_BATCH:  # coalesce what other callers queued meanwhile into one message
            try:
                more = self.queue.get_nowait()
            except queue.Empty:
                break
            if more is None:  # the dispatcher's stop signal: leave it for the dispatcher
                self.queue.put(None)
                break
            jobs.append(more)
            n += len(more.items)
        items = [it for j in jobs for it in j.items]
        budgets = [b for j in jobs for b in j.budgets]
        try:
            results = self._run(items, budgets)
        except BaseException as e:  # noqa: BLE001 - our failure: every waiting caller raises it
            results = [_RemoteError(e)] * len(items)
        with self.shared.lock:
            self.pending -= n
        start = 0
        for j in jobs:
            j.results = results[start:start + len(j.items)]
            start += len(j.items)
            j.done.set()

    def _run(self, items: list, budgets: list) -> list:
        shared = self.shared
        results: list[Any] = [None] * len(items)
        todo = list(range(len(items)))
        while todo:
            if self.proc is None:
                self._start()
            with shared.lock:
                defs = shared.defs[self.known:]
            got, stuck, crashed = 0, None, False
            try:
                self.conn.send((defs, [items[i] for i in todo]))
            except OSError:  # the worker is gone (killed from outside): restart below
                crashed = True
            self.known += len(defs)
            shared.count("batches", 1)
            while got < len(todo) and not crashed:
                k = int(self.progress[0])
                if k >= 0:
                    wait = budgets[todo[k]] - (time.monotonic() - self.progress[1])
                    if wait <= 0 and int(self.progress[0]) == k:
                        stuck = k
                        break
                    wait = max(wait, 0.001)
                else:
                    wait = 0.5  # between messages or building envs (outside any budget)
                try:
                    if self.conn.poll(wait):
                        offset, chunk = self.conn.recv()
                        for j, r in enumerate(chunk):
                            results[todo[offset + j]] = r
                        got += len(chunk)
                        self.failed_starts = 0
                    elif self.proc.poll() is not None:
                        crashed = True
                        break
                except (EOFError, OSError):
                    crashed = True
                    break
            if got == len(todo):
                break
            if stuck is not None:
                index = todo[stuck]
                results[index] = Score.zero(f"timeout after {budgets[index]:g}s", kind="timeout")
                shared.count("timeouts", 1)
                completion = items[index][2]
                log.warning("score guard: a score ran past its %gs budget (completion of %s chars: %.120r); "
                            "killing and restarting the scoring worker", budgets[index],
                            len(completion) if isinstance(completion, str) else "?", completion)
                self._stop(kill=True)
            else:
                k = int(self.progress[0])
                try:
                    code = self.proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    code = None
                self._stop(kill=True)
                if k < 0:
                    self.failed_starts += 1
                    if self.failed_starts >= 3:
                        raise RuntimeError(f"the scoring worker died {self.failed_starts} times before scoring "
                                           f"anything (exit code {code}); run with {ISOLATION_VAR}=inline to see why")
                    continue
                index = todo[k]
                results[index] = Score.zero(f"the scorer crashed on this completion (worker exit code {code})",
                                            kind="error")
                shared.count("crashes", 1)
                log.warning("score guard: the scoring worker died (exit code %s) while scoring; restarting", code)
            todo = [i for i in todo if results[i] is None]
        shared.count("scored", len(items))
        return results


class ScoreGuard:
    """Scores requests with a hard wall-clock bound per score (see the module docstring).

    Thread-safe: any number of threads may call :meth:`score` / :meth:`score_many` at once; their
    requests are coalesced into batches for the worker(s). Not picklable: each process has its own
    (:func:`get_guard`).
    """

    def __init__(self, settings: GuardSettings | None = None):
        self.settings = settings or GuardSettings.from_environ()
        self._pid = os.getpid()
        self._shared = _Shared(self.settings)
        self._names: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._routes: dict[tuple, _Route] = {}
        self._envs: dict[int, Env] = {}
        self._env_lock = threading.Lock()
        self._slots: list[_Slot] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._shared, self._slots, self._pid)
        _GUARDS.add(self)

    # -- routing ------------------------------------------------------------------------------
    def route(self, env: Any, config: Any = None) -> _Route:
        """Resolve ``(env, config)`` once: validated config, budget and the key the workers know it by.

        An env whose config class reads ``ENVIRONMENT_VARIABLES`` (OpenSpiel's ``GAME_TYPES``) gets a new
        route when one of them changes, as with :func:`~veritas_rl.envs.base.make_cached`.
        """
        if not isinstance(env, str):
            raise ValueError(f"env must be a registered env name (a string), got {type(env).__name__}: {env!r:.80}")
        cfg_json = config_json(config)
        head = self._names.get(env)
        if head is None:
            name = resolve_name(env)
            head = self._names[env] = (name, tuple(getattr(spec(name).config_cls, "ENVIRONMENT_VARIABLES", ())))
        name, variables = head
        identity = (name, cfg_json, tuple(os.environ.get(v) for v in variables) if variables else ())
        route = self._routes.get(identity)
        if route is None:
            with self._shared.lock:
                route = self._routes.get(identity)
                if route is None:
                    values = json.loads(cfg_json)
                    config_obj = build_config(spec(name).config_cls, values, env_name=name)
                    route = _Route(len(self._shared.defs), name, self.settings.budget(name), config_obj, values)
                    self._shared.defs.append((spec(name), config_obj))
                    self._routes[identity] = route
        return route

    def env(self, route: _Route) -> Env:
        """This process's env instance for ``route`` (shared with datasets through ``make_cached``)."""
        env = self._envs.get(route.key)
        if env is None:
            with self._env_lock:  # verl's reward thread pool: build each env once
                env = self._envs[route.key] = make_cached(route.name, route.config_dict)
        return env

    # -- scoring ------------------------------------------------------------------------------
    def score(self, env: str, config: Any, task: Any, completion: Any) -> Score:
        """Score one completion (see :class:`Request` for the forms of ``task``)."""
        return self.score_many([Request(env, config, task, completion)])[0]

    def score_many(self, requests: Sequence[Request]) -> list[Score]:
        """Score a batch: one message to the worker(s); errors from our code re-raise here."""
        if self._shared.closed:
            raise RuntimeError("this ScoreGuard is closed")
        results: list[Any] = [None] * len(requests)
        sent_index, items, budgets = [], [], []
        memo: dict[tuple, _Route] = {}  # one lookup per distinct (env, config JSON) in the batch
        for i, (env, config, task, completion) in enumerate(requests):
            if isinstance(config, str) and isinstance(env, str):
                route = memo.get((env, config))
                if route is None:
                    route = memo[(env, config)] = self.route(env, config)
            else:
                route = self.route(env, config)
            if route.budget is None:  # inline: this thread, no bound
                results[i] = score_one(self.env(route), task, completion)
            else:
                sent_index.append(i)
                items.append((route.key, task, completion))
                budgets.append(route.budget)
        if items:
            for i, r in zip(sent_index, self._dispatch(items, budgets)):
                results[i] = r
        out = []
        for r in results:
            if isinstance(r, _RemoteError):
                r.raise_()
            out.append(r if isinstance(r, Score) else Score(r[0], r[1]))
        return out

    def _dispatch(self, items: list, budgets: list) -> list:
        self._ensure_slots()
        n, slots = len(items), self._slots
        per = max(64, -(-n // len(slots)))  # split big batches across the workers
        jobs = [_Job(items[s:s + per], budgets[s:s + per]) for s in range(0, n, per)]
        for k, job in enumerate(jobs):
            with self._shared.lock:
                slot = min(slots, key=lambda sl: sl.pending)
            slot.submit(job, wait=k == len(jobs) - 1)  # the last chunk may run in this thread
        results = []
        for job in jobs:
            job.done.wait()
            results.extend(job.results)
        return results

    def _ensure_slots(self) -> None:
        if self._slots:
            return
        with self._shared.lock:
            if not self._slots:
                for i in range(self.settings.workers):
                    slot = _Slot(self._shared, i)
                    slot.thread.start()
                    self._slots.append(slot)

    # -- lifetime -----------------------------------------------------------------------------
    def worker_pids(self) -> list[int]:
        """Pids of the live worker processes (for benchmarks and leak tests)."""
        return [p for p in (s.pid() for s in self._slots) if p is not None]

    @property
    def stats(self) -> dict[str, int]:
        """Counters: ``scored``, ``batches`` (messages), ``timeouts``, ``crashes``, ``starts`` (worker starts)."""
        return dict(self._shared.stats)

    def close(self) -> None:
        """Stop the workers and dispatcher threads (also at exit and when the guard is collected)."""
        self._finalizer()


def _shutdown(shared: _Shared, slots: list[_Slot], pid: int) -> None:
    if os.getpid() != pid or shared.closed:  # a forked child holds a copy: the workers are not its own
        return
    shared.closed = True
    for slot in slots:
        slot.queue.put(None)
    for slot in slots:
        slot.thread.join(10.0)
        if slot.thread.is_alive():  # stuck waiting on a worker: kill it from here
            slot._stop(kill=True)
        while True:  # requests queued behind the stop signal: their callers must not wait forever
            try:
                job = slot.queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.results = [_RemoteError(RuntimeError("the ScoreGuard was closed"))] * len(job.items)
                job.done.set()


_GUARDS: weakref.WeakSet = weakref.WeakSet()
_DEFAULT: ScoreGuard | None = None
_DEFAULT_LOCK = threading.Lock()


def get_guard() -> ScoreGuard:
    """This process's guard (settings from the environment at first use; a forked child gets its own)."""
    global _DEFAULT
    guard = _DEFAULT
    if guard is None or guard._pid != os.getpid() or guard._shared.closed:
        with _DEFAULT_LOCK:
            guard = _DEFAULT
            if guard is None or guard._pid != os.getpid() or guard._shared.closed:
                guard = _DEFAULT = ScoreGuard(GuardSettings.from_environ())
    return guard


def reset_guard() -> None:
    """Close this process's guard; the next :func:`get_guard` reads the settings again."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        guard, _DEFAULT = _DEFAULT, None
    if guard is not None and guard._pid == os.getpid():
        guard.close()


def _close_all() -> None:
    for guard in list(_GUARDS):
        guard.close()


atexit.register(_close_all)

"""The score guard: a stuck C-level scorer is cut at its budget from any thread; no process is left behind.

The test env ``guard-test`` (registered only while a test runs) scores by keyword: ``bigint`` runs
``10**(10**8)`` (minutes of big-int arithmetic holding the GIL), ``regex`` a catastrophic backtracking
match (holds the GIL too), ``crash`` kills its process, ``raise`` raises a KeyError (a bug in our code),
``sleep <s>`` sleeps; anything else is right when it equals the ground truth.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from veritas_rl.envs import Env, Score, Task, base, make
from veritas_rl.envs.guard import (
    DEFAULT_TIMEOUT_S,
    GroundTruth,
    GuardSettings,
    Request,
    ScoreGuard,
    config_json,
    task_id_of,
)

REPO = Path(__file__).resolve().parents[2]
NAME = "guard-test"


@dataclass(frozen=True)
class GuardTestConfig:
    answer: str = "42"
    first_score_s: float = 0.0  # the first score in a process sleeps this long (a lazy heavy import)


_IMPORTED = []


class GuardTestEnv(Env):
    """A scorer that can hang, crash or raise on purpose (tests only)."""

    @property
    def num_tasks(self) -> int:
        return 10

    def task_id_at(self, index: int) -> int:
        return index

    def task(self, task_id: int) -> Task:
        if not 0 <= task_id < 10:
            raise IndexError(f"task_id {task_id} out of range")
        return Task(NAME, task_id, [{"role": "user", "content": "say 42"}], self.config.answer)

    def _score(self, task: Task, answer: str) -> Score:
        if self.config.first_score_s and not _IMPORTED:
            time.sleep(self.config.first_score_s)
            _IMPORTED.append(True)
        answer = answer.strip()
        if answer == "bigint":
            10 ** (10**8)
        elif answer == "regex":
            re.match(r"(a+)+$", "a" * 64 + "b")
        elif answer == "crash":
            os._exit(3)
        elif answer == "raise":
            raise KeyError("a bug in the scorer")
        elif answer.startswith("sleep "):
            time.sleep(float(answer.split()[1]))
        return Score(1.0) if answer == task.ground_truth else Score.zero("not 42")


@pytest.fixture(scope="module")
def registered():
    base.register_env(NAME, GuardTestEnv, GuardTestConfig)
    yield
    base._REGISTRY.pop(NAME, None)
    base._ALIASES.pop(NAME, None)


@pytest.fixture(scope="module")
def guard(registered):
    g = ScoreGuard(GuardSettings(timeout_s=1.0))
    yield g
    g.close()


def _task(task_id: int = 0) -> str:
    return json.dumps(make_env().task(task_id).to_dict())


def make_env():
    return GuardTestEnv(GuardTestConfig())


def test_a_stuck_c_call_is_cut_at_the_budget_from_a_worker_thread(guard):
    assert guard.score(NAME, {}, _task(), "42").value == 1.0  # the worker is up
    starts = guard.stats["starts"]
    ticks = []

    def tick():  # the caller's GIL stays free while the worker is stuck
        end = time.monotonic() + 0.8
        while time.monotonic() < end:
            ticks.append(1)
            time.sleep(0.01)

    for stuck in ("bigint", "regex"):
        ticker = threading.Thread(target=tick)
        start = time.monotonic()
        with ThreadPoolExecutor(1) as pool:
            ticker.start()
            score = pool.submit(guard.score, NAME, {}, _task(), f"<think>x</think>{stuck}").result()
        elapsed = time.monotonic() - start
        ticker.join()
        assert score.value == 0.0 and score.kind == "timeout", score
        assert score.info["reason"] == "timeout after 1s"
        assert 1.0 <= elapsed < 3.0, elapsed
        assert len(ticks) > 30
        ticks.clear()
    # the worker was killed and restarted: the next score works
    assert guard.score(NAME, {}, _task(), "42").value == 1.0
    assert guard.stats["starts"] == starts + 2


def test_a_worker_started_from_a_short_lived_thread_outlives_that_thread(registered):
    """PR_SET_PDEATHSIG is per thread: workers are started from the guard's spawner thread, not the caller's."""
    g = ScoreGuard(GuardSettings(timeout_s=1.0))
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(g.score, NAME, {}, 0, "42").result().value == 1.0
    pids = g.worker_pids()
    time.sleep(0.3)  # the pool thread has exited
    assert g.score(NAME, {}, 0, "42").value == 1.0
    assert g.worker_pids() == pids and g.stats["starts"] == 1
    g.close()


def test_a_worker_killed_from_outside_is_restarted(registered):
    g = ScoreGuard(GuardSettings(timeout_s=1.0))
    assert g.score(NAME, {}, 0, "42").value == 1.0
    os.kill(g.worker_pids()[0], 9)
    time.sleep(0.2)
    assert [s.value for s in g.score_many([Request(NAME, {}, 0, "42")] * 3)] == [1.0] * 3
    assert g.stats["starts"] == 2
    g.close()


def test_lazy_imports_are_paid_when_the_worker_builds_the_env_not_in_a_budget(guard):
    """A first score that is slow once per process (lgc-v2's cryptarithm imports reasoning-gym, ~2 s)
    must not time out: the worker warms each env up outside any budget."""
    config = {"first_score_s": 1.5}
    timeouts = guard.stats["timeouts"]
    scores = guard.score_many([Request(NAME, config, i, "42") for i in range(3)])
    assert [s.kind for s in scores] == ["correct"] * 3
    assert guard.stats["timeouts"] == timeouts


def test_a_batch_goes_on_past_its_stuck_item(guard):
    texts = ["42", "41", "bigint", "42", "sleep 0.1", "42"]
    timeouts = guard.stats["timeouts"]
    scores = guard.score_many([Request(NAME, "{}", _task(i % 10), t) for i, t in enumerate(texts)])
    assert [s.kind for s in scores] == ["correct", "wrong", "timeout", "correct", "wrong", "correct"]
    assert guard.stats["timeouts"] == timeouts + 1


def test_many_threads_get_their_own_results_coalesced(guard):
    env = make("answer-tag")
    tasks = [env.task(env.task_id_at(i)) for i in range(40)]
    jobs = [(t, env.oracle(t) if i % 3 else "<answer>wrong</answer>") for i, t in enumerate(tasks)] * 5
    expected = [env.score(t, c).value for t, c in jobs]
    batches = guard.stats["batches"]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda job: guard.score("answer-tag", "{}", job[0].to_dict(), job[1]).value, jobs))
    assert got == expected and 0 < sum(got) < len(got)
    assert guard.stats["batches"] - batches < len(jobs)  # concurrent calls shared messages


def test_a_crashing_scorer_scores_error_and_the_worker_restarts(guard):
    scores = guard.score_many([Request(NAME, {}, _task(), t) for t in ("42", "crash", "42")])
    assert [s.kind for s in scores] == ["correct", "error", "correct"]
    assert "exit code 3" in scores[1].info["reason"]


def test_a_bug_in_the_scorer_raises_in_the_caller_with_the_worker_traceback(guard):
    with pytest.raises(KeyError, match="a bug in the scorer") as info:
        guard.score(NAME, {}, _task(), "raise")
    assert "in the scoring worker" in str(info.value.__cause__) and "_score" in str(info.value.__cause__)
    assert guard.score(NAME, {}, _task(), "42").value == 1.0  # the worker survived


@pytest.mark.parametrize(
    "task,match",
    [
        ("{not json", r"serialised task is not valid JSON"),
        ("[1, 2]", r"serialised task must be a JSON object"),
        ({"env": NAME, "task_id": 0}, r"missing key\(s\) 'prompt', 'ground_truth'"),
        ({"env": NAME, "task_id": "abc", "prompt": [], "ground_truth": "42"}, r"'task_id' must be an integer"),
        ({"env": NAME, "task_id": 0, "prompt": "hi", "ground_truth": "42"}, r"'prompt' must be a list of chat"),
        ({"env": "lgc-v2", "task_id": 0, "prompt": [], "ground_truth": "42"},
         r"belongs to env 'lgc-v2', but the request routes it to env 'guard-test'"),
        (99, r"task_id=99 is not a task of env 'guard-test': IndexError"),
        (["a"], r"task must be a Task"),
    ],
)
def test_wiring_errors_raise_value_error_through_the_worker(guard, task, match):
    with pytest.raises(ValueError, match=match):
        guard.score(NAME, {}, task, "42")


def test_config_and_task_id_checks():
    assert config_json(None) == config_json("") == "{}"
    assert config_json({"b": 1, "a": [1]}) == config_json('{"a": [1], "b": 1}') == '{"a": [1], "b": 1}'
    for bad, match in (("{oops", "not valid JSON"), ("[1]", "must be a JSON object"), (["x"], "mapping or its JSON")):
        with pytest.raises(ValueError, match=match):
            config_json(bad, "extra_info['env_config']")
    assert task_id_of("17") == 17 and task_id_of(-3) == -3
    for bad in ("abc", 1.5, True, None):
        with pytest.raises(ValueError, match="must be an integer"):
            task_id_of(bad)


def test_unknown_env_and_bad_config_raise_before_any_worker(registered):
    g = ScoreGuard(GuardSettings(timeout_s=1.0))
    with pytest.raises(ValueError, match=r"unknown env 'nope'; known: .*lgc-v2"):
        g.score("nope", {}, 0, "x")
    with pytest.raises(ValueError, match=r"unknown config key\(s\) 'colour'.*valid keys: answer"):
        g.score(NAME, {"colour": "red"}, 0, "x")
    assert g.worker_pids() == [] and g.stats["starts"] == 0
    g.close()


def test_ground_truth_only_and_task_objects(guard):
    env = make("answer-tag")
    task = env.task(env.task_id_at(3))
    assert guard.score("answer-tag", {}, GroundTruth(task.ground_truth, {}), env.oracle(task)).value == 1.0
    assert guard.score("answer-tag", None, task, env.oracle(task)).value == 1.0
    assert guard.score("answer_tag" if "answer_tag" in base._ALIASES else "answer-tag", "{}", task.task_id,
                       "<answer>nope</answer>").kind in ("wrong", "no_answer")


def test_settings_from_the_environment():
    assert GuardSettings.from_environ({}) == GuardSettings("process", None, 1)
    s = GuardSettings.from_environ({"VERITAS_SCORE_ISOLATION": "Inline", "VERITAS_SCORE_TIMEOUT_S": "2.5",
                                    "VERITAS_SCORE_WORKERS": "3"})
    assert s == GuardSettings("inline", 2.5, 3)
    assert GuardSettings().budget("lgc-v2") == DEFAULT_TIMEOUT_S == 5.0
    assert GuardSettings(timeout_s=2.5).budget("math") == 2.5
    assert GuardSettings(timeout_s=2.5).budget("swe-synth") is None  # bounded by its own subprocess timeouts
    assert GuardSettings("inline").budget("lgc-v2") is None
    for env, match in (({"VERITAS_SCORE_ISOLATION": "thread"}, r"VERITAS_SCORE_ISOLATION='thread'.*process, inline"),
                       ({"VERITAS_SCORE_TIMEOUT_S": "soon"}, r"VERITAS_SCORE_TIMEOUT_S='soon'"),
                       ({"VERITAS_SCORE_TIMEOUT_S": "-1"}, r"VERITAS_SCORE_TIMEOUT_S=-1.0"),
                       ({"VERITAS_SCORE_WORKERS": "0"}, r"VERITAS_SCORE_WORKERS=0")):
        with pytest.raises(ValueError, match=match):
            GuardSettings.from_environ(env)


def test_inline_isolation_starts_no_worker(registered):
    g = ScoreGuard(GuardSettings("inline"))
    assert [s.value for s in g.score_many([Request(NAME, {}, _task(), t) for t in ("42", "41")])] == [1.0, 0.0]
    assert g.worker_pids() == [] and g.stats["starts"] == 0
    g.close()


def test_two_workers_split_a_batch(registered):
    g = ScoreGuard(GuardSettings(timeout_s=2.0, workers=2))
    scores = g.score_many([Request(NAME, {}, _task(i % 10), "42" if i % 2 else "sleep 0.001") for i in range(400)])
    assert sum(s.value for s in scores) == 200
    assert len(g.worker_pids()) == 2
    pids = g.worker_pids()
    g.close()
    assert g.worker_pids() == [] and not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


CHILD = textwrap.dedent("""
    import os, signal, sys, threading, time
    sys.path[:0] = [{repo!r}, {src!r}]
    from tests.envs.test_guard import GuardTestEnv, GuardTestConfig, NAME
    from veritas_rl.envs import base
    from veritas_rl.envs.guard import get_guard
    base.register_env(NAME, GuardTestEnv, GuardTestConfig)
    guard = get_guard()
    assert guard.score(NAME, {{}}, 0, "42").value == 1.0
    print(" ".join(map(str, guard.worker_pids())), flush=True)
    if sys.argv[1] == "sigkill":  # die hard while the worker is stuck in C code
        threading.Thread(target=guard.score, args=(NAME, {{}}, 0, "bigint"), daemon=True).start()
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_no_worker_outlives_its_caller(how):
    code = CHILD.format(repo=str(REPO), src=str(REPO / "src"))
    env = {**os.environ, "VERITAS_SCORE_TIMEOUT_S": "60"}
    proc = subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == (0 if how == "exit" else -9), proc.stderr
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 1
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids), pids

"""Worked solutions from a teacher model behind an OpenAI-compatible ``/chat/completions`` endpoint.

A solution is kept only if the env's own scorer gives it 1.0. Requests run concurrently in a thread
pool, are retried with exponential back-off on connection errors, timeouts, HTTP 429 and 5xx, and
every finished task (accepted or rejected) is appended to a JSON-lines cache so that an interrupted
run resumes where it stopped. The client is the standard library's ``urllib`` (no extra dependency),
which talks to vLLM, SGLang, llama.cpp's server, OpenAI and the like.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

#: HTTP statuses worth retrying (rate limit, server-side trouble)
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class TeacherError(RuntimeError):
    """The endpoint did not give a completion (after retries, or with a non-retryable error)."""


@dataclass(frozen=True)
class TeacherConfig:
    base_url: str
    model: str
    api_key: str | None = None
    temperature: float = 0.7
    max_tokens: int = 4096
    timeout: float = 300.0
    retries: int = 3
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    attempts: int = 1  # completions asked per task until one scores 1.0
    concurrency: int = 8

    def __post_init__(self):
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url={self.base_url!r}; expected an http(s):// URL such as http://localhost:8000/v1")
        if not self.model:
            raise ValueError("--model is required with --teacher")
        for key, minimum in (("retries", 0), ("attempts", 1), ("concurrency", 1), ("max_tokens", 1)):
            if getattr(self, key) < minimum:
                raise ValueError(f"--{key.replace('_', '-')}={getattr(self, key)}; expected >= {minimum}")


class TeacherClient:
    """``complete(messages) -> str`` against ``{base_url}/chat/completions``."""

    def __init__(self, config: TeacherConfig):
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        request = urllib.request.Request(self.url, data=json.dumps(payload).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
            return json.loads(response.read().decode("utf-8"))

    def complete(self, messages: list[dict[str, str]]) -> str:
        payload = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        delay = self.config.backoff
        for attempt in range(self.config.retries + 1):
            try:
                body = self._post(payload)
            except urllib.error.HTTPError as err:
                if err.code not in RETRY_STATUSES or attempt == self.config.retries:
                    raise TeacherError(f"{self.url}: HTTP {err.code} {err.reason}") from None
                why = f"HTTP {err.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == self.config.retries:
                    raise TeacherError(f"{self.url}: {err}") from None
                why = str(err)
            except json.JSONDecodeError as err:
                raise TeacherError(f"{self.url}: response is not JSON ({err})") from None
            else:
                try:
                    content = body["choices"][0]["message"]["content"]
                except (KeyError, IndexError, TypeError):
                    raise TeacherError(f"{self.url}: no choices[0].message.content in {str(body)[:200]}") from None
                return content if isinstance(content, str) else ""
            log.debug("teacher request failed (%s); retry %d in %.1fs", why, attempt + 1, delay)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


class TeacherCache:
    """Append-only JSON lines of finished tasks, keyed by ``(env, env config, model, task_id)``."""

    def __init__(self, path: Path, key: dict[str, Any]):
        self.path = path
        self.key = key
        self._lock = threading.Lock()
        self.done: dict[int, dict[str, Any]] = {}
        if path.is_file():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:  # a line cut by an interrupted run
                        continue
                    if all(record.get(k) == v for k, v in key.items()):
                        self.done[int(record["task_id"])] = record

    def add(self, record: dict[str, Any]) -> None:
        record = {**self.key, **record}
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.done[int(record["task_id"])] = record


def solve_tasks(
    tasks: Iterable[Any],
    env: Any,
    client: TeacherClient,
    cache: TeacherCache,
    *,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[int, dict[str, Any]]:
    """Ask the teacher for every task not in ``cache``; returns ``{task_id: record}`` for all tasks.

    A record is ``{"task_id", "accepted", "completion", "score", "reason", "attempts"}``; requests
    that failed after their retries are not recorded (a later run asks again) and are returned with
    ``accepted=False`` and ``reason="teacher error: ..."``.
    """
    from tqdm.auto import tqdm

    tasks = list(tasks)
    todo = [t for t in tasks if t.task_id not in cache.done]
    results = {t.task_id: cache.done[t.task_id] for t in tasks if t.task_id in cache.done}
    if results:
        log.info("teacher: %d of %d tasks already done in %s (resuming)", len(results), len(tasks), cache.path)

    def solve(task) -> dict[str, Any]:
        last: dict[str, Any] = {}
        for attempt in range(1, client.config.attempts + 1):
            completion = client.complete([dict(m) for m in task.prompt])
            score = env.score(task, completion)
            last = {"task_id": task.task_id, "accepted": score.value >= 1.0, "completion": completion,
                    "score": score.value, "reason": str(score.info.get("reason", "")), "attempts": attempt}
            if last["accepted"]:
                break
        return last

    with ThreadPoolExecutor(max_workers=client.config.concurrency) as pool, tqdm(
        total=len(todo), desc="teacher", unit="task", disable=not progress
    ) as bar:
        futures = {pool.submit(solve, t): t for t in todo}
        for future in as_completed(futures):
            task = futures[future]
            try:
                record = future.result()
            except TeacherError as err:
                record = {"task_id": task.task_id, "accepted": False, "completion": None, "score": 0.0,
                          "reason": f"teacher error: {err}", "attempts": 0}
            else:
                cache.add(record)
            results[task.task_id] = record
            if on_result is not None:
                on_result(record)
            bar.update(1)
    return results

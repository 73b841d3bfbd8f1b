"""verl 0.9.1 reward plug-in: :func:`compute_score` (alias ``compute_lgc_v2_score``).

It routes by ``extra_info["env"]`` (config in ``extra_info["env_config"]``), rebuilds the task from
``extra_info["task"]`` (serialised), ``extra_info["task_id"]`` or, as a last resort, the ground truth,
and scores with the env's own scorer (one env instance per config per process). It never raises on
model output.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any, Mapping

from veritas_rl.backends.verl.dataset import plain
from veritas_rl.envs import Task, make_cached, resolve_name

__all__ = ["compute_lgc_v2_score", "compute_score"]

_ENV_LOCK = threading.Lock()  # verl's naive reward manager calls compute_score from a thread pool


def _env_for(name: str, config: Mapping[str, Any]):
    with _ENV_LOCK:
        return make_cached(name, config)


def _route(data_source: Any, extra_info: Mapping[str, Any] | None):
    """The env instance a sample is scored with (cached per (env, config JSON) in this process)."""
    info = extra_info or {}
    name = info.get("env")
    if name is None:
        name = _env_from_data_source(data_source)
    config = info.get("env_config")
    if config is None or config == "":
        config_json = "{}"
    elif isinstance(config, str):
        config_json = config
    else:
        config_json = json.dumps(plain(config), sort_keys=True)
    return _env_by_json(str(name), config_json)


@functools.lru_cache(maxsize=1024)
def _env_from_data_source(data_source: Any) -> str:
    # a static parquet made by others may route only by data_source (e.g. "lgc-v2" or "math/gsm8k")
    candidates = [str(data_source), str(data_source).split("/")[0]] if data_source is not None else []
    for candidate in candidates:
        try:
            return resolve_name(candidate)
        except ValueError:
            continue
    from veritas_rl.envs import names

    raise ValueError(
        f"compute_score cannot route this sample: extra_info has no 'env' and data_source="
        f"{data_source!r} is not a registered env (known: {', '.join(names(include_aliases=True))})"
    )


@functools.lru_cache(maxsize=256)
def _env_by_json(name: str, config_json: str):
    config = json.loads(config_json)
    if not isinstance(config, Mapping):
        raise ValueError(f"extra_info['env_config'] must be a mapping or its JSON, got {config_json!r}")
    return _env_for(resolve_name(name), config)


@functools.lru_cache(maxsize=4096)
def _task_from_json(serialized: str) -> Task:
    # GRPO scores every task rollout.n times: parse each serialised task once
    return Task.from_dict(json.loads(serialized))


def _task_for(env, ground_truth: Any, extra_info: Mapping[str, Any] | None) -> Task:
    info = extra_info or {}
    serialized = info.get("task")
    if isinstance(serialized, str) and serialized:
        return _task_from_json(serialized)
    if serialized:
        return Task.from_dict(plain(serialized))
    if info.get("task_id") is not None:
        return env.task(int(info["task_id"]))
    # ground truth only (e.g. answer-tag/math parquet made elsewhere): the env scores against it
    extra = info.get("task_extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra)
    if isinstance(ground_truth, (int, float)) and not isinstance(ground_truth, bool):
        ground_truth = str(ground_truth)  # a numeric parquet column
    return Task(env=env.name, task_id=-1, prompt=[], ground_truth=ground_truth, extra=dict(plain(extra)))


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict[str, Any]:
    """verl's ``custom_reward_function``: score one completion with its env's own scorer.

    Routing: ``extra_info["env"]`` (+ ``extra_info["env_config"]``, a dict or its JSON), else
    ``data_source`` when it names a registered env. Task: ``extra_info["task"]`` (``Task.to_dict``, a
    dict or its JSON), else ``extra_info["task_id"]``, else the ``ground_truth`` alone.

    Returns ``{"score": float in [0, 1], "acc": 1.0 if solved else 0.0, "reason": str}`` — the same
    keys for every sample (verl stacks ``reward_extra_info`` per key across the batch); ``reason`` is
    empty unless the env said why the score is not 1. Model output never raises; missing routing
    information (our bug or a wrong parquet) raises ``ValueError``.
    """
    env = _route(data_source, extra_info)
    task = _task_for(env, ground_truth, extra_info)
    result = env.score(task, solution_str)
    value = float(result.value)
    reason = "" if value >= 1.0 else str(result.info.get("reason", ""))
    return {"score": value, "acc": 1.0 if value >= 1.0 else 0.0, "reason": reason}


#: the name older launchers use
compute_lgc_v2_score = compute_score

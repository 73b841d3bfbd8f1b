"""verl 0.9.1 reward plug-in: :func:`compute_score` (alias ``compute_lgc_v2_score``).

It routes by ``extra_info["env"]`` (config in ``extra_info["env_config"]``), rebuilds the task from
``extra_info["task"]`` (serialised), ``extra_info["task_id"]`` or, as a last resort, the ground truth,
and scores with the env's own scorer through the score guard (:mod:`veritas_rl.envs.guard`: a worker
process, a hard time bound per score). It never raises on model output; wiring errors (a malformed
``extra_info``) raise ``ValueError``.

verl's reward loop calls it once per sample from the event loop's thread pool
(``run_in_executor``); concurrent calls are coalesced into batches for the scoring worker.

Whole games (``data.custom_cls.config.episode=game``: an ``extra_info["episode"]``) are scored by
:func:`game_reward_dict`, the game replayed from the agent loop's texts (:mod:`.episodes`).
"""

from __future__ import annotations

import functools
import json
from typing import Any, Mapping

from veritas_rl.backends.verl.dataset import plain
from veritas_rl.envs import SCORE_KINDS, Score, resolve_name
from veritas_rl.envs.guard import GroundTruth, Request, config_json, get_guard, task_id_of

__all__ = ["compute_lgc_v2_score", "compute_score", "game_reward_dict", "reward_dict"]

#: the per-kind indicator keys of every result (``kind/correct``, ``kind/timeout``, ...)
KIND_KEYS = tuple(f"kind/{k}" for k in SCORE_KINDS)


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


def request_for(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any) -> Request:
    """The guard request for one verl sample; a malformed ``extra_info`` raises ``ValueError`` naming the key."""
    if extra_info is None:
        info: Mapping[str, Any] = {}
    elif isinstance(extra_info, Mapping):
        info = extra_info
    else:
        raise ValueError(f"extra_info must be a mapping (a dict), got {type(extra_info).__name__}: {extra_info!r:.120}")
    name = info.get("env")
    if name is None:
        name = _env_from_data_source(data_source)
    elif not isinstance(name, str):
        raise ValueError(f"extra_info['env'] must be an env name (a string), got {type(name).__name__}: {name!r:.80}")
    config = config_json(plain(info.get("env_config")), "extra_info['env_config']")
    serialized = info.get("task")
    if isinstance(serialized, Mapping) or hasattr(serialized, "keys"):  # a parquet struct, an OmegaConf dict
        serialized = plain(serialized)
        if not isinstance(serialized, Mapping):
            raise ValueError(f"extra_info['task'] must be a serialised task (dict or JSON), got {serialized!r:.120}")
        serialized = dict(serialized) or None  # an empty struct: no task
    if isinstance(serialized, (str, dict)) and serialized:
        task: Any = serialized
    elif serialized is not None and serialized != "":
        raise ValueError(f"extra_info['task'] must be a serialised task (a dict or its JSON string), "
                         f"got {type(serialized).__name__}: {serialized!r:.120}")
    elif info.get("task_id") is not None:
        task = task_id_of(info["task_id"], "extra_info['task_id']")
    else:
        # ground truth only (e.g. answer-tag/math parquet made elsewhere): the env scores against it
        extra = info.get("task_extra") or {}
        if isinstance(extra, str):
            try:
                extra = json.loads(extra)
            except json.JSONDecodeError as e:
                raise ValueError(f"extra_info['task_extra'] is not valid JSON ({e.msg}): {extra!r:.120}") from None
        extra = plain(extra)
        if not isinstance(extra, Mapping):
            raise ValueError(f"extra_info['task_extra'] must be a mapping, got {type(extra).__name__}: {extra!r:.120}")
        task = GroundTruth(ground_truth, dict(extra))
    return Request(name, config, task, solution_str)


def reward_dict(score: Score) -> dict[str, Any]:
    """What ``compute_score`` returns for ``score``: the same keys for every sample.

    ``score``/``acc`` (floats), ``reason`` and ``kind`` (strings: verl's metrics skip them, the
    generation dumps show them) and one 0/1 float per reason class, ``kind/<name>``: verl averages
    numeric ``reward_extra_info`` keys per data source, so their means are the per-class rates.
    """
    value = float(score.value)
    out: dict[str, Any] = {
        "score": value,
        "acc": 1.0 if value >= 1.0 else 0.0,
        "reason": "" if value >= 1.0 else str(score.info.get("reason", "")),
        "kind": score.kind,
    }
    for kind, key in zip(SCORE_KINDS, KIND_KEYS):
        out[key] = 1.0 if kind == score.kind else 0.0
    return out


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict[str, Any]:
    """verl's ``custom_reward_function``: score one completion with its env's own scorer.

    Routing: ``extra_info["env"]`` (+ ``extra_info["env_config"]``, a dict or its JSON), else
    ``data_source`` when it names a registered env. Task: ``extra_info["task"]`` (``Task.to_dict``, a
    dict or its JSON), else ``extra_info["task_id"]``, else the ``ground_truth`` alone.

    Returns :func:`reward_dict`: ``{"score", "acc", "reason", "kind", "kind/<name>" for every reason
    class}``. Model output never raises (a score past its time bound is ``kind="timeout"``); missing or
    malformed routing information (our bug or a wrong parquet) raises ``ValueError``.
    """
    if isinstance(extra_info, Mapping) and extra_info.get("episode") is not None:
        return game_reward_dict(extra_info)
    request = request_for(data_source, solution_str, ground_truth, extra_info)
    result = reward_dict(get_guard().score_many([request])[0])
    if isinstance(extra_info, Mapping) and extra_info.get("curriculum"):  # feedback to the curriculum's server
        from veritas_rl.backends.verl.curriculum import report_score

        result.update(report_score(extra_info, result["score"]))  # curriculum/<metric>: logged per step
    return result


def game_reward_dict(extra_info: Mapping[str, Any]) -> dict[str, Any]:
    """A whole game's reward (``data.custom_cls.config.episode=game``): :func:`reward_dict` of the replayed game
    plus ``game/<outcome>`` (0/1 each: win, draw, loss, illegal, max_turns), ``game/model_turns``,
    ``game/legal_moves``, ``game/normalised_return``, ``game/truncated``; ``score`` is the episode reward
    (shaping included). See :func:`veritas_rl.backends.verl.episodes.score_episode`.
    """
    from veritas_rl.backends.verl.episodes import score_episode

    score, keys = score_episode(extra_info)
    out = reward_dict(score)
    out.update(keys)
    return out


#: the name older launchers use
compute_lgc_v2_score = compute_score

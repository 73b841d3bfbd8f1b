"""TRL adapter: a reward function for ``trl.GRPOTrainer`` over each env's scoring core.

The reward is a thin adapter over :meth:`veritas_rl.envs.base.Env.score` — never a second
implementation of scoring. Each dataset row carries what scoring needs (see :func:`task_row`):

* ``prompt``: the task's chat messages (TRL's conversational prompt column),
* ``task``: the serialised :class:`~veritas_rl.envs.base.Task` (a JSON string),
* ``env`` and ``env_config``: the env name and its config (a JSON string), so the adapter rebuilds the
  env (one cached instance per process) wherever it runs.

TRL 1.16 calls reward functions as ``reward(prompts=..., completions=..., completion_ids=...,
**dataset_columns, trainer_state=..., log_extra=..., log_metric=...)`` and expects one float per
completion; conversational completions are lists of message dicts. :class:`EnvReward` is a plain
callable class (picklable: no closures, no env object held).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from veritas_rl.envs.base import SCORE_KINDS, Env, Score, Task
from veritas_rl.envs.guard import Request, config_json, get_guard, task_id_of

#: the dataset columns :class:`EnvReward` reads (besides TRL's ``prompt``)
TASK_COLUMNS = ("task", "env", "env_config", "task_id")


def task_row(env: Env, task: Task) -> dict[str, Any]:
    """One dataset row for ``task``: ``prompt`` plus the columns :class:`EnvReward` scores from."""
    from veritas_rl.envs.base import config_to_dict

    return {
        "prompt": [dict(m) for m in task.prompt],
        "task": json.dumps(task.to_dict(), sort_keys=True),
        "env": env.name,
        "env_config": json.dumps(config_to_dict(env.config), sort_keys=True),
        "task_id": int(task.task_id),
    }


def completion_text(completion: Any) -> Any:
    """The text of a TRL completion: a string as is, or the assistant content of a message list.

    Anything else is returned unchanged so that :meth:`Env.score` scores it 0.0 with a reason.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and all(isinstance(m, Mapping) for m in completion):
        parts = []
        for message in completion:
            if message.get("role", "assistant") != "assistant":
                continue
            content = message.get("content")
            if isinstance(content, list):  # content blocks: [{"type": "text", "text": ...}]
                texts = [b.get("text", "") for b in content if isinstance(b, Mapping)]
                content = "".join(texts) if all(isinstance(t, str) for t in texts) else None
            if not isinstance(content, str):
                return completion
            parts.append(content)
        return "".join(parts)
    return completion


class EnvReward:
    """``reward_funcs`` entry for ``trl.GRPOTrainer``: scores each completion with its env's ``score``.

    ``env``/``env_config`` are fallbacks for datasets whose rows lack those columns. The instance
    counts what it scored since :meth:`take_counts` was last called (used by the zero-reward breaker)
    and reports, through TRL's ``log_metric``, ``success_rate`` (fraction of completions scoring 1.0)
    and ``kind/<name>`` for every reason class (:data:`~veritas_rl.envs.base.SCORE_KINDS`: the share of
    the batch in it, so a rising ``kind/hedge`` or ``kind/timeout`` is a curve); with ``log_extra`` the
    completions table gets a ``kind`` column. A malformed row (wiring, not model output) raises
    ``ValueError`` naming the column.
    """

    #: TRL names the reward's metrics after ``__name__`` (``rewards/env_reward/mean``)
    __name__ = "env_reward"

    def __init__(self, env: str | None = None, env_config: Mapping[str, Any] | None = None):
        self.env = env
        self.env_config = dict(env_config or {})
        self.scored = 0
        self.nonzero = 0
        self.last_scores: list[Score] = []

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        task: Sequence[str | Mapping[str, Any]] | None = None,
        env: Sequence[str] | None = None,
        env_config: Sequence[str | Mapping[str, Any]] | None = None,
        task_id: Sequence[int] | None = None,
        log_metric: Any = None,
        log_extra: Any = None,
        **_: Any,
    ) -> list[float]:
        if completions is None:
            raise TypeError("EnvReward needs `completions`")
        requests = [self.request(i, completions[i], task, env, env_config, task_id) for i in range(len(completions))]
        scores = get_guard().score_many(requests)
        self.last_scores = scores
        values = [s.value for s in scores]
        self.scored += len(values)
        self.nonzero += sum(1 for v in values if v > 0.0)
        if log_metric is not None and values:
            log_metric("success_rate", sum(1 for v in values if v >= 1.0) / len(values))
            for kind, share in kind_shares(scores).items():
                log_metric(f"kind/{kind}", share)
        if log_extra is not None and values:
            log_extra("kind", [s.kind for s in scores])
        return values

    def request(self, i: int, completion: Any, task, env, env_config, task_id) -> Request:
        """The guard request for row ``i``; a malformed column value raises ``ValueError`` naming it."""
        env_name = env[i] if env is not None else self.env
        if not env_name:
            raise ValueError("EnvReward: rows carry no `env` column and no default env was given")
        config = config_json(env_config[i] if env_config is not None else self.env_config, "the `env_config` column")
        if task is not None:
            raw = task[i]
            if not isinstance(raw, (str, Mapping)) or not raw:
                raise ValueError(f"EnvReward: the `task` column must hold a serialised Task (JSON string or dict), "
                                 f"got {type(raw).__name__}: {raw!r:.120}")
            the_task: Any = raw
        elif task_id is not None:
            the_task = task_id_of(task_id[i], "the `task_id` column")
        else:
            raise ValueError("EnvReward: rows need a `task` (serialised Task) or `task_id` column")
        return Request(env_name, config, the_task, completion_text(completion))

    def take_counts(self) -> tuple[int, int]:
        """``(completions scored, completions scoring > 0)`` since the last call; resets both."""
        counts = (self.scored, self.nonzero)
        self.scored = self.nonzero = 0
        return counts


def kind_shares(scores: Sequence[Score]) -> dict[str, float]:
    """The share of ``scores`` in each reason class, every class present (0.0 when none)."""
    n = len(scores) or 1
    counts = dict.fromkeys(SCORE_KINDS, 0)
    for s in scores:
        counts[s.kind] += 1
    return {kind: counts[kind] / n for kind in SCORE_KINDS}

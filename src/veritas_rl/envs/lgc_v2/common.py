"""What every lgc-v2 task module shares: the :class:`TaskType` record, answer limits, boxed-integer scoring.

Task modules import this module, never the ``veritas_rl.envs.lgc_v2`` package (which imports them).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from veritas_rl.envs.answers import boxed_answer
from veritas_rl.envs.base import Score, Task, seeded_rng

#: seeds per task type: ``task_id = type_id * SEEDS_PER_TYPE + seed``
SEEDS_PER_TYPE = 100_000_000

#: answers longer than this (after extraction) are not parsed
MAX_ANSWER_CHARS = 2_000

#: ``generate(cfg, seed)``: ``cfg`` is the env's ``LgcV2Config``. Returns
#: ``{"prompt": str, "ground_truth": str, "extra": dict}``, a pure function of ``(cfg, seed)``: draw from
#: :func:`task_rng` (or index a dataset that seeds each item from its index, as reasoning-gym's do).
Generate = Callable[[Any, int], dict[str, Any]]


def task_rng(task_type: str, seed: int) -> random.Random:
    """The random generator of task ``seed`` of ``task_type`` (a stable hash of both, no shared state)."""
    return seeded_rng("lgc-v2", task_type, seed)


def _no_check(cfg: Any) -> None:
    return None


@dataclass(frozen=True)
class TaskType:
    """One task type: how to make a task, score an answer to it and write a completion that scores 1.0."""

    name: str
    generate: Generate
    score: Callable[[Task, str], Score]  # ``(task, answer after </think>, non-empty) -> Score``
    oracle: Callable[[Task], str]
    #: raises ``ValueError`` when ``cfg`` cannot produce tasks of this type (called by an env serving it)
    check: Callable[[Any], None] = _no_check


def in_range(key: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{key}={value!r} is not valid; expected an integer in [{lo}, {hi}]")


def ordered(lo_key: str, lo: int, hi_key: str, hi: int) -> None:
    if lo > hi:
        raise ValueError(f"{lo_key}={lo} is greater than {hi_key}={hi}")


def score_boxed_int(task: Task, answer: str) -> Score:
    """1.0 when the last ``\\boxed{}`` holds the integer ``task.ground_truth``."""
    slot, why = boxed_answer(answer)
    if slot is None:
        return Score.zero(why)
    got = slot.strip().strip("$").strip()
    if got.startswith("+"):
        got = got[1:]
    if not (got.isdigit() or (got.startswith("-") and got[1:].isdigit())) or len(got) > 40:
        return Score.zero("boxed answer is not an integer", answer=got[:100])
    if int(got) != int(task.ground_truth):
        return Score.zero("wrong number", answer=got, expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


def oracle_boxed(task: Task) -> str:
    return f"The result is \\boxed{{{task.ground_truth}}}"

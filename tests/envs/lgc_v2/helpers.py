"""Helpers shared by the lgc-v2 tests."""

from __future__ import annotations

from veritas_rl.envs.base import Env, Task
from veritas_rl.envs.lgc_v2 import TASK_TYPES, make_task_id

ALL_TYPES = list(TASK_TYPES)


def task_of(env: Env, task_type: str, seed: int = 0) -> Task:
    return env.task(make_task_id(task_type, seed))

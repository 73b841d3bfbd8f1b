"""``lgc-v2``: eight procedurally generated logic and arithmetic task types with exact, binary scorers.

``task_id = type_id * 100_000_000 + seed``; a task is a pure function of ``(config, task_id)``. Every
prompt states its answer format; every scorer accepts any correct answer where several exist (any
expression that makes 24, any sudoku grid that satisfies the givens, any cryptarithm mapping that
makes the sum true). A completion states one answer: several slots of the type's format that disagree
score 0 with kind ``hedge`` (:mod:`.common`); every zero carries its reason class.

One module per task family, each exposing :class:`~veritas_rl.envs.lgc_v2.common.TaskType` records
(``generate``, ``score``, ``oracle``, optional ``check``), listed once in :data:`TASK_TABLE`:

* 0: ``dyck_language`` (:mod:`.dyck`) — final line ``Answer: ) ] }`` (the missing closers)
* 1: ``game_of_24`` (:mod:`.game_of_24`) — ``\\boxed{(8-4)*(7-1)}`` (any expression that makes 24)
* 2: ``operation`` (:mod:`.operation`) — ``\\boxed{42}``
* 3: ``cryptarithm`` (:mod:`.cryptarithm`) — ``\\boxed{A=1,B=2,...}`` (reasoning-gym generator and verifier)
* 4: ``dyck_language2`` (:mod:`.dyck`) — ``\\boxed{7}`` (position of the first error, 0 if balanced)
* 6: ``boolean_expressions`` (:mod:`.boolean`) — ``\\boxed{True}`` / ``\\boxed{False}``
* 7: ``sudoku`` (:mod:`.sudoku`) — the 9x9 grid in a fenced code block
* 8: ``dyck_language_reasoning_errors`` (:mod:`.dyck`) — ``\\boxed{2,5}`` or ``\\boxed{none}`` (the wrong thoughts)

Shared helpers live in :mod:`.common`; task modules import it, never this package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from veritas_rl.envs.base import Env, Score, Task, register_env
from veritas_rl.envs.lgc_v2 import boolean, cryptarithm, dyck, game_of_24, operation, sudoku
from veritas_rl.envs.lgc_v2.common import SEEDS_PER_TYPE, TaskType, in_range, ordered

__all__ = [
    "SEEDS_PER_TYPE",
    "TASK_TABLE",
    "TASK_TYPES",
    "TYPE_NAMES",
    "LgcV2Config",
    "LgcV2Env",
    "TaskType",
    "make_task_id",
    "split_task_id",
]

#: type id -> task type (the id is the leading part of the task id; 5 is unused). The one list of types.
TASK_TABLE: dict[int, TaskType] = {
    0: dyck.DYCK_LANGUAGE,
    1: game_of_24.GAME_OF_24,
    2: operation.OPERATION,
    3: cryptarithm.CRYPTARITHM,
    4: dyck.DYCK_LANGUAGE2,
    6: boolean.BOOLEAN_EXPRESSIONS,
    7: sudoku.SUDOKU,
    8: dyck.REASONING_ERRORS,
}
#: task type name -> type id
TASK_TYPES: dict[str, int] = {t.name: type_id for type_id, t in TASK_TABLE.items()}
TYPE_NAMES: dict[int, str] = {type_id: t.name for type_id, t in TASK_TABLE.items()}
_BY_NAME: dict[str, TaskType] = {t.name: t for t in TASK_TABLE.values()}


@dataclass(frozen=True)
class LgcV2Config:
    """Which task types to serve (by name, default all) and per-type difficulty knobs."""

    task_types: tuple[str, ...] = tuple(TASK_TYPES)
    # dyck_language, dyck_language2, dyck_language_reasoning_errors
    dyck_num_types: int = 4  # bracket kinds used, from () [] {} <>
    dyck_min_length: int = 6
    dyck_max_length: int = 20
    dyck_max_errors: int = 3  # reasoning_errors: at most this many wrong thoughts
    # game_of_24
    game24_min_value: int = 1
    game24_max_value: int = 13
    # operation
    operation_max_ops: int = 2
    operation_max_value: int = 9
    # cryptarithm (reasoning-gym)
    cryptarithm_min_words: int = 2
    cryptarithm_max_words: int = 3
    cryptarithm_allow_leading_zero: bool = False
    # boolean_expressions
    boolean_max_depth: int = 3
    # sudoku
    sudoku_min_empty: int = 30
    sudoku_max_empty: int = 50
    sudoku_unique: bool = False  # True: reasoning-gym's generator, one solution per puzzle (~27 ms a task)

    def __post_init__(self):
        types = self.task_types
        if isinstance(types, str):  # "sudoku" or "sudoku,game_of_24" from a command line
            types = tuple(t.strip() for t in types.split(",") if t.strip())
        elif isinstance(types, (int, float)):
            types = (types,)
        else:  # any sequence (list, tuple, an OmegaConf ListConfig)
            types = tuple(types)
        if not types:
            raise ValueError(f"task_types is empty; choose from: {', '.join(TASK_TYPES)}")
        for name in types:
            if name not in TASK_TYPES:
                raise ValueError(f"task_types: {name!r} is not valid; choose from: {', '.join(TASK_TYPES)}")
        if len(set(types)) != len(types):
            raise ValueError(f"task_types={list(types)!r} lists a type twice")
        object.__setattr__(self, "task_types", tuple(types))
        in_range("dyck_num_types", self.dyck_num_types, 1, len(dyck.BRACKETS))
        in_range("dyck_min_length", self.dyck_min_length, 2, 500)
        in_range("dyck_max_length", self.dyck_max_length, 2, 500)
        ordered("dyck_min_length", self.dyck_min_length, "dyck_max_length", self.dyck_max_length)
        in_range("dyck_max_errors", self.dyck_max_errors, 1, 10)
        in_range("game24_min_value", self.game24_min_value, 1, 100)
        in_range("game24_max_value", self.game24_max_value, 1, 100)
        ordered("game24_min_value", self.game24_min_value, "game24_max_value", self.game24_max_value)
        in_range("operation_max_ops", self.operation_max_ops, 1, 6)
        in_range("operation_max_value", self.operation_max_value, 1, 99)
        in_range("cryptarithm_min_words", self.cryptarithm_min_words, 2, 10)
        in_range("cryptarithm_max_words", self.cryptarithm_max_words, 2, 10)
        ordered(
            "cryptarithm_min_words", self.cryptarithm_min_words, "cryptarithm_max_words", self.cryptarithm_max_words
        )
        in_range("boolean_max_depth", self.boolean_max_depth, 1, 8)
        in_range("sudoku_min_empty", self.sudoku_min_empty, 1, 64)
        in_range("sudoku_max_empty", self.sudoku_max_empty, 1, 64)
        ordered("sudoku_min_empty", self.sudoku_min_empty, "sudoku_max_empty", self.sudoku_max_empty)
        for flag in ("cryptarithm_allow_leading_zero", "sudoku_unique"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag}={getattr(self, flag)!r} is not valid; expected true or false")


def split_task_id(task_id: int) -> tuple[str, int]:
    """``task_id`` -> ``(task type name, seed)``; unknown type ids raise ``ValueError``."""
    task_id = int(task_id)
    if task_id < 0:
        raise ValueError(f"task_id={task_id} is negative")
    type_id, seed = divmod(task_id, SEEDS_PER_TYPE)
    if type_id not in TYPE_NAMES:
        raise ValueError(f"task_id={task_id}: type id {type_id} is not valid; choose from: {sorted(TYPE_NAMES)}")
    return TYPE_NAMES[type_id], seed


def make_task_id(task_type: str, seed: int) -> int:
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type={task_type!r} is not valid; choose from: {', '.join(TASK_TYPES)}")
    if not 0 <= seed < SEEDS_PER_TYPE:
        raise ValueError(f"seed={seed} outside [0, {SEEDS_PER_TYPE})")
    return TASK_TYPES[task_type] * SEEDS_PER_TYPE + seed


def _user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


class LgcV2Env(Env):
    """Logic puzzles (dyck languages, game of 24, operators, cryptarithm, boolean, sudoku) with exact scorers."""

    def __init__(self, config: LgcV2Config):
        super().__init__(config)
        # interleave types by id, whatever order the user listed them in
        self.types: tuple[str, ...] = tuple(sorted(config.task_types, key=TASK_TYPES.__getitem__))
        for name in self.types:  # e.g. a game-of-24 value range without a solvable puzzle
            _BY_NAME[name].check(config)

    @property
    def num_tasks(self) -> int:
        return len(self.types) * SEEDS_PER_TYPE

    def task_id_at(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self.num_tasks:
            raise IndexError(f"index {index} outside [0, {self.num_tasks})")
        k = len(self.types)
        return make_task_id(self.types[index % k], index // k)

    def task(self, task_id: int) -> Task:
        task_type, seed = split_task_id(task_id)
        if task_type not in self.types:
            raise ValueError(f"task_id={task_id} is a {task_type!r} task, not in task_types={list(self.types)}")
        made = _BY_NAME[task_type].generate(self.config, seed)
        extra = {"task_type": task_type, "seed": seed, **made["extra"]}
        return Task(self.name, int(task_id), _user(made["prompt"]), made["ground_truth"], extra)

    def _task_type(self, task: Task) -> str | None:
        task_type = task.extra.get("task_type")
        if task_type not in _BY_NAME:
            try:
                task_type = split_task_id(task.task_id)[0]
            except ValueError:
                return None
        return task_type

    def _score(self, task: Task, answer: str) -> Score:
        task_type = self._task_type(task)
        if task_type is None:
            raise ValueError(f"task {task.task_id} is not an lgc-v2 task: {json.dumps(task.extra)[:200]}")
        score = _BY_NAME[task_type].score(task, answer)
        score.info.setdefault("task_type", task_type)
        return score

    def oracle(self, task: Task) -> str | None:
        task_type = self._task_type(task)
        return _BY_NAME[task_type].oracle(task) if task_type else None


register_env("lgc-v2", LgcV2Env, LgcV2Config, aliases=("lgc_v2", "logic-v2", "logic_v2"))

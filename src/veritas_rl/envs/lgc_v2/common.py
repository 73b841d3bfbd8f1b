"""What every lgc-v2 task module shares: the :class:`TaskType` record, answer limits, the hedge rule,
boxed-integer scoring.

The hedge rule (:func:`same_answer`): a completion's final-answer slots (every ``\\boxed{}``, every
``Answer:`` line, every fenced grid — whatever its task type reads) must hold one answer. Every slot that
scores 1.0 on its own counts as the same answer (two different expressions that both make 24 are two
right answers, not a hedge); any other slot is its value for the type (``7`` and ``07`` are one integer).
Two different answers score 0 with kind ``hedge``, whichever comes last.

Task modules import this module, never the ``veritas_rl.envs.lgc_v2`` package (which imports them).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from veritas_rl.envs.answers import CONFLICTING_BOXED, MAX_BOXED_ANSWERS, after_last_marker, boxed_answer
from veritas_rl.envs.base import Score, Task, seeded_rng

#: seeds per task type: ``task_id = type_id * SEEDS_PER_TYPE + seed``
SEEDS_PER_TYPE = 100_000_000

#: answers longer than this (after extraction) are not parsed
MAX_ANSWER_CHARS = 2_000
#: brackets nested deeper than this in an answer are refused (kind ``too_long``): no answer needs it
MAX_NESTING = 12

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


# -- one answer per completion -------------------------------------------------------------------

#: one slot: ``(task, slot) -> Score`` (the type's scorer once the slot is taken out of the completion)
Judge = Callable[[Task, str], Score]
#: the value of a slot for the type (any hashable; a slot that does not parse: its text)
Value = Callable[[str], Hashable]
#: several final-answer slots that disagree (any order)
CONFLICTING_ANSWERS = "several different final answers (a hedge scores 0)"
_RIGHT = ("\0", "scores 1.0")  # the key of every slot that scores 1.0 on its own


def text_value(slot: str) -> str:
    """A slot's text with runs of whitespace collapsed: the value of a slot that does not parse."""
    return " ".join(slot.split())


def same_answer(task: Task, judge: Judge, value: Value = text_value) -> Callable[[str, str], bool]:
    """``same(a, b)`` for :func:`~veritas_rl.envs.answers.distinct_answers` under the hedge rule (module
    docstring): equal texts, both right, or the same ``value``. Each slot is judged at most once."""
    keys: dict[str, Hashable] = {}

    def key(slot: str) -> Hashable:
        found = keys.get(slot)
        if found is None:
            found = keys[slot] = _RIGHT if judge(task, slot).value >= 1.0 else ("value", value(slot))
        return found

    return lambda a, b: a == b or key(a) == key(b)


def score_boxed(task: Task, answer: str, judge: Judge, value: Value = text_value) -> Score:
    """Score the final ``\\boxed{}`` with ``judge``; no box (``no_answer``) or boxes that disagree (``hedge``)
    score 0."""
    slot, why = boxed_answer(answer, same_answer(task, judge, value))
    if slot is None:
        return Score.zero(why, kind="hedge" if why == CONFLICTING_BOXED else "no_answer")
    return judge(task, slot)


#: a line that states the final answer: ``Answer:``, ``**Answer:**``, ``- Final answer:`` at its start
_ANSWER_LINE = re.compile(r"(?im)^[ \t>*#_-]*(?:final[ \t]+)?answer:")


def answer_line_slots(text: str, limit: int = MAX_BOXED_ANSWERS) -> list[str]:
    """The ``Answer:`` slots of ``text`` in order: the rest of each line that starts with ``Answer:`` (after
    its last ``answer:``), at most ``limit`` of them, then the slot the scorer reads (the rest of the line
    after the last ``answer:`` anywhere, :func:`~veritas_rl.envs.answers.after_last_marker`). Linear time:
    one regex pass anchored at line starts, each line sliced once."""
    final = after_last_marker(text, "answer:")
    if final is None:
        return []
    slots: list[str] = []
    if text.lower().count("answer:") < 2:  # the common case: one marker, one slot
        return [final]
    for m in _ANSWER_LINE.finditer(text):
        if len(slots) >= limit:
            break
        nl = text.find("\n", m.end())
        line = text[m.end() : len(text) if nl < 0 else nl]
        at = line.lower().rfind("answer:")
        slots.append(line if at < 0 else line[at + len("answer:") :])
    slots.append(final)
    return slots


def fenced_bodies(text: str, limit: int = MAX_BOXED_ANSWERS) -> list[str]:
    """Bodies of the closed Markdown code fences in order, paired from the end as
    :func:`~veritas_rl.envs.answers.last_fenced_block` pairs them (its block is the last one here), language
    tag dropped the same way; at most the last ``limit + 1``. Linear time (one ``split``)."""
    parts = text.split("```")
    bodies: list[str] = []
    for i in range(len(parts) - 2, 0, -2):
        body = parts[i]
        nl = body.find("\n")
        if nl >= 0 and body[:nl].strip().isidentifier():
            body = body[nl + 1 :]
        bodies.append(body)
        if len(bodies) > limit:
            break
    bodies.reverse()
    return bodies


# -- boxed integers ------------------------------------------------------------------------------


def _integer_text(slot: str) -> str:
    got = slot.strip().strip("$").strip()
    return got[1:] if got.startswith("+") else got


def digits(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits 0-9. ``str.isdigit`` is not enough: it is true for ``²``
    and ``٠``, which ``int()`` refuses or reads, and which no task's answer is written in."""
    return text.isascii() and text.isdigit()


def _is_integer(got: str) -> bool:
    return digits(got) or (got.startswith("-") and digits(got[1:]))


def _integer_value(slot: str) -> Hashable:
    got = _integer_text(slot)
    return int(got) if _is_integer(got) and len(got) <= 40 else text_value(slot)


def judge_int(task: Task, slot: str) -> Score:
    """1.0 when ``slot`` is the integer ``task.ground_truth``."""
    got = _integer_text(slot)
    if not _is_integer(got):
        return Score.zero("boxed answer is not an integer", kind="no_answer", answer=got[:100])
    if len(got) > 40:
        return Score.zero("boxed integer too long", kind="too_long", answer=got[:100])
    if int(got) != int(task.ground_truth):
        return Score.zero("wrong number", answer=got, expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


def score_boxed_int(task: Task, answer: str) -> Score:
    """1.0 when the final ``\\boxed{}`` holds the integer ``task.ground_truth`` (boxes compared by value)."""
    return score_boxed(task, answer, judge_int, _integer_value)


def oracle_boxed(task: Task) -> str:
    return f"The result is \\boxed{{{task.ground_truth}}}"

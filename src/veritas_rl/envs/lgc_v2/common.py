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

from veritas_rl.envs.answers import (
    CONFLICTING_BOXED,
    MAX_BOXED_ANSWERS,
    after_last_marker,
    closing_brace,
    distinct_answers,
)
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


def unwrap(slot: str, wrappers: tuple[str, ...], depth: int = 3) -> str:
    r"""``slot`` without ``$`` and up to ``depth`` whole-slot groups opened by one of ``wrappers`` (``\text{``,
    ``{``, ...) and closed by its last ``}``: ``\text{\textbf{True}}`` is ``True``."""
    slot = slot.strip().strip("$").strip()
    for _ in range(depth):
        opener = next((w for w in wrappers if slot.startswith(w) and slot.endswith("}")), None)
        if opener is None:
            break
        slot = slot[len(opener) : -1].strip()
    return slot


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


#: a ``\boxed{`` / ``\fbox{`` / ``\boxed {`` opener, or ``\boxed 5`` (valid LaTeX for one token, which
#: :func:`~veritas_rl.envs.answers.last_boxed` reads where there is no braced box): the token is group 1
_BOX_SLOT = re.compile(r"\\(?:boxed|fbox)[ \t]*\{|\\boxed\s+([^\s{]\S*)")
_BRACED_BOX = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")


def _last_braced_box(text: str, first: re.Match[str]) -> re.Match[str]:
    """The last braced box opener of ``text`` (``first``, a braced opener, when there is none after it)."""
    boxed, fbox = text.rfind("\\boxed"), text.rfind("\\fbox")  # two cursors, each moving left: linear
    while max(boxed, fbox) > first.start():
        m = _BRACED_BOX.match(text, max(boxed, fbox))
        if m is not None:
            return m
        if boxed > fbox:
            boxed = text.rfind("\\boxed", 0, boxed)
        else:
            fbox = text.rfind("\\fbox", 0, fbox)
    return first


#: a brace-less ``\boxed 5``
_UNBRACED_BOX = re.compile(r"\\boxed\s+[^\s{]")
#: why a completion with a ``\boxed{`` that is never closed scores 0 (``(reason, kind)``)
UNCLOSED_BOX = ("a \\boxed{ that is never closed", "no_answer")
HIDDEN_BOX = ("a \\boxed{ that is never closed before other boxes (unpaired braces can hide an answer)", "hedge")


def boxed_slots(text: str, limit: int = MAX_BOXED_ANSWERS) -> tuple[list[str], tuple[str, str] | None]:
    """``(slots, problem)``: the ``\\boxed{}`` slots of ``text`` in order, each top-level braced box (a box
    nested in a box is part of it) and each brace-less ``\\boxed 5`` token, empty boxes left out (``put it
    in \\boxed{}`` states nothing), more than ``limit``: the first ``limit + 1`` (the caller refuses them);
    ``problem`` is ``(reason, kind)`` when the boxes cannot be read.

    A braced box never closed (within :data:`~veritas_rl.envs.answers.MAX_BOX_CHARS`) is no answer. The last
    braced box after it is still read (as :func:`~veritas_rl.envs.answers.last_boxed` reads it) when nothing
    in between can be a box (no ``}``, no ``\\boxed 5``): :data:`HIDDEN_BOX` otherwise, and
    :data:`UNCLOSED_BOX` when the unclosed box is the last one (a cut-off answer). Linear: one regex pass,
    at most two brace scans of an unclosed box."""
    slots: list[str] = []
    pos = 0
    found = _BOX_SLOT.finditer(text)
    while len(slots) <= limit and (m := next(found, None)) is not None:
        if m.start() < pos:
            continue  # inside the previous box
        if m.group(1) is not None:
            slot, pos = m.group(1).rstrip("$."), m.end()
        else:
            end = closing_brace(text, m.end())
            if end is None:  # skip to the last braced box: it is closed, or there is no answer
                last = _last_braced_box(text, m)
                if last is m:
                    return slots, UNCLOSED_BOX
                if text.find("}", m.end(), last.start()) >= 0 or _UNBRACED_BOX.search(text, m.end(), last.start()):
                    return slots, HIDDEN_BOX
                m, end = last, closing_brace(text, last.end())
                if end is None:
                    return slots, UNCLOSED_BOX
                found = _BOX_SLOT.finditer(text, end + 1)  # only brace-less tokens are left after it
            slot, pos = text[m.end() : end], end + 1
        if slot.strip():
            slots.append(slot)
    return slots, None


def score_boxed(task: Task, answer: str, judge: Judge, value: Value = text_value) -> Score:
    """Score the final ``\\boxed{}`` with ``judge``; no box, an unclosed one (``no_answer``) or boxes that
    disagree (``hedge``, :func:`same_answer`; braced and brace-less boxes alike) score 0."""
    slots, problem = boxed_slots(answer)
    if problem is not None:
        return Score.zero(problem[0], kind=problem[1])
    if not slots:
        return Score.zero("no \\boxed{} answer", kind="no_answer")
    if len(slots) > MAX_BOXED_ANSWERS:  # the last box was not read: a hedge whatever the boxes say
        return Score.zero(f"more than {MAX_BOXED_ANSWERS} \\boxed{{}} answers", kind="hedge")
    if len(distinct_answers(slots, same_answer(task, judge, value))) > 1:
        return Score.zero(CONFLICTING_BOXED, kind="hedge")
    return judge(task, slots[-1])


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


#: longest integer read, in digits, unless the gold itself is longer (``operation`` with six operators and
#: operands up to 99 reaches 60 digits)
MAX_INTEGER_DIGITS = 40
#: ``4,201`` / ``-1,234,567``: thousands separators, every group of three
_GROUPED = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+")


def _integer_text(slot: str) -> str:
    got = slot.strip().strip("$").strip()
    got = got[1:] if got.startswith("+") else got
    got = got.replace("{,}", ",").replace("\\,", ",")  # LaTeX's 4{,}201 and 4\,201
    if "," in got and _GROUPED.fullmatch(got):  # one number written with thousands separators
        got = got.replace(",", "")
    return got


def digits(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits 0-9. ``str.isdigit`` is not enough: it is true for ``²``
    and ``٠``, which ``int()`` refuses or reads, and which no task's answer is written in."""
    return text.isascii() and text.isdigit()


def _is_integer(got: str) -> bool:
    return digits(got) or (got.startswith("-") and digits(got[1:]))


def _max_digits(task: Task) -> int:
    return max(MAX_INTEGER_DIGITS, len(str(task.ground_truth)) + 1)


def judge_int(task: Task, slot: str) -> Score:
    """1.0 when ``slot`` is the integer ``task.ground_truth`` (``+``, ``$...$`` and thousands separators allowed)."""
    got = _integer_text(slot)
    if not _is_integer(got):
        return Score.zero("boxed answer is not an integer", kind="no_answer", answer=got[:100])
    if len(got) > _max_digits(task):
        return Score.zero("boxed integer too long", kind="too_long", answer=got[:100])
    if int(got) != int(task.ground_truth):
        return Score.zero("wrong number", answer=got, expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


def score_boxed_int(task: Task, answer: str) -> Score:
    """1.0 when the final ``\\boxed{}`` holds the integer ``task.ground_truth`` (boxes compared by value)."""
    limit = _max_digits(task)

    def value(slot: str) -> Hashable:
        got = _integer_text(slot)
        return int(got) if _is_integer(got) and len(got) <= limit else text_value(slot)

    return score_boxed(task, answer, judge_int, value)


def oracle_boxed(task: Task) -> str:
    return f"The result is \\boxed{{{task.ground_truth}}}"

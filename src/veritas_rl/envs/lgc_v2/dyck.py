"""Dyck-language task types (ids 0, 4, 8) — our own generators over the brackets ``() [] {} <>``.

* ``dyck_language``: complete a prefix; final line ``Answer: ) ] }`` (the missing closers).
* ``dyck_language2``: ``\\boxed{7}``, the position of the first error (0 if balanced).
* ``dyck_language_reasoning_errors``: ``\\boxed{2,5}`` or ``\\boxed{none}``, the wrong thoughts of a
  stack trace (any order).
"""

from __future__ import annotations

import random
from typing import Any

from veritas_rl.envs.answers import distinct_answers
from veritas_rl.envs.base import Score, Task
from veritas_rl.envs.lgc_v2.common import (
    CONFLICTING_ANSWERS,
    MAX_ANSWER_CHARS,
    TaskType,
    answer_line_slots,
    digits,
    oracle_boxed,
    same_answer,
    score_boxed,
    score_boxed_int,
    task_rng,
    text_value,
)

BRACKETS = ("()", "[]", "{}", "<>")
CLOSER_OF = {pair[0]: pair[1] for pair in BRACKETS}
OPENERS = frozenset(CLOSER_OF)
CLOSERS = frozenset(CLOSER_OF.values())


def _dyck_prefix(rng: random.Random, length: int, kinds: int) -> tuple[list[str], list[str]]:
    """A random prefix of a Dyck word of ``length`` symbols that leaves at least one bracket open.

    Returns ``(symbols, open_stack)``.
    """
    openers = [pair[0] for pair in BRACKETS[:kinds]]
    seq: list[str] = []
    stack: list[str] = []
    for i in range(length):
        remaining = length - i
        # close only while enough symbols remain to keep one bracket open at the end
        if stack and (len(stack) > 1 or remaining > 1) and rng.random() < 0.45:
            seq.append(CLOSER_OF[stack.pop()])
        else:
            o = rng.choice(openers)
            seq.append(o)
            stack.append(o)
    if not stack:  # only possible for length 0
        o = rng.choice(openers)
        seq.append(o)
        stack.append(o)
    return seq, stack


def _closing(stack: list[str]) -> str:
    return "".join(CLOSER_OF[o] for o in reversed(stack))


def first_error(seq: list[str] | str) -> int:
    """1-based position of the first bracket that breaks balance; 0 when balanced.

    A closer with no matching opener is the error; if every closer matches but some opener is never
    closed, the error is the first such opener.
    """
    stack: list[int] = []
    for i, c in enumerate(seq):
        if c in OPENERS:
            stack.append(i)
        else:
            if not stack or CLOSER_OF[seq[stack[-1]]] != c:
                return i + 1
            stack.pop()
    return stack[0] + 1 if stack else 0


def _gen_dyck_language(cfg: Any, seed: int) -> dict[str, Any]:
    rng = task_rng("dyck_language", seed)
    length = rng.randint(cfg.dyck_min_length, cfg.dyck_max_length)
    seq, stack = _dyck_prefix(rng, length, cfg.dyck_num_types)
    gold = _closing(stack)
    prompt = (
        "Complete the rest of the sequence, making sure that the parentheses are closed properly.\n"
        f"Input: {' '.join(seq)}\n\n"
        "End with a final line that starts with `Answer:` followed by only the missing closing brackets, "
        "in order, separated by spaces."
    )
    return {"prompt": prompt, "ground_truth": gold, "extra": {"sequence": "".join(seq)}}


def _closers(slot: str) -> str:
    got = "".join(slot.split()).strip("`*$.")  # **Answer:** `) ] }`.
    if got.startswith("\\boxed{") and got.endswith("}"):  # Answer: $\boxed{) ] }}$ (the last } closes the box)
        got = got[len("\\boxed{") : -1].strip("`*$.")
    return got


def _judge_dyck_language(task: Task, slot: str) -> Score:
    got = _closers(slot)
    if len(got) > MAX_ANSWER_CHARS:
        return Score.zero("answer too long", kind="too_long")
    if not got or any(c not in CLOSERS for c in got):
        return Score.zero("answer is not a sequence of closing brackets", kind="no_answer", answer=got[:100])
    if got != task.ground_truth:
        return Score.zero("wrong closing sequence", answer=got[:100], expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


def _score_dyck_language(task: Task, answer: str) -> Score:
    slots = answer_line_slots(answer)
    if not slots:
        return Score.zero("no `Answer:` line", kind="no_answer")
    stated = [s for s in slots if _closers(s)]  # an empty `Answer:` (a heading) states nothing
    if len(distinct_answers(stated, same_answer(task, _judge_dyck_language, _closers))) > 1:
        return Score.zero(CONFLICTING_ANSWERS, kind="hedge")
    return _judge_dyck_language(task, slots[-1])


def _oracle_dyck_language(task: Task) -> str:
    return "Closing the open brackets from the inside out.\nAnswer: " + " ".join(task.ground_truth)


def _gen_dyck_language2(cfg: Any, seed: int) -> dict[str, Any]:
    rng = task_rng("dyck_language2", seed)
    length = rng.randint(cfg.dyck_min_length, cfg.dyck_max_length)
    seq, stack = _dyck_prefix(rng, length, cfg.dyck_num_types)
    seq += [CLOSER_OF[o] for o in reversed(stack)]  # a balanced word
    kind = rng.randrange(4)
    closers = [i for i, c in enumerate(seq) if c in CLOSERS]
    kinds_used = BRACKETS[: cfg.dyck_num_types]
    if kind == 1 and cfg.dyck_num_types > 1:  # a closer of the wrong kind
        i = rng.choice(closers)
        seq[i] = rng.choice([p[1] for p in kinds_used if p[1] != seq[i]])
    elif kind == 2:  # a closer dropped
        del seq[rng.choice(closers)]
    elif kind == 3:  # a stray closer inserted
        seq.insert(rng.randrange(len(seq) + 1), rng.choice(kinds_used)[1])
    gold = first_error(seq)
    prompt = (
        "Check whether this bracket sequence is balanced (every opener closed by the matching closer, "
        "properly nested):\n"
        f"{' '.join(seq)}\n\n"
        "Number the brackets from 1. If the sequence is balanced, the answer is 0. Otherwise the answer is "
        "the position of the first closing bracket that does not match an open bracket; if every closer "
        "matches but some brackets are never closed, it is the position of the first opener left unclosed.\n"
        "Put the number inside \\boxed{}."
    )
    return {"prompt": prompt, "ground_truth": str(gold), "extra": {"sequence": "".join(seq)}}


def _stack_text(stack: list[str]) -> str:
    return " ".join(stack) if stack else "empty"


def _corrupt_stack(rng: random.Random, stack: list[str], kinds: int) -> list[str]:
    openers = [pair[0] for pair in BRACKETS[: max(kinds, 2)]]
    while True:
        bad = list(stack)
        move = rng.randrange(3)
        if move == 0 and bad:
            del bad[rng.randrange(len(bad))]
        elif move == 1 and bad:
            i = rng.randrange(len(bad))
            bad[i] = rng.choice([o for o in openers if o != bad[i]])
        else:
            bad.insert(rng.randrange(len(bad) + 1), rng.choice(openers))
        if bad != stack:
            return bad


def _gen_dyck_reasoning_errors(cfg: Any, seed: int) -> dict[str, Any]:
    rng = task_rng("dyck_language_reasoning_errors", seed)
    length = rng.randint(max(cfg.dyck_min_length, 3), max(cfg.dyck_max_length, 3))
    seq, _ = _dyck_prefix(rng, length, cfg.dyck_num_types)
    true_stacks: list[list[str]] = []
    stack: list[str] = []
    for c in seq:
        if c in OPENERS:
            stack.append(c)
        else:
            stack.pop()
        true_stacks.append(list(stack))
    # thought 1 is the plan; thought k+1 processes symbol k
    n_errors = rng.randint(0, min(cfg.dyck_max_errors, len(seq)))
    wrong = set(rng.sample(range(len(seq)), n_errors))
    lines = ["Thought 1: We process the input one symbol at a time and keep track of the stack of open brackets."]
    gold: list[int] = []
    for k, c in enumerate(seq):
        shown = _corrupt_stack(rng, true_stacks[k], cfg.dyck_num_types) if k in wrong else true_stacks[k]
        if shown != true_stacks[k]:
            gold.append(k + 2)
        lines.append(f"Thought {k + 2}: {c} ; stack: {_stack_text(shown)}")
    lines.append(f"Thought {len(seq) + 2}: We have reached the end of the input.")
    prompt = (
        "You are given a bracket sequence and a step-by-step trace that tracks the stack of open brackets "
        "while reading it. A thought is wrong when the stack it states differs from the true stack after "
        "reading every symbol up to and including that thought's symbol (stacks are written bottom to top).\n\n"
        f"Input: {' '.join(seq)}\n\n" + "\n".join(lines) + "\n\n"
        "Which thoughts are wrong? Answer with their numbers in increasing order, comma-separated, in "
        "\\boxed{} (numbers separated by commas), or put the word none inside \\boxed{} if every thought is right."
    )
    truth = ",".join(map(str, gold)) if gold else "none"
    return {"prompt": prompt, "ground_truth": truth, "extra": {"sequence": "".join(seq)}}


def _parse_index_set(text: str) -> set[int] | None:
    s = text.strip().strip("$").strip()
    if s.lower() in ("none", "\\emptyset", "\\varnothing", "∅", "\\text{none}", "\\{\\}"):
        return set()
    parts = [p.strip() for p in s.split(",")]
    if not all(digits(p) and len(p) < 10 for p in parts):
        return None
    values = [int(p) for p in parts]
    if len(set(values)) != len(values):
        return None
    return set(values)


def _judge_reasoning_errors(task: Task, slot: str) -> Score:
    if len(slot) > MAX_ANSWER_CHARS:
        return Score.zero("boxed answer too long", kind="too_long")
    got = _parse_index_set(slot)
    if got is None:
        return Score.zero(
            "boxed answer is not a comma-separated list of thought numbers or 'none'", kind="no_answer",
            answer=slot[:100],
        )
    want = _parse_index_set(task.ground_truth)
    if got != want:
        return Score.zero("wrong set of thoughts", answer=slot[:100], expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


def _index_set_value(slot: str) -> object:
    got = _parse_index_set(slot) if len(slot) <= MAX_ANSWER_CHARS else None
    return text_value(slot) if got is None else frozenset(got)


def _score_reasoning_errors(task: Task, answer: str) -> Score:
    return score_boxed(task, answer, _judge_reasoning_errors, _index_set_value)


DYCK_LANGUAGE = TaskType(
    "dyck_language", generate=_gen_dyck_language, score=_score_dyck_language, oracle=_oracle_dyck_language
)
DYCK_LANGUAGE2 = TaskType("dyck_language2", generate=_gen_dyck_language2, score=score_boxed_int, oracle=oracle_boxed)
REASONING_ERRORS = TaskType(
    "dyck_language_reasoning_errors",
    generate=_gen_dyck_reasoning_errors,
    score=_score_reasoning_errors,
    oracle=oracle_boxed,
)

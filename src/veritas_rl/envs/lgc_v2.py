"""``lgc-v2``: eight procedurally generated logic and arithmetic task types with exact, binary scorers.

``task_id = type_id * 100_000_000 + seed``; a task is a pure function of ``(config, task_id)``. Every
prompt states its answer format; every scorer accepts any correct answer where several exist (any
expression that makes 24, any sudoku grid that satisfies the givens, any cryptarithm mapping that
makes the sum true).

Task types (id: name — answer format):

* 0: ``dyck_language`` — final line ``Answer: ) ] }`` (the missing closers)
* 1: ``game_of_24`` — ``\\boxed{(8-4)*(7-1)}`` (any expression that makes 24)
* 2: ``operation`` — ``\\boxed{42}``
* 3: ``cryptarithm`` — ``\\boxed{A=1,B=2,...}`` (reasoning-gym generator and verifier)
* 4: ``dyck_language2`` — ``\\boxed{7}`` (position of the first error, 0 if balanced)
* 6: ``boolean_expressions`` — ``\\boxed{True}`` / ``\\boxed{False}``
* 7: ``sudoku`` — the 9x9 grid in a fenced code block
* 8: ``dyck_language_reasoning_errors`` — ``\\boxed{2,5}`` or ``\\boxed{none}`` (the wrong thoughts)
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

from veritas_rl.envs.answers import after_last_marker, boxed_answer, last_fenced_block
from veritas_rl.envs.base import Env, Score, Task, register_env, seeded_rng

#: task type name -> type id (the id is the leading part of the task id; 5 is unused).
TASK_TYPES: dict[str, int] = {
    "dyck_language": 0,
    "game_of_24": 1,
    "operation": 2,
    "cryptarithm": 3,
    "dyck_language2": 4,
    "boolean_expressions": 6,
    "sudoku": 7,
    "dyck_language_reasoning_errors": 8,
}
TYPE_NAMES: dict[int, str] = {v: k for k, v in TASK_TYPES.items()}
SEEDS_PER_TYPE = 100_000_000

BRACKETS = ("()", "[]", "{}", "<>")
CLOSER_OF = {pair[0]: pair[1] for pair in BRACKETS}
OPENERS = frozenset(CLOSER_OF)
CLOSERS = frozenset(CLOSER_OF.values())

#: answers longer than this (after extraction) are not parsed
MAX_ANSWER_CHARS = 2_000


def _in_range(key: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{key}={value!r} is not valid; expected an integer in [{lo}, {hi}]")


def _ordered(lo_key: str, lo: int, hi_key: str, hi: int) -> None:
    if lo > hi:
        raise ValueError(f"{lo_key}={lo} is greater than {hi_key}={hi}")


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
        _in_range("dyck_num_types", self.dyck_num_types, 1, len(BRACKETS))
        _in_range("dyck_min_length", self.dyck_min_length, 2, 500)
        _in_range("dyck_max_length", self.dyck_max_length, 2, 500)
        _ordered("dyck_min_length", self.dyck_min_length, "dyck_max_length", self.dyck_max_length)
        _in_range("dyck_max_errors", self.dyck_max_errors, 1, 10)
        _in_range("game24_min_value", self.game24_min_value, 1, 100)
        _in_range("game24_max_value", self.game24_max_value, 1, 100)
        _ordered("game24_min_value", self.game24_min_value, "game24_max_value", self.game24_max_value)
        _in_range("operation_max_ops", self.operation_max_ops, 1, 6)
        _in_range("operation_max_value", self.operation_max_value, 1, 99)
        _in_range("cryptarithm_min_words", self.cryptarithm_min_words, 2, 10)
        _in_range("cryptarithm_max_words", self.cryptarithm_max_words, 2, 10)
        _ordered(
            "cryptarithm_min_words", self.cryptarithm_min_words, "cryptarithm_max_words", self.cryptarithm_max_words
        )
        _in_range("boolean_max_depth", self.boolean_max_depth, 1, 8)
        _in_range("sudoku_min_empty", self.sudoku_min_empty, 1, 64)
        _in_range("sudoku_max_empty", self.sudoku_max_empty, 1, 64)
        _ordered("sudoku_min_empty", self.sudoku_min_empty, "sudoku_max_empty", self.sudoku_max_empty)


def _user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


# =============================================================================================
# dyck languages (0, 4, 8) — our own generators
# =============================================================================================


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


def _first_error(seq: list[str] | str) -> int:
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


def _gen_dyck_language(cfg: LgcV2Config, rng: random.Random) -> dict[str, Any]:
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


def _score_dyck_language(task: Task, answer: str) -> Score:
    slot = after_last_marker(answer, "answer:")
    if slot is None:
        return Score.zero("no `Answer:` line")
    got = "".join(slot.split()).strip("`*$.")  # **Answer:** `) ] }`.
    if not got or len(got) > MAX_ANSWER_CHARS or any(c not in CLOSERS for c in got):
        return Score.zero("answer is not a sequence of closing brackets", answer=got[:100])
    if got != task.ground_truth:
        return Score.zero("wrong closing sequence", answer=got[:100], expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


def _oracle_dyck_language(task: Task) -> str:
    return "Closing the open brackets from the inside out.\nAnswer: " + " ".join(task.ground_truth)


def _gen_dyck_language2(cfg: LgcV2Config, rng: random.Random) -> dict[str, Any]:
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
    gold = _first_error(seq)
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


def _score_boxed_int(task: Task, answer: str) -> Score:
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


def _oracle_boxed(task: Task) -> str:
    return f"The result is \\boxed{{{task.ground_truth}}}"


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


def _gen_dyck_reasoning_errors(cfg: LgcV2Config, rng: random.Random) -> dict[str, Any]:
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
    if s.lower() in ("none", "\\emptyset", "\\text{none}"):
        return set()
    s = s.strip("[]()")
    parts = [p.strip() for p in s.split(",")]
    if not all(p.isdigit() and len(p) < 10 for p in parts):
        return None
    values = [int(p) for p in parts]
    if len(set(values)) != len(values):
        return None
    return set(values)


def _score_reasoning_errors(task: Task, answer: str) -> Score:
    slot, why = boxed_answer(answer)
    if slot is None:
        return Score.zero(why)
    if len(slot) > MAX_ANSWER_CHARS:
        return Score.zero("boxed answer too long")
    got = _parse_index_set(slot)
    if got is None:
        return Score.zero("boxed answer is not a comma-separated list of thought numbers or 'none'", answer=slot[:100])
    want = _parse_index_set(task.ground_truth)
    if got != want:
        return Score.zero("wrong set of thoughts", answer=slot[:100], expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


# =============================================================================================
# game of 24 (1) — our generator with a solvability memo; a tiny exact parser as verifier
# =============================================================================================

def solve_24(numbers: tuple[int, ...], target: int = 24) -> str | None:
    """An expression that uses each of ``numbers`` once with + - * / and makes ``target``, or ``None``.

    Dynamic programming over subsets of the numbers with values deduplicated (floats, so the search
    is fast); the expression found is re-checked exactly with :func:`parse_arithmetic`.
    """
    n = len(numbers)
    full = (1 << n) - 1
    # mask -> {rounded value: (value, how)}; how = a leaf int or (op, left node, right node)
    reach: dict[int, dict[float, tuple[float, Any]]] = {}
    for i, v in enumerate(numbers):
        reach.setdefault(1 << i, {})[float(v)] = (float(v), v)
    for mask in range(1, full + 1):
        if mask & (mask - 1) == 0:
            continue
        out: dict[float, tuple[float, Any]] = {}
        sub = (mask - 1) & mask
        while sub:
            other = mask ^ sub
            if sub < other:  # each unordered split once; both operand orders below
                right_nodes = list(reach[other].values())
                for na in reach[sub].values():
                    a = na[0]
                    for nb in right_nodes:
                        b = nb[0]
                        for value, how in (
                            (a + b, ("+", na, nb)),
                            (a * b, ("*", na, nb)),
                            (a - b, ("-", na, nb)),
                            (b - a, ("-", nb, na)),
                            (a / b if b else None, ("/", na, nb)),
                            (b / a if a else None, ("/", nb, na)),
                        ):
                            if value is None:
                                continue
                            if mask == full:  # no need to keep values: stop at the target
                                if abs(value - target) < 1e-9:
                                    found = _render(how, top=True)
                                    if _exact_value(found) == target:
                                        return found
                            else:
                                key = round(value, 9)
                                if key not in out:
                                    out[key] = (value, how)
            sub = (sub - 1) & mask
        reach[mask] = out
    if n == 1 and numbers[0] == target:
        return str(numbers[0])
    return None


def _exact_value(expr: str) -> Fraction | None:
    try:
        return parse_arithmetic(expr)[0]
    except ExpressionError:
        return None


def _render(how: Any, top: bool = False) -> str:
    if isinstance(how, int):
        return str(how)
    op, left, right = how
    text = f"{_render(left[1])}{op}{_render(right[1])}"
    return text if top else f"({text})"


class ExpressionError(ValueError):
    """The answer is not a well-formed arithmetic expression."""


def parse_arithmetic(text: str) -> tuple[Fraction, list[int]]:
    """Evaluate ``text`` (integers, + - * /, parentheses; no unary minus) exactly.

    Returns ``(value, integer literals used)``. Raises :class:`ExpressionError` on anything else,
    including division by zero. Recursion depth is bounded by the caller's length limit.
    """
    tokens: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c.isdigit():
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            tokens.append(text[i:j])
            i = j
        elif c in "+-*/()":
            tokens.append(c)
            i += 1
        else:
            raise ExpressionError(f"unexpected character {c!r}")
    pos = 0
    literals: list[int] = []

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def expr() -> Fraction:
        nonlocal pos
        value = term()
        while peek() in ("+", "-"):
            op = tokens[pos]
            pos += 1
            rhs = term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def term() -> Fraction:
        nonlocal pos
        value = atom()
        while peek() in ("*", "/"):
            op = tokens[pos]
            pos += 1
            rhs = atom()
            if op == "/":
                if rhs == 0:
                    raise ExpressionError("division by zero")
                value = value / rhs
            else:
                value = value * rhs
        return value

    def atom() -> Fraction:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise ExpressionError("expression ends early")
        if tok == "(":
            pos += 1
            value = expr()
            if peek() != ")":
                raise ExpressionError("missing ')'")
            pos += 1
            return value
        if tok.isdigit():
            pos += 1
            literals.append(int(tok))
            return Fraction(int(tok))
        raise ExpressionError(f"unexpected token {tok!r}")

    value = expr()
    if pos != len(tokens):
        raise ExpressionError(f"unexpected token {tokens[pos]!r}")
    return value, literals


_LATEX_OPS = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("×", "*"), ("·", "*"), ("÷", "/"), ("−", "-"),
              ("\\left", ""), ("\\right", ""), ("[", "("), ("]", ")"), ("{", "("), ("}", ")"), ("$", ""))


def _brace_group(text: str, at: int) -> int:
    """Index just past the ``{...}`` group that opens at ``text[at]``, or -1."""
    if at >= len(text) or text[at] != "{":
        return -1
    depth = 0
    for j in range(at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return j + 1
    return -1


def _latex_fractions(expr: str) -> str:
    r"""``\frac{a}{b}`` (and ``\dfrac``, ``\tfrac``) -> ``((a)/(b))``, outermost first, at most 16."""
    for name in ("\\dfrac", "\\tfrac"):
        expr = expr.replace(name, "\\frac")
    for _ in range(16):
        at = expr.find("\\frac")
        if at < 0:
            break
        num_end = _brace_group(expr, at + 5)
        den_end = _brace_group(expr, num_end) if num_end > 0 else -1
        if den_end < 0:
            break
        num, den = expr[at + 6 : num_end - 1], expr[num_end + 1 : den_end - 1]
        expr = f"{expr[:at]}(({num})/({den})){expr[den_end:]}"
    return expr


@functools.lru_cache(maxsize=200_000)
def _solution_of_sorted(numbers: tuple[int, ...]) -> str | None:
    """Memo of :func:`solve_24` by multiset (a pure function: shared by every env in the process)."""
    return solve_24(numbers)


class _Game24:
    """Draws solvable 4-number puzzles (rejection sampling over the memoised solver)."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi
        if not any(self._solution(combo) for combo in self._some_combos()):
            raise ValueError(f"game24_min_value={lo}, game24_max_value={hi}: no solvable 4-number puzzle in this range")

    def _some_combos(self):
        import itertools

        values = range(self.lo, self.hi + 1)
        return itertools.islice(itertools.combinations_with_replacement(values, 4), 400)

    @staticmethod
    def _solution(numbers: tuple[int, ...]) -> str | None:
        return _solution_of_sorted(tuple(sorted(numbers)))

    def generate(self, rng: random.Random) -> dict[str, Any]:
        while True:
            numbers = [rng.randint(self.lo, self.hi) for _ in range(4)]
            solution = self._solution(tuple(numbers))
            if solution is not None:
                break
        listed = ", ".join(map(str, numbers))
        prompt = (
            f"Use the numbers {listed} to make 24. Use each number exactly once, with + - * / and "
            "parentheses (no other numbers, no concatenating digits, no unary minus).\n"
            "Put one expression using your four numbers inside \\boxed{}, without '= 24'."
        )
        return {"prompt": prompt, "ground_truth": solution, "extra": {"numbers": numbers, "target": 24}}


def _score_game_of_24(task: Task, answer: str) -> Score:
    slot, why = boxed_answer(answer)
    if slot is None:
        return Score.zero(why)
    if len(slot) > 200:
        return Score.zero("boxed expression too long")
    expr = slot
    target = int(task.extra.get("target", 24))
    if "=" in expr:
        left, _, right = expr.partition("=")
        if right.strip().strip("$") not in ("", str(target)):
            return Score.zero("expression is an equation with something other than the target", answer=slot)
        expr = left
    expr = _latex_fractions(expr)
    for a, b in _LATEX_OPS:
        expr = expr.replace(a, b)
    try:
        value, used = parse_arithmetic(expr)
    except ExpressionError as err:
        return Score.zero(f"not a valid arithmetic expression: {err}", answer=slot)
    if sorted(used) != sorted(int(n) for n in task.extra["numbers"]):
        return Score.zero("does not use each given number exactly once", answer=slot, used=used)
    if value != target:
        return Score.zero(f"expression evaluates to {value}, not {target}", answer=slot)
    return Score(1.0, {"reason": "correct"})


def _oracle_game_of_24(task: Task) -> str:
    return f"\\boxed{{{task.ground_truth}}}"


# =============================================================================================
# operation (2) — user-defined operators (our own generator)
# =============================================================================================

# (definition shown to the model, exact function). Every function maps ints to ints.
_OPERATION_TEMPLATES: tuple[tuple[str, Callable[..., int]], ...] = (
    ("{p}*a + {q}*b", lambda a, b, p, q: p * a + q * b),
    ("a*b + {p}*a", lambda a, b, p, q: a * b + p * a),
    ("{p}*a - {q}*b", lambda a, b, p, q: p * a - q * b),
    ("(a + b) * {p} - a", lambda a, b, p, q: (a + b) * p - a),
    ("a*a - {q}*b", lambda a, b, p, q: a * a - q * b),
    ("a + b if a > b else a*b - {p}", lambda a, b, p, q: a + b if a > b else a * b - p),
    ("max(a, b) * {p} + min(a, b)", lambda a, b, p, q: max(a, b) * p + min(a, b)),
    ("(a - b) * (a + {q})", lambda a, b, p, q: (a - b) * (a + q)),
)
_SYMBOLS = ("⊕", "⊗", "△", "◇")


def _gen_operation(cfg: LgcV2Config, rng: random.Random) -> dict[str, Any]:
    n_defs = rng.randint(1, 2)
    symbols = rng.sample(_SYMBOLS, n_defs)
    defs = []
    for sym in symbols:
        idx = rng.randrange(len(_OPERATION_TEMPLATES))
        p, q = rng.randint(1, 5), rng.randint(1, 5)
        defs.append((sym, idx, p, q))
    n_ops = rng.randint(1, cfg.operation_max_ops)

    def build(n: int) -> tuple[str, int, bool]:
        """An expression with ``n`` operators: (text, value, is_compound)."""
        if n == 0:
            v = rng.randint(1, cfg.operation_max_value)
            return str(v), v, False
        left_n = rng.randint(0, n - 1)
        lt, lv, lc = build(left_n)
        rt, rv, rc = build(n - 1 - left_n)
        sym, idx, p, q = rng.choice(defs)
        value = _OPERATION_TEMPLATES[idx][1](lv, rv, p, q)
        lt = f"({lt})" if lc else lt
        rt = f"({rt})" if rc else rt
        return f"{lt} {sym} {rt}", value, True

    text, value, _ = build(n_ops)
    definitions = "\n".join(
        f"  a {sym} b = {_OPERATION_TEMPLATES[idx][0].format(p=p, q=q)}" for sym, idx, p, q in defs
    )
    prompt = (
        "New operators are defined for integers a and b as follows:\n"
        f"{definitions}\n"
        "Parentheses are evaluated first; the usual arithmetic inside a definition applies.\n"
        f"Compute: {text}\n"
        "Put the integer result inside \\boxed{}."
    )
    return {"prompt": prompt, "ground_truth": str(value), "extra": {"expression": text}}


# =============================================================================================
# cryptarithm (3) — reasoning-gym generator and verifier
# =============================================================================================


class _Cryptarithm:
    def __init__(self, cfg: LgcV2Config):
        from reasoning_gym.algorithmic.cryptarithm import CryptarithmConfig, CryptarithmDataset

        rg_cfg = CryptarithmConfig(
            min_words=cfg.cryptarithm_min_words,
            max_words=cfg.cryptarithm_max_words,
            allow_leading_zero=cfg.cryptarithm_allow_leading_zero,
            seed=0,
            size=SEEDS_PER_TYPE,
        )
        # items are generated lazily: ``dataset[i]`` uses ``Random(0 + i)`` — a pure function of i
        self.dataset = CryptarithmDataset(rg_cfg)

    def generate(self, seed: int) -> dict[str, Any]:
        item = self.dataset[seed]
        meta = item["metadata"]
        words, result = meta["words_letters"], meta["result_letters"]
        lines = [" + ".join(words) + f" = {result}", ""]
        width = max(len(w) for w in words + [result]) + 2
        for i, w in enumerate(words):
            lines.append(("+ " if i == len(words) - 1 else "  ") + w.rjust(width - 2))
        lines += ["-" * width, result.rjust(width)]
        leading = (
            "Leading letters may be zero."
            if meta["allow_leading_zero"]
            else "No number starts with zero (a leading letter is never 0)."
        )
        prompt = (
            "Solve this cryptarithm (an addition where each letter stands for a digit):\n\n"
            + "\n".join(lines)
            + f"\n\nDifferent letters stand for different digits (0-9). {leading}\n"
            "Give the digit of every letter inside \\boxed{}, as LETTER=DIGIT pairs separated by commas."
        )
        return {
            "prompt": prompt,
            "ground_truth": item["answer"],
            "extra": {"words": list(words), "result": result, "allow_leading_zero": bool(meta["allow_leading_zero"])},
        }


def _score_cryptarithm(task: Task, answer: str) -> Score:
    from reasoning_gym.algorithmic.cryptarithm import verify_cryptarithm_solution

    slot, why = boxed_answer(answer)
    if slot is None:
        return Score.zero(why)
    if len(slot) > 400:
        return Score.zero("boxed answer too long")
    mapping: dict[str, int] = {}
    for pair in slot.replace("$", "").replace(";", ",").split(","):
        if not pair.strip():
            continue
        letter, eq, digit = pair.partition("=")
        letter, digit = letter.strip(), digit.strip()
        if not eq or len(letter) != 1 or not letter.isupper() or len(digit) != 1 or not digit.isdigit():
            return Score.zero("mapping is not of the form A=1,B=2", answer=slot[:100])
        if letter in mapping:
            return Score.zero(f"letter {letter} mapped twice", answer=slot[:100])
        mapping[letter] = int(digit)
    ok, why = verify_cryptarithm_solution(
        mapping, task.extra["words"], task.extra["result"], bool(task.extra["allow_leading_zero"])
    )
    if not ok:
        return Score.zero(f"mapping does not solve the puzzle: {why}", answer=slot[:100])
    return Score(1.0, {"reason": "correct"})


# =============================================================================================
# boolean expressions (6) — our own generator, evaluated from the tree (no eval)
# =============================================================================================


def _gen_boolean(cfg: LgcV2Config, rng: random.Random) -> dict[str, Any]:
    def build(depth: int) -> tuple[str, bool, str]:
        """(text, value, kind) with kind in literal / not / binary."""
        if depth == 0 or rng.random() < 0.25:
            v = rng.random() < 0.5
            return ("True" if v else "False"), v, "literal"
        if rng.random() < 0.25:
            text, value, kind = build(depth - 1)
            if kind == "binary":
                text = f"( {text} )"
            return f"not {text}", not value, "not"
        op = rng.choice(("and", "or"))
        lt, lv, lk = build(depth - 1)
        rt, rv, rk = build(depth - 1)
        lt = f"( {lt} )" if lk == "binary" else lt
        rt = f"( {rt} )" if rk == "binary" else rt
        return f"{lt} {op} {rt}", (lv and rv) if op == "and" else (lv or rv), "binary"

    depth = rng.randint(1, cfg.boolean_max_depth)
    text, value, kind = build(depth)
    while kind == "literal":  # at least one operator
        text, value, kind = build(depth)
    prompt = (
        "Evaluate this Boolean expression (`not` binds tighter than `and`, which binds tighter than `or`):\n"
        f"{text}\n"
        "Put the result, the word True or the word False, inside \\boxed{}."
    )
    return {"prompt": prompt, "ground_truth": "True" if value else "False", "extra": {"expression": text}}


def _score_boolean(task: Task, answer: str) -> Score:
    slot, why = boxed_answer(answer)
    if slot is None:
        return Score.zero(why)
    got = slot.strip().strip("$").strip().replace("\\text{", "").replace("\\mathrm{", "").strip("{} ").lower()
    if got not in ("true", "false"):
        return Score.zero("boxed answer is not True or False", answer=slot[:100])
    if got != task.ground_truth.lower():
        return Score.zero("wrong truth value", answer=slot[:100], expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


# =============================================================================================
# sudoku (7) — our own fast generator; any grid that satisfies the givens is accepted
# =============================================================================================


def _shuffled_groups(rng: random.Random) -> list[int]:
    bands = [0, 1, 2]
    rng.shuffle(bands)
    order = []
    for band in bands:
        inner = [0, 1, 2]
        rng.shuffle(inner)
        order += [band * 3 + i for i in inner]
    return order


def _gen_sudoku(cfg: LgcV2Config, rng: random.Random) -> dict[str, Any]:
    rows, cols = _shuffled_groups(rng), _shuffled_groups(rng)
    digits = list(range(1, 10))
    rng.shuffle(digits)
    solution = [digits[(r * 3 + r // 3 + c) % 9] for r in rows for c in cols]  # a valid grid, permuted
    if rng.random() < 0.5:  # transpose
        solution = [solution[c * 9 + r] for r in range(9) for c in range(9)]
    n_empty = rng.randint(cfg.sudoku_min_empty, cfg.sudoku_max_empty)
    puzzle = list(solution)
    for cell in rng.sample(range(81), n_empty):
        puzzle[cell] = 0
    return _sudoku_task(puzzle, solution)


def _sudoku_task(puzzle: list[int], solution: list[int]) -> dict[str, Any]:
    grid = "\n".join(" ".join(str(v) if v else "_" for v in puzzle[r * 9 : r * 9 + 9]) for r in range(9))
    prompt = (
        "Solve this Sudoku puzzle (`_` is an empty cell). Fill every empty cell with a digit 1-9 so that each "
        "row, each column and each 3x3 box contains every digit exactly once; keep the given digits.\n\n"
        f"{grid}\n\n"
        "Answer with the completed 9x9 grid inside a fenced code block (```), one row per line, digits "
        "separated by spaces."
    )
    return {
        "prompt": prompt,
        "ground_truth": "".join(map(str, solution)),
        "extra": {"puzzle": "".join(str(v) if v else "." for v in puzzle)},
    }


class _UniqueSudoku:
    """reasoning-gym's sudoku generator: blanks removed only while the solution stays unique."""

    def __init__(self, cfg: LgcV2Config):
        from reasoning_gym.games.sudoku import SudokuConfig, SudokuDataset

        rg_cfg = SudokuConfig(
            min_empty=cfg.sudoku_min_empty, max_empty=cfg.sudoku_max_empty, seed=0, size=SEEDS_PER_TYPE
        )
        self.dataset = SudokuDataset(rg_cfg)  # item i uses Random(0 + i): a pure function of i

    def generate(self, seed: int) -> dict[str, Any]:
        meta = self.dataset[seed]["metadata"]
        return _sudoku_task([v for row in meta["puzzle"] for v in row], [v for row in meta["solution"] for v in row])


def _parse_grid(block: str) -> str | None:
    """The 81 digits of a 9x9 grid (spaces, ``|`` and ``,`` between digits, rule lines between rows allowed)."""
    rows: list[str] = []
    for line in block.split("\n"):
        digits = line.replace(" ", "").replace("|", "").replace(",", "").replace("\t", "")
        if not digits or not digits.strip("+-=_.*:"):
            continue  # blank or separator line (------+------)
        if len(digits) != 9 or not digits.isdigit() or "0" in digits:
            return None
        rows.append(digits)
    return "".join(rows) if len(rows) == 9 else None


_BOX_STARTS = (0, 3, 6, 27, 30, 33, 54, 57, 60)


def _score_sudoku(task: Task, answer: str) -> Score:
    block = last_fenced_block(answer)
    if block is None:
        return Score.zero("no fenced ``` block with the grid")
    if len(block) > MAX_ANSWER_CHARS:
        return Score.zero("grid block too long")
    grid = _parse_grid(block)
    if grid is None:
        return Score.zero("fenced block is not a 9x9 grid of digits 1-9")
    givens = task.extra["puzzle"]  # 81 characters, "." for an empty cell
    for i, (g, f) in enumerate(zip(givens, grid)):
        if g != f and g != ".":
            return Score.zero(f"changes the given digit at row {i // 9 + 1}, column {i % 9 + 1}")
    # digits are 1-9, so nine distinct ones in a unit are all of them
    for k in range(9):
        b = _BOX_STARTS[k]
        if (
            len(set(grid[k * 9 : k * 9 + 9])) != 9
            or len(set(grid[k::9])) != 9
            or len(set(grid[b : b + 3] + grid[b + 9 : b + 12] + grid[b + 18 : b + 21])) != 9
        ):
            return Score.zero("a row, column or box repeats a digit")
    return Score(1.0, {"reason": "correct"})


def _oracle_sudoku(task: Task) -> str:
    sol = task.ground_truth
    rows = "\n".join(" ".join(sol[r * 9 : r * 9 + 9]) for r in range(9))
    return f"```\n{rows}\n```"


# =============================================================================================
# the environment
# =============================================================================================

_SCORERS: dict[str, Callable[[Task, str], Score]] = {
    "dyck_language": _score_dyck_language,
    "game_of_24": _score_game_of_24,
    "operation": _score_boxed_int,
    "cryptarithm": _score_cryptarithm,
    "dyck_language2": _score_boxed_int,
    "boolean_expressions": _score_boolean,
    "sudoku": _score_sudoku,
    "dyck_language_reasoning_errors": _score_reasoning_errors,
}
_ORACLES: dict[str, Callable[[Task], str]] = {
    "dyck_language": _oracle_dyck_language,
    "game_of_24": _oracle_game_of_24,
    "operation": _oracle_boxed,
    "cryptarithm": lambda task: f"\\boxed{{{task.ground_truth}}}",
    "dyck_language2": _oracle_boxed,
    "boolean_expressions": _oracle_boxed,
    "sudoku": _oracle_sudoku,
    "dyck_language_reasoning_errors": _oracle_boxed,
}


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


class LgcV2Env(Env):
    """Logic puzzles (dyck languages, game of 24, operators, cryptarithm, boolean, sudoku) with exact scorers."""

    def __init__(self, config: LgcV2Config):
        super().__init__(config)
        # interleave types by id, whatever order the user listed them in
        self.types: tuple[str, ...] = tuple(sorted(config.task_types, key=TASK_TYPES.__getitem__))
        self._game24 = _Game24(config.game24_min_value, config.game24_max_value) if "game_of_24" in self.types else None
        self._crypt: _Cryptarithm | None = None
        self._unique_sudoku: _UniqueSudoku | None = None

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
        cfg = self.config
        if task_type == "cryptarithm":
            if self._crypt is None:
                self._crypt = _Cryptarithm(cfg)
            made = self._crypt.generate(seed)
        elif task_type == "sudoku" and cfg.sudoku_unique:
            if self._unique_sudoku is None:
                self._unique_sudoku = _UniqueSudoku(cfg)
            made = self._unique_sudoku.generate(seed)
        else:
            rng = seeded_rng("lgc-v2", task_type, seed)
            if task_type == "game_of_24":
                made = self._game24.generate(rng)
            else:
                made = _GENERATORS[task_type](cfg, rng)
        extra = {"task_type": task_type, "seed": seed, **made["extra"]}
        return Task(self.name, int(task_id), _user(made["prompt"]), made["ground_truth"], extra)

    def _task_type(self, task: Task) -> str | None:
        task_type = task.extra.get("task_type")
        if task_type not in _SCORERS:
            try:
                task_type = split_task_id(task.task_id)[0]
            except ValueError:
                return None
        return task_type

    def _score(self, task: Task, answer: str) -> Score:
        task_type = self._task_type(task)
        if task_type is None:
            raise ValueError(f"task {task.task_id} is not an lgc-v2 task: {json.dumps(task.extra)[:200]}")
        score = _SCORERS[task_type](task, answer)
        score.info.setdefault("task_type", task_type)
        return score

    def oracle(self, task: Task) -> str | None:
        task_type = self._task_type(task)
        return _ORACLES[task_type](task) if task_type else None


_GENERATORS: dict[str, Callable[[LgcV2Config, random.Random], dict[str, Any]]] = {
    "dyck_language": _gen_dyck_language,
    "operation": _gen_operation,
    "dyck_language2": _gen_dyck_language2,
    "boolean_expressions": _gen_boolean,
    "sudoku": _gen_sudoku,
    "dyck_language_reasoning_errors": _gen_dyck_reasoning_errors,
}

register_env("lgc-v2", LgcV2Env, LgcV2Config, aliases=("lgc_v2", "logic-v2", "logic_v2"))

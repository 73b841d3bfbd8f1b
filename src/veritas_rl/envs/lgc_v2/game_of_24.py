"""``game_of_24`` (id 1): make 24 from four numbers; ``\\boxed{(8-4)*(7-1)}``, any expression that makes 24.

Our generator draws solvable puzzles through a memoised solver (:func:`solve_24`); the verifier is a
tiny exact parser (:func:`parse_arithmetic`, fractions, no ``eval``, brackets nested at most
``MAX_NESTING`` deep). It is not :mod:`veritas_rl.envs.safe_expr`: that grammar also takes unary minus,
implicit products (``(1+2)(3+5)``), decimals and powers, which the prompt rules out; refusing them again
on its tree would need its tokens too, and it parses and evaluates ``(8-4)*(7-1)`` in 53 us against 17 us
here.

Several boxes are one answer only when they agree: any number of right expressions, or the same text.
"""

from __future__ import annotations

import functools
import itertools
from fractions import Fraction
from typing import Any

from veritas_rl.envs.base import Score, Task
from veritas_rl.envs.lgc_v2.common import MAX_NESTING, TaskType, digits, score_boxed, task_rng

#: longest boxed expression read (an expression of four numbers is about 20 characters)
MAX_EXPRESSION_CHARS = 200

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
    """The answer is not a well-formed arithmetic expression (``kind`` ``no_answer``), or nests brackets
    deeper than ``max_depth`` (``too_long``)."""

    def __init__(self, reason: str, kind: str = "no_answer"):
        super().__init__(reason)
        self.kind = kind


def parse_arithmetic(text: str, max_depth: int = MAX_NESTING) -> tuple[Fraction, list[int]]:
    """Evaluate ``text`` (integers, + - * /, parentheses; no unary minus) exactly.

    Returns ``(value, integer literals used)``. Raises :class:`ExpressionError` on anything else,
    including division by zero and parentheses nested deeper than ``max_depth`` (which bounds the
    recursion).
    """
    tokens: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif "0" <= c <= "9":
            j = i
            while j < len(text) and "0" <= text[j] <= "9":
                j += 1
            tokens.append(text[i:j])
            i = j
        elif c in "+-*/()":
            tokens.append(c)
            i += 1
        else:
            raise ExpressionError(f"unexpected character {c!r}")
    pos = 0
    depth = 0
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
        nonlocal pos, depth
        tok = peek()
        if tok is None:
            raise ExpressionError("expression ends early")
        if tok == "(":
            depth += 1
            if depth > max_depth:
                raise ExpressionError(f"brackets nested deeper than {max_depth}", "too_long")
            pos += 1
            value = expr()
            if peek() != ")":
                raise ExpressionError("missing ')'")
            pos += 1
            depth -= 1
            return value
        if digits(tok):
            pos += 1
            literals.append(int(tok))
            return Fraction(int(tok))
        raise ExpressionError(f"unexpected token {tok!r}")

    value = expr()
    if pos != len(tokens):
        raise ExpressionError(f"unexpected token {tokens[pos]!r}")
    return value, literals


#: LaTeX and Unicode spellings of the operators and brackets; markup and LaTeX spacing become a space, so
#: that ``1\\,2`` or ``1$2`` never reads as the number 12
_LATEX_OPS = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("×", "*"), ("·", "*"), ("÷", "/"), ("−", "-"),
              ("\\left", " "), ("\\right", " "), ("\\,", " "), ("\\;", " "), ("\\:", " "), ("\\!", " "),
              ("\\ ", " "), ("\\quad", " "), ("[", "("), ("]", ")"), ("{", "("), ("}", ")"), ("$", " "))


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


def _solution(numbers: tuple[int, ...]) -> str | None:
    return _solution_of_sorted(tuple(sorted(numbers)))


def _check(cfg: Any) -> None:
    """Refuse a value range without a solvable puzzle among its first 400 multisets."""
    lo, hi = cfg.game24_min_value, cfg.game24_max_value
    combos = itertools.islice(itertools.combinations_with_replacement(range(lo, hi + 1), 4), 400)
    if not any(_solution(combo) for combo in combos):
        raise ValueError(f"game24_min_value={lo}, game24_max_value={hi}: no solvable 4-number puzzle in this range")


def _generate(cfg: Any, seed: int) -> dict[str, Any]:
    """A solvable 4-number puzzle (rejection sampling over the memoised solver)."""
    rng = task_rng("game_of_24", seed)
    lo, hi = cfg.game24_min_value, cfg.game24_max_value
    while True:
        numbers = [rng.randint(lo, hi) for _ in range(4)]
        solution = _solution(tuple(numbers))
        if solution is not None:
            break
    listed = ", ".join(map(str, numbers))
    prompt = (
        f"Use the numbers {listed} to make 24. Use each number exactly once, with + - * / and "
        "parentheses (no other numbers, no concatenating digits, no unary minus).\n"
        "Put one expression using your four numbers inside \\boxed{}, without '= 24'."
    )
    return {"prompt": prompt, "ground_truth": solution, "extra": {"numbers": numbers, "target": 24}}


def _judge(task: Task, slot: str) -> Score:
    if len(slot) > MAX_EXPRESSION_CHARS:
        return Score.zero("boxed expression too long", kind="too_long")
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
        return Score.zero(f"not a valid arithmetic expression: {err}", kind=err.kind, answer=slot)
    if sorted(used) != sorted(int(n) for n in task.extra["numbers"]):
        return Score.zero("does not use each given number exactly once", kind="illegal", answer=slot, used=used)
    if value != target:
        return Score.zero(f"expression evaluates to {value}, not {target}", answer=slot)
    return Score(1.0, {"reason": "correct"})


def _score_game_of_24(task: Task, answer: str) -> Score:
    return score_boxed(task, answer, _judge)


def _oracle_game_of_24(task: Task) -> str:
    return f"\\boxed{{{task.ground_truth}}}"


GAME_OF_24 = TaskType(
    "game_of_24", generate=_generate, score=_score_game_of_24, oracle=_oracle_game_of_24, check=_check
)

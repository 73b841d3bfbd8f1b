"""Guards for the reasoning-gym datasets whose own ``score_answer`` *evaluates* the answer text.

An audit of reasoning-gym 0.1.25's installed source (every ``score_answer``; ``sympify``,
``parse_expr``, ``eval(``, ``exec(``, ``simplify``, ``literal_eval``; then the code-execution payload
run against every dataset's scorer) found nine such scorers:

- ``sympy.parse_expr`` on the answer (it runs Python: ``sympify.__globals__[...]`` reaches
  ``os.system``; ``9**(9*9*9*9*9*9*9*9*9)`` or ``factorial(10**6)`` hang it): ``countdown``,
  ``puzzle24``, ``polynomial_multiplication``, ``simple_integration``, ``intermediate_integration``;
- bare ``eval(answer)`` for a "python list" fallback worth partial credit: ``binary_matrix``,
  ``n_queens``, ``spiral_matrix``, ``string_insertion``.

(``number_sorting`` evals only its own gold; ``bitwise_arithmetic`` and ``basic_arithmetic`` eval
only while generating; ``codeio`` execs only its own generator code; ``propositional_logic`` has its
own recursive parser, quadratic in the nesting: :mod:`shapes` bounds a formula's operators, negations
and depth before it runs.)

For these, the answer must first be accepted by our strict grammar (:mod:`veritas_rl.envs.safe_expr`
for expressions, ``json.loads`` for list literals) with the functions and symbols the task allows, be
within our size bounds, and is then handed over *only in its canonical form*, never as the model wrote
it. The dataset's own gold text (the oracle) is handed over as is: it is the dataset's, not the model's.

``RESTATEMENT_CHECKS`` (run before the scorer, on an answer of the task's shape) name answers a scorer would
credit although they only restate the question: ``propositional_logic``'s premises copied back.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

from veritas_rl.envs import safe_expr
from veritas_rl.envs.reasoning_gym.shapes import MAX_FORMULA_DEPTH


@dataclass(frozen=True)
class Guarded:
    """What a guard made of the answer: ``text`` to hand to the scorer, or a zero ``reason``/``kind``."""

    text: str | None
    reason: str = ""
    kind: str = "no_answer"
    value: Any = None  # the answer's exact value, where the guard computed one
    shape_decides: bool = False  # a refusal that is ``wrong`` if the answer has the task's shape, else ``no_answer``


def refused(reason: str, kind: str = "no_answer") -> Guarded:
    return Guarded(None, reason, kind)


# -- arithmetic over the task's numbers (countdown, puzzle24) --------------------------------

ARITH_LIMITS = safe_expr.Limits(max_chars=300, max_tokens=120, max_depth=16)
_ARITH_OPS = frozenset({"num", "add", "sub", "mul", "div"})


def _nodes(node: safe_expr.Node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.args)


def arithmetic_over_numbers(slot: str, entry: dict[str, Any], *, target: int | None) -> Guarded:
    """Integers combined with ``+ - * /`` and parentheses, each a number the task gives (at most as often)."""
    try:
        node = safe_expr.parse(slot, limits=ARITH_LIMITS)
    except safe_expr.ExprError as err:
        return refused(f"not an arithmetic expression: {err.reason}", err.kind)
    used: list[int] = []
    for n in _nodes(node):
        if n.op not in _ARITH_OPS:
            return refused(f"only + - * / and parentheses are allowed (found {n.op!r})", "illegal")
        if n.op == "num":
            if n.value.denominator != 1:
                return refused("only the given integers may be used", "illegal")
            used.append(n.value.numerator)
    given = Counter(int(x) for x in entry["metadata"]["numbers"])
    extra = Counter(used) - given
    if extra:
        return refused(f"uses numbers the task does not give (or too often): {sorted(extra.elements())}", "illegal")
    try:
        value = safe_expr.evaluate(node, limits=ARITH_LIMITS)
    except safe_expr.ExprError as err:
        return refused(f"expression has no value: {err.reason}", err.kind)
    return Guarded(safe_expr.canonical(node), value=value)


def _countdown(slot: str, entry: dict[str, Any]) -> Guarded:
    return arithmetic_over_numbers(slot, entry, target=int(entry["metadata"]["target"]))


def _puzzle24(slot: str, entry: dict[str, Any]) -> Guarded:
    return arithmetic_over_numbers(slot, entry, target=24)


def exact_target(entry: dict[str, Any], dataset: str) -> Fraction | None:
    """The value a countdown/puzzle24 answer must have exactly (puzzle24's scorer truncates with ``int``)."""
    if dataset == "countdown":
        return Fraction(int(entry["metadata"]["target"]))
    if dataset == "puzzle24":
        return Fraction(24)
    return None


# -- symbolic expressions (polynomials, antiderivatives) ---------------------------------------

#: the largest |numerator| and denominator of an exponent over a symbol (x**7, (2*x - 8)**(3/2))
MAX_SYMBOLIC_EXPONENT = 16
#: the sum of |exponent| over every power of a symbol (``(x+1)**16*(x+2)**16*...`` makes sympy's
#: ``simplify`` take seconds), and how deeply function calls nest (``exp(exp(exp(x)))``) and how many
MAX_TOTAL_EXPONENT = 12
MAX_CALL_DEPTH = 3
#: the largest |exponent| over a compound base (``(2*x - 8)**(3/2)``; ``(x+1)**16*(x+2)**16`` expands)
MAX_COMPOUND_EXPONENT = 4
MAX_CALLS = 4
#: functions an antiderivative may use (those reasoning-gym's own answers use, and their kin)
INTEGRATION_FUNCTIONS = frozenset({"sin", "cos", "tan", "exp", "log", "ln", "sqrt", "arcsin", "arccos", "arctan", "pi"})
#: safe_expr's names -> sympy's (the canonical form is otherwise already sympy syntax)
_SYMPY_NAMES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "ln": "log"}
_SYMPY_NAME_RE = re.compile(r"\b(arcsin|arccos|arctan|ln)\(")
_EULER_RE = re.compile(r"(?<![A-Za-z0-9_])e(?![A-Za-z0-9_(])")


def _limits_for(gold: str) -> safe_expr.Limits:
    # room for an answer a few times the length of reasoning-gym's own, never a runaway one (and the
    # token bound keeps safe_expr's recursive printer/evaluator far from Python's recursion limit)
    chars = max(200, 3 * len(gold))
    return safe_expr.Limits(max_chars=min(chars, 2000), max_tokens=min(chars, 500), max_depth=12)


def _symbolic_nodes(node: safe_expr.Node) -> set[int]:
    """``id`` of every node with a symbol below it (iterative post-order: long sums are deep trees)."""
    found: set[int] = set()
    stack: list[tuple[safe_expr.Node, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        if done:
            if n.op == "sym" or any(id(a) in found for a in n.args):
                found.add(id(n))
        else:
            stack.append((n, True))
            stack.extend((a, False) for a in n.args)
    return found


_GOLD_EXPONENT = re.compile(r"\*\*\(?(\d{1,4})")
_GOLD_CALL = re.compile(r"[a-z]+\(")


def symbolic_bounds(gold: str) -> tuple[int, int, int]:
    """``(largest exponent, sum of exponents, function calls)`` allowed: the defaults, or twice what the
    gold itself uses (sympy's ``simplify`` takes seconds on answers a few times bigger than the gold)."""
    found = [int(e) for e in _GOLD_EXPONENT.findall(gold)]
    calls = len(_GOLD_CALL.findall(gold))
    return (
        max(MAX_SYMBOLIC_EXPONENT, 2 * max(found, default=0)),
        max(MAX_TOTAL_EXPONENT, 2 * sum(found)),
        max(MAX_CALLS, 2 * calls),
    )


def _simple_integration(slot: str, entry: dict[str, Any]) -> Guarded:
    # reasoning-gym's simple integrals are of polynomials: their antiderivatives need no functions
    return _antiderivative(slot, entry, frozenset())


def _check_symbolic(node: safe_expr.Node, limits: safe_expr.Limits, gold: str) -> Guarded | None:
    """Every symbol-free part has a bounded value; powers of a symbol have small rational exponents (in
    all, at most ``MAX_TOTAL_EXPONENT``); function calls nest at most ``MAX_CALL_DEPTH`` deep."""
    max_exponent, max_total, max_calls = symbolic_bounds(gold)
    symbolic_ids = _symbolic_nodes(node)
    total_exponent = Fraction(0)
    calls = 0
    stack = [(node, 0)]
    while stack:
        n, depth = stack.pop()
        if id(n) not in symbolic_ids:
            if n.op in ("num", "const"):
                continue
            try:
                safe_expr.evaluate(n, limits=limits)
            except safe_expr.ExprError as err:
                if err.kind == "too_long":
                    return refused(f"too large to evaluate: {err.reason}", "too_long")
                return refused(f"part of the answer has no value: {err.reason}")
            continue
        if n.op == "pow":
            base, exponent = n.args
            if id(exponent) in symbolic_ids:
                return refused("an exponent with a variable in it is not accepted", "no_answer")
            try:
                e = safe_expr.evaluate(exponent, limits=limits)
            except safe_expr.ExprError as err:
                return refused(f"exponent has no value: {err.reason}", err.kind)
            if not isinstance(e, Fraction) or abs(e.numerator) > max_exponent or e.denominator > max_exponent:
                return refused(f"exponent {e} of a variable is over {max_exponent}", "too_long")
            if base.op not in ("sym", "call") and abs(e) > MAX_COMPOUND_EXPONENT:
                return refused(f"exponent {e} of a compound expression is over {MAX_COMPOUND_EXPONENT}", "too_long")
            total_exponent += abs(e)
            if total_exponent > max_total:
                return refused(f"powers of a variable add up to more than {max_total}", "too_long")
            stack.append((base, depth))
            continue
        if n.op == "fact" or (n.op == "call" and n.name in ("factorial", "gamma", "binomial")):
            return refused("factorials of a variable are not accepted", "no_answer")
        if n.op == "call":
            depth += 1
            calls += 1
            if depth > MAX_CALL_DEPTH or calls > max_calls:
                return refused(f"functions nested more than {MAX_CALL_DEPTH} deep or more than {max_calls} calls", "too_long")
        stack.extend((a, depth) for a in n.args)
    return None


def symbolic(
    slot: str, *, functions: frozenset, symbols: frozenset, gold: str, derivative_of: tuple[str, str] | None = None
) -> Guarded:
    """An expression in ``symbols`` within bounds, printed for sympy. ``derivative_of=(integrand, variable)``:
    also refuse (``wrong``) an answer whose numerical derivative visibly is not the integrand, before sympy's
    ``simplify`` (seconds on a contrived answer) ever sees it."""
    limits = _limits_for(gold)
    try:
        node = safe_expr.parse(slot, functions=functions, symbols=symbols, limits=limits)
    except safe_expr.ExprError as err:
        return refused(f"not an expression in {', '.join(sorted(symbols))}: {err.reason}", err.kind)
    if "e" in functions:
        node = _euler_powers_as_exp(node)
    bad = _check_symbolic(node, limits, gold)
    if bad is not None:
        return bad
    if derivative_of is not None:
        point = numeric_derivative_mismatch(node, *derivative_of, functions=functions, limits=limits)
        if point is not None:
            return refused(f"not an antiderivative: its derivative differs from the integrand at {point}", "wrong")
    text = _SYMPY_NAME_RE.sub(lambda m: _SYMPY_NAMES[m.group(1)] + "(", safe_expr.canonical(node))
    if "e" in functions:  # Euler's number: sympy's E (a bare ``e`` would be a new symbol there)
        text = _EULER_RE.sub("E", text)
    return Guarded(text)


def _euler_powers_as_exp(node: safe_expr.Node) -> safe_expr.Node:
    """``e**u`` -> ``exp(u)`` everywhere in the tree (so the exponent bounds treat it as the function it is)."""
    if node.op == "pow" and node.args[0].op == "const" and node.args[0].name == "e":
        return safe_expr.Node("call", (_euler_powers_as_exp(node.args[1]),), name="exp")
    if not node.args:
        return node
    return safe_expr.Node(node.op, tuple(_euler_powers_as_exp(a) for a in node.args), node.value, node.name)


#: where antiderivatives are compared numerically (central differences)
_PROBE_POINTS = (0.31, 0.73, 1.37, 1.91, 2.63, -0.41, -1.13, -2.29)


def numeric_derivative_mismatch(
    node: safe_expr.Node, integrand: str, variable: str, *, functions: frozenset, limits: safe_expr.Limits
) -> float | None:
    """A point where ``d/dvariable node`` clearly differs from ``integrand`` (both real there), else ``None``.

    ``None`` also when the integrand is not in our grammar: sympy then decides alone.
    """
    try:
        f_node = safe_expr.parse(integrand, functions=functions | INTEGRATION_FUNCTIONS, symbols=frozenset({variable}))
    except safe_expr.ExprError:
        return None

    def real(n: safe_expr.Node, x: float) -> float | None:
        try:
            v = safe_expr.evaluate(n, {variable: x, "C": 0.0}, limits=limits)
        except (safe_expr.ExprError, ValueError, ZeroDivisionError, OverflowError):
            return None
        v = complex(v)
        return v.real if v.imag == 0 and abs(v.real) < 1e12 else None

    for p in _PROBE_POINTS:
        h = 1e-5 * max(1.0, abs(p))
        f, lo, hi = real(f_node, p), real(node, p - h), real(node, p + h)
        if f is None or lo is None or hi is None:
            continue
        if abs((hi - lo) / (2 * h) - f) > 1e-3 * max(1.0, abs(f), abs(hi) / h * 1e-9):
            return p
    return None


def _antiderivative(slot: str, entry: dict[str, Any], functions: frozenset) -> Guarded:
    metadata = entry["metadata"]
    variable = metadata["variable"]
    return symbolic(
        slot,
        functions=functions,
        symbols=frozenset({variable, "C"}),
        gold=str(entry["answer"]),
        derivative_of=(str(metadata["integrand"]), variable),
    )


def _polynomial(slot: str, entry: dict[str, Any]) -> Guarded:
    variables = frozenset(entry["metadata"]["variables"])
    return symbolic(slot, functions=frozenset(), symbols=variables, gold=str(entry["answer"]))


def _integration(slot: str, entry: dict[str, Any]) -> Guarded:
    # ``e^{x}`` / ``e**x`` for exp(x), as calculus is written (unless the variable itself is called e)
    euler = frozenset({"e"}) if entry["metadata"]["variable"] != "e" else frozenset()
    return _antiderivative(slot, entry, INTEGRATION_FUNCTIONS | euler)


# -- python list literals (the eval fallbacks) ---------------------------------------------------

MAX_LITERAL_ITEMS = 10_000


def _literal(value: Any, depth: int, count: list[int]) -> bool:
    count[0] += 1
    if count[0] > MAX_LITERAL_ITEMS or depth > 3:
        return False
    if isinstance(value, bool) or value is None:
        return False  # JSON true/null are not Python literals: nothing the scorer's eval could read
    if isinstance(value, int):
        return abs(value) < 10**18
    if isinstance(value, str):
        return len(value) <= 64
    if isinstance(value, list):
        return all(_literal(v, depth + 1, count) for v in value)
    return False


def list_literal(slot: str, entry: dict[str, Any]) -> Guarded:
    """One of the task's own accepted answers (handed over as the dataset's own string), or a list (of
    lists) of integers or short strings, re-printed by ``json.dumps`` (ASCII-only)."""
    s = slot.strip()
    if not s.startswith("["):
        accepted = entry["metadata"].get("valid_answers") or [entry["answer"]]
        for answer in accepted:
            if isinstance(answer, str) and s == answer.strip():
                return Guarded(answer)
        return Guarded(None, "not the task's answer (and not a list literal)", "wrong", shape_decides=True)
    if len(s) > 200_000:
        return refused("list literal too long", "too_long")
    value = None
    for candidate in (s, s.replace("'", '"')):
        try:
            value = json.loads(candidate)
            break
        except (ValueError, RecursionError):
            continue
    if not isinstance(value, list) or not _literal(value, 0, [0]):
        return refused("not a list literal of integers or strings")
    return Guarded(json.dumps(value, ensure_ascii=True))


# -- answers the scorer credits that restate the question ---------------------------------------


def _enclosed(f: str) -> bool:
    """Whether the whole of ``f`` is one parenthesised group."""
    if not (f.startswith("(") and f.endswith(")")):
        return False
    depth = 0
    for i, c in enumerate(f):
        depth += (c == "(") - (c == ")")
        if depth == 0 and i < len(f) - 1:
            return False
    return True


def _bare_formula(f: str) -> str:
    """``f`` without spaces, enclosing parentheses or double negations (``¬¬(P ∧ Q)``, ``¬(¬(P ∧ Q))``: ``P∧Q``)."""
    f = "".join(f.split())
    while True:
        if _enclosed(f):
            f = f[1:-1]
            continue
        if f.startswith("¬"):
            inner = f[1:]
            while _enclosed(inner):
                inner = inner[1:-1]
            if inner.startswith("¬"):
                f = inner[1:]
                continue
        return f


def _top_level_split(f: str, operators: str) -> list[str] | None:
    """``f`` cut at each of ``operators`` outside parentheses; ``None`` when there is none."""
    depth, cuts = 0, []
    for i, c in enumerate(f):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and c in operators:
            cuts.append(i)
    if not cuts:
        return None
    return [f[a + 1 : b] for a, b in zip([-1] + cuts, cuts + [len(f)])]


def _restates(f: str, premises: frozenset[str], depth: int = 0) -> bool:
    """``f`` is a premise, or copies of premises joined by ``∧`` or ``∨`` (``Q ∧ R``, ``Q ∨ Q``)."""
    f = _bare_formula(f)
    if f in premises:
        return True
    if depth > MAX_FORMULA_DEPTH or _top_level_split(f, "↔→") is not None:
        return False
    for operator in "∨∧":  # reasoning-gym's precedence: ∨ binds looser than ∧
        operands = _top_level_split(f, operator)
        if operands is not None:
            return all(_restates(op, premises, depth + 1) for op in operands)
    return False


def restates_premises(slot: str, entry: dict[str, Any]) -> str | None:
    """propositional_logic credits any formula that follows from the premises: a premise copied from the question
    (``((Q → Q) → ¬R)``), copies joined by ``∧`` or ``∨``, a copy under ``¬¬`` all scored 1.0. Why ``slot`` is
    only that, else ``None``. Textual (spaces and redundant parentheses aside): rewriting a premise into an
    equivalent formula takes an inference, and weakening one (``Q ∨ P`` from ``Q``) is how the dataset's own
    example answers are made; both are left to the scorer.

    ``slot`` has the formula shape (:mod:`shapes`: bounded length, operators and depth)."""
    premises = frozenset(_bare_formula(p) for p in entry["metadata"]["premises"])
    if _restates(slot, premises):
        return "a premise of the question restated (copied, or copies joined by ∧ or ∨)"
    return None


#: dataset -> check(slot, entry) run before the scorer on an answer of the task's shape: why the answer is
#: not one although the scorer would credit it (scores 0 ``no_answer``), else ``None``
RESTATEMENT_CHECKS: dict[str, Callable[[str, dict[str, Any]], str | None]] = {
    "propositional_logic": restates_premises,
}


#: dataset -> guard(slot, entry); a dataset listed here never sees the model's text, only the guard's
GUARDS: dict[str, Callable[[str, dict[str, Any]], Guarded]] = {
    "countdown": _countdown,
    "puzzle24": _puzzle24,
    "polynomial_multiplication": _polynomial,
    "simple_integration": _simple_integration,
    "intermediate_integration": _integration,
    "binary_matrix": list_literal,
    "n_queens": list_literal,
    "spiral_matrix": list_literal,
    "string_insertion": list_literal,
}

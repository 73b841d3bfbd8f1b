r"""A strict, bounded grammar for untrusted math answer text (our own tokenizer and parser).

API: :func:`parse` (``text, *, functions, symbols, limits``) turns one answer into a :class:`Node`
or raises :class:`ExprError` with ``kind`` ``"no_answer"`` (not in the grammar) or ``"too_long"``
(over a :class:`Limits` bound); :func:`parse_list` does the same for a comma list (``9, 18``,
``(1, 2)``, ``\{1, 2\}``) and says which brackets enclosed it. :func:`evaluate` gives the value of a
node — a ``Fraction`` wherever the arithmetic is exact, else a ``float`` or ``complex`` — with every
power, factorial and binomial checked against the magnitude bounds *before* it is computed, and
raises :class:`ExprError` (``too_long`` over a bound, ``no_answer`` for an undefined value such as
``1/0`` or a free symbol). :func:`canonical` prints a node as a plain string of digits, ``.``,
``/``, ``+ - * **``, parentheses, allowed function names and symbols (factorials print as
``factorial(...)``): the only form of model text that may be handed on to sympy, math-verify or a
reasoning-gym scorer. Nothing here calls ``eval``, ``sympify`` or ``ast``; every call is linear in
the (already bounded) input length, so a hostile answer costs well under a millisecond.

Accepted: integers and decimals; thousands separators ``1,000`` ``1 000`` ``1\,000`` ``1{,}000``
(every group after the first exactly three digits, the same separator throughout — ``9, 18`` and
``9,18`` are lists, not 918, and ``1,234,5`` is refused); scientific notation ``1.5e3``; ``+ - * /
^ **``, ``\times \cdot \div``, ``− × ÷ ·``; ``( ) [ ] { }`` and ``\left( \right)``; unary
``+``/``-``; ``a/b``, ``\frac{a}{b}`` ``\dfrac`` ``\tfrac`` ``\frac12``; postfix ``!``; the caller's
functions (``sqrt(2)``, ``\sqrt{2}``, ``\sqrt[3]{8}``, ``√2``, ``sin(x)``, ``\ln(2)``, ...; every
function argument is parenthesised or braced) and constants (``pi``, ``\pi``, ``π``, ``e``); implicit
multiplication where the right factor is a name, ``\sqrt``, ``\frac`` or ``(`` (``2x``, ``3\sqrt{2}``,
``2(3+1)``, ``3\pi``; never ``x[0]``, ``x2``, ``9 18``, and a run of letters is one name: ``xy`` is refused)
and not right after a ``/`` operand (``1/2x`` is refused as ambiguous). An integer literal followed by a
``\frac`` of two integer literals is a mixed number (``2\frac{1}{2}`` is 5/2, as math-verify reads
it); with an improper fraction (``2\frac{3}{2}``) or a factor after it (``2\frac12 x``) it is refused
as ambiguous. Refused: any other name or
character (``_``, quotes, ``.`` outside a number, ``%``, ``\text``), a number right after a factor
(``x2``, ``9 18``), ``!!``, empty groups, and anything over a bound.

Why this module is long: the tokenizer, the precedence parser, the bounded evaluator and the
canonical printer share one node type and one set of bounds; the guarantee that no model text reaches
an evaluator unparsed is easiest to audit when the whole grammar reads top to bottom in one file.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping, Union

Number = Union[Fraction, float, complex]


class ExprError(ValueError):
    """The text is not an answer in the grammar (``kind="no_answer"``) or is over a bound (``"too_long"``)."""

    def __init__(self, reason: str, kind: str = "no_answer"):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    max_chars: int = 300
    max_depth: int = 24  # nesting of groups, unary signs and powers
    max_tokens: int = 200
    max_digits: int = 400  # digits of any literal and of any exact intermediate result
    max_exponent: int = 1000  # |integer exponent| (and |exponent| * log10|base| <= max_digits)
    max_factorial: int = 200
    max_root: int = 64  # largest n of an exact n-th root attempted

    def __post_init__(self):
        for key in ("max_chars", "max_depth", "max_tokens", "max_digits", "max_exponent", "max_factorial", "max_root"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{key}={value!r}; expected a positive integer")


DEFAULT_LIMITS = Limits()

#: functions a caller may allow, with their number of arguments
FUNCTIONS: dict[str, int] = {
    "sqrt": 1, "sin": 1, "cos": 1, "tan": 1, "arcsin": 1, "arccos": 1, "arctan": 1,
    "log": 1, "ln": 1, "exp": 1, "abs": 1, "factorial": 1, "gamma": 1, "binomial": 2,
}  # fmt: skip
#: constants a caller may allow (through ``functions``)
CONSTANTS = frozenset({"pi", "e"})
#: what a typical math answer needs
MATH_FUNCTIONS = frozenset({"sqrt", "sin", "cos", "tan", "log", "ln", "exp", "pi", "e"})
_ALIASES = {"asin": "arcsin", "acos": "arccos", "atan": "arctan", "binom": "binomial"}

# -------------------------------------------------------------------------------------------
# nodes
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """``op`` is one of num, sym, const, neg, add, sub, mul, div, pow, fact, call."""

    op: str
    args: tuple = ()
    value: Fraction | None = None  # num
    name: str = ""  # sym, const, call


def _num(value: Fraction) -> Node:
    return Node("num", value=value)


# -------------------------------------------------------------------------------------------
# tokenizer
# -------------------------------------------------------------------------------------------

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "*", "\u22c5": "*", "\u00b7": "*", "\u2217": "*", "\u00f7": "/",
    "\u2215": "/", "\u03c0": "pi", "\u221a": "sqrt",
}  # fmt: skip
_SPACES = frozenset(" \t\n\r\u00a0\u2009\u202f\u2005\u2006")
#: LaTeX commands that are only spacing
_LATEX_SPACES = frozenset({",", ";", ":", "!", " ", "quad", "qquad", "thinspace", "medspace", "displaystyle"})
_LATEX_OPS = {"times": "*", "cdot": "*", "ast": "*", "div": "/"}
_LATEX_FRAC = frozenset({"frac", "dfrac", "tfrac"})
_OPS = frozenset("+-*/^!()[]{},")
_OPEN = {"(": ")", "[": "]", "{": "}", "\\{": "\\}"}
_CLOSE = frozenset(_OPEN.values())

#: thousands separators between digit groups (one kind throughout a number)
_GROUP_SEPS = (",", "{,}", "\\,", " ", "\u2009", "\u202f", "\u00a0")


@dataclass
class _Tok:
    kind: str  # num, name, op, frac, sqrt, end
    text: str
    value: Fraction | None = None


def _digits_at(s: str, i: int) -> int:
    j = i
    n = len(s)
    while j < n and "0" <= s[j] <= "9":
        j += 1
    return j


def _lex_number(s: str, i: int, limits: Limits) -> tuple[Fraction, str, int]:
    """A number starting at ``s[i]`` (a digit or ``.``); returns ``(value, canonical digits, end)``."""
    n = len(s)
    j = _digits_at(s, i)
    int_part = s[i:j]
    if 0 < len(int_part) <= 3:
        # thousands grouping: every further group exactly three digits, one separator kind
        for sep in _GROUP_SEPS:
            if not s.startswith(sep, j):
                continue
            k, groups = j, []
            while s.startswith(sep, k):
                g0 = k + len(sep)
                g1 = _digits_at(s, g0)
                if g1 - g0 != 3:
                    break
                groups.append(s[g0:g1])
                k = g1
            if groups:
                if sep in (",", "{,}") and s.startswith(sep, k) and _digits_at(s, k + len(sep)) > k + len(sep):
                    raise ExprError(f"ambiguous digit grouping near {s[i:k + 5]!r}")
                int_part += "".join(groups)
                j = k
            break
    frac_part = ""
    if j < n and s[j] == "." and j + 1 < n and "0" <= s[j + 1] <= "9":
        k = _digits_at(s, j + 1)
        frac_part = s[j + 1 : k]
        j = k
    elif j < n and s[j] == "." and int_part and not (j + 1 < n and s[j + 1].isalpha()):
        j += 1  # "5." is five
    if not int_part and not frac_part:
        raise ExprError(f"a lone '.' at {i}")
    exponent = 0
    if j < n and s[j] in "eE":
        k = j + 1
        if k < n and s[k] in "+-":
            k += 1
        e_end = _digits_at(s, k)
        if e_end > k:
            if e_end - k > 6:
                raise ExprError(f"exponent of {s[i:e_end][:20]!r}... over {limits.max_exponent}", "too_long")
            exponent = int(s[j + 1 : e_end])
            if abs(exponent) > limits.max_exponent:
                raise ExprError(f"exponent {exponent} over {limits.max_exponent}", "too_long")
            j = e_end
    digits = (int_part + frac_part).lstrip("0") or "0"
    if len(digits) > limits.max_digits or len(digits) - len(frac_part) + exponent > limits.max_digits:
        raise ExprError(f"number with more than {limits.max_digits} digits", "too_long")
    if len(frac_part) - exponent > limits.max_digits:
        raise ExprError(f"number with more than {limits.max_digits} decimals", "too_long")
    value = Fraction(int(int_part + frac_part or "0"), 10 ** len(frac_part))
    if exponent:
        value *= Fraction(10) ** exponent
    return value, s[i:j], j


def tokenize(text: str, limits: Limits = DEFAULT_LIMITS) -> list[_Tok]:
    """Tokens of ``text`` (raises :class:`ExprError`); names are returned as written (``\\pi`` -> ``pi``)."""
    s = text
    if len(s) > limits.max_chars:
        raise ExprError(f"answer longer than {limits.max_chars} characters", "too_long")
    toks: list[_Tok] = []
    i, n = 0, len(s)
    while i < n:
        if len(toks) > limits.max_tokens:
            raise ExprError(f"more than {limits.max_tokens} tokens", "too_long")
        c = s[i]
        if c in _SPACES:
            i += 1
            continue
        if c in _UNICODE:
            mapped = _UNICODE[c]
            toks.append(_Tok("sqrt" if mapped == "sqrt" else "name" if mapped.isalpha() else "op", mapped))
            i += 1
            continue
        if "0" <= c <= "9" or (c == "." and i + 1 < n and "0" <= s[i + 1] <= "9"):
            value, raw, i = _lex_number(s, i, limits)
            toks.append(_Tok("num", raw, value))
            continue
        if c == "*" and s.startswith("**", i):
            toks.append(_Tok("op", "^"))
            i += 2
            continue
        if c in _OPS:
            if c == "!" and s.startswith("!!", i):
                raise ExprError("double factorial '!!' is not accepted")
            toks.append(_Tok("op", c))
            i += 1
            continue
        if ("a" <= c <= "z") or ("A" <= c <= "Z"):
            j = i
            while j < n and (("a" <= s[j] <= "z") or ("A" <= s[j] <= "Z")):
                j += 1
            toks.append(_Tok("name", s[i:j]))
            i = j
            continue
        if c == "\\":
            j = i + 1
            while j < n and (("a" <= s[j] <= "z") or ("A" <= s[j] <= "Z")):
                j += 1
            if j == i + 1:  # \, \; \{ \} ...
                if j >= n:
                    raise ExprError("a lone backslash")
                cmd = s[j]
                j += 1
            else:
                cmd = s[i + 1 : j]
            i = j
            if cmd in _LATEX_SPACES:
                continue
            if cmd in ("{", "}"):  # \{ \}: set braces (a list), unlike plain grouping braces
                toks.append(_Tok("op", "\\" + cmd))
            elif cmd in ("left", "right", "bigl", "bigr", "Bigl", "Bigr", "big", "Big"):
                if s.startswith(".", i):  # \left. is an invisible delimiter
                    i += 1
                continue
            elif cmd in _LATEX_OPS:
                toks.append(_Tok("op", _LATEX_OPS[cmd]))
            elif cmd in _LATEX_FRAC:
                toks.append(_Tok("frac", cmd))
                # \frac12: the two arguments may be single digits without braces
                for _ in range(2):
                    while i < n and s[i] in _SPACES:
                        i += 1
                    if i < n and "0" <= s[i] <= "9":
                        toks.append(_Tok("num", s[i], Fraction(int(s[i]))))
                        i += 1
                    else:
                        break
            elif cmd == "sqrt":
                toks.append(_Tok("sqrt", "sqrt"))
                while i < n and s[i] in _SPACES:
                    i += 1
                if i < n and "0" <= s[i] <= "9":  # \sqrt2
                    toks.append(_Tok("num", s[i], Fraction(int(s[i]))))
                    i += 1
            elif cmd.isalpha():
                toks.append(_Tok("name", cmd))
            else:
                raise ExprError(f"LaTeX command \\{cmd} is not accepted")
            continue
        raise ExprError(f"character {c!r} is not accepted")
    if len(toks) > limits.max_tokens:
        raise ExprError(f"more than {limits.max_tokens} tokens", "too_long")
    toks.append(_Tok("end", ""))
    return toks


# -------------------------------------------------------------------------------------------
# parser
# -------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, toks: list[_Tok], functions: frozenset, symbols: frozenset, limits: Limits):
        self.toks = toks
        self.pos = 0
        self.functions = functions
        self.symbols = symbols
        self.limits = limits
        self.depth = 0

    # -- helpers
    def peek(self) -> _Tok:
        return self.toks[self.pos]

    def next(self) -> _Tok:
        tok = self.toks[self.pos]
        if tok.kind != "end":
            self.pos += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.next()
        if tok.kind != "op" or tok.text != text:
            raise ExprError(f"expected {text!r}, found {tok.text or 'the end'!r}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise ExprError(f"nested deeper than {self.limits.max_depth}", "too_long")

    def leave(self) -> None:
        self.depth -= 1

    def is_op(self, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.text in texts

    # -- grammar
    def expr(self) -> Node:
        left = self.term()
        while self.is_op("+", "-"):
            op = self.next().text
            right = self.term()
            left = Node("add" if op == "+" else "sub", (left, right))
        return left

    def starts_implicit_factor(self) -> bool:
        tok = self.peek()
        if tok.kind in ("name", "frac", "sqrt"):
            return True
        return tok.kind == "op" and tok.text == "("  # not x[0] (indexing) nor x{2}

    def term(self) -> Node:
        left = self.unary()
        after_div = False
        while True:
            if self.is_op("*", "/"):
                op = self.next().text
                right = self.unary()
                left = Node("mul" if op == "*" else "div", (left, right))
                after_div = op == "/"
            elif self.starts_implicit_factor():
                if after_div:
                    raise ExprError("implicit multiplication after '/' is ambiguous (write a/(b c) or (a/b) c)")
                right = self.power()
                left = Node("mul", (left, right))
            elif self.peek().kind == "num":
                raise ExprError(f"a number ({self.peek().text!r}) right after a factor")
            else:
                return left

    def unary(self) -> Node:
        if self.is_op("-", "+"):
            op = self.next().text
            self.enter()
            operand = self.unary()
            self.leave()
            return Node("neg", (operand,)) if op == "-" else operand
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.is_op("^"):
            self.next()
            self.enter()
            exponent = self.unary()  # right-associative: 2^3^2 = 2^9; 2^-1 allowed
            self.leave()
            return Node("pow", (base, exponent))
        return base

    def postfix(self) -> Node:
        node = self.primary()
        while self.is_op("!"):
            self.next()
            node = Node("fact", (node,))
        return node

    def group(self) -> Node:
        """``( expr )``, ``[ expr ]`` or ``{ expr }``."""
        tok = self.next()
        if tok.kind != "op" or tok.text not in _OPEN:
            raise ExprError(f"expected a group, found {tok.text or 'the end'!r}")
        self.enter()
        if self.is_op(_OPEN[tok.text]):
            raise ExprError("empty group")
        inner = self.expr()
        self.expect(_OPEN[tok.text])
        self.leave()
        return inner

    def latex_arg(self) -> Node:
        """``{...}`` or a single-digit argument (``\\frac12``, ``\\sqrt2``)."""
        tok = self.peek()
        if tok.kind == "num" and len(tok.text) == 1:
            self.next()
            return _num(tok.value)
        if not self.is_op("{"):
            raise ExprError("a LaTeX argument must be in braces")
        return self.group()

    def mixed_fraction(self) -> tuple[Fraction, int] | None:
        """``(p/q, tokens)`` when a ``\\frac`` of two integer literals starts at the current token, else ``None``."""
        toks, k = self.toks, self.pos
        if toks[k].kind != "frac":
            return None
        k += 1
        parts = []
        for _ in range(2):
            t = toks[k]
            if t.kind == "num" and len(t.text) == 1:  # \frac12
                parts.append(t)
                k += 1
            elif t.kind == "op" and t.text == "{" and toks[k + 1].kind == "num" and toks[k + 2].text == "}":
                parts.append(toks[k + 1])
                k += 3
            else:
                return None
        if not all(t.text.isdigit() and t.value.denominator == 1 for t in parts):
            return None
        if parts[1].value == 0:
            raise ExprError("division by zero")
        return Fraction(parts[0].value.numerator, parts[1].value.numerator), k - self.pos

    def bare_exponent(self, k: int) -> bool:
        """Whether token ``k`` is an exponent written without braces (``x^2\\frac12`` is ``x^2 / 2``)."""
        before = self.toks[k - 1] if k >= 1 else None
        if before is not None and before.kind == "op" and before.text in "+-" and k >= 2:
            before = self.toks[k - 2]
        return before is not None and before.kind == "op" and before.text == "^"

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "num":
            self.next()
            mixed = self.mixed_fraction() if tok.text.isdigit() and not self.bare_exponent(self.pos - 1) else None
            if mixed is not None:
                # ``2\frac{1}{2}`` is the mixed number 2 1/2 (as math-verify and every textbook read it), not 2 * 1/2
                fraction, length = mixed
                if not 0 < fraction < 1:
                    raise ExprError(f"{tok.text} followed by the fraction {fraction} is ambiguous (a mixed number or a "
                                    "product?): write it as one fraction or with \\cdot")
                self.pos += length
                if self.starts_implicit_factor() or self.is_op("^", "!") or self.peek().kind == "num":
                    raise ExprError("a mixed number followed by a factor, power or factorial is ambiguous")
                return _num(tok.value + fraction)
            return _num(tok.value)
        if tok.kind == "op" and tok.text in _OPEN:
            return self.group()
        if tok.kind == "frac":
            self.next()
            num = self.latex_arg()
            den = self.latex_arg()
            return Node("div", (num, den))
        if tok.kind == "sqrt":
            self.next()
            if "sqrt" not in self.functions:
                raise ExprError("sqrt is not accepted here")
            if self.is_op("["):  # \sqrt[3]{8}
                index = self.group()
                return Node("call", (self.latex_arg(), index), name="root")
            if self.is_op("(", "{"):
                return Node("call", (self.group(),), name="sqrt")
            if self.peek().kind == "num":  # √2, \sqrt2 (one token)
                return Node("call", (self.primary(),), name="sqrt")
            raise ExprError("sqrt needs a parenthesised or braced argument")
        if tok.kind == "name":
            self.next()
            name = _ALIASES.get(tok.text, tok.text)
            if name in CONSTANTS and name in self.functions:
                return Node("const", name=name)
            if name in FUNCTIONS and name in self.functions:
                return self.call(name)
            if tok.text in self.symbols:
                return Node("sym", name=tok.text)
            raise ExprError(f"name {tok.text[:20]!r} is not accepted")
        raise ExprError(f"unexpected {tok.text or 'end of answer'!r}")

    def call(self, name: str) -> Node:
        arity = FUNCTIONS[name]
        if not self.is_op("(", "{"):
            raise ExprError(f"{name} needs a parenthesised argument")
        close = _OPEN[self.next().text]
        self.enter()
        args = [self.expr()]
        while self.is_op(","):
            self.next()
            args.append(self.expr())
        self.expect(close)
        self.leave()
        if len(args) != arity:
            raise ExprError(f"{name} takes {arity} argument(s), got {len(args)}")
        return Node("call", tuple(args), name=name)


def _check_names(functions: frozenset, symbols: frozenset) -> None:
    unknown = sorted(set(functions) - set(FUNCTIONS) - CONSTANTS)
    if unknown:
        raise ValueError(f"functions={unknown!r} not known; choose from: {', '.join(sorted({*FUNCTIONS, *CONSTANTS}))}")
    for s in symbols:
        if not (isinstance(s, str) and s.isascii() and s.isalpha()):
            raise ValueError(f"symbols: {s!r} is not valid; expected ASCII letters")


def parse(
    text: str, *, functions: frozenset = frozenset(), symbols: frozenset = frozenset(), limits: Limits = DEFAULT_LIMITS
) -> Node:
    """One value (no top-level comma, not a bracketed list like ``[18]``); raises :class:`ExprError`."""
    items, brackets = parse_list(text, functions=functions, symbols=symbols, limits=limits)
    if len(items) != 1 or brackets:
        raise ExprError(f"a list of {len(items)} value(s), not one value")
    return items[0]


def parse_list(
    text: str, *, functions: frozenset = frozenset(), symbols: frozenset = frozenset(), limits: Limits = DEFAULT_LIMITS
) -> tuple[tuple[Node, ...], str]:
    r"""``(items, brackets)``: a comma list ``9, 18`` (brackets ``""``), ``(1, 2)`` (``"()"``), ``[1, 2]``,
    ``\{1, 2\}`` (``"{}"``); ``[18]`` and ``\{18\}`` are lists of one (``"[]"``, ``"{}"``); a single value,
    parenthesised or not, is a list of one with brackets ``""``."""
    if not isinstance(text, str):
        raise ExprError(f"answer is {type(text).__name__}, not str")
    functions, symbols = frozenset(functions), frozenset(symbols)
    _check_names(functions, symbols)
    toks = tokenize(text, limits)
    p = _Parser(toks, functions, symbols, limits)
    if p.peek().kind == "end":
        raise ExprError("empty answer")
    brackets = ""
    first = p.peek()
    if first.kind == "op" and first.text in _OPEN:
        # a bracketed list only if the matching close is the last token and a top-level comma is inside
        close, depth, comma, end = _OPEN[first.text], 0, False, -1
        for k in range(p.pos, len(toks)):
            t = toks[k]
            if t.kind != "op":
                continue
            if t.text in _OPEN:
                depth += 1
            elif t.text in _CLOSE:
                depth -= 1
                if depth == 0:
                    end = k
                    break
            elif t.text == "," and depth == 1:
                comma = True
        # "[18]" and "\{18\}" are lists of one; "(18)" and "{18}" are grouping
        whole = end == len(toks) - 2 and toks[end].text == close
        if whole and (comma or first.text in ("[", "\\{")):
            brackets = {"(": "()", "[": "[]", "{": "{}", "\\{": "{}"}[first.text]
            p.next()
    items = [p.expr()]
    while p.is_op(","):
        p.next()
        items.append(p.expr())
    if brackets:
        p.expect(close)
    tok = p.peek()
    if tok.kind != "end":
        raise ExprError(f"unexpected {tok.text!r} after the answer")
    return tuple(items), brackets


# -------------------------------------------------------------------------------------------
# evaluation
# -------------------------------------------------------------------------------------------

_LOG10_2 = math.log10(2)


def _digits(n: int) -> float:
    """An upper bound on the number of decimal digits of ``n``."""
    return abs(n).bit_length() * _LOG10_2


def _log10_floor(n: int) -> float:
    """A lower bound on ``log10(|n|)`` (``n != 0``)."""
    return (abs(n).bit_length() - 1) * _LOG10_2


class _Evaluator:
    def __init__(self, limits: Limits, env: Mapping[str, Number]):
        self.limits = limits
        self.env = env

    def exact(self, value: Fraction) -> Fraction:
        bound = self.limits.max_digits + 1
        if _digits(value.numerator) > bound or _digits(value.denominator) > bound:
            raise ExprError(f"an intermediate result with more than {self.limits.max_digits} digits", "too_long")
        return value

    def inexact(self, value: float | complex) -> float | complex:
        if isinstance(value, complex):
            if not (math.isfinite(value.real) and math.isfinite(value.imag)):
                raise ExprError("not a finite number", "too_long")
            if value.imag == 0.0:
                return value.real
            return value
        if not math.isfinite(value):
            raise ExprError("not a finite number", "too_long")
        return value

    def floating(self, value: Number) -> float | complex:
        if isinstance(value, Fraction):
            try:
                return float(value)
            except OverflowError:
                raise ExprError("a number too large for floating point", "too_long") from None
        return value

    def binary(self, op: str, a: Number, b: Number) -> Number:
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            if op == "add":
                return self.exact(a + b)
            if op == "sub":
                return self.exact(a - b)
            if op == "mul":
                return self.exact(a * b)
            if b == 0:
                raise ExprError("division by zero")
            return self.exact(a / b)
        x, y = self.floating(a), self.floating(b)
        try:
            if op == "add":
                return self.inexact(x + y)
            if op == "sub":
                return self.inexact(x - y)
            if op == "mul":
                return self.inexact(x * y)
            if y == 0:
                raise ExprError("division by zero")
            return self.inexact(x / y)
        except OverflowError:
            raise ExprError("a number too large for floating point", "too_long") from None

    def power(self, a: Number, b: Number) -> Number:
        limits = self.limits
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            if a == 0:
                if b < 0:
                    raise ExprError("zero to a negative power")
                return Fraction(1) if b == 0 else Fraction(0)
            size = max(_log10_floor(a.numerator), _log10_floor(a.denominator))
            if b.denominator == 1:
                n = b.numerator
                if abs(a) == 1:
                    return a ** (n % 2) if a < 0 else Fraction(1)
                if abs(n) > limits.max_exponent or abs(n) * size > limits.max_digits:
                    raise ExprError(f"a power with more than {limits.max_digits} digits", "too_long")
                return self.exact(a**n)
            # rational exponent p/q: exact when a is a perfect q-th power
            p, q = b.numerator, b.denominator
            if abs(p) * size / q > limits.max_digits:
                raise ExprError(f"a power with more than {limits.max_digits} digits", "too_long")
            if a > 0 and q <= limits.max_root:
                rn, rd = _iroot(a.numerator, q), _iroot(a.denominator, q)
                if rn is not None and rd is not None:
                    if abs(p) > limits.max_exponent:
                        raise ExprError(f"exponent over {limits.max_exponent}", "too_long")
                    return self.exact(Fraction(rn, rd) ** p)
        x, y = self.floating(a), self.floating(b)
        try:
            ax = abs(x)
            if ax > 1e-300 and isinstance(y, (int, float)) and abs(y * math.log10(ax)) > 300:
                raise ExprError("a power beyond floating point", "too_long")
            if isinstance(x, float) and x < 0 and isinstance(y, float) and not y.is_integer():
                return self.inexact(cmath.sqrt(x) if y == 0.5 else complex(x) ** y)
            return self.inexact(x**y)
        except (OverflowError, ZeroDivisionError):
            raise ExprError("a power beyond floating point", "too_long") from None

    def integer(self, value: Number, what: str) -> int:
        if isinstance(value, Fraction) and value.denominator == 1:
            return value.numerator
        raise ExprError(f"{what} of a non-integer")

    def call(self, name: str, args: list[Number]) -> Number:
        limits = self.limits
        if name == "factorial":
            n = self.integer(args[0], "factorial")
            if n < 0:
                raise ExprError("factorial of a negative number")
            if n > limits.max_factorial:
                raise ExprError(f"factorial of {n} (over {limits.max_factorial})", "too_long")
            return self.exact(Fraction(math.factorial(n)))
        if name == "gamma":
            x = args[0]
            if isinstance(x, Fraction) and x.denominator == 1:
                if x <= 0:
                    raise ExprError("gamma at a pole")
                return self.call("factorial", [x - 1])
            xf = self.floating(x)
            if isinstance(xf, complex) or abs(xf) > 170:
                raise ExprError("gamma beyond floating point", "too_long")
            return self.inexact(math.gamma(xf))
        if name == "binomial":
            n, k = self.integer(args[0], "binomial"), self.integer(args[1], "binomial")
            if n < 0 or k < 0 or k > n:
                return Fraction(0)
            k = min(k, n - k)
            if k == 0:
                return Fraction(1)
            if k == 1:
                return self.exact(Fraction(n))
            if n > 10**300:
                raise ExprError("binomial too large", "too_long")
            if k > limits.max_digits * 4:  # C(n, k) >= 2^k for n >= 2k
                raise ExprError(f"binomial with more than {limits.max_digits} digits", "too_long")
            log10 = (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(10)
            if log10 > limits.max_digits:
                raise ExprError(f"binomial with more than {limits.max_digits} digits", "too_long")
            return self.exact(Fraction(math.comb(n, k)))
        x = args[0]
        if name == "abs":
            return abs(x) if not isinstance(x, complex) else self.inexact(abs(x))
        if name == "root":
            index = self.integer(args[1], "root index")
            if index < 1:
                raise ExprError("root of index < 1")
            return self.power(x, Fraction(1, index))
        if name == "sqrt":
            return self.power(x, Fraction(1, 2))
        xf = self.floating(x)
        try:
            if name in ("log", "ln"):
                if xf == 0:
                    raise ExprError("log(0)")
                if isinstance(xf, complex) or xf < 0:
                    return self.inexact(cmath.log(xf))
                return self.inexact(math.log(xf))
            if name == "exp":
                if (xf.real if isinstance(xf, complex) else xf) > 700:
                    raise ExprError("exp beyond floating point", "too_long")
                return self.inexact((cmath if isinstance(xf, complex) else math).exp(xf))
            fn = {"sin": "sin", "cos": "cos", "tan": "tan", "arcsin": "asin", "arccos": "acos", "arctan": "atan"}[name]
            if isinstance(xf, complex) or (fn in ("asin", "acos") and abs(xf) > 1):
                return self.inexact(getattr(cmath, fn)(xf))
            return self.inexact(getattr(math, fn)(xf))
        except (OverflowError, ValueError) as err:
            if isinstance(err, ExprError):
                raise
            raise ExprError(f"{name} has no value here ({err})") from None

    def run(self, node: Node) -> Number:
        op = node.op
        if op == "num":
            return node.value
        if op == "const":
            return math.pi if node.name == "pi" else math.e
        if op == "sym":
            if node.name not in self.env:
                raise ExprError(f"the answer has a free symbol {node.name!r}, not a number")
            return self.env[node.name]
        if op == "neg":
            v = self.run(node.args[0])
            return -v
        if op in ("add", "sub", "mul", "div"):
            return self.binary(op, self.run(node.args[0]), self.run(node.args[1]))
        if op == "pow":
            return self.power(self.run(node.args[0]), self.run(node.args[1]))
        if op == "fact":
            return self.call("factorial", [self.run(node.args[0])])
        if op == "call":
            return self.call(node.name, [self.run(a) for a in node.args])
        raise AssertionError(f"unknown node {op!r}")


def _iroot(n: int, q: int) -> int | None:
    """The exact integer ``q``-th root of ``n >= 0``, or ``None``."""
    if n < 2:
        return n
    r = int(round(n ** (1.0 / q))) if n.bit_length() < 1000 else None
    if r is None:
        lo, hi = 0, 1 << (n.bit_length() // q + 1)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if mid**q <= n:
                lo = mid
            else:
                hi = mid - 1
        r = lo
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**q == n:
            return c
    return None


def evaluate(node: Node, env: Mapping[str, Number] | None = None, *, limits: Limits = DEFAULT_LIMITS) -> Number:
    """The value of ``node`` (symbols from ``env``): a ``Fraction`` when exact, else ``float``/``complex``."""
    return _Evaluator(limits, env or {}).run(node)


def symbols_of(node: Node) -> frozenset[str]:
    """The free symbols of ``node``."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n.op == "sym":
            found.add(n.name)
        stack.extend(n.args)
    return frozenset(found)


# -------------------------------------------------------------------------------------------
# canonical form
# -------------------------------------------------------------------------------------------

_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "pow": 4}


def format_fraction(value: Fraction) -> str:
    """``72``, ``-3``, ``2.5``, or ``7/3`` when not a short finite decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    places = max(twos, fives)
    if den == 1 and places <= 20:
        scaled = abs(value.numerator) * 10**places // value.denominator
        digits = str(scaled).rjust(places + 1, "0")
        text = f"{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")
        return ("-" if value < 0 else "") + text
    return f"{value.numerator}/{value.denominator}"


def _prec(node: Node) -> int:
    if node.op == "num":
        v = node.value
        if v < 0:
            return 3
        return 2 if v.denominator != 1 and "/" in format_fraction(v) else 5
    return _PREC.get(node.op, 5)


def canonical(node: Node) -> str:
    """A plain, fully determined string of ``node`` (``**`` for powers, ``factorial(...)`` for ``!``)."""
    op = node.op
    if op == "num":
        return format_fraction(node.value)
    if op in ("sym", "const"):
        return node.name
    if op == "neg":
        inner = node.args[0]
        text = canonical(inner)
        return f"-({text})" if _prec(inner) <= 3 else f"-{text}"
    if op == "fact":
        return f"factorial({canonical(node.args[0])})"
    if op == "call":
        if node.name == "root":  # \sqrt[n]{x}
            return f"({canonical(node.args[0])})**(1/({canonical(node.args[1])}))"
        return f"{node.name}({', '.join(canonical(a) for a in node.args)})"
    left, right = node.args
    p = _PREC[op]
    lt, rt = canonical(left), canonical(right)
    if op == "pow":
        if _prec(left) <= p:
            lt = f"({lt})"
        if _prec(right) < p:
            rt = f"({rt})"
        return f"{lt}**{rt}"
    if _prec(left) < p:
        lt = f"({lt})"
    # right operand: same precedence needs parentheses for - and / (and for clarity, always)
    if _prec(right) <= p:
        rt = f"({rt})"
    sym = {"add": " + ", "sub": " - ", "mul": "*", "div": "/"}[op]
    return f"{lt}{sym}{rt}"


_LATEX_FUNCS = {
    "sin": "\\sin", "cos": "\\cos", "tan": "\\tan", "arcsin": "\\arcsin", "arccos": "\\arccos",
    "arctan": "\\arctan", "log": "\\log", "ln": "\\ln", "exp": "\\exp", "gamma": "\\Gamma",
}  # fmt: skip


def latex(node: Node) -> str:
    """The node as LaTeX (``\\frac``, ``\\sqrt``, ``^{}``, ``\\cdot``), for LaTeX readers such as math-verify.

    Like :func:`canonical`, it is built from the tree alone: only digits, operators, braces, the allowed
    names and these fixed commands.
    """
    op = node.op
    if op == "num":
        v = node.value
        text = format_fraction(abs(v))
        if "/" in text:
            text = f"\\frac{{{v.numerator if v > 0 else -v.numerator}}}{{{v.denominator}}}"
        return f"-{text}" if v < 0 else text
    if op == "sym":
        return node.name
    if op == "const":
        return "\\pi" if node.name == "pi" else "e"
    if op == "neg":
        inner = node.args[0]
        return f"-\\left({latex(inner)}\\right)" if _prec(inner) <= 3 else f"-{latex(inner)}"
    if op == "fact":
        inner = node.args[0]
        return f"\\left({latex(inner)}\\right)!" if _prec(inner) < 5 or inner.op == "num" and inner.value < 0 else f"{latex(inner)}!"
    if op == "call":
        args = [latex(a) for a in node.args]
        if node.name == "sqrt":
            return f"\\sqrt{{{args[0]}}}"
        if node.name == "root":
            return f"\\sqrt[{args[1]}]{{{args[0]}}}"
        if node.name == "abs":
            return f"\\left|{args[0]}\\right|"
        if node.name == "factorial":
            return f"\\left({args[0]}\\right)!"
        if node.name == "binomial":
            return f"\\binom{{{args[0]}}}{{{args[1]}}}"
        return f"{_LATEX_FUNCS[node.name]}\\left({args[0]}\\right)"
    left, right = node.args
    lt, rt = latex(left), latex(right)
    if op == "div":
        return f"\\frac{{{lt}}}{{{rt}}}"
    if op == "pow":
        if _prec(left) < 5 or (left.op == "num" and "/" in format_fraction(left.value)):
            lt = f"\\left({lt}\\right)"
        return f"{{{lt}}}^{{{rt}}}"
    p = _PREC[op]
    if _prec(left) < p:
        lt = f"\\left({lt}\\right)"
    if _prec(right) <= p and not (op == "mul" and right.op == "div"):
        rt = f"\\left({rt}\\right)"
    sym = {"add": " + ", "sub": " - ", "mul": " \\cdot "}[op]
    return f"{lt}{sym}{rt}"

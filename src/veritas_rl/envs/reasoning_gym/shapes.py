"""What a reasoning-gym answer looks like: its shape, inferred from the gold answer (or the dataset).

reasoning-gym's scorers are lenient in ways a policy learns to exploit: many give ``0.01`` to any
text, some a similarity ratio to any string, one (``game_of_life_halting``) full credit to any
non-empty text. So the env trusts a scorer's credit only for an answer that *has the task's answer
shape*: a number where the gold is a number, JSON of the same kind where the gold is JSON, text made
of the gold's kind of characters, a formula over the task's variables. Shapes also give the value two
answers are compared by when deciding whether a completion hedges (``1314 or 1315``).

Every check here is linear in the (bounded) answer length: no backtracking regular expressions, no
evaluation (numbers go through :mod:`veritas_rl.envs.safe_expr`; JSON through ``json.loads``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Hashable

from veritas_rl.envs import safe_expr

#: closed answer vocabularies: a gold in one of them makes every answer one of its words
CHOICES = (frozenset({"true", "false"}), frozenset({"yes", "no"}), frozenset({"on", "off", "undetermined"}))
#: the prompt's own format example (``<answer>your answer</answer>``), in normalised form
FORMAT_EXAMPLES = frozenset({"your answer", "your answer here", "answer", "..."})
#: punctuation any sentence may use, whatever the gold sentence happens to contain
SENTENCE_PUNCTUATION = frozenset(".,;:!?'\"-")
#: separators between alternatives inside one answer slot (``a or b``)
_ALTERNATIVE_SPLIT = re.compile(r"\s+or\s+|\s+and\s+|\s*[;|/]\s*|\s*,\s*|\n", re.IGNORECASE)
_HEX = re.compile(r"-?0[xX][0-9a-fA-F]{1,64}")
#: answers of the ``number`` shape, as numbers: integers, decimals, scientific notation, a/b, \frac
_NUMBER_LIMITS = safe_expr.Limits(max_chars=200, max_tokens=16, max_depth=4)
#: largest JSON answer parsed for its shape
MAX_JSON_CHARS = 100_000


def normalize(text: str) -> str:
    """NFKC, whitespace collapsed, case folded, trailing period dropped."""
    s = " ".join(unicodedata.normalize("NFKC", text).split()).casefold()
    return s[:-1].rstrip() if s.endswith(".") else s


def _strip_math(text: str) -> str:
    s = text.strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s.strip("$").strip()
    return s[:-1].rstrip() if s.endswith(".") else s


def parse_number(text: str) -> Fraction | int | None:
    """One number (``-3``, ``2.5``, ``1,234``, ``9.36e-18``, ``3/4``, ``\\dfrac{3}{4}``, ``0x3eb2``) or ``None``.

    Sums and other expressions are not numbers: ``3+4`` is ``None``.
    """
    s = _strip_math(text)
    if _HEX.fullmatch(s):
        return int(s, 16)
    try:
        node = safe_expr.parse(s, limits=_NUMBER_LIMITS)
    except safe_expr.ExprError:
        return None
    negative = node.op == "neg"
    if negative:
        node = node.args[0]
    if node.op == "div":
        if not all(a.op == "num" and a.value.denominator == 1 for a in node.args):
            return None
    elif node.op != "num":
        return None
    try:
        value = safe_expr.evaluate(node, limits=_NUMBER_LIMITS)
    except safe_expr.ExprError:
        return None
    if not isinstance(value, Fraction):
        return None
    return -value if negative else value


def parse_json(text: str) -> Any:
    """The JSON value of ``text`` (single quotes accepted, as reasoning-gym's scorers do), else ``None``."""
    s = text.strip()
    if not s or len(s) > MAX_JSON_CHARS or s[0] not in "[{":
        return None
    for candidate in (s, s.replace("'", '"')):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    return None


def _char_classes(text: str) -> tuple[bool, bool, frozenset[str]]:
    """(has digits, has letters, the other non-space characters) of ``text``."""
    digits = letters = False
    other: set[str] = set()
    for c in text:
        if c.isdigit():
            digits = True
        elif c.isalpha():
            letters = True
        elif not c.isspace():
            other.add(c)
    return digits, letters, frozenset(other)


@dataclass(frozen=True)
class Shape:
    """One answer shape; ``kind`` is one of number, complex, json, numbers, choice, token, text, formula,
    moves, words, any."""

    kind: str
    digits: bool = True
    letters: bool = True
    other: frozenset = frozenset()
    multiline: bool = True
    json_type: str = ""  # json: "list" or "dict"
    variables: frozenset = frozenset()  # formula: variable names; words, choice: the allowed words
    pattern: str = ""  # moves: what each whitespace-separated move looks like (a regular expression)
    single: bool = False  # moves: exactly one move (a coordinate)
    max_chars: int = 20_000

    # -- conformance ---------------------------------------------------------------------------
    def conforms(self, slot: str) -> bool:
        """Whether ``slot`` (stripped, non-empty) is an answer of this shape."""
        if len(slot) > self.max_chars:
            return False
        kind = self.kind
        if kind == "any":
            return True
        if kind == "number":
            return parse_number(slot) is not None
        if kind == "complex":
            return _complex_value(slot) is not None
        if kind == "numbers":
            return _number_list(slot) is not None
        if kind == "json":
            value = parse_json(slot)
            return isinstance(value, list if self.json_type == "list" else dict)
        if kind == "formula":
            return _is_formula(slot, self.variables)
        if kind == "choice":
            return normalize(slot) in self.variables
        if kind == "moves":
            moves = slot.replace(",", " ").split()
            if self.single and len(moves) != 1:
                return False
            return bool(moves) and all(re.fullmatch(self.pattern, m) for m in moves)
        if kind == "words":
            words = [w.strip(_WORD_STRIP).casefold() for w in slot.split()]
            return bool(words) and all(w in self.variables for w in words if w)
        # token / text: made of the gold's kinds of characters
        if kind == "token" and any(c.isspace() for c in slot):
            return False
        if not self.multiline and "\n" in slot:
            return False
        allowed = self.other | (SENTENCE_PUNCTUATION if kind == "text" and self.letters else frozenset())
        seen_alnum = False
        for c in slot:
            if c.isspace():
                continue
            if c.isdigit():
                if not self.digits:
                    return False
                seen_alnum = True
            elif c.isalpha():
                if not self.letters:
                    return False
                seen_alnum = True
            elif c not in allowed:
                return False
        return seen_alnum or not (self.digits or self.letters)

    # -- values --------------------------------------------------------------------------------
    def value(self, slot: str) -> Hashable:
        """What two answers of this shape are compared by (equal values: the same answer)."""
        if self.kind == "number":
            v = parse_number(slot)
            if v is not None:
                return ("n", Fraction(v))
        elif self.kind == "complex":
            v = _complex_value(slot)
            if v is not None:
                return ("c", v)
        elif self.kind == "numbers":
            v = _number_list(slot)
            if v is not None:
                return ("l", v)
        elif self.kind == "json":
            v = parse_json(slot)
            if v is not None:
                return ("j", json.dumps(v, sort_keys=True))
        return ("t", normalize(slot))

    def alternatives(self, slot: str) -> list[Hashable]:
        """The distinct values of ``slot`` read as alternatives (``a or b``, ``a, b``); one value when it is one.

        Only scalar shapes (a number, a single token) split: a list or sentence holds commas by design.
        """
        if not (self.kind in ("number", "token", "choice") or self.single) or self.conforms(slot):
            return [self.value(slot)]
        pieces = [p.strip() for p in _ALTERNATIVE_SPLIT.split(slot) if p.strip()]
        if len(pieces) < 2 or len(pieces) > 64:
            return [self.value(slot)]
        if not all(self.conforms(p) for p in pieces):  # "5, 2, ?" or a path: not a list of alternatives
            return [self.value(slot)]
        values = {self.value(p) for p in pieces}
        return sorted(values, key=repr) if len(values) >= 2 else [self.value(slot)]


def _complex_value(slot: str) -> complex | None:
    s = _strip_math(slot)
    try:
        node = safe_expr.parse(s, symbols=frozenset({"i", "j"}), limits=_NUMBER_LIMITS)
        value = safe_expr.evaluate(node, {"i": 1j, "j": 1j}, limits=_NUMBER_LIMITS)
    except safe_expr.ExprError:
        return None
    return complex(value) if isinstance(value, (Fraction, float, complex)) else None


def _number_list(slot: str) -> tuple | None:
    s = _strip_math(slot)
    if s[:1] in "[(" and s[-1:] in "])":
        s = s[1:-1]
    pieces = [p for p in s.split(",")] if "," in s else s.split()
    values = []
    for p in pieces:
        v = parse_number(p)
        if v is None:
            return None
        values.append(Fraction(v))
    return tuple(values) if values else None


_FORMULA_OPERATORS = frozenset("∧∨¬→↔()")
_WORD_STRIP = ".,;:!?'\"()"


def _words_of(text: str) -> frozenset[str]:
    return frozenset(w.strip(_WORD_STRIP).casefold() for w in text.split()) - {""}


def _is_formula(slot: str, variables: frozenset) -> bool:
    """A propositional formula over ``variables`` (single capital letters) with ∧ ∨ ¬ → ↔ and parentheses."""
    seen_var = False
    for c in slot:
        if c.isspace() or c in _FORMULA_OPERATORS:
            continue
        if c in variables:
            seen_var = True
            continue
        return False
    return seen_var


def infer_shape(gold: str | None, dataset: str, entry: dict[str, Any]) -> Shape:
    """The answer shape of one item: from the dataset where its gold is not an answer, else from the gold."""
    special = DATASET_SHAPES.get(dataset)
    if special is not None:
        return special(entry)
    if gold is None:
        return Shape("any")
    g = gold.strip()
    for words in CHOICES:
        if normalize(g) in words:
            return Shape("choice", variables=words, max_chars=64)
    if parse_number(g) is not None:
        return Shape("number")
    if isinstance(parse_json(g), (list, dict)):
        return Shape("json", json_type="list" if isinstance(parse_json(g), list) else "dict", max_chars=max(1000, 20 * len(g)))
    if re.fullmatch(r"-?[\d.]+\s*[+-]\s*[\d.]+i", g):
        return Shape("complex")
    if "," in g and _number_list(g) is not None:
        return Shape("numbers")
    digits, letters, other = _char_classes(g)
    if digits:
        other |= {"-", "."}  # -3, 2.5 in a grid of numbers
    max_chars = max(200, 8 * len(g))
    if not any(c.isspace() for c in g):
        return Shape("token", digits=digits, letters=letters, other=other, multiline=False, max_chars=max_chars)
    return Shape("text", digits=digits, letters=letters, other=other, multiline="\n" in g, max_chars=max_chars)


# datasets whose entries carry no gold answer (several answers are right): the shape comes from the task
DATASET_SHAPES = {
    "propositional_logic": lambda e: Shape("formula", variables=frozenset(e["metadata"]["variables"]), max_chars=2000),
    "graph_color": lambda e: Shape("json", json_type="dict", max_chars=20_000),
    "boxnet": lambda e: Shape("json", json_type="list", max_chars=100_000),
    # moves such as U R' F2 (the cube) and F+1 K-2 (the cars)
    "rubiks_cube": lambda e: Shape("moves", pattern=r"[UDLRFBMESudlrfbxyz]w?'?[0-9]{0,2}'?", max_chars=20_000),
    "rush_hour": lambda e: Shape("moves", pattern=r"[A-Z][+-][0-9]{1,2}", max_chars=20_000),
}
# datasets whose gold is one answer but whose answers have a narrower shape than the gold's characters
DATASET_SHAPES.update(
    {
        "tsumego": lambda e: Shape("moves", pattern=r"[A-Za-z][0-9]{1,2}", single=True, max_chars=64),
        # a reordering of the question's words
        "sentence_reordering": lambda e: Shape("words", variables=_words_of(e["question"]), max_chars=max(200, 4 * len(e["answer"]))),
    }
)

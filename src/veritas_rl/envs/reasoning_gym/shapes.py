"""What a reasoning-gym answer looks like: its shape, inferred from the gold answer (or the dataset).

reasoning-gym's scorers are lenient in ways a policy learns to exploit: many give ``0.01`` to any
text, some a similarity ratio to any string, one (``game_of_life_halting``) full credit to any
non-empty text. So the env trusts a scorer's credit only for an answer that *has the task's answer
shape*: a number where the gold is a number, JSON of the same kind where the gold is JSON, text made
of the gold's kind of characters, a formula over the task's variables. Shapes also give the value two
answers are compared by when deciding whether a completion hedges (``1314 or 1315``).

Every check here is linear in the (bounded) answer length: no backtracking regular expressions, no
evaluation (numbers go through :mod:`veritas_rl.envs.safe_expr`; JSON through ``json.loads``).

Why this module is long: shape inference, each shape's conformance check and value, and the comparisons
made against the gold in the same terms (markup around the whole answer, the gold with more around it,
the gold's number in another notation, lists and grids of numbers) are one reading of an answer; split,
each part would re-derive what the others already know about the gold.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Hashable

from veritas_rl.envs import safe_expr
from veritas_rl.envs.answers import strip_whole_markup

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
#: answers that say there is none (normalised): not an answer unless the gold is one of them
NULL_ANSWERS = frozenset({"none", "null", "nil", "n/a", "nan", "undefined", "unknown", "[]", "{}", "()", '""', "''"})


def normalize(text: str) -> str:
    """NFKC, whitespace collapsed, case folded, trailing period dropped."""
    s = " ".join(unicodedata.normalize("NFKC", text).split()).casefold()
    return s[:-1].rstrip() if s.endswith(".") else s


def unwrap(slot: str, gold: str | None) -> str:
    """``slot`` without the markup a right answer is often wrapped in (at most three layers: ``$\\boxed{42}$``,
    ``**x**``, a fenced block) and without a final period the gold does not have; the gold itself is kept as is.

    Only a wrapper around the *whole* slot comes off: ``\\boxed{1} or \\boxed{2}`` stays what it is (a hedge).
    """
    g = gold.strip() if gold is not None else None
    keep_period = g is not None and g.endswith(".")
    s = slot
    for _ in range(4):
        if s == g:
            return s
        if not keep_period and s.endswith(".") and not s.endswith(".."):
            s = s[:-1].rstrip()
        inner = strip_whole_markup(s)
        if inner is None:
            break
        s = inner.strip()
    return s


def embeds_gold(slot: str, gold: str) -> bool:
    """Whether ``slot`` is the gold answer with more words or digits around it (``5 days or 9 days``,
    ``noremopyhzzz``, the gold list and then more items): normalised, the gold occurs in it and what is
    left has a letter or digit. Markup alone around the gold (``"gold"``, ``(gold)``) does not count."""
    s, g = normalize(slot), normalize(gold)
    if not g or s == g:
        return False
    at = s.find(g)
    if at < 0:
        return False
    return any(c.isalnum() for c in s[:at] + s[at + len(g) :])


def _strip_math(text: str) -> str:
    s = text.strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s.strip("$").strip()
    return s[:-1].rstrip() if s.endswith(".") else s


def _number_text(text: str) -> str:
    """NFKC (fullwidth ``４２``), the minus sign as ``-``, without ``$...$`` or a final period."""
    return _strip_math(unicodedata.normalize("NFKC", text).replace("\u2212", "-"))


_PLAIN_DECIMAL = re.compile(r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d{1,3})?")


def plain_number(text: str) -> tuple[str, Fraction] | None:
    """``("dec", value)`` for an integer or decimal written out (``-61``, ``+6``, ``6.0``, ``78,000``, ``9.36e-18``,
    ``４２``), ``("hex", value)`` for ``0x3eb2``; ``None`` for fractions, expressions and everything else."""
    s = _number_text(text)
    if _HEX.fullmatch(s):
        return "hex", Fraction(int(s, 16))
    if _PLAIN_DECIMAL.fullmatch(s):
        return "dec", Fraction(s.replace(",", ""))
    return None


def same_number_as_gold(slot: str, gold: str) -> bool:
    """Whether ``slot`` writes the gold's number in another notation only (``6.0``, ``+6``, ``78,000``, ``４２``,
    ``0X3EB2``): both written out in the same base and *exactly* equal. A gold with a leading zero (``0101``:
    digits, not a number), an answer with one (``00`` for 0) and fractions (``488/1214`` is not ``244/607``
    simplified) never match: the dataset's scorer decides those."""
    for text in (slot, gold):
        digits = _number_text(text).lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
            return False
    a, b = plain_number(slot), plain_number(gold)
    return a is not None and a == b


def parse_number(text: str) -> Fraction | int | None:
    """One number (``-3``, ``2.5``, ``1,234``, ``9.36e-18``, ``3/4``, ``\\dfrac{3}{4}``, ``0x3eb2``, ``４２``) or
    ``None``.

    Sums and other expressions are not numbers: ``3+4`` is ``None``.
    """
    s = _number_text(text)
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


def _json_number(value: Any) -> Fraction | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        plain = plain_number(value)
        return plain[1] if plain is not None and plain[0] == "dec" else None
    return None


def json_numbers_mismatch(slot: str, gold: str) -> str | None:
    """Why a JSON answer is not the gold's numbers, where the gold is a list of numbers or a grid of them:

    - a flat list of numbers (``number_sorting``, whose scorer lets every number be off by 1): the answer must
      hold exactly the gold's numbers, by value (``17`` for ``'17.0'``), in the order the scorer checks;
    - a rectangular grid (``game_of_life``, whose scorer reads only the gold's cells): the answer must have the
      gold's rows and columns (extra rows or cells are another grid).

    ``None`` when the gold is neither, or the answer fits."""
    want, got = parse_json(gold), parse_json(slot)
    if not isinstance(want, list) or not want:
        return None
    numbers = [_json_number(v) for v in want]
    if all(v is not None for v in numbers):
        values = [_json_number(v) for v in got] if isinstance(got, list) else [None]
        if any(v is None for v in values) or sorted(values) != sorted(numbers):
            return "not the task's numbers (compared by value)"
        return None
    if all(isinstance(row, list) and row for row in want) and len({len(row) for row in want}) == 1:
        if all(_json_number(v) is not None for row in want for v in row):
            shape = [len(row) if isinstance(row, list) else -1 for row in got] if isinstance(got, list) else None
            if shape != [len(row) for row in want]:
                return f"not a {len(want)}x{len(want[0])} grid"
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
    moves, words, pattern, any."""

    kind: str
    digits: bool = True
    letters: bool = True
    other: frozenset = frozenset()
    multiline: bool = True
    json_type: str = ""  # json: "list" or "dict"
    variables: frozenset = frozenset()  # formula: variable names; words, choice: the allowed words
    pattern: str = ""  # moves: what each whitespace-separated move looks like; pattern: the whole answer (a regex)
    single: bool = False  # moves: exactly one move (a coordinate)
    max_moves: int = 0  # moves: at most this many once a trailing count repeats its move (``U99``: 99); 0: any
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
            if not moves or not all(re.fullmatch(self.pattern, m) for m in moves):
                return False
            return not self.max_moves or _expanded_moves(moves) <= self.max_moves
        if kind == "pattern":
            return re.fullmatch(self.pattern, slot) is not None
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


def _expanded_moves(moves: list[str]) -> int:
    """How many moves ``moves`` make once each trailing count repeats its move (rubiks_cube's ``expand_moves``)."""
    total = 0
    for move in moves:
        digits = len(move) - len(move.rstrip("0123456789"))
        total += int(move[-digits:]) if digits else 1
    return total


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


#: propositional_logic's parser rescans the formula at every operator and negation (``¬`` x 1,900 took 3 s and
#: ended in RecursionError): a conclusion has at most this many of each, and parentheses this deep
MAX_FORMULA_OPERATORS = 64
MAX_FORMULA_NEGATIONS = 64
MAX_FORMULA_DEPTH = 24
MAX_FORMULA_CHARS = 1000


def _is_formula(slot: str, variables: frozenset) -> bool:
    """A propositional formula over ``variables`` (single capital letters) with ∧ ∨ ¬ → ↔ and parentheses,
    within the bounds above."""
    if len(slot) > MAX_FORMULA_CHARS:
        return False
    seen_var = False
    operators = negations = depth = 0
    for c in slot:
        if c == "(":
            depth += 1
            if depth > MAX_FORMULA_DEPTH:
                return False
        elif c == ")":
            depth -= 1
        elif c == "¬":
            negations += 1
        elif c in _FORMULA_OPERATORS:
            operators += 1
        elif c in variables:
            seen_var = True
        elif not c.isspace():
            return False
    return seen_var and operators <= MAX_FORMULA_OPERATORS and negations <= MAX_FORMULA_NEGATIONS


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


#: the most cube moves an answer may make (a 3x3 cube needs at most 20; 1,000 take ~20 ms to play out)
MAX_CUBE_MOVES = 1000

# datasets whose entries carry no gold answer (several answers are right): the shape comes from the task
DATASET_SHAPES = {
    "propositional_logic": lambda e: Shape(
        "formula", variables=frozenset(e["metadata"]["variables"]), max_chars=MAX_FORMULA_CHARS
    ),
    "graph_color": lambda e: Shape("json", json_type="dict", max_chars=20_000),
    "boxnet": lambda e: Shape("json", json_type="list", max_chars=100_000),
    # moves such as U R' F2 (the cube) and F+1 K-2 (the cars)
    # rubiks_cube's scorer turns the cube once per move, ``U99`` being 99 moves (20,000 characters of them: ~9 s)
    "rubiks_cube": lambda e: Shape("moves", pattern=r"[UDLRFBMESudlrfbxyz]w?'?[0-9]{0,2}'?", max_chars=20_000,
                                   max_moves=MAX_CUBE_MOVES),
    "rush_hour": lambda e: Shape("moves", pattern=r"[A-Z][+-][0-9]{1,2}", max_chars=20_000),
}
#: time_intervals' answer formats (its scorer reads ``int()`` of the first word of ``5 days``, so ``5 or 9
#: days`` scored 1.0; an answer must be one duration in the gold's format)
_DURATIONS = (
    (re.compile(r"\d+ days"), r"(?i)-?\d{1,9}(?: days?)?"),
    (re.compile(r"\d+ days, \d+:\d\d(?::\d\d)?"), r"(?i)-?\d{1,9} days?, \d{1,3}:\d{2}(?::\d{2})?"),
    (re.compile(r"\d+:\d\d(?::\d\d(?:\.\d+)?)?"), r"\d{1,3}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?"),
)


def _duration_shape(entry: dict[str, Any]) -> Shape:
    gold = str(entry["answer"]).strip()
    for gold_format, answer_format in _DURATIONS:
        if gold_format.fullmatch(gold):
            return Shape("pattern", pattern=answer_format, max_chars=64)
    return infer_shape(gold, "", entry)


# datasets whose gold is one answer but whose answers have a narrower shape than the gold's characters
DATASET_SHAPES.update(
    {
        "tsumego": lambda e: Shape("moves", pattern=r"[A-Za-z][0-9]{1,2}", single=True, max_chars=64),
        # a reordering of the question's words
        "sentence_reordering": lambda e: Shape("words", variables=_words_of(e["question"]), max_chars=max(200, 4 * len(e["answer"]))),
        "time_intervals": _duration_shape,
        # button presses (A → B → C); its scorer keeps every A-C letter of any text and drops the rest
        "quantum_lock": lambda e: Shape(
            "moves", pattern=r"(?:[ABCabc]|→|->)+", max_chars=max(200, 4 * len(e["answer"]))
        ),
    }
)

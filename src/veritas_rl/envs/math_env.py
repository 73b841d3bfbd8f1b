r"""``math`` (alias ``gsm8k``): word problems with a numeric or symbolic answer.

Questions come from, in order of precedence:

* ``data_files``: local parquet / jsonl files with ``question_key`` / ``answer_key`` columns;
* ``dataset_name``: a Hugging Face dataset through ``datasets.load_dataset`` (``openai/gsm8k``,
  ``subset="main"``, ``split="test"``) — needs the hub or a local HF cache;
* otherwise (offline default) the reasoning-gym dataset ``rg_dataset`` (``gsm_symbolic``).

Gold answers in GSM8K style (``... #### 72``) keep the part after ``####``; a gold with several
``\boxed{}`` keeps all of them, as the parts of a multi-part answer.

The answer slots are every non-empty ``\boxed{}`` of the completion (after the last ``</think>``, and
after any copy of the prompt), else the rest of the line after "the answer is", "final answer",
``####`` or "answer:" (the next line or display block where the marker ends its line); there is no
"last number in the text" fallback. A slot is cleaned (math delimiters, ``$``,
a trailing ``%`` or degree sign, ``\text{}``, a ``x =`` prefix, trailing unit words such as
``dollars``) and must then be ONE value in the strict grammar of :mod:`veritas_rl.envs.safe_expr`
(a list only where the gold is a list): ``\boxed{9, 18}``, ``3 + \sqrt{5}``, ``AZYUK2A`` are not
"the number in them". Values compare exactly where exact (``18 \times 10^2`` is 1800, ``\frac{36}{2}``
is 18, ``18.00`` is 18), to 1e-9 relative between inexact values (``\sqrt{32}`` is ``4\sqrt{2}``), 1e-12
between an exact and an inexact one, and expressions
with symbols at three fixed points (``(x+1)^2`` is ``x^2+2x+1``). Two or more different values among
the slots is a hedge (kind ``hedge``), compared by value. A multi-part answer keeps the gold's brackets:
``[a, b]`` and ``(a, b)`` (closed / open interval, list / tuple) match only themselves, a bare ``a, b``
and a set ``\{a, b\}`` match each other in any order. A gold the grammar does not read (an
interval, text) is compared as normalised text, then by value with math-verify's reading of the gold
(:func:`gold_reading`): math-verify and sympy see only the gold, never the answer.

Why this module is long: the question/answer sources (shared with ``answer-tag``), answer extraction
and the by-value comparison are one scoring path; the grammar itself lives in :mod:`.safe_expr`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import string
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from veritas_rl.envs.answers import (
    after_last_marker,
    boxed_answers,
    closing_brace,
    distinct_answers,
    last_boxed,
)
from veritas_rl.envs.base import Env, Score, Task, register_env
from veritas_rl.envs.safe_expr import (
    MATH_FUNCTIONS,
    ExprError,
    Limits,
    Node,
    Number,
    evaluate,
    parse_list,
    symbols_of,
)

log = logging.getLogger(__name__)

MATH_INSTRUCTION = "\n\nSolve the problem step by step, then give the final answer in \\boxed{}."
MATH_VERIFY_TIMEOUT_S = 2
#: a prompt (or question) shorter than this is not looked for as an echo in the completion
MIN_ECHO_CHARS = 20


# =============================================================================================
# question/answer sources shared by ``math`` and ``answer-tag``
# =============================================================================================


@dataclass(frozen=True)
class QASourceConfig:
    """Where question/answer pairs come from (see the module docstring for the precedence)."""

    data_files: tuple[str, ...] = ()  # local .parquet / .jsonl / .json files
    dataset_name: str = ""  # Hugging Face dataset id, e.g. "openai/gsm8k"
    subset: str = "main"  # the HF dataset's config name ("" for none)
    split: str = "test"
    question_key: str = "question"
    answer_key: str = "answer"
    rg_dataset: str = "gsm_symbolic"  # offline default: a reasoning-gym dataset
    rg_config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0  # reasoning-gym seed
    size: int = 10_000  # number of reasoning-gym tasks
    max_tasks: int = 0  # keep only the first N rows of a file/HF dataset (0: all)

    def __post_init__(self):
        files = self.data_files
        if isinstance(files, str):
            files = (files,)
        object.__setattr__(self, "data_files", tuple(str(f) for f in files))
        if self.data_files and self.dataset_name:
            raise ValueError("data_files and dataset_name are both set; choose one source")
        for f in self.data_files:
            if Path(f).suffix.lower() not in (".parquet", ".jsonl", ".json"):
                raise ValueError(f"data_files: {f!r} is not valid; choose files ending in .parquet, .jsonl or .json")
        for key in ("question_key", "answer_key"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ValueError(f"{key}={getattr(self, key)!r}; expected a column name")
        if not isinstance(self.rg_config, dict):
            raise ValueError(f"rg_config={self.rg_config!r}; expected a mapping of dataset options")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size={self.size!r}; expected a positive integer")
        if not isinstance(self.max_tasks, int) or self.max_tasks < 0:
            raise ValueError(f"max_tasks={self.max_tasks!r}; expected 0 (all) or a positive integer")

    @property
    def source(self) -> str:
        return "files" if self.data_files else "hf" if self.dataset_name else "reasoning-gym"


def load_rows(config: QASourceConfig) -> list[dict[str, str]]:
    """Rows ``{"question", "answer"}`` of a local file set or a Hugging Face dataset."""
    qk, ak = config.question_key, config.answer_key
    if config.data_files:
        import pandas as pd

        frames = []
        for f in config.data_files:
            path = Path(f)
            if not path.is_file():
                raise ValueError(f"data_files: {f!r} does not exist")
            if path.suffix.lower() == ".parquet":
                frames.append(pd.read_parquet(path))
            else:
                frames.append(pd.read_json(path, lines=path.suffix.lower() == ".jsonl", dtype=False))
        table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        columns = list(table.columns)
        records = table.to_dict("records")
    else:
        import datasets

        try:
            ds = datasets.load_dataset(config.dataset_name, config.subset or None, split=config.split)
        except Exception as err:  # noqa: BLE001 — the hub/cache is the user's configuration: say which key
            raise ValueError(
                f"dataset_name={config.dataset_name!r} (subset={config.subset!r}, split={config.split!r}) "
                f"could not be loaded: {type(err).__name__}: {err}"
            ) from err
        columns = list(ds.column_names)
        records = ds
    for key, name in (("question_key", qk), ("answer_key", ak)):
        if name not in columns:
            raise ValueError(f"{key}={name!r} is not a column; choose from: {', '.join(map(str, columns))}")
    rows = []
    for rec in records:
        rows.append({"question": str(rec[qk]), "answer": str(rec[ak])})
        if config.max_tasks and len(rows) >= config.max_tasks:
            break
    if not rows:
        raise ValueError(f"the {config.source} source has no rows ({config.data_files or config.dataset_name})")
    return rows


class QASource:
    """Question/answer pair ``i`` of the configured source (rows loaded once per env)."""

    def __init__(self, config: QASourceConfig):
        self.config = config
        self.rows: list[dict[str, str]] | None = None
        self.rg = None
        if config.source == "reasoning-gym":
            from veritas_rl.envs.reasoning_gym import build_rg_dataset

            self.rg = build_rg_dataset(
                config.rg_dataset, dict(config.rg_config), seed=config.seed, size=config.size, key="rg_dataset"
            )
        else:
            self.rows = load_rows(config)
            log.info("loaded %d question/answer rows from %s", len(self.rows), config.source)

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else self.config.size

    def pair(self, index: int) -> tuple[str, str]:
        index = int(index)
        if not 0 <= index < len(self):
            raise ValueError(f"task_id={index} outside [0, {len(self)})")
        if self.rows is not None:
            row = self.rows[index]
            return row["question"], row["answer"]
        item = self.rg[index]
        return str(item["question"]), str(item["answer"])


def gold_answer(raw: str) -> str:
    r"""The final answer inside a dataset's answer field: after ``####`` (GSM8K), in ``\boxed{}``, or all of it.

    A gold with several boxes (a multi-part answer) keeps every box, joined by ``", "``: each is one part.
    """
    text = str(raw)
    if "####" in text:
        return text.rsplit("####", 1)[1].strip()
    boxes = [b.strip() for b in boxed_answers(text) if b.strip()]
    if len(boxes) > 1:
        return ", ".join(boxes)
    if boxes:
        return boxes[0]
    boxed = last_boxed(text)  # ``\boxed 5``
    return (boxed if boxed is not None else text).strip()


# =============================================================================================
# answer extraction
# =============================================================================================

_MARKERS = (("the answer is", "the answer is"), ("final answer", "final answer"), ("####", "####"),
            ("answer:", "answer:"))
_NUMBER_START = frozenset("-+$\\.0123456789")
NO_SLOT = "no answer found (no \\boxed{}, 'the answer is', 'final answer', '####' or 'answer:')"
#: display-math openers and their closers: a marker alone on its line may be followed by one
_DISPLAY = (("$$", "$$"), ("\\[", "\\]"))


def marker_rest(text: str, marker: str) -> str | None:
    r"""The rest of the line after the last ``marker`` (``None`` when it does not occur); where that line states
    nothing (``The final answer is:`` then ``$$42$$`` or ``42`` on a later line), the next non-empty line, or
    the whole display block (``$$ ... $$``, ``\[ ... \]``) that starts there. Bounded: only the
    ``MAX_SLOT_CHARS`` characters after the marker are read."""
    rest = after_last_marker(text, marker)
    if rest is None or marker == "####" or _trim_slot(rest):
        return rest
    at = text.lower().rfind(marker.lower()) + len(marker) + len(rest)
    window = text[at : at + MAX_SLOT_CHARS].lstrip()
    for left, right in _DISPLAY:
        if window.startswith(left):
            end = window.find(right, len(left))
            return window if end < 0 else window[: end + len(right)]
    nl = window.find("\n")
    return window if nl < 0 else window[:nl]


def extract_answer(text: str) -> tuple[list[str] | None, str]:
    r"""``(slots, how)``: every non-empty top-level ``\boxed{}`` (how ``"boxed"``), else the slot after the last
    "the answer is", "final answer" or ``####`` (in that order of preference); ``(None, NO_SLOT)`` when none.

    There is no "last number in the text" fallback: a number inside prose is not a stated answer.
    """
    boxes = [b.strip() for b in boxed_answers(text)]
    boxes = [b for b in boxes if b]  # the prompt's own format example is an empty \boxed{}
    if boxes:
        return boxes, "boxed"
    for marker, how in _MARKERS:
        slot = marker_rest(text, marker)
        if slot is not None:
            slot = _trim_slot(slot)
            if marker == "####" and slot[:1] not in _NUMBER_START:
                continue  # a Markdown heading ("#### Step 2"), not GSM8K's answer line
            if slot:
                return [slot], how
    return None, NO_SLOT


#: a stand-alone number (not part of a word such as ``AZYUK2A``); linear: no nested quantifiers
_LAST_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])-?\d[\d,]*(?:\.\d+)?(?![A-Za-z0-9_])")


_ALTERNATIVE = re.compile(r"\s*(?:,|/|;|or|and|,\s*or|or\s+maybe|maybe)\s*", re.I)


def last_number(text: str) -> tuple[str | None, bool]:
    """``(number, hedged)``: the last stand-alone number of ``text`` (``1,800`` and ``-3.5`` included), or
    ``None``; ``hedged`` when it is offered as an alternative to a different number just before it
    (``45 or 46``, ``45/46``, ``45, 46``)."""
    previous = found = None
    for match in _LAST_NUMBER.finditer(text):
        previous, found = found, match
    if found is None:
        return None, False
    number = found.group(0).rstrip(",")
    hedged = (previous is not None and _ALTERNATIVE.fullmatch(text[previous.end():found.start()]) is not None
              and previous.group(0).rstrip(",").replace(",", "") != number.replace(",", ""))
    return number, hedged


def _trim_slot(slot: str) -> str:
    s = slot.strip()
    for lead in (":", "is ", ":", "="):
        if s.lower().startswith(lead):
            s = s[len(lead) :].strip()
    if s.lower() in ("is", "is:"):  # "The final answer is" and nothing more on the line
        return ""
    s = _strip_emphasis(s)  # **Final answer:** 42, The answer is **42**.
    s = _strip_math_delimiters(s)
    # a sentence after the answer ("42. That is all") ends the slot
    cut = s.find(". ")
    if cut > 0:
        s = s[:cut]
    return _strip_emphasis(s)


def _strip_emphasis(text: str) -> str:
    """Markdown emphasis and closing punctuation around a stated answer: ``**42**.`` -> ``42``, ``42;`` -> ``42``.

    Only at the ends (``2**3`` is a power); ``!`` stays (``5!`` is a factorial)."""
    s = text
    for _ in range(3):
        t = s.strip().rstrip(".,;").strip().strip("*").strip()
        if t == s:
            break
        s = t
    return s


def _strip_math_delimiters(text: str) -> str:
    r"""``$42$``, ``\(42\)``, ``\[42\]`` -> ``42``."""
    s = text.strip()
    for left, right in (("\\(", "\\)"), ("\\[", "\\]"), ("$$", "$$"), ("$", "$")):
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            s = s[len(left) : len(s) - len(right)].strip()
    return s.strip("$").strip()


# =============================================================================================
# the answer grammar: one value (or a list for a multi-part gold), compared by value
# =============================================================================================

#: functions and constants a math answer may use (see ``safe_expr``); every single ASCII letter but ``e``
#: is a symbol (``x``, ``n``, ``A`` for a multiple-choice letter)
MATH_ANSWER_FUNCTIONS = MATH_FUNCTIONS | {"abs"}
MATH_SYMBOLS = frozenset(string.ascii_letters) - {"e"}
#: bounds on model text; a gold (trusted) gets more room
ANSWER_LIMITS = Limits()
GOLD_LIMITS = Limits(max_chars=2000, max_tokens=1000, max_depth=48)
#: a slot longer than this is not even cleaned (the grammar's own bound is ``ANSWER_LIMITS.max_chars``)
MAX_SLOT_CHARS = 1000
#: at most this many parts in a list answer
MAX_PARTS = 16
_WRAPPERS = ("\\text{", "\\textbf{", "\\textrm{", "\\mathrm{", "\\mathbf{", "\\mbox{", "\\boxed{", "\\fbox{")
#: LaTeX spacing that may sit between a quantity and its unit
_TEX_SPACES = ("\\quad", "\\qquad", "\\,", "\\;", "\\:", "\\!", "\\")
#: a unit's power (``cm^2``, ``\text{ m}^3``): part of the unit word it follows
_UNIT_POWERS = ("^2", "^3", "^{2}", "^{3}")
_UNIT_STOP = frozenset(n.lower() for n in (*MATH_ANSWER_FUNCTIONS, "sqrt", "frac", "dfrac", "times", "cdot", "div"))
#: words that join alternatives: a unit word never follows one
_CONNECTIVES = frozenset({"or", "and", "nor", "not", "maybe", "either", "vs", "versus"})
_EQ_LHS = re.compile(r"\s*[A-Za-z][A-Za-z0-9_]{0,20}\s*")


def clean_slot(text: str) -> str:
    r"""What a slot says once the decoration is gone: math delimiters, ``$``/``\$`` currency, a trailing
    ``%``/``\%``/degree sign, ``\text{}``-style wrappers, a ``name =`` prefix (``x = 5``), trailing unit words
    (``18 dollars``, ``12 apples``; never a function or constant name, so ``3 pi`` keeps its ``pi``)."""
    s = _strip_math_delimiters(text)
    s = s.replace("\\$", "").replace("$", "")
    for wrapper in _WRAPPERS:  # unwrap \text{...} (bounded: each pass removes one wrapper)
        while True:
            at = s.find(wrapper)
            if at < 0:
                break
            end = closing_brace(s, at + len(wrapper))
            if end is None:
                break
            s = f"{s[:at]} {s[at + len(wrapper) : end]} {s[end + 1 :]}"
    s = s.strip().rstrip(".").strip()
    for tail in ("\\%", "%", "^\\circ", "^{\\circ}", "\u00b0", "\\circ"):
        if s.endswith(tail):
            s = s[: -len(tail)].strip()
    if "=" in s:
        lhs, rhs = s.rsplit("=", 1)
        if not lhs.strip() or _EQ_LHS.fullmatch(lhs):
            s = rhs.strip()
    # trailing unit words, after a quantity only: "12 apples", "3\pi meters"; never words after words ("Monday
    # Tuesday" is not Monday) and never across "or"/"and" ("4 or five", "yes or no" are not 4 and yes)
    while True:
        head, _, word = s.rpartition(" ")
        if word in _UNIT_POWERS and head.strip():  # "\text{ cm}^2" unwrapped: "cm ^2"
            head, _, unit = head.rstrip().rpartition(" ")
            word = unit + word
        w = word.rstrip(".")
        for power in _UNIT_POWERS:
            if w.endswith(power):
                w = w[: -len(power)]
                break
        if not head.strip() or not (w.isascii() and w.isalpha() and len(w) >= 2) or w.lower() in _UNIT_STOP:
            break
        last = head.rstrip().rpartition(" ")[2].lower()
        if last in _CONNECTIVES or not any(c.isdigit() or c in "\\^)}" for c in head):
            break
        s = head.rstrip()
        for space in _TEX_SPACES:  # "42\ \text{cm}": the spacing command before the unit goes with it
            if s.endswith(space):
                s = s[: -len(space)].rstrip()
                break
    return s.strip()


@dataclass(frozen=True)
class Parsed:
    """An answer in the grammar: its parts (one for a plain answer) and whether their order matters."""

    items: tuple[Node, ...]
    ordered: bool
    is_list: bool = False  # bracketed (``[18]``, ``\{18\}``, ``(1, 2)``) or several items
    brackets: str = ""  # the enclosing pair: "", "()", "[]" or "{}" (parse_list)


def parse_answer(text: str, *, limits: Limits = ANSWER_LIMITS) -> Parsed:
    r"""Parse a slot (``\boxed{}`` content or marker slot) into :class:`Parsed`; raises :class:`ExprError`."""
    if len(text) > MAX_SLOT_CHARS:
        raise ExprError(f"answer longer than {MAX_SLOT_CHARS} characters", "too_long")
    s = clean_slot(text)
    if not s:
        raise ExprError("empty answer")
    if "=" in s:
        return _parse_equation(s, limits)
    items, brackets = parse_list(s, functions=MATH_ANSWER_FUNCTIONS, symbols=MATH_SYMBOLS, limits=limits)
    if len(items) > MAX_PARTS:
        raise ExprError(f"more than {MAX_PARTS} parts", "too_long")
    return Parsed(items, brackets in ("()", "[]"), bool(brackets) or len(items) > 1, brackets)


#: at most this many sides in a chain of equalities (``6 \\times 7 = 42``)
MAX_EQUATION_SIDES = 4


def _parse_equation(s: str, limits: Limits) -> Parsed:
    r"""``6 \times 7 = 42`` (a worked answer): one value when every side has it, its last side; sides that differ
    (``43 = 42``, ``2x = 4``: an equation, not its solution) are refused. A leading ``x =`` is dropped first."""
    sides = s.split("=")
    if len(sides) > 2 and _EQ_LHS.fullmatch(sides[0]):
        sides = sides[1:]
    if len(sides) > MAX_EQUATION_SIDES or any(not side.strip() for side in sides):
        raise ExprError(f"not an answer: {len(sides) - 1} '=' signs with an empty side or more than "
                        f"{MAX_EQUATION_SIDES} sides")
    parsed, values = [], []
    for side in sides:
        items, brackets = parse_list(side, functions=MATH_ANSWER_FUNCTIONS, symbols=MATH_SYMBOLS, limits=limits)
        if len(items) != 1 or brackets:
            raise ExprError("an equation with a list on one side is not one answer")
        parsed.append(items[0])
        values.append(signature(items[0], limits))
    if not all(same_value(v, values[-1]) for v in values[:-1]):
        raise ExprError("an equation whose sides differ is not an answer (state the value alone)")
    return Parsed((parsed[-1],), False)


#: the points a symbolic answer is evaluated at: symbol number ``k`` (its place in ``a..zA..Z``) gets
#: ``base * (1 + sqrt(prime_k) / 4)`` at each base. Every letter has its own value, and the gap between two
#: letters changes from point to point, so no letter equals another letter plus a constant (``B - c`` is
#: never ``A`` at all three points; a linear spacing made ``u`` equal ``A`` and ``B - 0.0437`` equal ``A``)
_POINT_BASES = (0.5772156649015329, 1.2020569031595942, 0.9159655941772190)
_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101,
           103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193, 197, 199,
           211, 223, 227, 229, 233, 239)
_SYMBOL_SCALE = {c: 1 + _PRIMES[k] ** 0.5 / 4 for k, c in enumerate(string.ascii_letters)}


#: how many more points each reply is checked at, keyed by its own text (:func:`answer_bases`)
ANSWER_KEYED_POINTS = 2


def answer_bases(slots: Sequence[str]) -> tuple[float, ...]:
    """Points keyed by the reply's own answer text, checked beside the fixed :data:`_POINT_BASES`.

    The fixed points are public: an expression built to agree with a symbolic gold at those three points only
    (the gold plus a polynomial vanishing there) would pass them. These points, in the fixed points' range
    (0.5 to 1.3, so the same domain rules hold), come from a SHA-256 of the answer slots: changing the text to
    fit them changes them, so agreeing by construction is a hash preimage search. Equal expressions agree at
    every point, so right answers are unaffected; the score stays a pure function of gold and reply."""
    digest = hashlib.sha256("\x00".join(slots).encode("utf-8", "surrogatepass")).digest()
    return tuple(0.5 + 0.8 * int.from_bytes(digest[8 * i:8 * i + 8], "big") / 2.0 ** 64
                 for i in range(ANSWER_KEYED_POINTS))


def _symbol_value(name: str, base: float) -> float:
    return base * _SYMBOL_SCALE[name]  # the grammar's symbols are MATH_SYMBOLS: single ASCII letters


def signature(node: Node, limits: Limits = ANSWER_LIMITS, bases: Sequence[float] = _POINT_BASES) -> tuple:
    """The value of ``node`` at each evaluation point ``bases`` (a constant repeats its exact value); ``None``
    where undefined. Raises :class:`ExprError` (``too_long``) when a bound is hit, so this is also the bound
    check."""
    names = symbols_of(node)
    if not names:
        return (evaluate(node, limits=limits),) * len(bases)
    out = []
    for base in bases:
        env = {n: _symbol_value(n, base) for n in names}
        try:
            out.append(evaluate(node, env, limits=limits))
        except ExprError as err:
            if err.kind == "too_long":
                raise
            out.append(None)
    return tuple(out)


def _close(a: Number, b: Number) -> bool:
    """Exact numbers compare exactly; two inexact ones to 1e-9 relative (``\\sqrt{32}`` is ``4\\sqrt{2}``); an
    exact one against an inexact one to 1e-12 relative: float rounding (``(2\\sqrt{2})^2`` is 8.000000000000002)
    passes, and an answer made inexact on purpose (``10000012346 + \\sin(0)`` for 10000012345, which 1e-9
    relative let through) does not."""
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a == b
    try:
        x, y = complex(a), complex(b)
    except OverflowError:
        return False
    rel = 1e-12 if isinstance(a, Fraction) or isinstance(b, Fraction) else 1e-9
    return abs(x - y) <= rel * max(1.0, abs(x), abs(y))


def same_value(a: tuple, b: tuple) -> bool:
    """Two signatures agree at every point (and are defined at the same points, at least two of them)."""
    defined = 0
    for x, y in zip(a, b):
        if (x is None) != (y is None):
            return False
        if x is not None:
            if not _close(x, y):
                return False
            defined += 1
    return defined >= 2


def _match_parts(gold: list[tuple], got: list[tuple], ordered: bool) -> int:
    """How many gold parts ``got`` matches (in order, or as a multiset)."""
    if ordered:
        return sum(same_value(g, a) for g, a in zip(gold, got))
    unused = list(got)
    matched = 0
    for g in gold:
        for k, a in enumerate(unused):
            if same_value(g, a):
                matched += 1
                del unused[k]
                break
    return matched


def normalize_numeric(text: str) -> Fraction | None:
    r"""The exact number a slot states (``$1,234.50``, ``72.0``, ``50%``, ``\$18``, ``18 dollars``,
    ``\frac{1}{2}``, ``18 \times 10^2``), or ``None`` (not one exact number, or not in the grammar)."""
    try:
        parsed = parse_answer(text)
        if len(parsed.items) != 1 or symbols_of(parsed.items[0]):
            return None
        value = evaluate(parsed.items[0])
    except ExprError:
        return None
    return value if isinstance(value, Fraction) else None


def _constant(expr: Any) -> tuple | None:
    """The signature of a symbol-free sympy number of a trusted gold (exact where rational), else ``None``."""
    if getattr(expr, "free_symbols", True) or not getattr(expr, "is_finite", False):
        return None
    if expr.is_Rational:
        return (Fraction(int(expr.p), int(expr.q)),) * len(_POINT_BASES)
    try:
        import sympy

        v = complex(sympy.N(expr, 30))
    except (TypeError, ValueError, ArithmeticError):
        return None
    return (v,) * len(_POINT_BASES) if math.isfinite(v.real) and math.isfinite(v.imag) else None


@lru_cache(maxsize=4096)
def _gold_parse(gold: str) -> Any:
    """math-verify's sympy object for a (trusted) gold, or ``None`` when it reads none."""
    if len(gold) > GOLD_LIMITS.max_chars:
        return None
    from math_verify import LatexExtractionConfig, parse

    timeout = MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        parsed = parse(f"\\boxed{{{gold}}}", extraction_config=[LatexExtractionConfig()], parsing_timeout=timeout)
    except Exception:  # noqa: BLE001 — math-verify failing on a gold is data: it cannot be compared by value
        return None
    if not parsed or isinstance(parsed[0], str):
        return None
    return parsed[0]


@lru_cache(maxsize=4096)
def gold_reading(gold: str) -> tuple[Any, tuple | None]:
    r"""How math-verify reads a (trusted) gold our grammar does not: ``("value", signature)`` for one expression
    in single-letter variables (``2\sqrt{3}\text{ cm}^2``, ``2x+3 \text{ units}``: its value at our evaluation
    points, computed by sympy on the gold alone); ``(("interval", "(", "]"), (start, end))`` for an interval with
    finite ends (``x \\in [1, 2]`` too), ``(("set",), items)`` for a finite set of numbers;  ``("other", None)`` for
    anything else (an equation, a matrix, an infinite interval), ``("none", None)`` when math-verify does not
    read it. Only the gold goes through sympy: answers are compared with this reading by value."""
    expr = _gold_parse(gold)
    if expr is None:
        return "none", None
    import sympy

    if isinstance(expr, sympy.Equality) and isinstance(expr.args[1], sympy.Set):  # x \\in [1, 2]
        expr = expr.args[1]
    if isinstance(expr, sympy.Interval):
        ends = [_constant(end) for end in (expr.start, expr.end)]
        if None in ends:  # an infinite end: no answer in our grammar states one
            return "other", None
        return ("interval", "(" if expr.left_open else "[", ")" if expr.right_open else "]"), tuple(ends)
    if isinstance(expr, sympy.FiniteSet):
        items = tuple(_constant(item) for item in expr.args)
        return ("other", None) if None in items or not items else (("set",), items)
    if not isinstance(expr, sympy.Expr) or isinstance(expr, sympy.MatrixBase):
        return "other", None
    names = {str(sym): sym for sym in expr.free_symbols}
    if not all(n in MATH_SYMBOLS for n in names):
        return "other", None
    if expr.is_Rational:
        return "value", (Fraction(int(expr.p), int(expr.q)),) * len(_POINT_BASES)
    try:
        values = _sympy_values(expr, _POINT_BASES)
    except (TypeError, ValueError, ArithmeticError):
        return "other", None
    return "value", values


def _sympy_values(expr: Any, bases: Sequence[float]) -> tuple:
    """A trusted gold's sympy expression at ``bases`` (``None`` where not finite)."""
    import sympy

    names = {str(sym): sym for sym in expr.free_symbols}
    values: list[Number | None] = []
    for base in bases:
        at = expr.xreplace({sym: sympy.Float(_symbol_value(n, base), 30) for n, sym in names.items()})
        v = complex(sympy.N(at, 30))
        values.append(v if math.isfinite(v.real) and math.isfinite(v.imag) else None)
    return tuple(values)


def gold_values_at(gold: str, bases: Sequence[float]) -> tuple | None:
    """A symbolic value gold of :func:`gold_reading` at more points (the reply-keyed ones); ``None`` when the
    gold is not one (constants need no more points) or sympy cannot evaluate it there."""
    reading, values = gold_reading(gold)
    if reading != "value" or len(set(values)) == 1:  # a constant is the same everywhere
        return None
    expr = _gold_parse(gold)  # cached: the expression gold_reading read
    try:
        return _sympy_values(expr, bases)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _plain(text: str) -> str:
    return "".join(clean_slot(text).split()).lower()


def _one_value(slot: str) -> tuple | None:
    try:
        parsed = parse_answer(slot)
        return signature(parsed.items[0]) if len(parsed.items) == 1 else None
    except ExprError:
        return None


def marker_conflict(text: str, box: str) -> tuple[str, str] | None:
    r"""``(marker, slot)`` when a "the answer is" / "final answer" / ``####`` line of ``text`` states one value
    and the final box another (``The answer is 28081 box{28080}``); the line's text from a box on is the
    box itself, so ``The answer is oxed{42}`` states nothing more."""
    boxed = None
    for marker, _ in _MARKERS:
        rest = marker_rest(text, marker)
        if rest is None:
            continue
        for cmd in ("\\boxed", "\\fbox"):
            at = rest.find(cmd)
            if at >= 0:
                rest = rest[:at]
        slot = _trim_slot(rest)
        if not slot or (marker == "####" and slot[:1] not in _NUMBER_START):
            continue
        stated = _one_value(slot)
        if stated is None:
            continue
        boxed = boxed or _one_value(box)
        if boxed is not None and not same_value(stated, boxed):
            return marker, slot
    return None


def _same_enclosure(gold: str, answer: str) -> bool:
    r"""Whether a multi-part answer's enclosing pair may stand for the gold's. ``[a, b]`` and ``(a, b)`` are
    closed and open intervals (or a list and a tuple): only the same pair matches. A bare ``a, b`` and a set
    ``\{a, b\}`` are unordered collections: either matches the other, neither matches a bracketed gold."""
    if gold in ("()", "[]"):
        return answer == gold
    return answer in ("", "{}")


def compare_math(gold: str, answers: str | Sequence[str], *, use_math_verify: bool = True) -> Score:
    r"""Score the extracted slot(s) ``answers`` (every box of a completion, or one marker slot) against ``gold``.

    One-part gold: the slots must state one value; two or more *different* values (compared by value, so
    ``\$18`` and ``18.00`` are one) is a hedge. Multi-part gold (a comma list, several boxes): the parts
    compare part by part — in order for ``(a, b)`` / ``[a, b]``, as a multiset otherwise.
    """
    slots = [answers] if isinstance(answers, str) else list(answers)
    shown = " | ".join(slots)[:100]
    bases = _POINT_BASES + answer_bases(slots)  # the fixed points and the reply's own (see answer_bases)
    try:
        want = parse_answer(gold, limits=GOLD_LIMITS)
        gold_sigs = [signature(n, GOLD_LIMITS, bases) for n in want.items]
    except ExprError:
        want = None
    items: list[Node] = []
    ordered = is_list = False
    brackets = ""
    for slot in slots:
        try:
            parsed = parse_answer(slot)
        except ExprError as err:
            if want is None and len(slots) == 1 and len(slot) <= MAX_SLOT_CHARS and _plain(gold) == _plain(slot):
                return Score(1.0, {"reason": "correct", "match": "exact"})
            return Score.zero(f"answer not in the grammar: {err.reason}", kind=err.kind, answer=shown, expected=gold)
        items.extend(parsed.items)
        ordered, brackets = parsed.ordered, parsed.brackets
        is_list = is_list or parsed.is_list
        if len(items) > MAX_PARTS:
            return Score.zero(f"more than {MAX_PARTS} answers", kind="too_long", answer=shown, expected=gold)
    try:
        sigs = [signature(n, bases=bases) for n in items]
    except ExprError as err:
        return Score.zero(f"answer over a bound: {err.reason}", kind=err.kind, answer=shown, expected=gold)
    if want is None:  # a gold our grammar does not read: exact text, then math-verify on the answer's tree
        if len(slots) == 1 and _plain(gold) == _plain(slots[0]):
            return Score(1.0, {"reason": "correct", "match": "exact"})
        if not use_math_verify:
            return Score.zero("answer differs from the gold answer", answer=shown, expected=gold)
        reading, gold_sig = gold_reading(gold)
        if reading == "none":
            return Score.zero("the gold answer is neither in the grammar nor read by math-verify", answer=shown,
                              expected=gold)
        if reading == "value":  # compared by value at our points: sympy never simplifies the answer
            distinct = distinct_answers(sigs, same_value)
            if len(distinct) > 1:
                return Score.zero("two or more different final answers (a hedge scores 0)", kind="hedge", answer=shown)
            if is_list:
                return Score.zero("a list, not one value", answer=shown, expected=gold)
            extra = gold_values_at(gold, bases[len(_POINT_BASES):])  # a symbolic gold at the reply's points too
            if extra is not None:
                gold_sig = gold_sig + extra
            if same_value(gold_sig, distinct[0]):
                return Score(1.0, {"reason": "correct", "match": "math-verify value"})
            return Score.zero("wrong value (the gold as math-verify reads it)", answer=shown, expected=gold)
        if reading == "other":
            return Score.zero("the gold is an equation, matrix or unbounded interval: no answer in the grammar "
                              "states one (compared as text only)", answer=shown, expected=gold)
        # an interval or a finite set: its ends / elements by value (math-verify on small symbol-free answers
        # still took over a second; sympy never sees the answer)
        if reading[0] == "interval":
            closed = reading[1] + reading[2]
            if len(items) != 2 or brackets != closed:
                return Score.zero(f"not the interval {reading[1]}a, b{reading[2]} the gold is", answer=shown,
                                  expected=gold)
            ok = all(same_value(g, a) for g, a in zip(gold_sig, sigs))
        else:
            if brackets not in ("", "{}") or len(items) != len(gold_sig):
                return Score.zero(f"{len(items)} answer(s) in {brackets or 'nothing'!r} for a set of {len(gold_sig)}",
                                  answer=shown, expected=gold)
            ok = _match_parts(list(gold_sig), sigs, False) == len(gold_sig)
        if ok:
            return Score(1.0, {"reason": "correct", "match": "math-verify value"})
        return Score.zero("wrong value (the gold as math-verify reads it)", answer=shown, expected=gold)
    if len(want.items) == 1:
        distinct = distinct_answers(sigs, same_value)
        if len(distinct) > 1:
            return Score.zero("two or more different final answers (a hedge scores 0)", kind="hedge", answer=shown)
        if is_list and not want.is_list:
            return Score.zero("a list, not one value", answer=shown, expected=gold)
        if same_value(gold_sigs[0], distinct[0]):
            return Score(1.0, {"reason": "correct", "match": "value"})
        return Score.zero("wrong value", answer=shown, expected=gold)
    if len(sigs) != len(gold_sigs):
        return Score.zero(f"{len(sigs)} answer(s) for a gold of {len(gold_sigs)} parts", answer=shown, expected=gold)
    if not _same_enclosure(want.brackets, brackets if len(slots) == 1 else ""):
        return Score.zero(f"enclosed in {brackets or 'nothing'!r} where the gold has {want.brackets or 'nothing'!r} "
                          "(an interval's ends, a tuple's order or a set are part of the answer)",
                          answer=shown, expected=gold)
    matched = _match_parts(gold_sigs, sigs, want.ordered)
    if matched == len(gold_sigs):
        return Score(1.0, {"reason": "correct", "match": "value", "parts": matched})
    return Score.zero(f"{matched} of {len(gold_sigs)} parts right", answer=shown, expected=gold)


# =============================================================================================
# the environment
# =============================================================================================


@dataclass(frozen=True)
class MathConfig(QASourceConfig):
    use_math_verify: bool = True  # golds outside the grammar read by math-verify, compared by value (else as text)
    # a reply with no \boxed{} and no answer marker is graded on its last stand-alone number (lm-eval's
    # "flexible extract"): a weaker grader — any reply that ends on the gold number pays — for small models that
    # do not follow the format yet (the quickstart); off by default
    last_number_fallback: bool = False


class QAEnv(Env):
    """Base of the question/answer envs: task ``i`` is row ``i`` of a :class:`QASource` plus ``instruction``."""

    #: appended to every question: how to state the answer
    instruction: str = ""

    def __init__(self, config: QASourceConfig):
        super().__init__(config)
        self.source = QASource(config)

    @property
    def num_tasks(self) -> int:
        return len(self.source)

    def task_id_at(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self.num_tasks:
            raise IndexError(f"index {index} outside [0, {self.num_tasks})")
        return index

    def prompt_pieces(self, task: Task) -> list[str]:
        """What counts as a copy of the prompt: each message's content, and its question without ``instruction``."""
        pieces = []
        for message in task.prompt:
            content = str(message.get("content", "")).strip()
            pieces.append(content)
            if self.instruction and content.endswith(self.instruction.strip()):
                pieces.append(content[: -len(self.instruction.strip())].strip())
        return [p for p in pieces if len(p) >= MIN_ECHO_CHARS]

    def after_prompt_echo(self, task: Task, text: str) -> tuple[str, bool]:
        """``(rest, echoed)``: the text after the last copy of the prompt (or of its question alone) in ``text``.

        A completion that repeats the prompt must not be graded on the numbers or format example in it.
        """
        cut = -1
        for piece in self.prompt_pieces(task):
            at = text.rfind(piece)
            if at >= 0:
                cut = max(cut, at + len(piece))
        return (text, False) if cut < 0 else (text[cut:], True)

    def without_prompt_copies(self, task: Task, text: str) -> str:
        """``text`` with every copy of the prompt (and of its question alone) cut out: what the model wrote."""
        for piece in sorted(self.prompt_pieces(task), key=len, reverse=True):
            text = text.replace(piece, " ")
        return text

    def task(self, task_id: int) -> Task:
        question, raw = self.source.pair(task_id)
        return Task(
            env=self.name,
            task_id=int(task_id),
            prompt=[{"role": "user", "content": question + self.instruction}],
            ground_truth=gold_answer(raw),
            extra={"source": self.config.source, "index": int(task_id)},
        )


class MathEnv(QAEnv):
    """Math word problems (GSM8K or a local file; offline reasoning-gym gsm_symbolic), boxed/numeric answers."""

    instruction = MATH_INSTRUCTION

    def _score(self, task: Task, answer: str) -> Score:
        whole = answer
        answer, echoed = self.after_prompt_echo(task, answer)
        slots, how = extract_answer(answer)
        if echoed and how == "boxed":  # a box before a copy of the prompt is still an answer: a hedge if it differs
            slots = extract_answer(self.without_prompt_copies(task, whole))[0] or slots
        if slots is None and self.config.last_number_fallback:
            number, hedged = last_number(answer)
            if hedged:
                return Score.zero("the last number is offered as one of several alternatives", kind="hedge")
            if number is not None:
                slots, how = [number], "last number"
        if slots is None:
            reason = "the completion repeats the prompt and gives no answer" if echoed else how
            return Score.zero(reason, kind="no_answer")
        if how == "boxed" and (other := marker_conflict(answer, slots[-1])) is not None:
            return Score.zero(f"the box says {slots[-1][:40]!r} and {other[0]!r} says {other[1][:40]!r} (a hedge "
                              "scores 0)", kind="hedge")
        score = compare_math(task.ground_truth, slots, use_math_verify=self.config.use_math_verify)
        score.info["extracted_by"] = how
        return score

    def oracle(self, task: Task) -> str | None:
        return f"Working through the problem step by step.\nThe final answer is \\boxed{{{task.ground_truth}}}."


register_env("math", MathEnv, MathConfig, aliases=("gsm8k",))

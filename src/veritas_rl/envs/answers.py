"""Answer-slot extraction and normalisation shared by the logic and math environments.

Every function here is linear in the length of its input (``str.rfind`` and bounded scans, no
backtracking regular expressions over the whole completion), so a runaway completion costs
milliseconds, not minutes.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")

#: One number as written in prose: optional sign, ``$``, thousands separators, decimals, percent.
NUMBER_RE = re.compile(r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?|-?\$?\s?\.\d+%?")


#: what sympy (or Python) would evaluate into astronomically large integers: big exponents, power
#: towers, big factorials. Such answers are refused before any symbolic evaluation.
_EXPENSIVE = re.compile(r"(?:\^|\*\*)[\s{(+-]*\d{3,}|\^\s*\{[^{}]*\^|\*\*[\s(]*\d+[\s)]*\*\*|(?<!\d)\d{4,}\s*!")


def looks_expensive(text: str) -> bool:
    """True for ``10^{99999999}``, ``9^{9^{9}}``, ``9**9**9``, ``100000!``: too costly to evaluate exactly."""
    return _EXPENSIVE.search(text) is not None


#: a ``\\boxed{`` / ``\\fbox{`` / ``\\boxed {`` opener, or a brace-less ``\\boxed 5`` (its token is group 1)
_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)[ \t]*\{|\\boxed[ \t]+([^\s{]\S*)")
#: a brace group longer than this counts as unclosed (no answer is that long; it bounds every scan)
MAX_BOX_CHARS = 20_000


def closing_brace(text: str, start: int, limit: int = MAX_BOX_CHARS) -> int | None:
    """Index of the ``}`` that closes the ``{`` just before ``start`` (nested braces counted), or ``None``
    when it is not closed within ``limit`` characters. C-speed ``find``/``count`` per closing brace."""
    stop = min(len(text), start + limit)
    depth, pos = 1, start
    while True:
        close = text.find("}", pos, stop)
        if close < 0:
            return None
        depth += text.count("{", pos, close) - 1
        if depth == 0:
            return close
        pos = close + 1


_closing_brace = closing_brace


_BOX_OPENERS = ("\\boxed{", "\\fbox{")

#: markup around a whole answer that does not change it: math delimiters, Markdown emphasis and code, quotes
#: (longest opener first: ``**7**`` is emphasis, not ``*`` around ``*7*``)
WRAPPER_PAIRS = (
    ("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"), ("__", "__"), ("*", "*"),
    ("`", "`"), ('"', '"'), ("'", "'"), ("\u201c", "\u201d"),
)
#: LaTeX commands whose one brace group is the whole answer (``\\boxed{42}``, ``\\text{5 days}``)
WRAPPER_COMMANDS = ("\\boxed{", "\\fbox{", "\\text{", "\\textbf{", "\\mathrm{")


def strip_whole_markup(s: str) -> str | None:
    """The inside of one layer of markup around *all* of ``s`` (a pair of :data:`WRAPPER_PAIRS`, a command of
    :data:`WRAPPER_COMMANDS`, a fenced block without its language tag), else ``None``. A pair whose opener or
    closer occurs inside is not one layer: ``**7** or **8**`` and ``$a$ or $b$`` stay what they are (two
    answers). Linear: one scan per wrapper."""
    if len(s) >= 6 and s.startswith("```") and s.endswith("```") and "```" not in s[3:-3]:
        inner = s[3:-3]
        first, newline, rest = inner.partition("\n")
        # a language tag on the opening line (```text); a first line with anything else is content
        return rest if newline and first.strip().isascii() and first.strip().isalpha() else inner
    for opener, closer in WRAPPER_PAIRS:
        if len(s) > len(opener) + len(closer) and s.startswith(opener) and s.endswith(closer):
            inner = s[len(opener) : -len(closer)]
            if opener not in inner and closer not in inner:
                return inner
    for command in WRAPPER_COMMANDS:
        if s.startswith(command) and s.endswith("}") and closing_brace(s, len(command)) == len(s) - 1:
            return s[len(command) : -1]
    return None


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` (or ``\fbox{...}``), with nested braces; ``None`` if absent/unclosed."""
    start = -1
    for marker in _BOX_OPENERS:
        at = text.rfind(marker)
        if at > start:
            start, opener = at, marker
    if start < 0:
        # ``\boxed 5`` (no braces) is valid LaTeX for a single token
        at = text.rfind("\\boxed ")
        if at < 0:
            return None
        rest = text[at + len("\\boxed ") :].lstrip()
        token = rest.split(None, 1)[0] if rest else ""
        return token.rstrip("$.") or None
    i = start + len(opener)
    end = _closing_brace(text, i)
    return None if end is None else text[i:end]


#: A completion with more distinct ``\boxed{}`` answers than this is a hedge whatever they say.
MAX_BOXED_ANSWERS = 64
CONFLICTING_BOXED = "several different \\boxed{} answers (a hedge scores 0)"


def boxed_answers(text: str, limit: int = MAX_BOXED_ANSWERS) -> list[str]:
    r"""Contents of the top-level ``\boxed{...}`` / ``\fbox{...}`` / ``\boxed {...}`` in order (and the token of
    a brace-less ``\boxed 5``, ``$`` and a trailing ``.`` dropped), at most ``limit + 1`` of them.

    Linear time: one regex pass finds the openers (a box nested in a box is part of it), one brace scan
    per box (at most ``MAX_BOX_CHARS``); an unclosed box ends the scan.
    """
    found: list[str] = []
    pos = 0
    for m in _BOX_OPEN.finditer(text):
        if m.start() < pos:
            continue  # nested inside the previous box
        if m.group(1) is not None:
            found.append(m.group(1).rstrip("$."))
            pos = m.end()
            if len(found) > limit:
                break
            continue
        end = _closing_brace(text, m.end())
        if end is None:
            break
        found.append(text[m.end() : end])
        pos = end + 1
        if len(found) > limit:
            break
    return found


def distinct_answers(answers: Iterable[T], same: Callable[[T, T], bool], *, stop_at: int = 2) -> list[T]:
    """Representatives of ``answers`` up to ``same`` (first of each class), stopping once ``stop_at`` are found.

    The hedge check: two or more distinct final answers is a hedge. ``same`` compares by value (``18`` and
    ``18.00``) or by normalised text; each answer is compared with at most ``stop_at - 1`` representatives.
    """
    reps: list[T] = []
    for a in answers:
        if not any(same(r, a) for r in reps):
            reps.append(a)
            if len(reps) >= stop_at:
                break
    return reps


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def boxed_answer(text: str, same: Callable[[str, str], bool] = _same_text) -> tuple[str | None, str]:
    r"""``(content, reason)`` of the final ``\boxed{}`` answer; ``None`` when there is none, or when the text
    boxes several *different* answers (``\boxed{True} \boxed{False}`` must not win by covering both).
    ``same`` decides which boxes are the same answer (default: equal after collapsing whitespace)."""
    last = last_boxed(text)
    if last is None:
        return None, "no \\boxed{} answer"
    boxes = boxed_answers(text)
    if len(distinct_answers([*boxes, last], same)) > 1:
        return None, CONFLICTING_BOXED
    return last, "ok"


def tag_markup_problem(text: str, tag: str = "answer") -> tuple[str, str] | None:
    """``(reason, kind)`` when the ``<tag>``/``</tag>`` markup of ``text`` is not a sequence of closed, un-nested
    pairs in the prompt's lower case; ``None`` when it is (or there is none).

    The readers pair each closer with an opener; markup that does not pair cleanly hides a second answer
    from them (a stray marker with only whitespace since the previous one hides nothing and is let through): ``<answer>39<answer>38</answer>`` (an opener inside a block), ``<answer>0</answer></answer>
    <answer>1`` (a stray closer, an unclosed opener), ``<ANSWER>39</ANSWER> <answer>38</answer>`` (the tag in
    another case, which an exact-case reader skips). Text with no closer at all is left to the readers (they
find no tag). Linear: each marker is found once."""
    opener, closer = f"<{tag}>", f"</{tag}>"
    low = text.lower()
    if closer not in low:
        return None  # nothing closed, nothing read: the reader's own "no tag" answer stands
    if low.count(opener) != text.count(opener) or low.count(closer) != text.count(closer):
        return f"{opener} written in another case (the tags are {opener}...{closer})", "no_answer"
    pos, inside, pairs = 0, False, 0  # pos: just past the last marker
    next_open, next_close = text.find(opener), text.find(closer)

    def problem(why: str) -> tuple[str, str]:
        return why, "hedge" if pairs else "no_answer"

    while next_open >= 0 or next_close >= 0:
        if next_open >= 0 and (next_close < 0 or next_open < next_close):
            if inside and text[pos:next_open].strip():
                return problem(f"an {opener} inside another {opener} block (nested or unclosed tags hide an answer)")
            inside, pos = True, next_open + len(opener)
            next_open = text.find(opener, pos)
        else:
            if not inside and text[pos:next_close].strip():
                return problem(f"a {closer} without its {opener} (unpaired tags hide an answer)")
            pairs += inside
            inside, pos = False, next_close + len(closer)
            next_close = text.find(closer, pos)
    if inside and text[pos:].strip():
        return problem(f"an {opener} never closed (unpaired tags hide an answer)")
    return None


def last_tag(text: str, tag: str = "answer") -> str | None:
    """Content of the last ``<tag>...</tag>`` pair (the last closing tag and the opening tag before it)."""
    close = f"</{tag}>"
    open_ = f"<{tag}>"
    end = text.rfind(close)
    if end < 0:
        return None
    start = text.rfind(open_, 0, end)
    if start < 0:
        return None
    return text[start + len(open_) : end]


def all_tags(text: str, tag: str = "answer", limit: int = MAX_BOXED_ANSWERS) -> list[str]:
    """Contents of the ``<tag>...</tag>`` pairs in order (each closing tag with the last opener before it,
    after the previous pair), at most ``limit + 1``; linear time (disjoint ``find``/``rfind`` windows)."""
    close, open_ = f"</{tag}>", f"<{tag}>"
    found: list[str] = []
    pos = 0
    while len(found) <= limit:
        end = text.find(close, pos)
        if end < 0:
            break
        start = text.rfind(open_, pos, end)
        if start >= 0:
            found.append(text[start + len(open_) : end])
        pos = end + len(close)
    return found


def after_last_marker(text: str, marker: str, *, ignore_case: bool = True) -> str | None:
    """The rest of the line after the last ``marker`` (``None`` when the marker does not occur)."""
    haystack = text.lower() if ignore_case else text
    at = haystack.rfind(marker.lower() if ignore_case else marker)
    if at < 0:
        return None
    rest = text[at + len(marker) :]
    nl = rest.find("\n")
    return rest if nl < 0 else rest[:nl]


def last_fenced_block(text: str) -> str | None:
    """Body of the last closed Markdown code fence (```` ``` ````), language tag dropped; ``None`` if absent."""
    end = text.rfind("```")
    if end < 0:
        return None
    start = text.rfind("```", 0, end)
    if start < 0:
        return None
    body = text[start + 3 : end]
    nl = body.find("\n")
    if nl >= 0 and body[:nl].strip().isidentifier():  # ```text / ```python language tag
        body = body[nl + 1 :]
    return body


def parse_number(text: str) -> Fraction | None:
    """Parse one number written in prose (``$1,234.50``, ``-3``, ``50%``, ``7.0``, ``3/4``) exactly."""
    s = text.strip().rstrip(".").strip()
    if not s or len(s) > 64:
        return None
    # a currency sign only in front (``$5``, ``-$5``, ``$ 5``), spaces only after a leading sign or ``$``:
    # ``7$8`` is not 78 and ``1 2`` is not 12
    m = re.fullmatch(r"([-+\u2212]?)\s*\$?\s*(.*?)\s*(%?)", s)
    s = (m.group(1).replace("\u2212", "-").lstrip("+") + m.group(2)) if m else s
    if " " in s or "$" in s:
        return None
    if re.fullmatch(r"-?(?:\d{1,3}(?:,\d{3})+)(?:\.\d+)?", s):
        s = s.replace(",", "")
    if re.fullmatch(r"-?\d+/\d+", s):
        num, den = s.split("/")
        return Fraction(int(num), int(den)) if int(den) else None
    if re.fullmatch(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,2})?", s):  # 1e99 at most: exact ints stay small
        try:
            return Fraction(s)
        except (ValueError, ZeroDivisionError):
            return None
    return None


def first_number(text: str) -> Fraction | None:
    """The first number in ``text`` (see :func:`parse_number`), or ``None``."""
    m = NUMBER_RE.search(text)
    return parse_number(m.group(0)) if m else None


def last_number(text: str, window: int = 400) -> Fraction | None:
    """The last number in ``text``; only the last ``window`` characters are scanned (a number is short)."""
    matches = NUMBER_RE.findall(text[-window:])
    return parse_number(matches[-1]) if matches else None


def format_number(value: Fraction) -> str:
    """Canonical string of an exact number: ``72``, ``-3``, ``2.5``, or ``1/3`` when not a finite decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den == 1:
        text = f"{float(value):.12f}".rstrip("0").rstrip(".")
        if Fraction(text) == value:
            return text
    return f"{value.numerator}/{value.denominator}"

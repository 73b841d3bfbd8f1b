"""``answer-tag``: exact match of the last ``<answer>...</answer>`` against the gold answer, any Q/A data.

Both sides are normalised before comparing (:func:`normalize_answer`): NFKC, invisible characters
dropped, surrounding whitespace dropped, inner whitespace collapsed, case folded, markup around the
whole answer (``**7**``, ``$7$``, ``\\boxed{7}``) and a trailing period dropped; a side that is one
number literal in the strict grammar of ``safe_expr`` (``1,234``, ``1 000``, ``$5``, ``7.0``, ``50%``,
``-3``) becomes its canonical form, so ``7.0`` matches ``7``; expressions are not evaluated (``3+4``
does not match ``7``). Normalising never makes another value equal: ``2³`` is ``2^3`` (not NFKC's
``23``), ``1½`` is ``1 1/2``, ``1 2`` is not ``12``, ``7$8`` is not ``78``.

The last ``<answer>`` tag is graded; two or more tags with *different* answers (after normalisation)
are a hedge (kind ``hedge``), whichever comes last, wherever they are (before a copy of the prompt,
padded past the length bound), and so are more than ``MAX_ANSWER_TAGS`` tags — empty tags and the
format example do not count. No tag, an empty tag, the prompt's own format example (``<answer>your
answer</answer>``) and a completion that only repeats the prompt score 0 with kind ``no_answer``; a
different answer is ``wrong``.

Questions come from the same sources as ``math`` (``data_files``, ``dataset_name``, or offline a
reasoning-gym dataset — by default ``basic_arithmetic`` two-term sums).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from veritas_rl.envs.answers import (
    MAX_BOXED_ANSWERS,
    all_tags,
    distinct_answers,
    format_number,
    last_tag,
    parse_number,
    strip_whole_markup,
    tag_markup_problem,
)
from veritas_rl.envs.base import Score, Task, register_env
from veritas_rl.envs.math_env import QAEnv, QASourceConfig
from veritas_rl.envs.safe_expr import ExprError, format_fraction, parse

FORMAT_EXAMPLE = "your answer"
ANSWER_TAG_INSTRUCTION = (
    f"\n\nGive your final answer inside <answer></answer> tags, for example <answer>{FORMAT_EXAMPLE}</answer>. "
    "Only the text inside the last pair of tags is graded, by exact match."
)
SMALL_SUMS = {
    "min_terms": 2,
    "max_terms": 2,
    "min_digits": 1,
    "max_digits": 2,
    "operators": ("+",),
    "allow_parentheses": False,
    "allow_negation": False,
}
MAX_ANSWER_CHARS = 10_000
#: more ``<answer>`` tags than this is a hedge, whatever they say (the tags past it are not read)
MAX_ANSWER_TAGS = MAX_BOXED_ANSWERS
#: superscript digits and signs: NFKC would fold ``2³`` (8) into ``23``; they are read as a power, ``2^3``
_SUPERSCRIPTS = re.compile("[\u00b2\u00b3\u00b9\u2070\u2071\u2074-\u207f]+")
#: vulgar fractions: NFKC would fold ``1½`` (1.5) into ``11⁄2``; each is read as its own ``a/b`` term
_VULGAR_FRACTIONS = re.compile("[\u00bc-\u00be\u2150-\u215f\u2189]")
#: invisible format characters (zero-width spaces and joiners, bidi marks and overrides, soft hyphen,
#: BOM, tag characters): not part of any answer, dropped
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
                        "\ufff9-\ufffb\U000e0001\U000e0020-\U000e007f]")


def _number_literal(s: str) -> str | None:
    """Canonical text of ``s`` when it is one number literal (``$1,000.50``, ``-7.0``, ``50%``), else ``None``."""
    t = re.sub(r"^([-+]?)\s*\$", r"\1", s)  # a currency sign in front (after the sign): $5, -$5
    t = t.removesuffix("$").strip()  # or behind: 5$
    if t.endswith("%"):
        t = t[:-1].strip()
    if not t or len(t) > 64 or any(c in t for c in "$()[]{}"):  # "[18]" is a list, not 18; "7$8" is not 78
        return None
    try:
        node = parse(t)
    except ExprError:
        return None
    negative = node.op == "neg"
    if negative:
        node = node.args[0]
    if node.op != "num":
        return None
    return format_fraction(-node.value if negative else node.value)


def normalize_answer(text: str) -> str:
    """Whitespace collapsed, case folded, markup around the answer and a trailing period dropped; a lone
    number in canonical form. NFKC folds compatibility forms (``７`` is ``7``) but not into another
    value: ``2³`` is ``2^3``, not ``23``; ``1½`` is ``1 1/2``, not ``11/2``."""
    s = _SUPERSCRIPTS.sub(lambda m: "^" + unicodedata.normalize("NFKC", m.group(0)), str(text))
    s = _VULGAR_FRACTIONS.sub(lambda m: " " + unicodedata.normalize("NFKC", m.group(0)), s)
    s = _INVISIBLE.sub("", unicodedata.normalize("NFKC", s))
    s = s.replace("\u2044", "/").replace("\u2212", "-")  # the fraction slash, the minus sign
    s = " ".join(s.split()).casefold()
    for _ in range(4):  # "**$7$**." : a few layers at most
        before = s
        s = s.rstrip(".").rstrip()
        s = (strip_whole_markup(s) or s).strip()
        if s == before:
            break
    number = _number_literal(s)
    if number is not None:
        return number
    value = parse_number(s)  # "3/4" written as a fraction literal
    return format_number(value) if value is not None else s


@dataclass(frozen=True)
class AnswerTagConfig(QASourceConfig):
    rg_dataset: str = "basic_arithmetic"
    rg_config: dict[str, Any] = field(default_factory=lambda: dict(SMALL_SUMS))


class AnswerTagEnv(QAEnv):
    """Any question/answer data, graded by exact match of the last <answer> tag after normalisation."""

    instruction = ANSWER_TAG_INSTRUCTION

    def _score(self, task: Task, answer: str) -> Score:
        rest, echoed = self.after_prompt_echo(task, answer)
        # the graded tag comes after any copy of the prompt; the hedge and markup checks read every tag the
        # completion wrote itself, before a copy of the prompt too (a copy does not hide a second answer)
        scan = self.without_prompt_copies(task, answer) if echoed else answer
        problem = tag_markup_problem(scan, "answer")
        if problem is not None:
            return Score.zero(problem[0], kind=problem[1])
        slot = last_tag(rest, "answer")
        if slot is None:
            why = "the completion repeats the prompt and gives no answer" if echoed else "no <answer>...</answer> tag"
            return Score.zero(why, kind="no_answer")
        if len(slot) > MAX_ANSWER_CHARS:
            return Score.zero(f"answer longer than {MAX_ANSWER_CHARS} characters", kind="too_long")
        got = normalize_answer(slot)
        if not got:
            return Score.zero("empty <answer> tag", kind="no_answer")
        want = normalize_answer(task.ground_truth)
        example = normalize_answer(FORMAT_EXAMPLE)
        if got == example and want != got:
            return Score.zero("the prompt's format example, not an answer", kind="no_answer")
        tags = all_tags(scan, "answer", MAX_ANSWER_TAGS)
        if len(tags) > MAX_ANSWER_TAGS:  # a flood of tags: one of the unread ones could say anything
            return Score.zero(f"more than {MAX_ANSWER_TAGS} <answer> tags (a hedge scores 0)", kind="hedge")
        # every tag, however long: whitespace padding past MAX_ANSWER_CHARS does not hide a second answer
        others = [normalize_answer(t) for t in tags]
        others = [o for o in others if o and (o != example or o == want)]
        if len(distinct_answers([*others, got], str.__eq__)) > 1:
            return Score.zero("two or more different <answer> tags (a hedge scores 0)", kind="hedge")
        if got != want:
            return Score.zero("answer does not match", answer=got[:200], expected=want[:200])
        return Score(1.0, {"reason": "correct"})

    def oracle(self, task: Task) -> str | None:
        return f"<answer>{task.ground_truth}</answer>"


register_env("answer-tag", AnswerTagEnv, AnswerTagConfig, aliases=("answer_tag",))

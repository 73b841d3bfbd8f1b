"""``answer-tag``: exact match of the last ``<answer>...</answer>`` against the gold answer, any Q/A data.

Both sides are normalised before comparing: surrounding whitespace dropped, inner whitespace
collapsed, case folded, a trailing period dropped; a side that is one number literal in the strict
grammar of ``safe_expr`` (``1,234``, ``1 000``, ``$5``, ``7.0``, ``50%``, ``-3``) becomes its canonical
form, so ``7.0`` matches ``7``; expressions are not evaluated (``3+4`` does not match ``7``).

The last ``<answer>`` tag is graded; two or more tags with *different* answers (after normalisation)
are a hedge (kind ``hedge``), whichever comes last — empty tags and the format example do not count.
No tag, an empty tag, the prompt's own format example (``<answer>your answer</answer>``) and a
completion that only repeats the prompt score 0 with kind ``no_answer``; a different answer is ``wrong``.

Questions come from the same sources as ``math`` (``data_files``, ``dataset_name``, or offline a
reasoning-gym dataset — by default ``basic_arithmetic`` two-term sums).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from veritas_rl.envs.answers import (
    all_tags,
    distinct_answers,
    format_number,
    last_tag,
    parse_number,
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


def _number_literal(s: str) -> str | None:
    """Canonical text of ``s`` when it is one number literal (``$1,000.50``, ``-7.0``, ``50%``), else ``None``."""
    t = s.replace("$", "").strip()
    if t.endswith("%"):
        t = t[:-1].strip()
    if not t or len(t) > 64 or any(c in t for c in "()[]{}"):  # "[18]" is a list, not 18
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
    """Whitespace collapsed, case folded, trailing period dropped; a lone number in canonical form."""
    s = " ".join(unicodedata.normalize("NFKC", str(text)).split()).casefold()
    s = s.rstrip(".").rstrip()
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
        answer, echoed = self.after_prompt_echo(task, answer)
        problem = tag_markup_problem(answer, "answer")
        if problem is not None:
            return Score.zero(problem[0], kind=problem[1])
        slot = last_tag(answer, "answer")
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
        others = [normalize_answer(t) for t in all_tags(answer, "answer") if len(t) <= MAX_ANSWER_CHARS]
        others = [o for o in others if o and (o != example or o == want)]
        if len(distinct_answers([*others, got], str.__eq__)) > 1:
            return Score.zero("two or more different <answer> tags (a hedge scores 0)", kind="hedge")
        if got != want:
            return Score.zero("answer does not match", answer=got[:200], expected=want[:200])
        return Score(1.0, {"reason": "correct"})

    def oracle(self, task: Task) -> str | None:
        return f"<answer>{task.ground_truth}</answer>"


register_env("answer-tag", AnswerTagEnv, AnswerTagConfig, aliases=("answer_tag",))

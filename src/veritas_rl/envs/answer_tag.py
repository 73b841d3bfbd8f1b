"""``answer-tag``: exact match of the last ``<answer>...</answer>`` against the gold answer, any Q/A data.

Both sides are normalised before comparing: surrounding whitespace dropped, inner whitespace
collapsed, case folded, a trailing period dropped; a side that is one number (``1,234``, ``$5``,
``7.0``, ``50%``) becomes its canonical form, so ``7.0`` matches ``7``.

Questions come from the same sources as ``math`` (``data_files``, ``dataset_name``, or offline a
reasoning-gym dataset — by default ``basic_arithmetic`` two-term sums).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from veritas_rl.envs.answers import format_number, last_tag, parse_number
from veritas_rl.envs.base import Score, Task, register_env
from veritas_rl.envs.math_env import QAEnv, QASourceConfig

ANSWER_TAG_INSTRUCTION = (
    "\n\nGive your final answer inside <answer></answer> tags, for example <answer>your answer</answer>. "
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


def normalize_answer(text: str) -> str:
    """Whitespace collapsed, case folded, trailing period dropped; a lone number in canonical form."""
    s = " ".join(unicodedata.normalize("NFKC", str(text)).split()).casefold()
    s = s.rstrip(".").rstrip()
    value = parse_number(s)
    return format_number(value) if value is not None else s


@dataclass(frozen=True)
class AnswerTagConfig(QASourceConfig):
    rg_dataset: str = "basic_arithmetic"
    rg_config: dict[str, Any] = field(default_factory=lambda: dict(SMALL_SUMS))


class AnswerTagEnv(QAEnv):
    """Any question/answer data, graded by exact match of the last <answer> tag after normalisation."""

    instruction = ANSWER_TAG_INSTRUCTION

    def _score(self, task: Task, answer: str) -> Score:
        slot = last_tag(answer, "answer")
        if slot is None:
            return Score.zero("no <answer>...</answer> tag")
        if len(slot) > MAX_ANSWER_CHARS:
            return Score.zero(f"answer longer than {MAX_ANSWER_CHARS} characters")
        got = normalize_answer(slot)
        if not got:
            return Score.zero("empty <answer> tag")
        want = normalize_answer(task.ground_truth)
        if got != want:
            return Score.zero("answer does not match", answer=got[:200], expected=want[:200])
        return Score(1.0, {"reason": "correct"})

    def oracle(self, task: Task) -> str | None:
        return f"<answer>{task.ground_truth}</answer>"


register_env("answer-tag", AnswerTagEnv, AnswerTagConfig, aliases=("answer_tag",))

"""``cryptarithm`` (id 3): ``\\boxed{A=1,B=2,...}``, any mapping that makes the sum true.

reasoning-gym's generator (item ``seed`` of its dataset) and verifier, imported on first use.
"""

from __future__ import annotations

import functools
from typing import Any

from veritas_rl.envs.base import Score, Task
from veritas_rl.envs.lgc_v2.common import SEEDS_PER_TYPE, TaskType, digits, score_boxed, text_value, unwrap

#: longest boxed mapping read (ten letters fit in 60 characters)
MAX_MAPPING_CHARS = 400


@functools.lru_cache(maxsize=16)
def _dataset(min_words: int, max_words: int, allow_leading_zero: bool) -> Any:
    """reasoning-gym's dataset for these knobs (built once per process: importing reasoning-gym is slow)."""
    from reasoning_gym.algorithmic.cryptarithm import CryptarithmConfig, CryptarithmDataset

    rg_cfg = CryptarithmConfig(
        min_words=min_words,
        max_words=max_words,
        allow_leading_zero=allow_leading_zero,
        seed=0,
        size=SEEDS_PER_TYPE,
    )
    # items are generated lazily: ``dataset[i]`` uses ``Random(0 + i)`` — a pure function of i
    return CryptarithmDataset(rg_cfg)


def _generate(cfg: Any, seed: int) -> dict[str, Any]:
    dataset = _dataset(cfg.cryptarithm_min_words, cfg.cryptarithm_max_words, cfg.cryptarithm_allow_leading_zero)
    item = dataset[seed]
    meta = item["metadata"]
    words, result = meta["words_letters"], meta["result_letters"]
    lines = [" + ".join(words) + f" = {result}", ""]
    width = max(len(w) for w in words + [result]) + 2
    for i, w in enumerate(words):
        lines.append(("+ " if i == len(words) - 1 else "  ") + w.rjust(width - 2))
    lines += ["-" * width, result.rjust(width)]
    leading = (
        "Leading letters may be zero."
        if meta["allow_leading_zero"]
        else "No number starts with zero (a leading letter is never 0)."
    )
    prompt = (
        "Solve this cryptarithm (an addition where each letter stands for a digit):\n\n"
        + "\n".join(lines)
        + f"\n\nDifferent letters stand for different digits (0-9). {leading}\n"
        "Give the digit of every letter inside \\boxed{}, as LETTER=DIGIT pairs separated by commas."
    )
    return {
        "prompt": prompt,
        "ground_truth": item["answer"],
        "extra": {"words": list(words), "result": result, "allow_leading_zero": bool(meta["allow_leading_zero"])},
    }


#: groups a whole mapping may be written in, at most ``_MAX_WRAPS`` deep: ``\text{A=1, B=2}``
_WRAPPERS = ("\\text{", "\\mathrm{", "{")
_MAX_WRAPS = 3
#: LaTeX spacing and line breaks between the pairs: ``A=1,\ B=2``, ``A=1 \\ B=2``, ``A=1;\quad B=2``
_LATEX_SEPARATORS = (
    ("\\\\", ","), ("\\qquad", ","), ("\\quad", ","), ("\\,", " "), ("\\;", " "), ("\\:", " "),
    ("\\!", ""), ("\\ ", " "), ("$", ""), (";", ","), ("\n", ","),
)


def _mapping(slot: str) -> dict[str, int] | str:
    """The ``LETTER=DIGIT`` pairs of a boxed mapping (separated by commas, semicolons or lines), or why it is
    not one."""
    slot = unwrap(slot, _WRAPPERS, _MAX_WRAPS)
    for latex, plain in _LATEX_SEPARATORS:
        slot = slot.replace(latex, plain)
    mapping: dict[str, int] = {}
    for pair in slot.split(","):
        if not pair.strip():
            continue
        letter, eq, digit = pair.partition("=")
        letter, digit = letter.strip(), digit.strip()
        if not eq or len(letter) != 1 or not "A" <= letter <= "Z" or len(digit) != 1 or not digits(digit):
            return "mapping is not of the form A=1,B=2"
        if letter in mapping:
            return f"letter {letter} mapped twice"
        mapping[letter] = int(digit)
    return mapping


#: reasoning-gym's failure reasons that break a rule of the puzzle (not just a wrong sum)
_RULE_BROKEN = ("Duplicate digit", "Leading letter")


def _judge(task: Task, slot: str) -> Score:
    from reasoning_gym.algorithmic.cryptarithm import verify_cryptarithm_solution

    if len(slot) > MAX_MAPPING_CHARS:
        return Score.zero("boxed answer too long", kind="too_long")
    mapping = _mapping(slot)
    if isinstance(mapping, str):
        return Score.zero(mapping, kind="no_answer", answer=slot[:100])
    ok, why = verify_cryptarithm_solution(
        mapping, task.extra["words"], task.extra["result"], bool(task.extra["allow_leading_zero"])
    )
    if not ok:
        kind = "illegal" if why.startswith(_RULE_BROKEN) else "wrong"
        return Score.zero(f"mapping does not solve the puzzle: {why}", kind=kind, answer=slot[:100])
    return Score(1.0, {"reason": "correct"})


def _value(slot: str) -> object:
    mapping = _mapping(slot) if len(slot) <= MAX_MAPPING_CHARS else None
    return frozenset(mapping.items()) if isinstance(mapping, dict) else text_value(slot)


def _score(task: Task, answer: str) -> Score:
    return score_boxed(task, answer, _judge, _value)


def _oracle(task: Task) -> str:
    return f"\\boxed{{{task.ground_truth}}}"


CRYPTARITHM = TaskType("cryptarithm", generate=_generate, score=_score, oracle=_oracle)

"""``cryptarithm`` (id 3): ``\\boxed{A=1,B=2,...}``, any mapping that makes the sum true.

reasoning-gym's generator (item ``seed`` of its dataset) and verifier, imported on first use.
"""

from __future__ import annotations

import functools
from typing import Any

from veritas_rl.envs.answers import boxed_answer
from veritas_rl.envs.base import Score, Task
from veritas_rl.envs.lgc_v2.common import SEEDS_PER_TYPE, TaskType


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


def _score(task: Task, answer: str) -> Score:
    from reasoning_gym.algorithmic.cryptarithm import verify_cryptarithm_solution

    slot, why = boxed_answer(answer)
    if slot is None:
        return Score.zero(why)
    if len(slot) > 400:
        return Score.zero("boxed answer too long")
    mapping: dict[str, int] = {}
    for pair in slot.replace("$", "").replace(";", ",").split(","):
        if not pair.strip():
            continue
        letter, eq, digit = pair.partition("=")
        letter, digit = letter.strip(), digit.strip()
        if not eq or len(letter) != 1 or not letter.isupper() or len(digit) != 1 or not digit.isdigit():
            return Score.zero("mapping is not of the form A=1,B=2", answer=slot[:100])
        if letter in mapping:
            return Score.zero(f"letter {letter} mapped twice", answer=slot[:100])
        mapping[letter] = int(digit)
    ok, why = verify_cryptarithm_solution(
        mapping, task.extra["words"], task.extra["result"], bool(task.extra["allow_leading_zero"])
    )
    if not ok:
        return Score.zero(f"mapping does not solve the puzzle: {why}", answer=slot[:100])
    return Score(1.0, {"reason": "correct"})


def _oracle(task: Task) -> str:
    return f"\\boxed{{{task.ground_truth}}}"


CRYPTARITHM = TaskType("cryptarithm", generate=_generate, score=_score, oracle=_oracle)

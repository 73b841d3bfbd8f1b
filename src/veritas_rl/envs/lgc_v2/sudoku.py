"""``sudoku`` (id 7): the 9x9 grid in a fenced code block; any grid that satisfies the givens is accepted.

Our own fast generator (a permuted valid grid with random blanks), or with ``sudoku_unique``
reasoning-gym's, which keeps one solution per puzzle.

The last fenced block is the answer. Every other block that holds a grid (a line of nine digits) must be
the same answer — the same grid, or another solution — else the completion is a hedge; a copy of the
puzzle itself (blanks as ``_``, ``.`` or ``0``) is no answer and is passed over, and so are blocks
without a grid row (code, prose).
"""

from __future__ import annotations

import functools
import random
from typing import Any

from veritas_rl.envs.answers import distinct_answers, last_fenced_block
from veritas_rl.envs.base import Score, Task
from veritas_rl.envs.lgc_v2.common import (
    CONFLICTING_ANSWERS,
    MAX_ANSWER_CHARS,
    SEEDS_PER_TYPE,
    TaskType,
    digits as is_digits,
    fenced_bodies,
    same_answer,
    task_rng,
    text_value,
)

def _shuffled_groups(rng: random.Random) -> list[int]:
    bands = [0, 1, 2]
    rng.shuffle(bands)
    order = []
    for band in bands:
        inner = [0, 1, 2]
        rng.shuffle(inner)
        order += [band * 3 + i for i in inner]
    return order


def _gen_sudoku(cfg: Any, rng: random.Random) -> dict[str, Any]:
    rows, cols = _shuffled_groups(rng), _shuffled_groups(rng)
    digits = list(range(1, 10))
    rng.shuffle(digits)
    solution = [digits[(r * 3 + r // 3 + c) % 9] for r in rows for c in cols]  # a valid grid, permuted
    if rng.random() < 0.5:  # transpose
        solution = [solution[c * 9 + r] for r in range(9) for c in range(9)]
    n_empty = rng.randint(cfg.sudoku_min_empty, cfg.sudoku_max_empty)
    puzzle = list(solution)
    for cell in rng.sample(range(81), n_empty):
        puzzle[cell] = 0
    return _sudoku_task(puzzle, solution)


def _sudoku_task(puzzle: list[int], solution: list[int]) -> dict[str, Any]:
    grid = "\n".join(" ".join(str(v) if v else "_" for v in puzzle[r * 9 : r * 9 + 9]) for r in range(9))
    prompt = (
        "Solve this Sudoku puzzle (`_` is an empty cell). Fill every empty cell with a digit 1-9 so that each "
        "row, each column and each 3x3 box contains every digit exactly once; keep the given digits.\n\n"
        f"{grid}\n\n"
        "Answer with the completed 9x9 grid inside a fenced code block (```), one row per line, digits "
        "separated by spaces."
    )
    return {
        "prompt": prompt,
        "ground_truth": "".join(map(str, solution)),
        "extra": {"puzzle": "".join(str(v) if v else "." for v in puzzle)},
    }


@functools.lru_cache(maxsize=16)
def _unique_dataset(min_empty: int, max_empty: int) -> Any:
    """reasoning-gym's sudoku generator: blanks removed only while the solution stays unique."""
    from reasoning_gym.games.sudoku import SudokuConfig, SudokuDataset

    rg_cfg = SudokuConfig(min_empty=min_empty, max_empty=max_empty, seed=0, size=SEEDS_PER_TYPE)
    return SudokuDataset(rg_cfg)  # item i uses Random(0 + i): a pure function of i


def _generate(cfg: Any, seed: int) -> dict[str, Any]:
    if cfg.sudoku_unique:  # item ``seed`` of reasoning-gym's dataset (~27 ms a task)
        meta = _unique_dataset(cfg.sudoku_min_empty, cfg.sudoku_max_empty)[seed]["metadata"]
        return _sudoku_task([v for row in meta["puzzle"] for v in row], [v for row in meta["solution"] for v in row])
    return _gen_sudoku(cfg, task_rng("sudoku", seed))


#: written between the digits of a row: ``|`` box rules, commas, the brackets of ``[[5, 3, 4, ...], ...]``
_BETWEEN_DIGITS = str.maketrans("", "", "|,[]")


def _cells(line: str) -> str:
    """A row's characters without whitespace (any: ``\\r`` of CRLF output too) and separators."""
    return "".join(line.split()).translate(_BETWEEN_DIGITS)


def _parse_grid(block: str) -> str | None:
    """The 81 digits of a 9x9 grid (spaces, ``|``, ``,`` and list brackets between digits, rule lines between
    rows allowed)."""
    rows: list[str] = []
    for line in block.split("\n"):
        digits = _cells(line)
        if not digits or not digits.strip("+-=_.*:"):
            continue  # blank or separator line (------+------)
        if len(digits) != 9 or not is_digits(digits) or "0" in digits:
            return None
        rows.append(digits)
    return "".join(rows) if len(rows) == 9 else None


def _states_a_grid(task: Task, block: str) -> bool:
    """Whether a fenced block is an answer: it has a row of nine digits and is not the puzzle copied out."""
    if len(block) > MAX_ANSWER_CHARS:
        return True  # too long to read: an answer that scores 0 (too_long)
    lines = [_cells(line) for line in block.split("\n")]
    if not any(len(cells) == 9 and is_digits(cells) for cells in lines):
        return False
    copied = "".join(c for c in "".join(lines) if is_digits(c) or c in "_.").replace("_", ".").replace("0", ".")
    return copied != task.extra["puzzle"]


def _grid_value(block: str) -> str:
    return (_parse_grid(block) if len(block) <= MAX_ANSWER_CHARS else None) or text_value(block)


_BOX_STARTS = (0, 3, 6, 27, 30, 33, 54, 57, 60)


def _judge(task: Task, block: str) -> Score:
    if len(block) > MAX_ANSWER_CHARS:
        return Score.zero("grid block too long", kind="too_long")
    grid = _parse_grid(block)
    if grid is None:
        return Score.zero("fenced block is not a 9x9 grid of digits 1-9", kind="no_answer")
    givens = task.extra["puzzle"]  # 81 characters, "." for an empty cell
    for i, (g, f) in enumerate(zip(givens, grid)):
        if g != f and g != ".":
            return Score.zero(f"changes the given digit at row {i // 9 + 1}, column {i % 9 + 1}", kind="illegal")
    # digits are 1-9, so nine distinct ones in a unit are all of them
    for k in range(9):
        b = _BOX_STARTS[k]
        if (
            len(set(grid[k * 9 : k * 9 + 9])) != 9
            or len(set(grid[k::9])) != 9
            or len(set(grid[b : b + 3] + grid[b + 9 : b + 12] + grid[b + 18 : b + 21])) != 9
        ):
            return Score.zero("a row, column or box repeats a digit")
    return Score(1.0, {"reason": "correct"})


def _score(task: Task, answer: str) -> Score:
    block = last_fenced_block(answer)
    if block is None:
        return Score.zero("no fenced ``` block with the grid", kind="no_answer")
    grids = [b for b in fenced_bodies(answer) if _states_a_grid(task, b)]
    if len(distinct_answers(grids, same_answer(task, _judge, _grid_value))) > 1:
        return Score.zero(CONFLICTING_ANSWERS, kind="hedge")
    return _judge(task, block)


def _oracle(task: Task) -> str:
    sol = task.ground_truth
    rows = "\n".join(" ".join(sol[r * 9 : r * 9 + 9]) for r in range(9))
    return f"```\n{rows}\n```"


SUDOKU = TaskType("sudoku", generate=_generate, score=_score, oracle=_oracle)

"""lgc-v2 sudoku: any grid that satisfies the givens scores; reasoning-gym's unique-solution generator."""

from __future__ import annotations

from tests.envs.lgc_v2.helpers import task_of
from veritas_rl.envs import make
from veritas_rl.envs.lgc_v2 import make_task_id


def _solve_sudoku(puzzle: str, avoid: str | None = None) -> str | None:
    """Backtracking solver for tests: a solution of ``puzzle`` different from ``avoid``."""
    grid = [0 if c == "." else int(c) for c in puzzle]

    def ok(i, v):
        r, c = divmod(i, 9)
        br, bc = r // 3 * 3, c // 3 * 3
        return all(
            grid[j] != v
            for j in [r * 9 + k for k in range(9)]
            + [k * 9 + c for k in range(9)]
            + [(br + x) * 9 + bc + y for x in range(3) for y in range(3)]
        )

    def rec():
        try:
            i = grid.index(0)
        except ValueError:
            return "".join(map(str, grid)) != avoid
        for v in range(1, 10):
            if ok(i, v):
                grid[i] = v
                if rec():
                    return True
                grid[i] = 0
        return False

    return "".join(map(str, grid)) if rec() else None


def _grid_block(sol: str, sep: str = " ") -> str:
    return "```\n" + "\n".join(sep.join(sol[r * 9 : r * 9 + 9]) for r in range(9)) + "\n```"


def test_sudoku_accepts_another_solution_and_checks_givens():
    env = make("lgc-v2", task_types=["sudoku"], sudoku_min_empty=58, sudoku_max_empty=60)
    task = env.task(make_task_id("sudoku", 2))
    other = _solve_sudoku(task.extra["puzzle"], avoid=task.ground_truth)
    assert other is not None and other != task.ground_truth, "60 blanks should allow a second solution"
    assert env.score(task, _grid_block(other)).value == 1.0
    assert env.score(task, _grid_block(other, sep="")).value == 1.0
    # a valid sudoku that ignores a given digit is rejected
    perm = str.maketrans("123456789", "234567891")
    relabelled = task.ground_truth.translate(perm)
    assert "given digit" in env.score(task, _grid_block(relabelled)).info["reason"]
    # breaking one cell breaks a unit
    i = task.extra["puzzle"].index(".")
    broken = task.ground_truth[:i] + str(int(task.ground_truth[i]) % 9 + 1) + task.ground_truth[i + 1 :]
    assert "repeats" in env.score(task, _grid_block(broken)).info["reason"]
    # separators between boxes are fine; an 8-row grid is not
    rows = [" ".join(task.ground_truth[r * 9 : r * 9 + 9]) for r in range(9)]
    boxed = "\n".join(rows[:3] + ["------+-------+------"] + rows[3:6] + ["------"] + rows[6:])
    assert env.score(task, f"```text\n{boxed}\n```").value == 1.0
    assert env.score(task, "```\n" + "\n".join(rows[:8]) + "\n```").value == 0.0


def test_sudoku_unique_uses_reasoning_gym_generator():
    env = make("lgc-v2", task_types=["sudoku"], sudoku_unique=True, sudoku_min_empty=20, sudoku_max_empty=24)
    task = env.task(make_task_id("sudoku", 5))
    assert 20 <= task.extra["puzzle"].count(".") <= 24
    assert _solve_sudoku(task.extra["puzzle"]) == task.ground_truth
    assert _solve_sudoku(task.extra["puzzle"], avoid=task.ground_truth) is None  # the only solution
    assert env.score(task, env.oracle(task)).value == 1.0
    assert env.task(make_task_id("sudoku", 5)) == task


def test_sudoku_solution_is_valid(env):
    for seed in range(20):
        task = task_of(env, "sudoku", seed)
        sol = task.ground_truth
        for r in range(9):
            assert set(sol[r * 9 : r * 9 + 9]) == set("123456789")
            assert {sol[k * 9 + r] for k in range(9)} == set("123456789")
        assert all(p in (".", s) for p, s in zip(task.extra["puzzle"], sol))

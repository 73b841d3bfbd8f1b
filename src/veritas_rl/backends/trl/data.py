"""Training and held-out task sets from the env registry (disjoint dense index ranges)."""

from __future__ import annotations

from typing import Any

from veritas_rl.envs.base import Env, Task


def split_indices(env: Env, train_size: int, eval_size: int) -> tuple[range, range]:
    """Dense indices ``[0, eval_size)`` are held out; training uses the next ``train_size``.

    Holding out the first indices keeps the evaluation set the same whatever the training size.
    """
    need = eval_size + train_size
    if need > env.num_tasks:
        raise ValueError(
            f"train_size={train_size} + eval_size={eval_size} = {need} tasks, but env {env.name!r} with this "
            f"config has only {env.num_tasks}"
        )
    return range(eval_size, need), range(0, eval_size)


def tasks_at(env: Env, indices: range) -> list[Task]:
    return [env.task(env.task_id_at(i)) for i in indices]


def grpo_rows(env: Env, tasks: list[Task]) -> list[dict[str, Any]]:
    from veritas_rl.backends.trl.reward import task_row

    return [task_row(env, t) for t in tasks]


def sft_rows(env: Env, tasks: list[Task]) -> list[dict[str, Any]]:
    """Prompt/completion rows whose assistant turn is the env's oracle (tasks without one are skipped)."""
    rows = []
    for task in tasks:
        oracle = env.oracle(task)
        if oracle is None:
            continue
        rows.append({"prompt": [dict(m) for m in task.prompt], "completion": [{"role": "assistant", "content": oracle}]})
    if not rows:
        raise ValueError(f"env {env.name!r} has no oracle answers for its tasks: SFT needs them")
    return rows

"""``boolean_expressions`` (id 6): evaluate ``not``/``and``/``or`` over True/False; ``\\boxed{True}``.

Our own generator; the value comes from the expression tree it builds (no ``eval``).
"""

from __future__ import annotations

from typing import Any

from veritas_rl.envs.answers import boxed_answer
from veritas_rl.envs.base import Score, Task
from veritas_rl.envs.lgc_v2.common import TaskType, oracle_boxed, task_rng

def _generate(cfg: Any, seed: int) -> dict[str, Any]:
    rng = task_rng("boolean_expressions", seed)
    def build(depth: int) -> tuple[str, bool, str]:
        """(text, value, kind) with kind in literal / not / binary."""
        if depth == 0 or rng.random() < 0.25:
            v = rng.random() < 0.5
            return ("True" if v else "False"), v, "literal"
        if rng.random() < 0.25:
            text, value, kind = build(depth - 1)
            if kind == "binary":
                text = f"( {text} )"
            return f"not {text}", not value, "not"
        op = rng.choice(("and", "or"))
        lt, lv, lk = build(depth - 1)
        rt, rv, rk = build(depth - 1)
        lt = f"( {lt} )" if lk == "binary" else lt
        rt = f"( {rt} )" if rk == "binary" else rt
        return f"{lt} {op} {rt}", (lv and rv) if op == "and" else (lv or rv), "binary"

    depth = rng.randint(1, cfg.boolean_max_depth)
    text, value, kind = build(depth)
    while kind == "literal":  # at least one operator
        text, value, kind = build(depth)
    prompt = (
        "Evaluate this Boolean expression (`not` binds tighter than `and`, which binds tighter than `or`):\n"
        f"{text}\n"
        "Put the result, the word True or the word False, inside \\boxed{}."
    )
    return {"prompt": prompt, "ground_truth": "True" if value else "False", "extra": {"expression": text}}


def _score(task: Task, answer: str) -> Score:
    slot, why = boxed_answer(answer)
    if slot is None:
        return Score.zero(why)
    got = slot.strip().strip("$").strip().replace("\\text{", "").replace("\\mathrm{", "").strip("{} ").lower()
    if got not in ("true", "false"):
        return Score.zero("boxed answer is not True or False", answer=slot[:100])
    if got != task.ground_truth.lower():
        return Score.zero("wrong truth value", answer=slot[:100], expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


BOOLEAN_EXPRESSIONS = TaskType("boolean_expressions", generate=_generate, score=_score, oracle=oracle_boxed)

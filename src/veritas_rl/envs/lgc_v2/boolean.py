"""``boolean_expressions`` (id 6): evaluate ``not``/``and``/``or`` over True/False; ``\\boxed{True}``.

Our own generator; the value comes from the expression tree it builds (no ``eval``).
"""

from __future__ import annotations

from typing import Any

from veritas_rl.envs.base import Score, Task
from veritas_rl.envs.lgc_v2.common import TaskType, oracle_boxed, score_boxed, task_rng, text_value, unwrap

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


#: groups a truth value may be written in, at most ``_MAX_WRAPS`` deep: ``\text{True}``, ``{\mathrm{False}}``,
#: ``\textbf{True}``
_WRAPPERS = (
    "\\text{", "\\mathrm{", "\\textbf{", "\\mathbf{", "\\texttt{", "\\mathtt{", "\\textsf{", "\\textit{", "{"
)
_MAX_WRAPS = 3


def _truth(slot: str) -> str | None:
    """``"true"`` / ``"false"`` for a boxed truth value (any case, in up to three groups, a final full stop
    allowed), else ``None``."""
    got = unwrap(slot, _WRAPPERS, _MAX_WRAPS).removesuffix(".").strip().lower()
    return got if got in ("true", "false") else None


def _judge(task: Task, slot: str) -> Score:
    got = _truth(slot)
    if got is None:
        return Score.zero("boxed answer is not True or False", kind="no_answer", answer=slot[:100])
    if got != task.ground_truth.lower():
        return Score.zero("wrong truth value", answer=slot[:100], expected=task.ground_truth)
    return Score(1.0, {"reason": "correct"})


def _value(slot: str) -> str:
    return _truth(slot) or text_value(slot)


def _score(task: Task, answer: str) -> Score:
    return score_boxed(task, answer, _judge, _value)


BOOLEAN_EXPRESSIONS = TaskType("boolean_expressions", generate=_generate, score=_score, oracle=oracle_boxed)

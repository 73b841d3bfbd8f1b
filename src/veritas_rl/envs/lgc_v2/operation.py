"""``operation`` (id 2): expressions over operators defined in the prompt; ``\\boxed{42}`` (our own generator)."""

from __future__ import annotations

from typing import Any, Callable

from veritas_rl.envs.lgc_v2.common import TaskType, oracle_boxed, score_boxed_int, task_rng

# (definition shown to the model, exact function). Every function maps ints to ints.
_OPERATION_TEMPLATES: tuple[tuple[str, Callable[..., int]], ...] = (
    ("{p}*a + {q}*b", lambda a, b, p, q: p * a + q * b),
    ("a*b + {p}*a", lambda a, b, p, q: a * b + p * a),
    ("{p}*a - {q}*b", lambda a, b, p, q: p * a - q * b),
    ("(a + b) * {p} - a", lambda a, b, p, q: (a + b) * p - a),
    ("a*a - {q}*b", lambda a, b, p, q: a * a - q * b),
    ("a + b if a > b else a*b - {p}", lambda a, b, p, q: a + b if a > b else a * b - p),
    ("max(a, b) * {p} + min(a, b)", lambda a, b, p, q: max(a, b) * p + min(a, b)),
    ("(a - b) * (a + {q})", lambda a, b, p, q: (a - b) * (a + q)),
)
_SYMBOLS = ("⊕", "⊗", "△", "◇")


def _generate(cfg: Any, seed: int) -> dict[str, Any]:
    rng = task_rng("operation", seed)
    n_defs = rng.randint(1, 2)
    symbols = rng.sample(_SYMBOLS, n_defs)
    defs = []
    for sym in symbols:
        idx = rng.randrange(len(_OPERATION_TEMPLATES))
        p, q = rng.randint(1, 5), rng.randint(1, 5)
        defs.append((sym, idx, p, q))
    n_ops = rng.randint(1, cfg.operation_max_ops)

    def build(n: int) -> tuple[str, int, bool]:
        """An expression with ``n`` operators: (text, value, is_compound)."""
        if n == 0:
            v = rng.randint(1, cfg.operation_max_value)
            return str(v), v, False
        left_n = rng.randint(0, n - 1)
        lt, lv, lc = build(left_n)
        rt, rv, rc = build(n - 1 - left_n)
        sym, idx, p, q = rng.choice(defs)
        value = _OPERATION_TEMPLATES[idx][1](lv, rv, p, q)
        lt = f"({lt})" if lc else lt
        rt = f"({rt})" if rc else rt
        return f"{lt} {sym} {rt}", value, True

    text, value, _ = build(n_ops)
    definitions = "\n".join(
        f"  a {sym} b = {_OPERATION_TEMPLATES[idx][0].format(p=p, q=q)}" for sym, idx, p, q in defs
    )
    prompt = (
        "New operators are defined for integers a and b as follows:\n"
        f"{definitions}\n"
        "Parentheses are evaluated first; the usual arithmetic inside a definition applies.\n"
        f"Compute: {text}\n"
        "Put the integer result inside \\boxed{}."
    )
    return {"prompt": prompt, "ground_truth": str(value), "extra": {"expression": text}}


OPERATION = TaskType("operation", generate=_generate, score=score_boxed_int, oracle=oracle_boxed)

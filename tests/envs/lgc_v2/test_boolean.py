"""lgc-v2 boolean_expressions: the gold value matches Python's, case and \\text{} are accepted."""

from __future__ import annotations

from tests.envs.lgc_v2.helpers import task_of


def test_boolean_expressions(env):
    values = set()
    for seed in range(30):
        task = task_of(env, "boolean_expressions", seed)
        gold = task.ground_truth
        values.add(gold)
        # independent check of the generator: Python evaluates the same syntax
        assert str(eval(task.extra["expression"], {"__builtins__": {}})) == gold  # noqa: S307 (test only)
        assert env.score(task, f"\\boxed{{{gold.lower()}}}").value == 1.0
        assert env.score(task, f"\\boxed{{\\text{{{gold}}}}}").value == 1.0
        other = "False" if gold == "True" else "True"
        assert env.score(task, f"\\boxed{{{other}}}").value == 0.0
        assert env.score(task, "\\boxed{maybe}").value == 0.0
    assert values == {"True", "False"}

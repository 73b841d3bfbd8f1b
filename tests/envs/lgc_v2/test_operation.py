"""lgc-v2 operation: the boxed integer, and the definitions the prompt states are the ones scored."""

from __future__ import annotations

from tests.envs.lgc_v2.helpers import task_of
from veritas_rl.envs import make
from veritas_rl.envs.lgc_v2 import make_task_id


def test_operation_value_and_wrong(env):
    for seed in range(20):
        task = task_of(env, "operation", seed)
        gold = int(task.ground_truth)
        assert env.score(task, f"so \\boxed{{ {gold} }}").value == 1.0
        assert env.score(task, f"\\boxed{{{gold - 1}}}").value == 0.0
        assert env.score(task, "\\boxed{x+1}").info["reason"] == "boxed answer is not an integer"


def test_operation_definition_is_what_the_prompt_says():
    env = make("lgc-v2", task_types=["operation"], operation_max_ops=1)
    for seed in range(30):
        task = env.task(make_task_id("operation", seed))
        text = task.prompt[0]["content"]
        lhs, sym, rhs = task.extra["expression"].split(" ")
        definition = next(line for line in text.splitlines() if line.startswith(f"  a {sym} b = "))
        body = definition.split("=", 1)[1].strip()
        a, b = int(lhs), int(rhs)
        # the definition uses Python syntax for max/min/conditional: check it independently
        expected = eval(body, {"max": max, "min": min}, {"a": a, "b": b})  # noqa: S307 (test only)
        assert expected == int(task.ground_truth)

"""``veritas envs``, ``veritas sample`` and ``veritas score``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from veritas_rl.commands.argtypes import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("envs", help="list the registered environments", description="List the registered environments.")
    p.add_argument("--json", action="store_true", help="one JSON object per env (name, aliases, config keys)")
    p.set_defaults(func=cmd_envs)

    p = subparsers.add_parser(
        "sample",
        help="print tasks of an env as JSON lines",
        description="Print tasks of ENV, one JSON object per line (env, task_id, prompt, ground_truth, extra).",
    )
    p.add_argument("env", metavar="ENV", help="env name or alias (see `veritas envs`)")
    p.add_argument("--config", default="{}", help="env config as a JSON object (default: {})")
    p.add_argument("--n", type=positive_int, default=5, help="number of tasks (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="which tasks: a seed for picking task ids (default: 0)")
    p.add_argument("--task-ids", help="comma-separated task ids (overrides --n/--seed)")
    p.add_argument("--with-oracle", action="store_true", help="add an `oracle` completion that scores 1.0")
    p.set_defaults(func=cmd_sample)

    p = subparsers.add_parser(
        "score",
        help="score completions for tasks",
        description="Score completions: --tasks is `veritas sample` output, --completions is JSON lines "
        '{"completion": ...} aligned with it. Prints {"task_id", "score", "info"} per line.',
    )
    p.add_argument("env", metavar="ENV", help="env name or alias")
    p.add_argument("--config", default="{}", help="env config as a JSON object (default: {})")
    p.add_argument("--tasks", required=True, help="JSON-lines file of tasks")
    p.add_argument("--completions", required=True, help='JSON-lines file of {"completion": ...}, one per task')
    p.set_defaults(func=cmd_score)


def parse_config(text: str) -> dict[str, Any]:
    from veritas_rl.jsonio import parse_json_object

    return parse_json_object("--config", text)


def pick_task_ids(env, n: int, seed: int) -> list[int]:
    """``n`` distinct task ids of ``env`` chosen by ``seed`` (a deterministic spread over its tasks)."""
    from veritas_rl.envs.base import seeded_rng

    total = env.num_tasks
    rng = seeded_rng("sample", seed)
    if n >= total:
        return [env.task_id_at(i) for i in range(total)]
    picked = rng.sample(range(total), n) if total <= 10 * n else _distinct(rng, total, n)
    return [env.task_id_at(i) for i in picked]


def _distinct(rng, total: int, n: int) -> list[int]:
    seen: dict[int, None] = {}
    while len(seen) < n:
        seen.setdefault(rng.randrange(total), None)
    return list(seen)


def cmd_envs(args: argparse.Namespace) -> int:
    import dataclasses

    from veritas_rl.envs import names, spec

    for name in names():
        s = spec(name)
        if args.json:
            keys = [f.name for f in dataclasses.fields(s.config_cls)]
            print(json.dumps({"name": name, "aliases": list(s.aliases), "config_keys": keys, "summary": s.summary}))
        else:
            alias = f" (aliases: {', '.join(s.aliases)})" if s.aliases else ""
            print(f"{name}{alias}\n    {s.summary}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from veritas_rl.envs import make

    env = make(args.env, **parse_config(args.config))
    if args.task_ids:
        try:
            ids = [int(t) for t in args.task_ids.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"--task-ids must be comma-separated integers, got {args.task_ids!r}") from None
    else:
        ids = pick_task_ids(env, args.n, args.seed)
    for task_id in ids:
        task = env.task(task_id)
        row = task.to_dict()
        if args.with_oracle:
            row["oracle"] = env.oracle(task)
        sys.stdout.write(json.dumps(row) + "\n")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from veritas_rl.envs import Task, make
    from veritas_rl.jsonio import read_jsonl

    env = make(args.env, **parse_config(args.config))
    tasks = list(read_jsonl(args.tasks))
    completions = list(read_jsonl(args.completions))
    if len(tasks) != len(completions):
        raise ValueError(f"{args.tasks} has {len(tasks)} tasks but {args.completions} has {len(completions)} completions")
    for row, comp in zip(tasks, completions):
        if "completion" not in comp:
            raise ValueError(f'{args.completions}: each line needs a "completion" key, got {sorted(comp)}')
        task = Task.from_dict(row)
        score = env.score(task, comp["completion"])
        sys.stdout.write(json.dumps({"task_id": task.task_id, "score": score.value, "info": score.info}, default=str) + "\n")
    return 0

#!/usr/bin/env python
"""Throughput of the environments: tasks/s and scores/s, single process (= one core).

    python benchmarks/envs.py                          # lgc-v2 per task type + mixed, reasoning-gym, math, answer-tag
    python benchmarks/envs.py --n 5000 --envs lgc-v2
    python benchmarks/envs.py --json                   # JSON lines instead of the Markdown table

Rates are per CPU-second of this one process (``time.process_time``), i.e. per core, so they hold
while other jobs share the machine; ``tasks_per_wall_s`` is in the JSON output too. For each env
(and each lgc-v2 task type) it builds the env and warms it up on ``--warmup`` tasks (lazy imports,
per-config caches such as the game-of-24 solvability memo: "build + warm-up s", wall clock, includes
imports the first time), then times ``--n`` fresh tasks, scoring their oracle completions (must score 1.0)
and a wrong completion (~1 KB of reasoning ending in wrong answers in every slot; must score 0.0).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

log = logging.getLogger("benchmarks.envs")

DEFAULT_ENVS = ("lgc-v2", "reasoning-gym", "math", "answer-tag")
WRONG = (
    "Let me think about this step by step, checking each part of the problem carefully. " * 12
    + "\nAnswer: (\n\\boxed{-987654}\n<answer>no idea</answer>\n```\n1 2 3\n```\nThe answer is -987654."
)


def cases(env_names: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(env, label, config)`` rows: lgc-v2 once per task type and once with all types mixed."""
    from veritas_rl.envs.lgc_v2 import TASK_TYPES

    out = []
    for name in env_names:
        if name == "lgc-v2":
            out += [(name, t, {"task_types": [t]}) for t in TASK_TYPES]
            out.append((name, "all types, interleaved", {}))
        else:
            out.append((name, "default config", {}))
    return out


def clock() -> float:
    """CPU seconds of this process: rates per core even while other jobs share the machine."""
    return time.process_time()


def measure(env_name: str, config: dict[str, Any], n: int, warmup: int, repeat: int = 3) -> dict[str, Any]:
    from veritas_rl.envs import make

    start = time.perf_counter()
    env = make(env_name, **config)
    total = env.num_tasks
    for i in range(min(warmup, total)):
        env.task(env.task_id_at(i))
    build_s = time.perf_counter() - start

    task_s = task_wall_s = oracle_s = wrong_s = float("inf")
    for k in range(repeat):  # best of ``repeat``: the machine is shared, the minimum is the signal
        ids = [env.task_id_at((warmup + k * n + i) % total) for i in range(n)]  # fresh ids: no cache hits
        wall = time.perf_counter()
        start = clock()
        tasks = [env.task(t) for t in ids]
        task_s = min(task_s, clock() - start)
        task_wall_s = min(task_wall_s, time.perf_counter() - wall)

        oracles = [env.oracle(t) for t in tasks]
        start = clock()
        right = sum(env.score(t, o).value for t, o in zip(tasks, oracles))
        oracle_s = min(oracle_s, clock() - start)

        start = clock()
        wrong = sum(env.score(t, WRONG).value for t in tasks)
        wrong_s = min(wrong_s, clock() - start)
    if right != n or wrong != 0:
        raise RuntimeError(f"{env_name} {config}: oracle scored {right}/{n}, wrong completion scored {wrong}/{n}")
    return {
        "env": env_name,
        "config": config,
        "n": n,
        "repeat": repeat,
        "build_s": build_s,
        "tasks_per_s": n / task_s,
        "tasks_per_wall_s": n / task_wall_s,
        "oracle_scores_per_s": n / oracle_s,
        "wrong_scores_per_s": n / wrong_s,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| env | task type / config | build + warm-up s | tasks/s | scores/s (oracle) | scores/s (wrong) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['label']} | {r['build_s']:.2f} | {r['tasks_per_s']:,.0f} | "
            f"{r['oracle_scores_per_s']:,.0f} | {r['wrong_scores_per_s']:,.0f} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Tasks/s and scores/s per env (and per lgc-v2 task type), one process.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--envs", default=",".join(DEFAULT_ENVS), help="comma-separated env names")
    p.add_argument("--n", type=int, default=3000, help="tasks timed per row")
    p.add_argument("--warmup", type=int, default=2000, help="tasks generated before timing (fills per-config caches)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes per row; the best one is reported")
    p.add_argument("--json", action="store_true", help="print one JSON object per row instead of a Markdown table")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from tqdm import tqdm

    todo = cases([e.strip() for e in args.envs.split(",") if e.strip()])
    rows = []
    for env_name, label, config in tqdm(todo, desc="envs", unit="case"):
        row = measure(env_name, config, args.n, args.warmup, args.repeat)
        row["label"] = label
        log.info(
            "%s / %s: %.0f tasks/s, %.0f oracle scores/s",
            env_name, label, row["tasks_per_s"], row["oracle_scores_per_s"],
        )
        rows.append(row)
    if args.json:
        sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
    else:
        sys.stdout.write(markdown(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Throughput of the environments: tasks/s and scores/s, single process (= one core).

    python benchmarks/envs.py                          # lgc-v2 per task type + mixed, reasoning-gym, math, answer-tag
    python benchmarks/envs.py --n 5000 --envs lgc-v2
    python benchmarks/envs.py --json                   # JSON lines instead of the Markdown table
    python benchmarks/envs.py --guard --envs lgc-v2,openspiel   # + the score guard: inline vs worker process

Rates are per CPU-second of this one process (``time.process_time``), i.e. per core, so they hold
while other jobs share the machine; ``tasks_per_wall_s`` is in the JSON output too. For each env
(and each lgc-v2 task type) it builds the env and warms it up on ``--warmup`` tasks (lazy imports,
per-config caches such as the game-of-24 solvability memo: "build + warm-up s", wall clock, includes
imports the first time), then times ``--n`` fresh tasks, scoring their oracle completions (must score 1.0)
and a wrong completion (~1 KB of reasoning ending in wrong answers in every slot; must score 0.0).

``--guard`` also scores oracle and wrong completions through the score guard
(:mod:`veritas_rl.envs.guard`), the path both backends take, with tasks as the JSON strings the
datasets carry, each task ``--group`` times (GRPO's ``rollout.n``: half oracle, half wrong; the worker
parses each task JSON once): ``inline`` (the guard's checks, no worker), ``process batch`` (``score_many``: one
message per batch, what TRL and coalesced verl calls do) and ``process single`` (one ``score`` call
per completion from one thread: the worst case). Their rates are per CPU-second of the caller *plus*
the worker process (read from ``/proc``), so they are per core too.
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
#: configs other than the default, per env: ``(label, config)``
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    # the cheap ``legal`` reward; chess is left out: games/spiel.py's action vocabulary segfaults in
    # pyspiel on a chess position (scored ``kind=error`` through the guard, fatal inline)
    "openspiel": ("legal, default cases but chess", {"reward_mode": "legal", "game_types": [], "cases": [
        "tic_tac_toe", "connect_four", "hex(board_size=5)", "hex(board_size=7)", "hex(board_size=9)",
        "go(board_size=5)", "go(board_size=7)", "go(board_size=9)", "breakthrough(rows=6,columns=6)",
        "breakthrough(rows=8,columns=8)", "dots_and_boxes(num_rows=2,num_cols=2)",
        "dots_and_boxes(num_rows=3,num_cols=3)", "clobber(rows=5,columns=5)", "clobber(rows=6,columns=6)",
        "othello", "checkers", "kuhn_poker", "leduc_poker", "liars_dice", "goofspiel(num_cards=8)", "gin_rummy"]}),
}
GUARD_MODES = ("inline", "process batch", "process single")
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
        elif name in CONFIGS:
            out.append((name, *CONFIGS[name]))
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


def _worker_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the worker processes have used so far, from /proc."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # restarted after a timeout: the scores check below reports it
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def measure_guard(env_name: str, config: dict[str, Any], n: int, warmup: int, repeat: int = 3,
                  group: int = 8) -> dict[str, Any]:
    """Scores/s of the oracle + wrong completions through the guard, per mode (see the module docstring)."""
    from veritas_rl.envs import make
    from veritas_rl.envs.guard import GuardSettings, Request, ScoreGuard

    env = make(env_name, **config)
    total = env.num_tasks
    config_json = json.dumps(config, sort_keys=True)
    out: dict[str, Any] = {}
    for mode in GUARD_MODES:
        guard = ScoreGuard(GuardSettings("inline" if mode == "inline" else "process"))
        best_cpu = best_wall = float("inf")
        for k in range(repeat):
            ids = [env.task_id_at((warmup + k * n + i) % total) for i in range(n)]
            tasks = [env.task(t) for t in ids]
            requests = [Request(env_name, config_json, task_json, c)
                        for t, task_json in ((t, json.dumps(t.to_dict())) for t in tasks)
                        for c in (env.oracle(t), WRONG) * (group // 2)]
            guard.score_many(requests[:2])  # worker up, env built: not timed
            pids = guard.worker_pids()
            worker0, cpu0, wall0 = _worker_cpu_s(pids), clock(), time.perf_counter()
            if mode == "process single":
                scores = [guard.score(*r) for r in requests]
            else:
                scores = guard.score_many(requests)
            wall = time.perf_counter() - wall0
            cpu = clock() - cpu0 + _worker_cpu_s(pids) - worker0
            if [s.value for s in scores] != [1.0, 0.0] * (n * (group // 2)):
                raise RuntimeError(f"{env_name} {config} via the guard ({mode}): wrong scores")
            best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
        guard.close()
        out[f"guard {mode} scores_per_s"] = len(requests) / best_cpu
        out[f"guard {mode} scores_per_wall_s"] = len(requests) / best_wall
    return out


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
    if rows and "guard inline scores_per_s" in rows[0]:
        lines += [
            "",
            "Through the score guard (each task scored --group times, oracle and wrong; scores per CPU-second "
            "of caller + worker, per wall-second in brackets):",
            "",
            "| env | task type / config | " + " | ".join(GUARD_MODES) + " |",
            "| --- | --- |" + " ---: |" * len(GUARD_MODES),
        ]
        for r in rows:
            cells = [f"{r[f'guard {m} scores_per_s']:,.0f} ({r[f'guard {m} scores_per_wall_s']:,.0f})" for m in GUARD_MODES]
            lines.append(f"| {r['env']} | {r['label']} | " + " | ".join(cells) + " |")
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
    p.add_argument("--guard", action="store_true",
                   help="also time scoring through the score guard: inline, worker process batch and single")
    p.add_argument("--group", type=int, default=8, help="--guard: scores per task (GRPO rollout.n), even")
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
        if args.guard:
            row.update(measure_guard(env_name, config, args.n, args.warmup, args.repeat, args.group))
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

#!/usr/bin/env python
"""Throughput of the ``openspiel`` env: task generation, ``legal`` and ``outcome`` scoring, playout variance.

    python benchmarks/openspiel.py                       # everything, default sizes (a few minutes on 2 cores)
    python benchmarks/openspiel.py --only legal tasks    # the fast parts
    python benchmarks/openspiel.py --outcome-cases tic_tac_toe kuhn_poker --mcts-simulations 50

Rates are per CPU-second of this process (``time.process_time``, i.e. per core) so they hold while
other jobs share the machine; wall-clock rates are in the ``--json`` output.

* ``tasks``: tasks/s per case of the default case list (random rollout + prompt + legal-action JSON).
* ``legal``: scores/s of ``reward_mode=legal`` over a mixed pool of tasks and completions (valid id,
  valid action string, illegal id, chatter, a prompt echo, a hedge) through ``Env.score`` — the full
  path verl/TRL call.
* ``outcome``: scores/s per case with the ``random`` and ``mcts`` opponents (``num_playouts`` and
  ``mcts_simulations`` as given), each time-boxed by ``--outcome-seconds``.
* ``playouts``: the variance/cost trade-off of ``num_playouts`` — for fixed (task, move) pairs, the
  standard deviation of the outcome score across 16 seeds, and the CPU time per score.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time

log = logging.getLogger("benchmarks.openspiel")

PARTS = ("tasks", "legal", "outcome", "playouts")
OUTCOME_CASES = ("tic_tac_toe", "connect_four", "hex(board_size=5)", "kuhn_poker", "leduc_poker", "goofspiel(num_cards=6)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run (default: all)")
    p.add_argument("--tasks-per-case", type=int, default=100, help="tasks timed per case (default: 100)")
    p.add_argument("--legal-scores", type=int, default=200_000, help="legal scores timed (default: 200000)")
    p.add_argument("--outcome-cases", nargs="+", default=list(OUTCOME_CASES), help="cases for outcome scoring")
    p.add_argument("--outcome-seconds", type=float, default=6.0, help="CPU seconds per (case, opponent) (default: 6)")
    p.add_argument("--num-playouts", type=int, default=8, help="outcome playouts per score (default: 8)")
    p.add_argument("--mcts-simulations", type=int, default=100, help="MCTS simulations per move (default: 100)")
    p.add_argument("--playout-grid", nargs="+", type=int, default=[1, 4, 16, 64], help="num_playouts values")
    p.add_argument("--json", action="store_true", help="JSON lines instead of Markdown tables")
    return p


def _clock():
    return time.process_time(), time.perf_counter()


def _rates(n: int, start) -> dict:
    cpu = time.process_time() - start[0]
    wall = time.perf_counter() - start[1]
    return {"n": n, "cpu_s": cpu, "wall_s": wall, "per_cpu_s": n / cpu if cpu else float("inf"),
            "per_wall_s": n / wall if wall else float("inf")}


def bench_tasks(n: int) -> list[dict]:
    from tqdm.auto import tqdm

    from veritas_rl.envs import make
    from veritas_rl.envs.openspiel import DEFAULT_CASES_BOARD_SIZES

    rows = []
    for case in tqdm(DEFAULT_CASES_BOARD_SIZES, desc="tasks"):
        env = make("openspiel", cases=[case], game_types=[], num_tasks_per_case=n + 5)
        env.task(n)  # warm-up: load the game
        start = _clock()
        prompt_chars = sum(len(env.task(i).prompt[0]["content"]) for i in range(n))
        rows.append({"part": "tasks", "case": case, "mean_prompt_chars": prompt_chars / n, **_rates(n, start)})
    return rows


def bench_legal(total: int) -> list[dict]:
    import json as _json

    from veritas_rl.envs import make

    env = make("openspiel", game_types=[], num_tasks_per_case=20)
    tasks = [env.task(env.task_id_at(i)) for i in range(0, env.num_tasks, 3)]
    pool = []
    for t in tasks:
        legal = _json.loads(t.ground_truth)
        a, s = next(iter(legal.items()))
        pool += [
            (t, f"<answer>{a}</answer>", 1.0),
            (t, f"<think>I weigh the options here.</think>\n<answer>{s}</answer>", 1.0),
            (t, "<answer>99999</answer>", 0.0),
            (t, f"I would play {s} because it looks strong.", 0.0),
            (t, t.prompt[0]["content"], 0.0),  # a prompt echo (issue 14: it once scored 1.0)
            (t, f"<answer>{a}</answer> or <answer>99999</answer>", 0.0),  # a hedge
        ]
    for t, c, want in pool:  # warm-up + correctness
        got = env.score(t, c).value
        assert got == want, (t.extra["case"], c, got)
    start = _clock()
    done = 0
    while done < total:
        for t, c, _ in pool:
            env.score(t, c)
        done += len(pool)
    return [{"part": "legal", "case": f"mixed ({len(tasks)} tasks of {len(env.cases)} cases)", **_rates(done, start)}]


def bench_outcome(cases, seconds: float, num_playouts: int, simulations: int) -> list[dict]:
    import json as _json

    from tqdm.auto import tqdm

    from veritas_rl.envs import make

    rows = []
    for case in tqdm(cases, desc="outcome"):
        for opponent in ("random", "mcts"):
            env = make("openspiel", cases=[case], game_types=[], reward_mode="outcome", opponent=opponent,
                       num_playouts=num_playouts, mcts_simulations=simulations, num_tasks_per_case=1000)
            env.score(env.task(999), f"<answer>{next(iter(_json.loads(env.task(999).ground_truth)))}</answer>")
            start = _clock()
            n, values = 0, []
            while time.process_time() - start[0] < seconds:
                task = env.task(n % 1000)
                values.append(env.score(task, f"<answer>{next(iter(_json.loads(task.ground_truth)))}</answer>").value)
                n += 1
            rows.append({"part": "outcome", "case": case, "opponent": opponent, "num_playouts": num_playouts,
                         "mcts_simulations": simulations if opponent == "mcts" else None,
                         "mean_score": statistics.fmean(values), **_rates(n, start)})
    return rows


def bench_playouts(grid) -> list[dict]:
    """Std of the outcome score over 16 seeds for fixed (task, move) pairs, per num_playouts."""
    import json as _json

    from veritas_rl.envs import make

    rows = []
    for case in ("connect_four", "hex(board_size=5)"):
        probe = make("openspiel", cases=[case], game_types=[])
        pairs = []
        for i in range(6):
            task = probe.task(i)
            pairs.append((task, f"<answer>{next(iter(_json.loads(task.ground_truth)))}</answer>"))
        for k in grid:
            envs = [make("openspiel", cases=[case], game_types=[], reward_mode="outcome", num_playouts=k, seed=seed)
                    for seed in range(16)]
            stds, n = [], 0
            start = _clock()
            for task, completion in pairs:
                values = []
                for env in envs:
                    values.append(env.score(task, completion).value)
                    n += 1
                stds.append(statistics.pstdev(values))
            rates = _rates(n, start)
            rows.append({"part": "playouts", "case": case, "opponent": "random", "num_playouts": k,
                         "mean_std": statistics.fmean(stds), "ms_per_score": 1000 * rates["cpu_s"] / n, **rates})
    return rows


def markdown(rows: list[dict]) -> str:
    out = []
    parts = {r["part"] for r in rows}
    if "tasks" in parts:
        out += ["| case | tasks/s (per core) | mean prompt chars |", "|---|---:|---:|"]
        out += [f"| `{r['case']}` | {r['per_cpu_s']:,.0f} | {r['mean_prompt_chars']:,.0f} |"
                for r in rows if r["part"] == "tasks"]
        out.append("")
    if "legal" in parts:
        out += ["| legal scoring | scores | scores/s (per core) |", "|---|---:|---:|"]
        out += [f"| {r['case']} | {r['n']:,} | {r['per_cpu_s']:,.0f} |" for r in rows if r["part"] == "legal"]
        out.append("")
    if "outcome" in parts:
        out += ["| case | opponent | playouts | MCTS sims | scores/s (per core) | ms/score | mean score |",
                "|---|---|---:|---:|---:|---:|---:|"]
        out += [f"| `{r['case']}` | {r['opponent']} | {r['num_playouts']} | {r['mcts_simulations'] or '-'} | "
                f"{r['per_cpu_s']:,.1f} | {1000 / r['per_cpu_s']:,.1f} | {r['mean_score']:.3f} |"
                for r in rows if r["part"] == "outcome"]
        out.append("")
    if "playouts" in parts:
        out += ["| case | num_playouts | std of score across seeds | ms/score (per core) |", "|---|---:|---:|---:|"]
        out += [f"| `{r['case']}` | {r['num_playouts']} | {r['mean_std']:.3f} | {r['ms_per_score']:.2f} |"
                for r in rows if r["part"] == "playouts"]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rows: list[dict] = []
    if "tasks" in args.only:
        rows += bench_tasks(args.tasks_per_case)
    if "legal" in args.only:
        rows += bench_legal(args.legal_scores)
    if "outcome" in args.only:
        rows += bench_outcome(args.outcome_cases, args.outcome_seconds, args.num_playouts, args.mcts_simulations)
    if "playouts" in args.only:
        rows += bench_playouts(args.playout_grid)
    if args.json:
        sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows))
    else:
        sys.stdout.write(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MaxEnt-GRPO vs plain GRPO on the same env, model and budget (TRL backend), side by side.

Runs one case of ``benchmarks/learning.py`` (its env, config and settings) twice with the same seed, steps,
prompts, completions and token cap: ``objective=grpo`` and ``objective=maxent`` (+ ``--maxent-set``), and
writes ``maxent_vs_grpo.md`` (one row per objective, labelled with every non-default setting it used),
``maxent_vs_grpo.json`` (rows, reward curves, held-out curves) and ``maxent_vs_grpo.png`` (training reward
and held-out greedy accuracy per step, both objectives on each panel).

    python benchmarks/maxent_vs_grpo.py --case arithmetic --steps 100 --eval-steps 20 --out "$OUT"
    python benchmarks/maxent_vs_grpo.py --smoke --out /tmp/mvg          # CPU: plumbing only (2 steps each)

``--maxent-set`` defaults to the MaxEnt-GRPO project's documented defaults (tau 0.2, q temperature 1,
epsilon 1e-6, length-normalised reference) with ``beta=0.04`` so the reference term acts; ``--set`` applies
to both runs (e.g. ``--set beta=0.04`` to give plain GRPO the same KL coefficient).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import time
from pathlib import Path

log = logging.getLogger("benchmarks.maxent_vs_grpo")
HERE = Path(__file__).resolve().parent
MAXENT_DEFAULTS = ["objective=maxent", "beta=0.04", "maxent_tau=0.2", "maxent_q_temperature=1.0",
                   "maxent_q_epsilon=1e-6", "maxent_length_normalize_ref=true"]


def _learning():
    spec = importlib.util.spec_from_file_location("benchmarks_learning", HERE / "learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", default="arithmetic", help="a benchmarks/learning.py case (default: arithmetic)")
    p.add_argument("--steps", type=int, default=100, help="GRPO steps per run (default: 100)")
    p.add_argument("--eval-size", type=int, default=200, help="held-out tasks (default: 200)")
    p.add_argument("--eval-steps", type=int, default=20, help="held-out accuracy every N steps (default: 20)")
    p.add_argument("--train-size", type=int, default=2048, help="training tasks (default: 2048)")
    p.add_argument("--prompts-per-step", type=int, default=8, help="prompts per step (default: 8)")
    p.add_argument("--num-generations", type=int, default=8, help="completions per prompt (default: 8)")
    p.add_argument("--model", default=None, help="hub id or local dir (default: the case's model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for both runs")
    p.add_argument("--maxent-set", action="append", default=None, metavar="KEY=VALUE",
                   help=f"settings of the maxent run (default: {' '.join(MAXENT_DEFAULTS)})")
    p.add_argument("--out", default="maxent-vs-grpo-out", help="where the table, JSON and plot go")
    p.add_argument("--smoke", action="store_true", help="tiny CPU settings (LoRA r=4, 8 new tokens, 2 steps)")
    return p


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for r in rows:
        curve = r["reward_curve"] or []
        left.plot([s for s, _ in curve], [v for _, v in curve], label=r["objective"])
        points = [p for p in (r["eval_curve"] or []) if p.get("accuracy") is not None]
        right.plot([p["step"] for p in points], [100 * p["accuracy"] for p in points], marker="o", label=r["objective"])
    left.set(xlabel="step", ylabel="mean training reward", title="training reward")
    right.set(xlabel="step", ylabel="% of held-out tasks", title="held-out greedy accuracy", ylim=(-2, 102))
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from veritas_rl.backends.trl.runner import run
    from veritas_rl.backends.trl.settings import build_settings

    learning = _learning()
    if args.case not in learning.CASES:
        raise SystemExit(f"unknown case {args.case!r}; choose from: {', '.join(learning.CASES)}")
    env, env_config, overrides = learning.CASES[args.case]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    both = learning.parse_sets(args.set)
    maxent = learning.parse_sets(args.maxent_set if args.maxent_set is not None else MAXENT_DEFAULTS)
    rows = []
    for objective, extra in (("grpo", {"objective": "grpo"}), ("maxent", {**maxent, "objective": "maxent"})):
        settings = {
            "mode": "grpo", "env": env, "env_config": env_config, "seed": args.seed, "max_steps": args.steps,
            "train_size": args.train_size, "eval_size": args.eval_size, "eval": True, "eval_steps": args.eval_steps,
            "num_generations": args.num_generations, "batch_size": args.prompts_per_step * args.num_generations,
            "output_dir": str(out / "runs"), "run_name": f"{args.case}-{objective}-{time.strftime('%Y%m%d-%H%M%S')}",
            "save_steps": 10_000, "save_total_limit": 1, "save_final_model": False, "zero_reward_patience": 0,
            "eval_batch_size": 64, **overrides, **both, **extra,
        }
        if args.model:
            settings["model"] = args.model
        if args.smoke:
            settings.update(lora_rank=4, max_new_tokens=8, batch_size=4, num_generations=2, eval_batch_size=8,
                            cpu_threads=1, use_vllm=False, grad_accum=1, max_steps=2, eval_size=4, eval_steps=1,
                            train_size=8)
        result = run(build_settings(None, settings))
        rep = result.report
        rows.append({
            "objective": objective, "case": args.case, "model": Path(rep["model"]).name, "env": rep["env"],
            "env_config": rep["env_config"], "steps": result.steps, "train_seconds": rep["train_seconds"],
            "device": rep["device"], "before": result.before["accuracy"], "after": result.after["accuracy"],
            "n": result.after["n"], "settings": rep["settings"], "eval_curve": rep.get("eval_curve"),
            "reward_curve": json.loads((result.run_dir / "report.json").read_text())["reward_curve"],
        })
        (out / "maxent_vs_grpo.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    header = ["| objective | model | env + config | settings (non-default) | steps | wall-clock (train) | device | "
              "held-out greedy accuracy | last-5-step mean reward |", "|---|---|---|---|---|---|---|---|---|"]
    lines = []
    for r in rows:
        tail = [v for _, v in (r["reward_curve"] or [])][-5:]
        cfg = json.dumps(r["env_config"], separators=(",", ":")) if r["env_config"] else "default"
        label = learning.settings_label(r["settings"])
        if r["objective"] == "maxent":  # the maxent settings in full, defaults included
            label += "; " + ", ".join(f"{k}={r['settings'][k]}" for k in sorted(r["settings"]) if k.startswith("maxent_"))
        lines.append(f"| {r['objective']} | {r['model']} | `{r['env']}` `{cfg}` | {label} "
                     f"| {r['steps']} | {r['train_seconds']:.0f} s | {r['device']} | {100 * r['before']:.1f}% → "
                     f"{100 * r['after']:.1f}% (n={r['n']}) | {sum(tail) / len(tail) if tail else float('nan'):.3f} |")
    (out / "maxent_vs_grpo.md").write_text("\n".join(header + lines) + "\n")
    plot(rows, out / "maxent_vs_grpo.png")
    print("\n".join(header + lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

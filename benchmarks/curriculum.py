"""Curriculum benchmark: uniform sampling vs curriculum + failure replay on a task where uniform sampling stalls.

Two arms on the same budget (same steps, prompts per step, completions per prompt, model, seed), TRL
backend (``veritas_rl.backends.trl.runner.run``, the code behind ``veritas train grpo``):

- ``uniform``: the target tasks, drawn uniformly;
- ``curriculum``: the task's ladder (easier lgc-v2 ``operation`` stages up to the target) with failure
  replay (capacity 1000, 30% of prompts, priority (1-score)^1, failed below 0.5, retired after 1 success).

Tasks (``--task``; ``--model``, ``--env-config``, ``--ladder``, ``--max-new-tokens`` override its parts), all on
lgc-v2 ``operation`` (expressions over operators defined in the prompt, ``\\boxed{N}``):

- ``operation-smollm2`` (default): SmolLM2-135M-Instruct at the default difficulty (up to 2 operators, values
  up to 9), 128 tokens; ladder 1 operator on values <= 3, then values <= 9, then the defaults. Measured
  2026-12-04 (docs/benchmarks.md): both arms stay at 0 — SmolLM2 never writes the box at any difficulty.
- ``operation-qwen``: Qwen2.5-Coder-0.5B-Instruct, 320 tokens, target 4 operators on values <= 30 (the lgc-v2
  ladder's "beyond"); ladder 1 op / values <= 3 -> the defaults -> 3 ops / values <= 20 -> the target.

Both arms evaluate the same held-out target tasks (dense indices [0, eval_size)) every ``--eval-every``
steps (greedy). Output in ``--out``: ``curriculum.png`` (both held-out curves, one plot), ``curriculum.md``
(the table), ``results.json``, and the stall check of the uniform arm.

    python benchmarks/curriculum.py --out "$OUT"                 # one H200, vLLM: 60 steps per arm
    python benchmarks/curriculum.py --task operation-qwen --out "$OUT"
    python benchmarks/curriculum.py --arms uniform --out "$OUT"  # one arm per command (the 10-minute limit)
    python benchmarks/curriculum.py --smoke --out /tmp/cur-smoke  # CPU: 2 steps per arm, plumbing only
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger("benchmarks.curriculum")

ENV = "lgc-v2"
ENV_CONFIG = {"task_types": ["operation"]}
LADDER = {
    "curriculum": {
        "env": ENV,
        "review_fraction": 0.1,
        "stages": [
            {"name": "one-op-small", "env_config": {"operation_max_ops": 1, "operation_max_value": 3},
             "promote": {"threshold": 0.4, "window": 128, "min_steps": 10}},
            {"name": "one-op", "env_config": {"operation_max_ops": 1, "operation_max_value": 9},
             "promote": {"threshold": 0.3, "window": 128, "min_steps": 10}},
            {"name": "defaults", "env_config": {}},
        ],
    },
    "failure_replay": {"enabled": True},
}
#: the Qwen task's target: the lgc-v2 ladder's "beyond" operation stage (4 operators, values <= 30)
QWEN_TARGET = {"task_types": ["operation"], "operation_max_ops": 4, "operation_max_value": 30}
QWEN_LADDER = {
    "curriculum": {
        "env": ENV,
        "review_fraction": 0.1,
        "stages": [
            {"name": "one-op-small", "env_config": {"operation_max_ops": 1, "operation_max_value": 3},
             "promote": {"threshold": 0.6, "window": 128, "min_steps": 5}},
            {"name": "defaults", "env_config": {"operation_max_ops": 2, "operation_max_value": 9},
             "promote": {"threshold": 0.4, "window": 128, "min_steps": 5}},
            {"name": "three-ops", "env_config": {"operation_max_ops": 3, "operation_max_value": 20},
             "promote": {"threshold": 0.3, "window": 128, "min_steps": 5}},
            {"name": "target", "env_config": {"operation_max_ops": 4, "operation_max_value": 30}},
        ],
    },
    "failure_replay": {"enabled": True},
}
#: --task presets: what the flags --model, --env-config, --ladder and --max-new-tokens default to
TASKS = {
    # SmolLM2 never writes \boxed{} on operation (measured 2026-12-04: a format wall, no stage pays)
    "operation-smollm2": {"model": None, "env_config": ENV_CONFIG, "ladder": LADDER, "max_new_tokens": 128,
                          "grad_accum": 1},
    # Qwen writes the working and the box; at 320 tokens (CPU, 24 held-out, greedy) it solved 45.8% of
    # one-op-small, 20.8% of the defaults and 8.3% of the target (29% of replies at the cap)
    # 128 completions x ~500 tokens x Qwen's 152k vocabulary: the loss forward in 4 micro-batches
    "operation-qwen": {"model": "embedded:qwen2.5-coder-0.5b", "env_config": QWEN_TARGET, "ladder": QWEN_LADDER,
                       "max_new_tokens": 320, "grad_accum": 4},
}
#: a uniform arm that gains no more than this (absolute, held-out) is called stalled
STALL_GAIN = 0.02


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=60, help="GRPO steps per arm (default: 60)")
    p.add_argument("--eval-size", type=int, default=200, help="held-out tasks (default: 200)")
    p.add_argument("--eval-every", type=int, default=10, help="held-out evaluation every N steps (default: 10)")
    p.add_argument("--prompts-per-step", type=int, default=16, help="prompts per step (default: 16)")
    p.add_argument("--num-generations", type=int, default=8, help="completions per prompt (default: 8)")
    p.add_argument("--task", default="operation-smollm2", choices=sorted(TASKS),
                   help="preset of model, target, ladder and token cap (default: operation-smollm2); the flags "
                        "below override its parts")
    p.add_argument("--max-new-tokens", type=int, default=None, help="tokens per completion (default: the task's)")
    p.add_argument("--grad-accum", type=int, default=None,
                   help="micro-batches per step (the same prompts x completions per step; the loss forward holds "
                        "1/N of the logits; default: the task's)")
    p.add_argument("--learning-rate", type=float, default=1e-5, help="learning rate (default: 1e-5)")
    p.add_argument("--model", default=None, help="embedded:NAME, hub id or local dir (default: the task's)")
    p.add_argument("--env-config", default=None,
                   help="the target: lgc-v2 config (JSON) of the uniform arm and of the held-out tasks (default: the "
                        "task's)")
    p.add_argument("--ladder", default=None,
                   help="curriculum file (YAML/JSON, the --curriculum schema) for the curriculum arm (default: the "
                        "task's)")
    p.add_argument("--no-vllm", action="store_true", help="transformers generate() instead of vLLM (GPU default)")
    p.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.3,
                   help="GPU share of the colocated vLLM engine (default: 0.3; lower it to share the GPU)")
    p.add_argument("--arms", default="uniform,curriculum", help="comma-separated subset of: uniform, curriculum")
    p.add_argument("--out", default="curriculum-out", help="where the table, JSON and plot go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny CPU settings (2 steps, LoRA r=4, 8 tokens): plumbing")
    return p


def resolve_task(args) -> None:
    """Fill the flags left unset from the ``--task`` preset."""
    task = TASKS[args.task]
    if args.model is None:
        args.model = task["model"]
    if args.env_config is None:
        args.env_config = json.dumps(task["env_config"])
    if args.max_new_tokens is None:
        args.max_new_tokens = task["max_new_tokens"]
    if args.grad_accum is None:
        args.grad_accum = task["grad_accum"]
    per_step = args.prompts_per_step * args.num_generations
    if args.grad_accum < 1 or per_step % args.grad_accum:
        raise SystemExit(f"--grad-accum {args.grad_accum}: must be >= 1 and divide prompts x completions ({per_step})")
    args.ladder_config = None if args.ladder else task["ladder"]


def target_config(args) -> dict:
    from veritas_rl.jsonio import parse_json_object

    return parse_json_object("--env-config", args.env_config)


def arm_settings(args, arm: str, out: Path) -> dict:
    import torch

    per_step = args.prompts_per_step * args.num_generations
    s = dict(mode="grpo", env=ENV, env_config=target_config(args), model=args.model, max_steps=args.steps,
             num_generations=args.num_generations, batch_size=per_step // args.grad_accum, grad_accum=args.grad_accum,
             max_new_tokens=args.max_new_tokens, learning_rate=args.learning_rate, eval_size=args.eval_size,
             eval_steps=args.eval_every, eval_batch_size=64, train_size=max(per_step, 64), seed=args.seed,
             output_dir=str(out / "runs"), run_name=f"{arm}-{time.strftime('%Y%m%d-%H%M%S')}", save_steps=max(args.steps, 1), save_total_limit=1,
             save_final_model=False, zero_reward_patience=0, logging_steps=1,
             use_vllm=bool(torch.cuda.is_available() and not args.no_vllm and not args.smoke))
    if s["use_vllm"]:
        s.update(vllm_gpu_memory_utilization=args.vllm_gpu_memory_utilization)
    if args.smoke:
        s.update(max_steps=2, batch_size=4, grad_accum=1, num_generations=2, max_new_tokens=8, eval_size=4, eval_steps=1,
                 eval_batch_size=4, lora_rank=4, learning_rate=1e-4, cpu_threads=2, train_size=8)
    if arm == "curriculum":
        ladder = out / "ladder.yaml"
        if args.ladder:
            ladder.write_text(Path(args.ladder).read_text(encoding="utf-8"), encoding="utf-8")
        else:
            ladder.write_text(json.dumps(args.ladder_config, indent=2) + "\n", encoding="utf-8")  # JSON is YAML
        s.update(curriculum=str(ladder), failure_replay=True)
    return s


def run_arm(args, arm: str, out: Path) -> dict:
    from veritas_rl.backends.trl.runner import run
    from veritas_rl.backends.trl.settings import build_settings

    settings = build_settings(None, arm_settings(args, arm, out))
    t0 = time.perf_counter()
    result = run(settings)
    wall = time.perf_counter() - t0
    curve = [(0, result.before["accuracy"])] + [(p["step"], p["accuracy"]) for p in result.report.get("eval_curve")
                                                or [] if p["step"] > 0]
    metrics = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "reward" in m]
    cur = [m for m in metrics if "curriculum/stage" in m]
    after = result.after["accuracy"] if result.after else curve[-1][1]
    return {
        "arm": arm, "steps": result.steps, "wall_seconds": round(wall, 1), "device": result.report["device"],
        "before": result.before["accuracy"], "after": after, "best": max(a for _, a in curve), "n": result.before["n"],
        "curve": curve, "mean_train_reward": sum(m["reward"] for m in steps) / len(steps) if steps else None,
        "zero_reward_steps": sum(1 for m in steps if m["reward"] == 0.0),
        "final_stage": int(cur[-1]["curriculum/stage"]) if cur else None,
        "promotions": int(cur[-1]["curriculum/promotions"]) if cur else None,
        "mean_replay_share": sum(m["curriculum/replay_share"] for m in cur) / len(cur) if cur else None,
        "run_dir": str(result.run_dir), "settings": settings.to_dict(),
    }


def plot(rows: list[dict], path: Path, title: str = json.dumps(ENV_CONFIG)) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        xs, ys = zip(*r["curve"])
        ax.plot(xs, [100 * y for y in ys], marker="o", label=r["arm"])
    ax.set_xlabel("GRPO step")
    ax.set_ylabel(f"held-out greedy accuracy, % (n={rows[0]['n']})")
    ax.set_title(f"{ENV} {title}: uniform vs curriculum + replay", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(rows: list[dict]) -> str:
    lines = ["| arm | steps | wall | device | held-out before → after (best) | mean train reward | all-zero steps "
             "| final stage (promotions) | mean replay share |", "|" + "---|" * 9]
    for r in rows:
        stage = "-" if r["final_stage"] is None else f"{r['final_stage']} ({r['promotions']})"
        share = "-" if r["mean_replay_share"] is None else f"{r['mean_replay_share']:.2f}"
        reward = "-" if r["mean_train_reward"] is None else f"{r['mean_train_reward']:.3f}"
        lines.append(f"| {r['arm']} | {r['steps']} | {r['wall_seconds']:.0f} s | {r['device']} | "
                     f"{100 * r['before']:.1f}% → {100 * r['after']:.1f}% ({100 * r['best']:.1f}%) (n={r['n']}) | "
                     f"{reward} | {r['zero_reward_steps']}/{r['steps']} | {stage} | {share} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    resolve_task(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - {"uniform", "curriculum"})
    if unknown or not arms:
        raise SystemExit(f"--arms: unknown {unknown}; choose from: uniform, curriculum")
    rows = [run_arm(args, arm, out) for arm in arms]
    earlier = out / "results.json"  # arms run by earlier commands into the same --out join the table and plot
    if earlier.is_file():
        kept = [r for r in json.loads(earlier.read_text(encoding="utf-8")) if r["arm"] not in arms]
        rows = sorted(kept + rows, key=lambda r: ["uniform", "curriculum"].index(r["arm"]))
    (out / "results.json").write_text(json.dumps(rows, indent=2, default=str) + "\n", encoding="utf-8")
    text = table(rows)
    uniform = next((r for r in rows if r["arm"] == "uniform"), None)
    if uniform is not None:
        gain = uniform["best"] - uniform["before"]
        verdict = "stalls" if gain <= STALL_GAIN else "does not stall"
        text += (f"\nUniform sampling {verdict}: best held-out gain {100 * gain:+.1f} points over {uniform['steps']} "
                 f"steps (stall = at most {100 * STALL_GAIN:.0f} points); {uniform['zero_reward_steps']} of its steps "
                 "had an all-zero reward.\n")
    (out / "curriculum.md").write_text(text, encoding="utf-8")
    if all(len(r["curve"]) >= 2 for r in rows):
        plot(rows, out / "curriculum.png", args.env_config)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Learning benchmark: GRPO with the TRL backend on a few envs, greedy accuracy before -> after.

For each case it runs ``veritas_rl.backends.trl.runner.run`` (the code behind ``veritas train grpo``) and
writes one table row: model, env + config, steps, wall-clock, device, baseline -> trained greedy
accuracy on the held-out tasks (dense indices [0, eval_size), disjoint from training).

    python benchmarks/learning.py                       # all cases, results in ./learning-out
    python benchmarks/learning.py --cases arithmetic --steps 100 --out "$OUT"
    python benchmarks/learning.py --cases arithmetic --steps 2 --eval-size 8 --smoke   # CPU check of the plumbing

Meant for one GPU (see docs/benchmarks.md for measured rows); on a CPU use --smoke.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

log = logging.getLogger("benchmarks.learning")

SMALL_SUMS = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2, "operators": ["+"],
              "allow_parentheses": False, "allow_negation": False}

#: name -> (env, env config, settings overrides). Settings not named here are TrainSettings defaults.
CASES: dict[str, tuple[str, dict, dict]] = {
    # two-term sums of 1-2 digit numbers (reasoning-gym basic_arithmetic through the `math` env, which grades
    # the boxed / "the answer is" answer, else (last_number_fallback) the last number of the reply, numerically)
    "arithmetic": ("math", {"rg_dataset": "basic_arithmetic", "rg_config": SMALL_SUMS, "last_number_fallback": True},
                   {"learning_rate": 2e-5, "max_new_tokens": 64}),
    # an lgc-v2 subset with short exact answers
    "lgc-v2-boolean": ("lgc-v2", {"task_types": ["boolean_expressions"]}, {"learning_rate": 2e-5,
                                                                            "max_new_tokens": 96}),
    # GSM-class math: reasoning-gym gsm_symbolic through the `math` env (strict: boxed / "the answer is" / ####),
    # Qwen2.5-Coder-0.5B-Instruct, vLLM rollouts and evaluation, a held-out curve every 20 steps
    "gsm-qwen": ("math", {}, {"model": "embedded:qwen2.5-coder-0.5b", "use_vllm": True, "max_new_tokens": 512,
                              "learning_rate": 3e-6, "lr_scheduler": "constant_with_warmup", "warmup_steps": 10,
                              "loss_type": "dr_grpo", "beta": 0.0, "batch_size": 32, "grad_accum": 4,
                              "num_generations": 8, "vllm_gpu_memory_utilization": 0.35, "eval_steps": 20,
                              "eval_batch_size": 64}),
    # OpenSpiel, reward 1.0 for any legal move of the position
    "openspiel-legal": ("openspiel", {"reward_mode": "legal", "game_types": ["tic_tac_toe", "connect_four"],
                                      "num_tasks_per_case": 2000}, {"learning_rate": 1e-5, "max_new_tokens": 64}),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of: {', '.join(CASES)}")
    p.add_argument("--steps", type=int, default=100, help="GRPO steps per case (default: 100)")
    p.add_argument("--eval-size", type=int, default=200, help="held-out tasks per case (default: 200)")
    p.add_argument("--train-size", type=int, default=2048, help="training tasks per case (default: 2048)")
    p.add_argument("--prompts-per-step", type=int, default=8, help="prompts per step (default: 8)")
    p.add_argument("--num-generations", type=int, default=8, help="completions per prompt (default: 8)")
    p.add_argument("--model", default=None, help="hub id or local dir (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--out", default="learning-out", help="where the table, JSON and plots go")
    p.add_argument("--runs-dir", default=None, help="run directories (default: <out>/runs; checkpoints are large)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainSettings field for every case, VALUE as JSON or a plain string (repeatable), "
                        "e.g. --set precision=fp32 --set max_new_tokens=128")
    p.add_argument("--smoke", action="store_true", help="tiny CPU settings (LoRA r=4, 8 new tokens): plumbing only")
    return p


def parse_sets(items: list[str]) -> dict:
    """``["lr=2e-5", "precision=fp32"]`` -> ``{"lr": 2e-05, "precision": "fp32"}`` (JSON where it parses)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


#: bookkeeping fields left out of a row's settings label
_UNLABELLED = {"mode", "env", "env_config", "model", "preset", "output_dir", "run_name", "resume", "report_to",
               "logging_steps", "save_steps", "save_total_limit", "save_final_model", "num_completions_to_print",
               "zero_reward_patience", "eval", "eval_batch_size", "cpu_threads"}


def settings_label(settings: dict) -> str:
    """The settings a run actually used that differ from the TrainSettings defaults, ``key=value`` sorted."""
    import dataclasses

    from veritas_rl.backends.trl.settings import TrainSettings

    defaults = {f.name: f.default for f in dataclasses.fields(TrainSettings) if f.default is not dataclasses.MISSING}
    out = [f"{k}={v}" for k, v in sorted(settings.items())
           if k not in _UNLABELLED and k in defaults and v != defaults[k]
           and not (k.startswith("vllm_") and not settings.get("use_vllm"))]
    return ", ".join(out) or "defaults"


def row_markdown(r: dict) -> str:
    cfg = json.dumps(r["env_config"], separators=(",", ":")) if r["env_config"] else "default"
    return (f"| {r['model']} | `{r['env']}` `{cfg}` | {settings_label(r['settings'])} | {r['steps']} | "
            f"{r['train_seconds']:.0f} s | {r['device']} | "
            f"{100 * r['before']:.1f}% → {100 * r['after']:.1f}% (n={r['n']}) |")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from veritas_rl.backends.trl.runner import run
    from veritas_rl.backends.trl.settings import build_settings

    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from: {', '.join(CASES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(args.runs_dir) if args.runs_dir else out / "runs"
    sets = parse_sets(args.set)
    rows = []
    for name in names:
        env, env_config, overrides = CASES[name]
        settings = {
            "mode": "grpo", "env": env, "env_config": env_config, "seed": args.seed,
            "max_steps": args.steps, "train_size": args.train_size, "eval_size": args.eval_size, "eval": True,
            "num_generations": args.num_generations, "batch_size": args.prompts_per_step * args.num_generations,
            "output_dir": str(runs_dir), "run_name": f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
            "save_steps": 10_000, "save_total_limit": 1, "save_final_model": False, "zero_reward_patience": 0,
            "eval_batch_size": 64, **overrides, **sets,
        }
        if args.model:  # --model wins over the case's model
            settings["model"] = args.model
        if args.smoke:
            settings.update(lora_rank=4, max_new_tokens=8, batch_size=4, num_generations=2, eval_batch_size=8,
                            cpu_threads=1, use_vllm=False, grad_accum=1, eval_steps=min(settings.get("eval_steps", 0), 1))
        t0 = time.perf_counter()
        result = run(build_settings(None, settings))
        rep = result.report
        row = {
            "case": name, "model": Path(rep["model"]).name, "env": rep["env"], "env_config": rep["env_config"],
            "steps": result.steps, "train_seconds": rep["train_seconds"], "total_seconds": time.perf_counter() - t0,
            "device": rep["device"], "before": result.before["accuracy"], "after": result.after["accuracy"],
            "n": result.after["n"], "settings": rep["settings"], "reward_curve": json.loads(
                (result.run_dir / "report.json").read_text())["reward_curve"], "eval_curve": rep.get("eval_curve"),
        }
        rows.append(row)
        if (result.run_dir / "reward.png").is_file():
            shutil.copy(result.run_dir / "reward.png", out / f"reward-{name}.png")
        if (result.run_dir / "eval_curve.png").is_file():
            shutil.copy(result.run_dir / "eval_curve.png", out / f"eval-{name}.png")
        log.info("%s", row_markdown(row))
        (out / "learning.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
        header = ["| model | env + config | settings (non-default) | steps | wall-clock (train) | device | "
                  "held-out greedy accuracy |", "|---|---|---|---|---|---|---|"]
        (out / "learning.md").write_text("\n".join(header + [row_markdown(r) for r in rows]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

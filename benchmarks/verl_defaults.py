#!/usr/bin/env python3
"""Our verl GRPO launcher with its old defaults vs its new ones, and its scaling over 1, 2 and 4 GPUs.

Runs ``train/scripts/lgc-v2-RL-GRPO-trainer.sh data.custom_cls.config.env=math`` (reasoning-gym ``gsm_symbolic``)
as a user would — variables and Hydra overrides only — and summarises verl's own per-step console metrics.

  --mode defaults   (one GPU) config ``old``: the launcher's defaults before the size rules (KL loss 0.001 with a
                    reference model, old log-probs recomputed, gradient checkpointing on, 4 sequences per micro
                    batch), given as variables; config ``new``: nothing set, the rules decide. Same tasks
                    (DATASET_SEED), same shape (default 8 prompts x 8 completions, <= 512 tokens, full fine-tune,
                    lr 1e-6), ~30 steps: s/step, where the step goes (timing_s/gen, old_log_prob, ref, update_actor),
                    and the reward curve of both side by side (PNG).
  --mode scaling    the new defaults on 1, 2 and 4 GPUs (GPU_COUNT, CUDA_VISIBLE_DEVICES), same env, model, batch
                    (default 32 prompts x 8, PPO mini batch 16: two updates, so old_log_prob is recomputed and
                    shows in the table) and length: s/step, generated tokens/s, tokens/s per GPU (verl's
                    perf/throughput), the scaling efficiency (throughput ratio / GPU ratio), and gen / old_log_prob /
                    update_actor per step.

Writes ``<out>/verl_defaults.json``, ``<out>/verl_defaults.md`` (+ ``reward_curves.png``) and one log per run; runs
already in the JSON are kept, so one call per configuration (each fits a 10-minute call) fills one table.
``--smoke`` (CPU): every configuration through the launcher's ``DRY_RUN=1`` only (verl's composed config validated,
the rules' choices recorded), no training.

On one lent H200 (verl 0.9.1 + vLLM staged into /root/site; the Qwen GGUF staged with ../shared/gpu/stage.py --qwen):
    PYTHONPATH=/root/site:$PWD/src python3 benchmarks/verl_defaults.py --out "$OUT" --configs old   # ~9 min
    PYTHONPATH=/root/site:$PWD/src python3 benchmarks/verl_defaults.py --out "$OUT" --configs new   # same dir
On nvidia-h200-x2 (then -x4 for 4):
    PYTHONPATH=/root/site:$PWD/src python3 benchmarks/verl_defaults.py --mode scaling --gpus 1,2 --out "$OUT"
The image has no flash-attn: the new defaults pick sdpa themselves; the old config sets ATTN_IMPLEMENTATION=sdpa.
The site on PYTHONPATH must not hold trl 1.x (verl 0.9.1 imports trl's value-head model whenever trl is importable;
the launcher refuses to start then) and needs hydra's antlr4 4.9.3 (docs/troubleshooting.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trl_speed import GpuSampler  # noqa: E402
from verl_gpu import ensure_model, run_logged  # noqa: E402

log = logging.getLogger("verl_defaults")
REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "train" / "scripts" / "lgc-v2-RL-GRPO-trainer.sh"
#: the launcher's defaults before the size rules (commit 79173db), as variables
OLD = dict(USE_KL_LOSS="1", KL_LOSS_COEF="0.001", RECOMPUTE_OLD_LOG_PROB="1", GRADIENT_CHECKPOINTING="1",
           USE_DYNAMIC_BSZ="0", MICRO_BATCH_SIZE_PER_GPU="4", ATTN_IMPLEMENTATION="sdpa", USE_REMOVE_PADDING="0",
           USE_FUSED_KERNELS="0")
TIMINGS = ("step", "gen", "old_log_prob", "ref", "update_actor", "adv", "reward")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="where the JSON, Markdown, PNG and logs go (kept across calls)")
    p.add_argument("--mode", choices=("defaults", "scaling"), default="defaults")
    p.add_argument("--configs", default="old,new", help="defaults mode: old, new or both (default: old,new)")
    p.add_argument("--gpus", default="1,2,4", help="scaling mode: GPU counts to run (default: 1,2,4)")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default: 30 defaults, 10 scaling)")
    p.add_argument("--warmup", type=int, default=2, help="steps left out of the s/step median (default: 2)")
    p.add_argument("--prompts", type=int, default=None, help="TRAIN_BATCH_SIZE (default: 8 defaults, 32 scaling)")
    p.add_argument("--rollout-n", type=int, default=8, help="ROLLOUT_N (default: 8)")
    p.add_argument("--max-response", type=int, default=512, help="MAX_RESPONSE_LENGTH (default: 512)")
    p.add_argument("--seed", type=int, default=0, help="DATASET_SEED: the same tasks for every run (default: 0)")
    p.add_argument("--model-dir", default="/root/qwen", help="HF model dir; built from --gguf when it has no config.json")
    p.add_argument("--gguf", default="/root/stage/qwen2.5-coder-0.5b.gguf", help="GGUF to build --model-dir from")
    p.add_argument("--timeout", type=int, default=570, help="seconds one run may take (steps so far are kept)")
    p.add_argument("--gpu-memory-utilization", default="0.5", help="GPU_MEMORY_UTILIZATION (default: 0.5)")
    p.add_argument("--override", action="append", default=[], help="Hydra override for every run (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="VAR=VALUE", help="launcher variable for every run")
    p.add_argument("--smoke", action="store_true", help="CPU: DRY_RUN=1 of every configuration, no training")
    return p


def runs(args) -> list[tuple[str, dict]]:
    """(name, launcher variables) of every run this call makes."""
    if args.mode == "defaults":
        chosen = [c.strip() for c in args.configs.split(",") if c.strip()]
        bad = sorted(set(chosen) - {"old", "new"})
        if bad:
            raise SystemExit(f"--configs: unknown {bad}; choose from old, new")
        return [(name, dict(OLD) if name == "old" else {}) for name in chosen]
    return [(f"gpus{g}", {"GPU_COUNT": str(g), "CUDA_VISIBLE_DEVICES": ",".join(map(str, range(g)))})
            for g in (int(x) for x in args.gpus.split(",") if x.strip())]


def launcher_env(args, model_dir: Path, name: str, variables: dict) -> dict:
    env = dict(os.environ)
    steps = args.steps or (30 if args.mode == "defaults" else 10)
    prompts = args.prompts or (8 if args.mode == "defaults" else 32)
    env.setdefault("PYTHON", sys.executable)
    env.update(MODEL_PATH=str(model_dir), LOGGER="console", WANDB_MODE="disabled", GPU_COUNT="1",
               PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", VLLM_LOGGING_LEVEL="WARNING",
               RUN_NAME=f"verl-defaults-{name}-{time.strftime('%H%M%S')}", TOTAL_TRAINING_STEPS=str(steps),
               SAVE_FREQ="-1", TEST_FREQ="-1", VAL_BEFORE_TRAIN="0", TRAIN_BATCH_SIZE=str(prompts),
               ROLLOUT_N=str(args.rollout_n), MAX_RESPONSE_LENGTH=str(args.max_response), DATASET_SEED=str(args.seed),
               DATASET_VAL_SIZE="16", DATASET_GROUP_BY="", GPU_MEMORY_UTILIZATION=args.gpu_memory_utilization, VALIDATE="0",
               NCCL_NVLS_ENABLE="0")
    if args.mode == "defaults" and "PPO_MINI_BATCH_SIZE" not in variables:
        env["PPO_MINI_BATCH_SIZE"] = str(min(16, prompts))  # the old launcher's 16 would exceed 8 prompts
    env.update(variables)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected VAR=VALUE")
        env[key] = value
    if args.smoke:
        env.update(DRY_RUN="1", VALIDATE="1")
    return env


def summarise(res: dict, warmup: int, responses: int, gpus: int) -> dict:
    steps = res.pop("steps")
    rows = [{"step": k, **{f"t_{t}": steps[k].get(f"timing_s/{t}") for t in TIMINGS},
             "score": steps[k].get("critic/score/mean"), "response_len": steps[k].get("response_length/mean"),
             "clip_ratio": steps[k].get("response_length/clip_ratio"),
             "throughput_per_gpu": steps[k].get("perf/throughput")} for k in sorted(steps)]
    later = rows[warmup:]

    def med(key):
        values = [r[key] for r in later if isinstance(r[key], float)]
        return statistics.median(values) if values else None

    s_step, gen, resp = med("t_step"), med("t_gen"), med("response_len")
    res.update(steps_run=len(rows), per_step=rows, gpus=gpus, **{f"median_{t}": med(f"t_{t}") for t in TIMINGS},
               gen_tokens_per_s=resp * responses / gen if gen and resp else None,
               throughput_per_gpu=med("throughput_per_gpu"), s_step=s_step)
    return res


def render(summary: dict) -> str:
    def f(v, d=2):
        return "—" if v is None else (f"{v:,.{d}f}" if isinstance(v, float) else str(v))

    lines = [f"# verl launcher defaults / scaling ({summary.get('device')}, {summary.get('date')})", ""]
    for mode in ("defaults", "scaling"):
        rows = summary.get(mode) or {}
        if not rows:
            continue
        lines += [f"## {mode}", "", "| run | rc | steps | s/step | gen | old_log_prob | ref | update_actor | gen tok/s "
                  "| tok/s/GPU | efficiency | score first→last 5 |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        base = next((r for r in rows.values() if r.get("gpus") == 1 and r.get("throughput_per_gpu")), None)
        for name, r in rows.items():
            eff = None
            if mode == "scaling" and base and r.get("throughput_per_gpu"):
                eff = r["throughput_per_gpu"] / base["throughput_per_gpu"]  # per-GPU ratio = throughput ratio / GPU ratio
            scores = [x["score"] for x in r.get("per_step", []) if isinstance(x["score"], float)]
            curve = f"{statistics.fmean(scores[:5]):.3f} → {statistics.fmean(scores[-5:]):.3f}" if scores else "—"
            lines.append(f"| {name} | {r.get('rc')} | {r.get('steps_run')} | {f(r.get('s_step'))} | {f(r.get('median_gen'))} "
                         f"| {f(r.get('median_old_log_prob'))} | {f(r.get('median_ref'))} | {f(r.get('median_update_actor'))} "
                         f"| {f(r.get('gen_tokens_per_s'), 0)} | {f(r.get('throughput_per_gpu'), 0)} | {f(eff)} | {curve} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib missing: no %s", path.name)
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in (summary.get("defaults") or {}).items():
        pts = [(x["step"], x["score"]) for x in r.get("per_step", []) if isinstance(x["score"], float)]
        if pts:
            ax.plot(*zip(*pts), marker=".", label=f"{name} defaults ({r.get('s_step') or 0:.1f} s/step)")
    ax.set_xlabel("step")
    ax.set_ylabel("critic/score/mean")
    ax.set_title("lgc-v2-RL-GRPO-trainer.sh, env math (gsm_symbolic)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "verl_defaults.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    model_dir = Path(args.model_dir)
    if args.smoke and not (model_dir / "config.json").is_file():
        from veritas_rl.models import embedded_model_dir

        model_dir = embedded_model_dir()  # CPU: the embedded SmolLM2
    model_dir = ensure_model(model_dir, Path(args.gguf))
    try:
        import torch

        summary["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        summary["device"] = "unknown"
    summary["date"] = time.strftime("%Y-%m-%d")
    prompts = args.prompts or (8 if args.mode == "defaults" else 32)
    for name, variables in runs(args):
        env = launcher_env(args, model_dir, name, variables)
        cmd = ["bash", str(LAUNCHER), "data.custom_cls.config.env=math", *args.override]
        log.info("run %s: %s", name, " ".join(f"{k}={v}" for k, v in variables.items()) or "(no variables: the rules)")
        with GpuSampler() as sampler:
            res = run_logged(cmd, env, out / f"{args.mode}-{name}.log", args.timeout)
        gpus = int(env["GPU_COUNT"])
        res = summarise(res, args.warmup, prompts * args.rollout_n, gpus)
        res.update(variables=variables, gpu_util_mean=sampler.mean, model=str(model_dir), smoke=args.smoke,
                   shape=f"{prompts} prompts x {args.rollout_n}, <= {args.max_response} tokens, seed {args.seed}")
        if args.smoke:
            text = (out / f"{args.mode}-{name}.log").read_text(errors="replace")
            res["rules"] = [line.split("] ", 1)[-1] for line in text.splitlines() if "] defaults for " in line]
        summary.setdefault(args.mode, {})[name] = res
        summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        (out / "verl_defaults.md").write_text(render(summary))
        log.info("run %s: rc=%s, %s steps, %s s/step", name, res["rc"], res["steps_run"], res["s_step"])
    plot(summary, out / "reward_curves.png")
    failed = [n for n, r in (summary.get(args.mode) or {}).items() if r.get("rc") not in (0, "timeout")]
    return 1 if failed and args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())

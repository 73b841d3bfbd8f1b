#!/usr/bin/env python
"""TRL backend speed, side by side: GRPO steps with transformers ``generate()`` and with vLLM (colocate).

    python benchmarks/trl_speed.py --model DIR --out "$OUT"                      # both systems, 6 steps each
    python benchmarks/trl_speed.py --model DIR --systems vllm --steps 10 --set vllm_gpu_memory_utilization=0.4

Each system runs ``veritas_rl.backends.trl.runner.run`` (the code behind ``veritas train grpo``) on the
same env, model and shape (default: the ``math`` env on reasoning-gym ``gsm_symbolic``, 8 prompts x 8
completions, <= 512 new tokens, full fine-tune, lr 1e-6, bf16, no evaluation, no checkpoints) and
reports, from TRL's own per-step metrics (``step_time``, ``completions/mean_length``):

- s/step after warm-up (median of the steps after the first ``--warmup``),
- generated tokens/s (completions per step x mean completion length / step time),
- start-up (process start of the run to the first step's end, model load included),
- mean GPU utilisation while training (``nvidia-smi`` sampled every 0.5 s),
- beside the device's bounds (``benchmarks/roofline.py``: HBM bandwidth for decode, dense bf16 FLOP/s for the
  update): decode tokens/s per generation second against the bandwidth bound at that batch, and trained
  tokens/s (prompt + reply tokens of the step over the update time) against the FLOP bound (MFU).

Needs one CUDA GPU (and vLLM for the ``vllm`` system). Writes ``trl_speed.json`` and ``trl_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger("benchmarks.trl_speed")

SYSTEMS = {"generate": {"use_vllm": False}, "vllm": {"use_vllm": True, "vllm_mode": "colocate"}}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="HF model dir (or anything `veritas train --model` takes)")
    p.add_argument("--systems", default="generate,vllm", help=f"comma-separated subset of: {', '.join(SYSTEMS)}")
    p.add_argument("--env", default="math")
    p.add_argument("--env-config", default="{}", help="env config JSON (default: {} = gsm_symbolic)")
    p.add_argument("--steps", type=int, default=6, help="GRPO steps per system (default: 6)")
    p.add_argument("--warmup", type=int, default=1, help="steps left out of the s/step median (default: 1)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step (default: 8)")
    p.add_argument("--num-generations", type=int, default=8, help="completions per prompt (default: 8)")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches per step: the step still generates and trains prompts x num-generations "
                        "completions, the loss forward holds 1/grad-accum of them (64 x 8 at <= 512 tokens needs 8: "
                        "the whole batch's logits alone are ~120 GB in bf16)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainSettings field for every system, VALUE as JSON or a plain string (repeatable)")
    p.add_argument("--out", default="trl-speed-out", help="where the JSON, Markdown and run dirs go")
    return p


class GpuSampler:
    """Mean GPU utilisation from ``nvidia-smi`` while a block runs (None where there is no nvidia-smi)."""

    def __init__(self, period_s: float = 0.5):
        self.period_s, self.samples, self._stop = period_s, [], threading.Event()

    def _loop(self):
        while not self._stop.wait(self.period_s):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


def parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def measure(system: str, args: argparse.Namespace, out: Path) -> dict:
    from veritas_rl.backends.trl.runner import run
    from veritas_rl.backends.trl.settings import build_settings
    from veritas_rl.backends.trl.timing import KEYS as TIMING_KEYS, summarise as summarise_timing

    completions = args.prompts * args.num_generations
    if args.grad_accum < 1 or completions % args.grad_accum:
        raise SystemExit(f"--grad-accum {args.grad_accum}: must be >= 1 and divide the {completions} completions")
    overrides = {
        "env": args.env, "env_config": json.loads(args.env_config), "model": args.model, "mode": "grpo",
        "max_steps": args.steps, "batch_size": completions // args.grad_accum,
        "grad_accum": args.grad_accum, "num_generations": args.num_generations,
        "max_new_tokens": args.max_new_tokens, "learning_rate": 1e-6, "precision": "bf16", "eval": False,
        "train_size": max(256, args.prompts * args.steps), "save_steps": 10_000, "save_final_model": False,
        "zero_reward_patience": 0, "output_dir": str(out / "runs"), "run_name": system,
        **SYSTEMS[system], **parse_sets(args.set),
    }
    s = build_settings(None, overrides)
    t0 = time.perf_counter()
    with GpuSampler() as gpu:
        result = run(s)
    wall = time.perf_counter() - t0
    steps = [r for r in (json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines())
             if "step_time" in r]
    times = [float(r["step_time"]) for r in steps]
    lengths = [float(r.get("completions/mean_length", 0.0)) for r in steps]
    timed = times[args.warmup:] or times
    per_step = statistics.median(timed)
    tok_s = statistics.fmean(completions * n / t for n, t in zip(lengths[args.warmup:] or lengths, timed))
    timed_rows = [{k: float(r[f"timing_s/{k}"]) for k in TIMING_KEYS} for r in steps if "timing_s/step" in r]
    phases = summarise_timing(timed_rows, args.warmup)  # backends/trl/timing.py, the run report's medians
    later = steps[args.warmup:] or steps
    decode = [completions * float(r.get("completions/mean_length", 0.0)) / float(r["timing_s/gen"])
              for r in later if float(r.get("timing_s/gen", 0.0)) > 0]
    seen = [float(r["num_tokens"]) for r in steps if "num_tokens" in r]  # TRL's running count, prompts + replies
    step_tokens = [b - a for a, b in zip([0.0] + seen, seen)][args.warmup:]
    tokens = statistics.fmean(step_tokens) if step_tokens else None
    reply = statistics.fmean(lengths[args.warmup:] or lengths) if lengths else 0.0
    prompt = None if tokens is None else max(tokens / completions - reply, 0.0)
    bounds = roofline_row(s.model, completions, prompt, reply, statistics.fmean(decode) if decode else None,
                          None if tokens is None or not phases else tokens / phases["median_update"])
    return {
        "system": system, "steps": len(times), "s_per_step": round(per_step, 2), "step_times": times,
        "mean_completion_tokens": round(statistics.fmean(lengths), 1) if lengths else None,
        "generated_tok_s": round(tok_s), "startup_s": round(wall - sum(times[1:]), 1),
        "gpu_util_mean": None if gpu.mean is None else round(gpu.mean, 1), "wall_s": round(wall, 1),
        "rewards": [r.get("reward") for r in steps], "settings": s.to_dict(), "median_s": phases,
        "decode_tok_s": round(statistics.fmean(decode)) if decode else None,
        "tokens_per_step": tokens, "mean_prompt_tokens": prompt, "bounds": bounds,
    }


def roofline_row(model: str, seqs: int, prompt: float | None, reply: float, decode: float | None,
                 train: float | None) -> dict | None:
    """``roofline.bounds_row`` for the device this runs on (None without CUDA or the model's safetensors)."""
    import torch

    from roofline import bounds_row, device_spec, model_shape

    if not torch.cuda.is_available() or prompt is None:
        return None
    try:
        shape = model_shape(model)
    except (OSError, KeyError) as exc:
        log.warning("no bounds: %s", exc)
        return None
    return bounds_row(device_spec(torch.cuda.get_device_name()), shape, seqs=seqs, prompt_tokens=prompt,
                      completion_tokens=reply, decode_tok_s=decode, train_tok_s=train)


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"{args.env} {args.env_config}, {args.prompts} prompts x {args.num_generations} completions, "
             f"<= {args.max_new_tokens} tokens, {args.steps} steps ({args.warmup} warm-up)", "",
             "| system | s/step after warm-up | gen / sync / reward / update s | generated tok/s (per step) | "
             "decode tok/s (per gen s) | mean completion tokens | start-up s | GPU util (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        util = "-" if r["gpu_util_mean"] is None else f"{r['gpu_util_mean']:.0f}%"
        ph = r["median_s"] or {}
        split = " / ".join(f"{ph[f'median_{k}']:.2f}" if ph else "-" for k in ("gen", "sync_weights", "reward", "update"))
        decode = "-" if r["decode_tok_s"] is None else f"{r['decode_tok_s']:,}"
        lines.append(f"| TRL + {r['system']} | {r['s_per_step']} | {split} | {r['generated_tok_s']:,} | {decode} | "
                     f"{r['mean_completion_tokens']} | {r['startup_s']} | {util} |")
    bounded = [r for r in rows if (r.get("bounds") or {}).get("decode_bound_tok_s")]
    if bounded:
        b0 = bounded[0]["bounds"]
        lines += ["", f"Bounds on {b0['device']} ({b0['params']:,} parameters; benchmarks/roofline.py): decode at "
                  f"{b0['seqs']} sequences by HBM bandwidth, update by dense bf16 FLOP/s (6 x params per token)", "",
                  "| system | decode tok/s | decode bound | share | trained tok/s | update bound | MFU |",
                  "|---|---|---|---|---|---|---|"]
        for r in bounded:
            b = r["bounds"]
            fmt = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
            lines.append(f"| TRL + {r['system']} | {fmt(b['decode_tok_s'], ',.0f')} | {b['decode_bound_tok_s']:,.0f} | "
                         f"{fmt(b['decode_share'], '.1%')} | {fmt(b['train_tok_s'], ',.0f')} | "
                         f"{b['train_bound_tok_s']:,.0f} | {fmt(b['mfu'], '.1%')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for name in systems:
        if name not in SYSTEMS:
            raise SystemExit(f"--systems: {name!r} is not valid; choose from: {', '.join(SYSTEMS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in systems:
        rows.append(measure(name, args, out))
        (out / "trl_speed.json").write_text(json.dumps(rows, indent=2) + "\n")
        log.info("%s: %.2f s/step, %d generated tok/s", name, rows[-1]["s_per_step"], rows[-1]["generated_tok_s"])
    text = markdown(rows, args)
    (out / "trl_speed.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

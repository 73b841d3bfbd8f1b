"""``veritas eval``: greedy accuracy and pass@k of any model on an env's held-out tasks.

The held-out tasks are the ones the TRL trainer holds out (dense indices ``[0, eval_size)``, see
:func:`veritas_rl.backends.trl.data.split_indices`), scored through the same code as the trainer's
before/after accuracy (:mod:`veritas_rl.eval.greedy`), so at the same model, env, size and token cap
the greedy number equals the trainer's ``baseline.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm", "openai")

EPILOG = """examples:
  veritas eval --env math --eval-size 64                              # the embedded SmolLM2, greedy
  veritas eval --model embedded:qwen2.5-coder-0.5b --env math --config '{"source": "gsm_symbolic"}' \\
      --eval-size 200 --max-new-tokens 512 --n 8 --k 4                # greedy + pass@1/pass@4 from 8 samples
  veritas eval --model train/outputs/20260101-120000-grpo-math --env math   # a TRL run (final/ or last checkpoint)
  veritas eval --backend vllm --model train/runs/RUN/final --env math --eval-size 500 --max-new-tokens 512   # GPU
  veritas eval --backend openai --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-0.5B-Instruct --env lgc-v2
MODEL (hf backend): an HF model dir, a TRL run dir or its checkpoint-N, a LoRA adapter dir (base from
adapter_config.json), embedded:smollm2-135m (default) or embedded:qwen2.5-coder-0.5b, or a hub id.
Writes report.json, report.md and greedy_by_<group>.png into --out-dir.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="greedy accuracy and pass@k of a model on an env's held-out tasks",
        description="Score a model on the held-out tasks the trainers hold out: greedy accuracy, pass@k "
        "(unbiased estimator, from N samples per task), per group, with the share of replies at the token cap "
        "and the score kinds/reasons.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=cmd_eval)


def add_arguments(p: argparse.ArgumentParser) -> None:
    import dataclasses
    import types

    from veritas_rl.backends.trl.settings import TrainSettings

    # the trainers' defaults (TrainSettings() itself needs an env)
    d = types.SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(TrainSettings)})
    p.add_argument("--model", default=None, help="model (see below); with --backend openai, the served model's "
                   "name (default: embedded:smollm2-135m)")
    p.add_argument("--env", required=True, help="env name or alias (see `veritas envs`)")
    p.add_argument("--config", "--env-config", dest="config", default=None, help="env config as a JSON object")
    p.add_argument("--eval-size", type=int, default=d.eval_size,
                   help=f"held-out tasks: dense indices [0, EVAL_SIZE), as the trainers (default: {d.eval_size})")
    p.add_argument("--n", type=int, default=1, help="samples per task for pass@k; 1 = greedy only (default: 1)")
    p.add_argument("--k", type=int, default=1, help="k of pass@k, <= N (default: 1)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for --n > 1 (default: 1.0)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling for --n > 1 (default: 1.0)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens,
                   help=f"token cap per reply (default: {d.max_new_tokens}, the trainers' default)")
    p.add_argument("--batch-size", type=int, default=d.eval_batch_size,
                   help=f"hf: prompts per generate() batch (default: {d.eval_batch_size})")
    p.add_argument("--backend", default="hf", choices=BACKENDS, help="hf (transformers generate), vllm (a vLLM "
                   "engine in this process, CUDA GPU) or openai (a served model behind an OpenAI-compatible "
                   "/v1/chat/completions) (default: hf)")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.6,
                   help="vllm: share of GPU memory the engine takes (default: 0.6)")
    p.add_argument("--base-url", default=None, help="openai: the endpoint, e.g. http://localhost:8000/v1")
    p.add_argument("--api-key", default=None, help="openai: bearer token (default: $OPENAI_API_KEY, else none)")
    p.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight (default: 8)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="hf: device (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="hf on CPU: torch threads (default: torch's)")
    p.add_argument("--out-dir", default=None,
                   help="where report.json/.md/.png go (default: train/runs/eval/<time>-<env>, git-ignored)")


def _check(args: argparse.Namespace) -> None:
    for key in ("eval_size", "n", "k", "max_new_tokens", "batch_size", "concurrency"):
        if getattr(args, key) < 1:
            raise ValueError(f"--{key.replace('_', '-')}={getattr(args, key)}; expected >= 1")
    if args.k > args.n:
        raise ValueError(f"--k={args.k} > --n={args.n}; pass@k needs at least k samples per task")
    if args.n > 1 and args.temperature <= 0:
        raise ValueError(f"--temperature={args.temperature} with --n={args.n}; sampling needs temperature > 0")
    if args.backend == "openai" and not args.base_url:
        raise ValueError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
    if args.backend == "openai" and not args.model:
        raise ValueError("--backend openai needs --model: the name the server serves the model under")
    if args.backend != "openai" and args.base_url:
        raise ValueError("--base-url is for --backend openai")
    if not 0.0 < args.gpu_memory_utilization <= 1.0:
        raise ValueError(f"--gpu-memory-utilization={args.gpu_memory_utilization}; expected a share in (0, 1]")
    if args.backend == "vllm":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--backend vllm needs a CUDA GPU; on a CPU use --backend hf")


def _generator(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    import os

    from veritas_rl.eval.greedy import HFGenerator, OpenAIGenerator

    if args.backend == "openai":
        gen = OpenAIGenerator(args.base_url, args.model, api_key=args.api_key or os.environ.get("OPENAI_API_KEY"),
                              concurrency=args.concurrency)
        return gen, {"backend": "openai", "base_url": args.base_url, "model": args.model}
    import torch

    from veritas_rl.models import load_causal_lm, resolve_checkpoint

    if args.backend == "vllm":
        from veritas_rl.eval.greedy import VLLMGenerator

        model_path, adapter = resolve_checkpoint(args.model)
        if adapter is not None:
            raise ValueError(f"--backend vllm takes a full model dir; {args.model!r} is a LoRA adapter: merge it "
                             "first (train/scripts/merge.sh) or use --backend hf")
        gen = VLLMGenerator.load(model_path, gpu_memory_utilization=args.gpu_memory_utilization, seed=args.seed)
        return gen, {"backend": "vllm", "model": args.model, "model_path": model_path, "adapter": None,
                     "device": "cuda"}
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    model_path, adapter = resolve_checkpoint(args.model)
    model, tokenizer = load_causal_lm(model_path, device, adapter=adapter)
    return HFGenerator(model, tokenizer, args.batch_size), {
        "backend": "hf", "model": args.model, "model_path": model_path, "adapter": adapter, "device": device}


def cmd_eval(args: argparse.Namespace) -> int:
    from veritas_rl.backends.trl.data import split_indices, tasks_at
    from veritas_rl.envs import make
    from veritas_rl.eval.greedy import evaluate
    from veritas_rl.jsonio import parse_json_object

    _check(args)
    env_config = parse_json_object("--config", args.config) if args.config else {}
    env = make(args.env, **env_config)  # bad env config fails before any model is loaded
    _, held_out = split_indices(env, 0, args.eval_size)
    tasks = tasks_at(env, held_out)
    generator, about = _generator(args)
    log.info("eval %s on %s: %d held-out tasks, max_new_tokens %d, n %d", about.get("model_path") or about["model"],
             env.name, len(tasks), args.max_new_tokens, args.n)
    t0 = time.perf_counter()
    result = evaluate(generator, env, tasks, args.max_new_tokens, n=args.n, k=args.k, temperature=args.temperature,
                      top_p=args.top_p, seed=args.seed)
    report = {"env": env.name, "env_config": env_config, "eval_size": len(tasks),
              "held_out": [held_out.start, held_out.stop], "max_new_tokens": args.max_new_tokens, **about,
              "seconds": round(time.perf_counter() - t0, 1),
              "date": _dt.datetime.now().isoformat(timespec="seconds"), **result}
    out_dir = Path(args.out_dir) if args.out_dir else Path("train/runs/eval") / (
        f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', env.name)}")
    paths = write_report(report, out_dir)
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    sys.stdout.write(markdown(report))
    return 0


# -- the report -------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(report: dict[str, Any]) -> str:
    g, s = report["greedy"], report.get("sampled")
    k = s["k"] if s else None
    model = report.get("model_path") or report.get("model")
    lines = [f"# veritas eval: {report['env']}", "",
             f"model `{model}`" + (f" + adapter `{report['adapter']}`" if report.get("adapter") else "")
             + f" ({report['backend']}), env config `{json.dumps(report['env_config'])}`, held-out tasks "
             f"[{report['held_out'][0]}, {report['held_out'][1]}), max_new_tokens {report['max_new_tokens']}, "
             f"{report['seconds']} s", ""]
    head = "| group | tasks | greedy accuracy | mean score | at token cap |"
    rule = "|---|---|---|---|---|"
    if s:
        head += f" pass@1 (n={s['n']}) | pass@{k} |"
        rule += "---|---|"

    def row(name: str, gs: dict, ss: dict | None) -> str:
        line = f"| {name} | {gs['n']} | {_pct(gs['accuracy'])} | {_pct(gs['mean_score'])} | {_pct(gs['clipped'])} |"
        if s:
            line += f" {_pct(ss['pass@1'])} | {_pct(ss[f'pass@{k}'])} |"
        return line

    lines += [head, rule, row("all", g, s)]
    for key, values in g["groups"].items():
        for value, gs in values.items():
            lines.append(row(f"{key}={value}", gs, s["groups"][key][value] if s else None))
    lines += ["", "| score kind (greedy) | replies |", "|---|---|"]
    lines += [f"| {kind} | {count} |" for kind, count in g["kinds"].items()]
    if g["reasons"]:
        lines += ["", "| most frequent reasons (greedy, not correct) | replies |", "|---|---|"]
        shown: dict[str, int] = {}  # reasons that differ only past the shown 120 characters share a row
        for reason, count in g["reasons"].items():
            text = reason.replace("|", "/")[:120]
            shown[text] = shown.get(text, 0) + count
        lines += [f"| {text} | {count} |" for text, count in sorted(shown.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """report.json, report.md and one bar chart per group key (``greedy.png`` when the env has none)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md"]
    paths[0].write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no PNG (pip install matplotlib)")
        return paths
    groups = report["greedy"]["groups"] or {"all": {"all": report["greedy"]}}
    sampled = report.get("sampled")
    for key, values in groups.items():
        names = list(values)
        fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(names) + 2), 3.2))
        width = 0.4 if sampled else 0.6
        xs = range(len(names))
        ax.bar([x - (width / 2 if sampled else 0) for x in xs], [100 * values[v]["accuracy"] for v in names],
               width, label="greedy")
        if sampled:
            src = sampled["groups"].get(key) or {"all": sampled}
            ax.bar([x + width / 2 for x in xs], [100 * src[v][f"pass@{sampled['k']}"] for v in names], width,
                   label=f"pass@{sampled['k']} (n={sampled['n']})")
        ax.set_xticks(list(xs), names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
        ax.set_ylabel("% of tasks")
        ax.set_ylim(0, 100)
        ax.set_title(f"{report['env']}: by {key}" if key != "all" else report["env"])
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = out / ("greedy.png" if key == "all" else f"greedy_by_{key}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths

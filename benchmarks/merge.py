#!/usr/bin/env python
"""Merging a LoRA adapter into its base: time and peak RSS, ours (streamed) vs PEFT's merge_and_unload.

    python benchmarks/merge.py                     # the embedded SmolLM2-135M-Instruct, r=16 on all linear layers
    python benchmarks/merge.py --dtype fp32 --repeat 3
    python benchmarks/merge.py --json              # JSON lines instead of the Markdown table

Every measurement runs in a fresh child process (``python benchmarks/merge.py --child METHOD ...``) that
first imports what the method needs and records its RSS (``VmRSS``), then merges, and reports the merge's
wall time and the process's peak resident set size (``VmHWM`` in /proc/self/status);
"peak − imports" is the memory the merge itself took:

- ``imports``        import torch, transformers and peft, nothing else (the floor every method pays);
- ``ours``           ``veritas_rl.merge.merge_adapter(..., verify=False)``: base tensors streamed one at a
                     time from the safetensors file, ``W += scale * B @ A`` in float32, written to the output;
- ``ours+verify``    the same with the verification on (PEFT model, float32 check, merged model: one at a time);
- ``peft``           ``AutoModelForCausalLM.from_pretrained`` (in the output dtype) + ``PeftModel.from_pretrained``
                     + ``merge_and_unload()`` + ``save_pretrained`` + tokenizer save: the usual recipe.

The adapter is a PEFT LoRA with random (non-zero) B, made once in a temporary directory unless
``--adapter`` is given; merge speed does not depend on the values.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("benchmarks.merge")

METHODS = ("imports", "ours", "ours+verify", "peft")
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
#: LlamaConfig fields of random-init models for --synthetic (the shape of TinyLlama-1.1B)
SYNTHETIC = {
    "llama-1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                       num_key_value_heads=4, vocab_size=32000, tie_word_embeddings=False),
}


def make_synthetic(name: str, out_dir: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from veritas_rl.models import embedded_model_dir

    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    try:
        model = LlamaForCausalLM(LlamaConfig(**SYNTHETIC[name]))
    finally:
        torch.set_default_dtype(torch.float32)
    model.save_pretrained(out_dir, max_shard_size="1GB")
    del model
    from transformers import AutoTokenizer

    # any tokenizer works for the merge; the verification (not run on synthetic models) would need ids < vocab
    AutoTokenizer.from_pretrained(embedded_model_dir()).save_pretrained(out_dir)
    return out_dir


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="base model dir (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--adapter", default=None, help="adapter dir (default: a random LoRA made once)")
    p.add_argument("--synthetic", choices=list(SYNTHETIC), default=None,
                   help="instead of --model: a random-init model of this shape, saved in bf16 in 1 GB shards "
                   "(memory scaling without a download)")
    p.add_argument("--rank", type=int, default=16, help="rank of the generated adapter (default: 16)")
    p.add_argument("--dtype", default="bf16", choices=list(TORCH_DTYPES), help="output dtype (default: bf16)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {', '.join(METHODS)}")
    p.add_argument("--repeat", type=int, default=1, help="runs per method; the table shows the fastest (default: 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the children (default: 1)")
    p.add_argument("--json", action="store_true", help="JSON lines instead of the Markdown table")
    p.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p


def make_adapter(model_dir: str, out_dir: Path, rank: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", init_lora_weights=False,
                        task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(out_dir)
    return out_dir


def _status_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from /proc/self/status, in MiB.

    ``VmHWM`` rather than ``getrusage(...).ru_maxrss``: Linux carries ru_maxrss across fork + exec, so a
    child would report the parent's peak if that was higher (here: the parent that built the adapter)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(method: str, model_dir: str, adapter_dir: str, out_dir: str, dtype: str) -> dict:
    """Runs in the child process: imports what METHOD needs, then does the work; times and RSS of both."""
    start = time.perf_counter()
    import torch

    if method in ("imports", "peft", "ours+verify"):
        import peft  # noqa: F401
        import transformers  # noqa: F401
    if method in ("ours", "ours+verify"):
        import safetensors  # noqa: F401

        import veritas_rl.merge.core  # noqa: F401
    imported = time.perf_counter()
    import_rss = _status_mib("VmRSS")
    if method in ("ours", "ours+verify"):
        from veritas_rl.merge import merge_adapter

        merge_adapter(model_dir, adapter_dir, out_dir, dtype=dtype, verify=method == "ours+verify")
    elif method == "peft":
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, TORCH_DTYPES[dtype]))
        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        model.save_pretrained(out_dir)
        AutoTokenizer.from_pretrained(model_dir).save_pretrained(out_dir)
    done = time.perf_counter()
    peak = _status_mib("VmHWM")
    return {
        "method": method,
        "seconds": round(done - imported, 2),
        "import_seconds": round(imported - start, 2),
        "peak_rss_mib": round(peak, 1),
        "import_rss_mib": round(import_rss, 1),
        "work_rss_mib": round(peak - import_rss, 1),
    }


def run_child(method: str, model_dir: str, adapter_dir: str, work: Path, dtype: str, threads: int) -> dict:
    out = work / f"out-{method}-{time.monotonic_ns()}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, __file__, "--child", method, "--model", model_dir, "--adapter", adapter_dir,
           "--dtype", dtype, "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if out.exists():
        result["output_mib"] = round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20, 1)
        import shutil

        shutil.rmtree(out)
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.child:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        logging.getLogger().setLevel(logging.WARNING)
        print(json.dumps(child(args.child, args.model, args.adapter, args.out, args.dtype)))
        return 0

    from tqdm import tqdm

    from veritas_rl.models import resolve_model

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown --methods {', '.join(unknown)}; known: {', '.join(METHODS)}")
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        work = Path(tmp)
        if args.synthetic:
            if "ours+verify" in methods:
                raise SystemExit("--synthetic models are random: leave ours+verify out of --methods")
            log.info("building a random-init %s model", args.synthetic)
            model_dir = str(make_synthetic(args.synthetic, work / args.synthetic))
        else:
            model_dir = resolve_model(args.model)
        adapter_dir = args.adapter or str(make_adapter(model_dir, work / "adapter", args.rank))
        rows = []
        for method in tqdm([m for m in methods for _ in range(args.repeat)], desc="merge benchmark", disable=None):
            rows.append(run_child(method, model_dir, adapter_dir, work, args.dtype, args.threads))
            log.info("%s", rows[-1])
    best = {}
    for row in rows:
        if row["method"] not in best or row["seconds"] < best[row["method"]]["seconds"]:
            best[row["method"]] = row
    if args.json:
        for row in best.values():
            print(json.dumps({**row, "dtype": args.dtype, "model": Path(model_dir).name}))
        return 0
    print(f"{Path(model_dir).name}, output {args.dtype}, torch threads {args.threads}, best of {args.repeat}")
    print("| method | merge s (after imports) | imports s | peak RSS MiB | RSS after imports MiB | peak − imports MiB | output MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for method in methods:
        r = best[method]
        print(f"| {method} | {r['seconds']:.1f} | {r['import_seconds']:.1f} | {r['peak_rss_mib']:.0f} | "
              f"{r['import_rss_mib']:.0f} | {r['work_rss_mib']:.0f} | {r.get('output_mib', '')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

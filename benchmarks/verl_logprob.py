#!/usr/bin/env python3
"""Where verl's actor time goes without flash-attn: its two ways of taking token log-probs, side by side.

verl 0.9.1 computes each token's log-prob in ``logprobs_from_logits`` (verl/utils/torch_functional.py). With
flash-attn installed that is flash-attn's Triton cross-entropy; without it (the lent GPU image, and any plain
``pip install verl``) it is ``logprobs_from_logits_v2``, which loops in Python over the rows of the
(tokens x vocab) logits its engine passes: one small kernel per token forward, more backward. The launcher's
USE_FUSED_KERNELS rule turns on verl's fused head instead (``FusedLinearForPPO``, torch backend: 512-token
chunks from the hidden states, no whole logits held). This times both on the real model's head
(forward + backward, the update's cost; forward only, the old-log-prob / reference cost) at the token count of
one GRPO step, and checks that they agree.

    python benchmarks/verl_logprob.py --model-dir train/models/Qwen2.5-Coder-0.5B-Instruct --tokens 26000 --out DIR

Writes ``<out>/verl_logprob.json`` and ``.md``. Needs verl (no trl on the path is needed: only verl's utils load).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger("verl_logprob")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, help="HF model dir: its lm_head (or tied embedding) is the head timed")
    p.add_argument("--tokens", type=int, default=26000,
                   help="tokens per step (default 26,000: 64 replies x ~290 + prompts, the issue-15 shape)")
    p.add_argument("--micro", type=int, default=8192, help="tokens per micro batch (the launcher's token budget)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after one warm-up (median kept)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--out", required=True, help="directory for verl_logprob.json and .md")
    return p


def _head(model_dir: Path, device, dtype):
    """The output projection of MODEL_DIR (hidden x vocab) in bf16, read from its safetensors."""
    from safetensors import safe_open

    cfg = json.loads((model_dir / "config.json").read_text())
    names = ["lm_head.weight", "model.embed_tokens.weight"]
    for f in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            for name in names:
                if name in st.keys():
                    return st.get_tensor(name).to(device=device, dtype=dtype), cfg
    raise SystemExit(f"{model_dir}: no lm_head.weight or model.embed_tokens.weight in its safetensors")


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    import torch
    from verl.utils.experimental.torch_functional import FusedLinearForPPO
    from verl.utils.torch_functional import FLAH_ATTN_CROSS_ENTROPY_LOSS_AVAILABLE, logprobs_from_logits

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    weight, cfg = _head(Path(args.model_dir), device, torch.bfloat16)
    vocab, hidden = weight.shape
    weight.requires_grad_(True)
    torch.manual_seed(0)
    labels = torch.randint(0, vocab, (args.tokens,), device=device)
    hidden_states = (torch.randn(args.tokens, hidden, device=device) * 0.5).to(torch.bfloat16)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def whole_logits(h, y):  # what verl's engine does without the fused head: logits, then logprobs_from_logits
        return logprobs_from_logits(logits=(h @ weight.t()), labels=y)

    fused = FusedLinearForPPO(impl_backend="torch")

    def fused_head(h, y):
        return fused(hidden_states=h, vocab_weights=weight, input_ids=y, temperature=1.0)[0]

    def run(fn, backward: bool) -> float:
        times = []
        for _ in range(args.repeats + 1):
            sync()
            t0 = time.perf_counter()
            for s in range(0, args.tokens, args.micro):
                h = hidden_states[s:s + args.micro].detach().requires_grad_(backward)
                with torch.set_grad_enabled(backward):
                    out = fn(h, labels[s:s + args.micro])
                    if backward:
                        out.float().sum().backward()
            sync()
            times.append(time.perf_counter() - t0)
            weight.grad = None
        return sorted(times[1:])[len(times[1:]) // 2]

    # agreement on one micro batch, before timing
    n = min(args.micro, args.tokens, 2048)
    a = whole_logits(hidden_states[:n], labels[:n]).float()
    b = fused_head(hidden_states[:n], labels[:n]).float()
    max_diff = float((a - b).abs().max())
    rows = []
    for name, fn in (("whole logits + logprobs_from_logits (verl without flash-attn)", whole_logits),
                     ("fused head, torch backend (USE_FUSED_KERNELS=1)", fused_head)):
        row = {"path": name, "fwd_bwd_s": round(run(fn, True), 4), "fwd_s": round(run(fn, False), 4)}
        rows.append(row)
        log.info("%s: forward+backward %.3f s, forward %.3f s", name, row["fwd_bwd_s"], row["fwd_s"])
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    res = {"date": time.strftime("%Y-%m-%d"), "device": dev_name, "torch": torch.__version__,
           "flash_attn_cross_entropy": FLAH_ATTN_CROSS_ENTROPY_LOSS_AVAILABLE, "model": cfg.get("_name_or_path") or
           Path(args.model_dir).name, "vocab": vocab, "hidden": hidden, "tokens": args.tokens, "micro": args.micro,
           "max_abs_logprob_diff_bf16": round(max_diff, 4), "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "verl_logprob.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [f"{res['date']}, {dev_name}, torch {res['torch']}, head {hidden} x {vocab:,} ({Path(args.model_dir).name}), "
             f"{args.tokens:,} tokens in micro batches of {args.micro:,}, bf16; flash-attn cross-entropy: "
             f"{FLAH_ATTN_CROSS_ENTROPY_LOSS_AVAILABLE}; max |log-prob difference| {max_diff:.4f}", "",
             "| path | forward + backward s | forward s |", "|---|---|---|"]
    lines += [f"| {r['path']} | {r['fwd_bwd_s']} | {r['fwd_s']} |" for r in rows]
    (out / "verl_logprob.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

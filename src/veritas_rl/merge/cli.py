"""Command line of ``train/tools/merge_adapter_into_base.py``.

Exit status: 0 merged and verified; 2 bad options, unmergeable adapter or mismatched base (nothing
written); 1 verification failed (nothing written).
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    from veritas_rl.merge.core import DTYPES

    p = argparse.ArgumentParser(
        prog="merge_adapter_into_base.py",
        description="Merge a LoRA adapter (PEFT or verl's lora_adapter/) into its base model and write one full "
        "Hugging Face model: the base's tensors, shards, config, tokenizer and generation config, with "
        "W += scale*B@A streamed tensor by tensor. Verified against the PEFT model by default; the output "
        "directory only appears when the merge and its verification succeeded.",
    )
    p.add_argument("--base_model", required=True, help="base model: local directory, embedded:NAME (see veritas_rl.models) or Hugging Face hub id")
    p.add_argument("--adapter_model", required=True, help="adapter directory (adapter_config.json + adapter_model.*)")
    p.add_argument("--output_dir", required=True, help="where the merged model goes (must not exist, see --overwrite)")
    p.add_argument("--dtype", default="bf16", choices=list(DTYPES),
                   help="dtype of the merged floating-point weights; 'base' keeps each tensor's dtype (default: bf16)")
    p.add_argument("--lora_alpha", type=float, default=None,
                   help="LoRA alpha to use when adapter_config.json has lora_alpha 0 or none (verl without "
                   "lora_train_meta.json); refused if it contradicts a non-zero alpha in the config")
    p.add_argument("--lora_train_meta", default=None,
                   help="verl's lora_train_meta.json to take alpha from (default: looked up in the adapter "
                   "directory and its parent)")
    p.add_argument("--trust_remote_code", action="store_true", help="allow custom modelling code of the base")
    p.add_argument("--no_verify", action="store_true",
                   help="skip the verification (weights bit-checked, logits compared with the PEFT model)")
    p.add_argument("--prompt", action="append", default=None,
                   help="a verification prompt (repeatable; default: three built-in prompts)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output_dir (only after success)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from veritas_rl.cli import setup_logging

    setup_logging(args.verbose)
    from veritas_rl.merge import MergeError, VerificationError, merge_adapter

    try:
        result = merge_adapter(
            args.base_model,
            args.adapter_model,
            args.output_dir,
            dtype=args.dtype,
            lora_alpha=args.lora_alpha,
            lora_train_meta=args.lora_train_meta,
            trust_remote_code=args.trust_remote_code,
            verify=not args.no_verify,
            overwrite=args.overwrite,
            prompts=tuple(args.prompt) if args.prompt else None,
        )
    except MergeError as err:
        log.error("%s", err)
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except VerificationError as err:
        log.error("merge NOT written to %s: %s", args.output_dir, str(err).splitlines()[0])
        return 1
    if result.verification is None:
        log.warning("verification skipped (--no_verify)")
    log.info("merged model written to %s in %.1f s", result.output_dir, result.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write a real verl 0.9.1 FSDP checkpoint of a LoRA model on CPU (run as a script, in its own process).

verl's own code does the saving: a single-process gloo group, the model wrapped with verl's
``apply_fsdp2`` on a ``("fsdp",)`` device mesh exactly as verl's FSDP engine builds it, and
``verl.utils.checkpoint.fsdp_checkpoint_manager.FSDPCheckpointManager.save_checkpoint``. The
``latest_checkpointed_iteration.txt`` tracker (written by verl's trainers, not by the manager) is
written the way ``ray_trainer`` / ``CheckpointHandler`` write it.

    python tests/merge/verl_checkpoint_writer.py --base BASE --adapter ADAPTER --root DIR --step 3 --layout rl
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="base model dir")
    p.add_argument("--adapter", required=True, help="trained PEFT adapter dir (loaded as the trainable LoRA)")
    p.add_argument("--root", required=True, help="experiment dir (trainer.default_local_dir)")
    p.add_argument("--step", type=int, default=1, help="global step")
    p.add_argument("--layout", choices=("rl", "sft"), default="rl",
                   help="rl: global_step_N/actor/ (ray_trainer); sft: global_step_N/ (sft_trainer)")
    p.add_argument("--lora_only", action="store_true", help="checkpoint.save_lora_only: only the LoRA weights")
    return p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    import torch
    import torch.distributed as dist
    from omegaconf import DictConfig
    from peft import PeftModel
    from torch.distributed.device_mesh import init_device_mesh
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager
    from verl.utils.fsdp_utils import apply_fsdp2

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", mesh_shape=(1,), mesh_dim_names=["fsdp"])
        tokenizer = AutoTokenizer.from_pretrained(args.base)
        model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32)
        model = PeftModel.from_pretrained(model, args.adapter, is_trainable=True)
        apply_fsdp2(model, {"mesh": mesh}, {})
        manager = FSDPCheckpointManager(
            model, processing_class=tokenizer,
            checkpoint_config=DictConfig({"save_contents": ["model"], "load_contents": ["model"], "save_lora_only": args.lora_only}),
        )
        step_dir = os.path.join(args.root, f"global_step_{args.step}")
        local_path = os.path.join(step_dir, "actor") if args.layout == "rl" else step_dir
        manager.save_checkpoint(local_path, global_step=args.step)
        with open(os.path.join(args.root, "latest_checkpointed_iteration.txt"), "w") as fh:
            fh.write(str(args.step))
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Merge a LoRA adapter into its base model, verified against PEFT (``--help``; docs/training.md).

    python train/tools/merge_adapter_into_base.py --base_model BASE --adapter_model ADAPTER --output_dir OUT
"""

import sys

from veritas_rl.merge.cli import main

if __name__ == "__main__":
    sys.exit(main())

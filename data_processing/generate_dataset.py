#!/usr/bin/env python
"""Env tasks → RL or SFT parquet for verl (see docs/dataset_generation.md; logic in veritas_rl.data.generate)."""

import sys

from veritas_rl.data.generate import main

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""SWE-synth trajectories → SFT parquet (see docs/dataset_generation.md; logic in veritas_rl.data.swe_synth)."""

import sys

from veritas_rl.data.swe_synth import main

if __name__ == "__main__":
    sys.exit(main())

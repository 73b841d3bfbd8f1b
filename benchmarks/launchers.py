#!/usr/bin/env python
"""How long the verl launchers take to print and to validate their command (no GPU).

    python benchmarks/launchers.py                  # every launcher, DRY_RUN=print and DRY_RUN=1, 3 repeats
    python benchmarks/launchers.py --repeat 1 --modes 1

For each launcher in ``train/scripts/`` and each mode the script runs the launcher in a fresh process
with the embedded SmolLM2-135M-Instruct as the model, the default variables, ``GPU_COUNT=2`` and an
absent ``.env``, and reports the median wall time:

- ``print``: the bash part only (variables, checks, run names, the command);
- ``1``: the same plus ``python -m veritas_rl.backends.verl.validate``: Hydra composition of verl's config,
  verl's ``validate_config`` and dataclass conversions (this imports verl and torch: most of the time).

The SFT launcher gets one small parquet file with a ``messages`` column.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("benchmarks.launchers")

REPO = Path(__file__).resolve().parents[1]
LAUNCHERS = ("lgc-v2-RL-GRPO-trainer.sh", "openspiel-ppo-trainer.sh", "swe-synth-ppo-trainer.sh", "lgc-v2-SFT-trainer.sh")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per launcher and mode (median reported; default 3)")
    parser.add_argument("--modes", default="print,1", help="DRY_RUN modes, comma-separated (default: print,1)")
    parser.add_argument("--launchers", default=",".join(LAUNCHERS), help="launchers, comma-separated (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from tqdm import tqdm

    import pandas as pd

    from veritas_rl.models import embedded_model_dir

    model = embedded_model_dir()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    launchers = [name.strip() for name in args.launchers.split(",") if name.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        chat = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "blue"}]
        sft_file = Path(tmp) / "sft.parquet"
        pd.DataFrame({"messages": [chat] * 4}).to_parquet(sft_file)
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHON": sys.executable,
            "MODEL_PATH": str(model),
            "GPU_COUNT": "2",
            "ENV_FILE": str(Path(tmp) / "absent.env"),
            "SFT_TRAIN_FILES": str(sft_file),
            "SFT_VAL_FILES": "none",
            "SFT_TRAIN_BATCH_SIZE": "4",  # 4 rows: one batch (the launcher refuses zero steps per epoch)
        }
        rows = []
        jobs = [(name, mode) for name in launchers for mode in modes]
        for name, mode in tqdm(jobs, desc="launchers", unit="case"):
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                proc = subprocess.run(
                    ["bash", str(REPO / "train" / "scripts" / name)],
                    env={**env, "DRY_RUN": mode},
                    capture_output=True,
                    text=True,
                )
                times.append(time.perf_counter() - start)
                if proc.returncode != 0:
                    log.error("%s DRY_RUN=%s failed:\n%s", name, mode, proc.stderr[-2000:])
                    return 1
            rows.append((name, mode, statistics.median(times), min(times)))
    print("| launcher | DRY_RUN | median s | min s |")
    print("|---|---|---:|---:|")
    for name, mode, median, best in rows:
        print(f"| `{name}` | `{mode}` | {median:.2f} | {best:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

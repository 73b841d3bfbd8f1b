"""benchmarks/gpu_diag/sitecustomize.py wraps verl 0.9.1's real FSDP engine once it is imported.

The diagnostic (``benchmarks/verl_gpu.py --diag-lora``) found the empty LoRA sync on the H100; if verl renames
what it wraps, the wrapping must fail here rather than log nothing on the next GPU run."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_sitecustomize_wraps_the_fsdp_engine_weight_export():
    code = ("import verl.workers.engine.fsdp.transformer_impl as m; "
            "f = m.FSDPEngine.get_per_tensor_param; print(f.__module__, f.__name__)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "benchmarks" / "gpu_diag"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["sitecustomize", "get_per_tensor_param"]
    assert "patch failed" not in proc.stderr
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert plain.stdout.split() == ["verl.workers.engine.fsdp.transformer_impl", "get_per_tensor_param"]

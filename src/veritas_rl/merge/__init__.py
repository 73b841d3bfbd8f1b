"""Merge LoRA adapters into their base model: streamed, PEFT-exact, verified.

``merge_adapter(base, adapter, output_dir)`` is the entry point (``train/tools/merge_adapter_into_base.py``
and ``train/scripts/merge.sh`` call it); see docs/training.md.
"""

from veritas_rl.merge.adapter import MergeError, load_adapter
from veritas_rl.merge.core import DTYPES, MergeResult, merge_adapter
from veritas_rl.merge.verify import LOGIT_BOUNDS, VerificationError, VerifyReport, verify_merge

__all__ = [
    "DTYPES",
    "LOGIT_BOUNDS",
    "MergeError",
    "MergeResult",
    "VerificationError",
    "VerifyReport",
    "load_adapter",
    "merge_adapter",
    "verify_merge",
]

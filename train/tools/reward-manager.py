"""verl entry file for ``reward.custom_reward_function.path`` (name: compute_score or compute_lgc_v2_score).

The implementation lives in the package: ``veritas_rl.backends.verl.plugins`` (see docs/training.md).
"""

from veritas_rl.backends.verl import compute_lgc_v2_score, compute_score

__all__ = ["compute_score", "compute_lgc_v2_score"]

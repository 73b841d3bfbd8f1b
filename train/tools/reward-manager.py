"""verl entry file for ``reward.custom_reward_function.path`` (name: compute_score or compute_lgc_v2_score).

The implementation lives in the package: ``veritas_rl.integrations.verl`` (see docs/training.md).
"""

from veritas_rl.integrations.verl import compute_lgc_v2_score, compute_score

__all__ = ["compute_score", "compute_lgc_v2_score"]

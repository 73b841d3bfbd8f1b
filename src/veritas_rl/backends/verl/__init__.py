"""verl 0.9.1 backend: the plug-ins verl loads and the helpers the bash launchers call.

- :mod:`.plugins` — ``DynamicEnvDataset`` (aliases ``LGCV2DynamicDataset``, ``OpenSpielDataset``) and
  ``compute_score`` (alias ``compute_lgc_v2_score``), re-exported here so that
  ``pkg://veritas_rl.backends.verl`` works as ``data.custom_cls.path`` and
  ``reward.custom_reward_function.path``;
- :mod:`.game_loop` (verl agent loop ``veritas_game``, registered by ``agent_loops.yaml``) and :mod:`.episodes`
  — whole OpenSpiel games as trajectories (``data.custom_cls.config.episode=game``), scored by replay;
- :mod:`.validate` — ``python -m veritas_rl.backends.verl.validate {ppo,sft} -- OVERRIDES`` composes
  verl's own Hydra config with the launcher's overrides and checks it with verl's validators
  (``DRY_RUN=1``);
- :mod:`.sft_steps` — the SFT launcher's batch/step arithmetic checks;
- :mod:`.sft_data` — maps prompt/response columns to the ``messages`` column verl's SFT trainer reads.

Importing this package needs neither torch nor verl: the dataset classes are built on first access.
"""

from typing import Any

from veritas_rl.backends.verl import plugins
from veritas_rl.backends.verl.plugins import compute_lgc_v2_score, compute_score

__all__ = ["DynamicEnvDataset", "LGCV2DynamicDataset", "OpenSpielDataset", "compute_lgc_v2_score", "compute_score"]


def __getattr__(name: str) -> Any:
    # PEP 562, delegating to plugins (which builds the verl dataset classes on first access)
    return getattr(plugins, name)

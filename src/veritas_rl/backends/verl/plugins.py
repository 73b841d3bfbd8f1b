"""verl 0.9.1 plug-ins: a dataset class that serves env tasks on the fly, and ``compute_score``.

Both are thin adapters over the environment contract (:mod:`veritas_rl.envs`); verl loads them by
path with its own loader (``load_extern_object``), either through the entry files
``train/tools/dataset-manager.py`` / ``train/tools/reward-manager.py`` or as a package path::

    data.custom_cls.path=pkg://veritas_rl.backends.verl  data.custom_cls.name=DynamicEnvDataset
    reward.custom_reward_function.path=pkg://veritas_rl.backends.verl
    reward.custom_reward_function.name=compute_score

**Dataset.** :class:`DynamicEnvDataset` takes verl's constructor ``(data_files, tokenizer, processor,
config, max_samples)``. Its settings live under ``data.custom_cls.config`` (see
:class:`DatasetSettings`); the split comes from the data files verl hands over:
``data.train_files=[train]`` and ``data.val_files=[val]`` (the literal words). Item ``i`` of a split is
a pure function of ``(settings, split, i)``: the split position (val ``[0, val_size)``, train
``[val_size, val_size + train_size)``) goes through a seeded bijection of the env's dense index space
(:class:`IndexPermutation`), so train and val are disjoint by construction and dataloader workers and
resumed runs see the same stream.

**Reward.** :func:`compute_score` routes by ``extra_info["env"]`` (config in
``extra_info["env_config"]``), rebuilds the task from ``extra_info["task"]`` (serialised),
``extra_info["task_id"]`` or, as a last resort, the ground truth, and scores with the env's own scorer
(one env instance per config per process). It never raises on model output.

The implementations live in :mod:`.dataset` and :mod:`.reward`; this module is the one path users
and the ``train/tools`` entry files name. The dataset classes subclass verl's ``RLHFDataset`` and are
created on first access (PEP 562 module ``__getattr__``), so importing :func:`compute_score` needs
neither torch nor verl.
"""

from __future__ import annotations

from typing import Any

from veritas_rl.backends.verl import dataset
from veritas_rl.backends.verl.dataset import (
    SPLITS,
    DatasetSettings,
    IndexPermutation,
    parse_settings,
    parse_split,
    verl_extra_info,
)
from veritas_rl.backends.verl.reward import compute_lgc_v2_score, compute_score

__all__ = [
    "DatasetSettings",
    "DynamicEnvDataset",
    "IndexPermutation",
    "LGCV2DynamicDataset",
    "OpenSpielDataset",
    "SPLITS",
    "compute_lgc_v2_score",
    "compute_score",
    "parse_settings",
    "parse_split",
    "verl_extra_info",
]


def __getattr__(name: str) -> Any:
    # PEP 562: the verl dataset classes are built (once) by the dataset module on first access
    return getattr(dataset, name)

"""verl entry file for ``data.custom_cls.path`` (name: DynamicEnvDataset, LGCV2DynamicDataset, OpenSpielDataset).

The implementation lives in the package: ``veritas_rl.backends.verl.plugins`` (see docs/training.md).
"""

from veritas_rl.backends.verl import DynamicEnvDataset, LGCV2DynamicDataset, OpenSpielDataset

__all__ = ["DynamicEnvDataset", "LGCV2DynamicDataset", "OpenSpielDataset"]

"""verl entry file for ``data.custom_cls.path`` (name: DynamicEnvDataset, LGCV2DynamicDataset, OpenSpielDataset).

The implementation lives in the package: ``veritas_rl.integrations.verl`` (see docs/training.md).
"""

from veritas_rl.integrations.verl import DynamicEnvDataset, LGCV2DynamicDataset, OpenSpielDataset

__all__ = ["DynamicEnvDataset", "LGCV2DynamicDataset", "OpenSpielDataset"]

"""Shared helpers for tests that drive verl 0.9.1's own code (config composition, datasets, rewards).

Everything here goes through verl's real entry points, never a re-implementation:

* :func:`compose_ppo_config` — Hydra compose on verl's own ``verl/trainer/config/ppo_trainer.yaml``,
  exactly what ``python -m verl.trainer.main_ppo <overrides>`` builds (same config dir and name as
  ``@hydra.main(config_path="config", config_name="ppo_trainer")`` in ``verl/trainer/main_ppo.py``).
* :func:`compose_ppo_config_cli` — the same through a subprocess running
  ``python -m verl.trainer.main_ppo <overrides> --cfg job`` (slow: ~10 s; use once per test module).
* :func:`build_verl_dataset` — ``verl.trainer.ppo.utils.create_rl_dataset`` (which resolves
  ``data.custom_cls.path/name`` with verl's ``load_extern_object``).
* :func:`verl_collate` — ``verl.utils.dataset.rl_dataset.collate_fn``.
* :func:`load_verl_reward_fn` — ``verl.trainer.ppo.reward.get_custom_reward_fn`` (what verl's reward loop
  calls for ``reward.custom_reward_function.path/name``).
* :func:`load_verl_reward_manager` + :func:`score_with_reward_manager` — verl's ``load_reward_manager``
  (the ``naive`` reward manager of the reward loop) and its ``run_single`` on a real ``DataProto`` built
  from tokenized prompt and completion.

Typical use::

    cfg = compose_ppo_config(plugin_overrides(env="lgc-v2") + ["+data.custom_cls.config.seed=3"])
    ds = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    batch = verl_collate([ds[0], ds[1]])
    reward_fn = load_verl_reward_fn(cfg)
    out = reward_fn(data_source=..., solution_str=..., ground_truth=..., extra_info=...)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]

#: the thin entry files that verl loads by path (``data.custom_cls.path`` / ``reward.custom_reward_function.path``)
DATASET_MANAGER = str(REPO_ROOT / "train" / "tools" / "dataset-manager.py")
REWARD_MANAGER = str(REPO_ROOT / "train" / "tools" / "reward-manager.py")
#: the same objects loaded as an installed package (verl's ``load_module`` understands ``pkg://``)
PKG_PATH = "pkg://veritas_rl.backends.verl"

DATASET_CLASS = "DynamicEnvDataset"
REWARD_FUNCTION = "compute_score"


def verl_config_dir() -> str:
    """``verl/trainer/config`` of the installed verl (the directory ``main_ppo`` composes from)."""
    import importlib.util

    spec = importlib.util.find_spec("verl")  # no import of verl.trainer.main_ppo (it pulls in ray)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("verl is not installed: pip install verl==0.9.1")
    return str(Path(list(spec.submodule_search_locations)[0]) / "trainer" / "config")


def plugin_overrides(
    env: str | None = None,
    *,
    pkg: bool = False,
    dataset_class: str = DATASET_CLASS,
    reward_function: str = REWARD_FUNCTION,
    extra: Iterable[str] = (),
) -> list[str]:
    """The standard Hydra overrides that plug our dataset and reward into ``main_ppo``.

    ``env`` adds ``+data.custom_cls.config.env=<env>``; ``pkg=True`` uses ``pkg://veritas_rl.backends.verl``
    instead of the ``train/tools/*.py`` entry files; ``extra`` is appended last (so it wins).
    """
    dataset_path = PKG_PATH if pkg else DATASET_MANAGER
    reward_path = PKG_PATH if pkg else REWARD_MANAGER
    overrides = [
        "data.train_files=[train]",
        "data.val_files=[val]",
        f"data.custom_cls.path={dataset_path}",
        f"data.custom_cls.name={dataset_class}",
        f"reward.custom_reward_function.path={reward_path}",
        f"reward.custom_reward_function.name={reward_function}",
    ]
    if env is not None:
        overrides.append(f"+data.custom_cls.config.env={env}")
    overrides.extend(extra)
    return overrides


def compose_ppo_config(overrides: Sequence[str] = ()) -> Any:
    """Compose verl's PPO config (``ppo_trainer``) with ``overrides`` through Hydra, like ``main_ppo``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=verl_config_dir(), version_base=None):
        return compose(config_name="ppo_trainer", overrides=list(overrides))


def compose_ppo_config_cli(overrides: Sequence[str] = (), *, timeout: float = 180) -> Any:
    """Run ``python -m verl.trainer.main_ppo <overrides> --cfg job`` and parse the printed config."""
    from omegaconf import OmegaConf

    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", *overrides, "--cfg", "job"],
        capture_output=True, text=True, timeout=timeout, cwd=str(REPO_ROOT), env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"main_ppo --cfg job failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return OmegaConf.create(proc.stdout)


def build_verl_dataset(cfg: Any, split: str, tokenizer: Any, processor: Any = None) -> Any:
    """Build the train or val dataset exactly as verl's trainer does (``create_rl_dataset``)."""
    from verl.trainer.ppo.utils import create_rl_dataset

    if split not in ("train", "val"):
        raise ValueError(f"split={split!r}; expected 'train' or 'val'")
    files = cfg.data.train_files if split == "train" else cfg.data.val_files
    max_samples = cfg.data.get(f"{split}_max_samples", -1)
    return create_rl_dataset(files, cfg.data, tokenizer, processor, is_train=split == "train", max_samples=max_samples)


def verl_collate(items: Sequence[dict]) -> dict:
    """Batch dataset items with verl's own ``collate_fn`` (tensors stacked, the rest object arrays)."""
    from verl.utils.dataset.rl_dataset import collate_fn

    return collate_fn(list(items))


def load_verl_reward_fn(cfg: Any) -> Any:
    """The reward function verl loads for ``reward.custom_reward_function.path/name`` (with its kwargs)."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    fn = get_custom_reward_fn(cfg)
    if fn is None:
        raise ValueError("reward.custom_reward_function.path is not set in the composed config")
    return fn


def load_verl_reward_manager(cfg: Any, tokenizer: Any) -> Any:
    """verl's reward-loop manager (``reward.reward_manager.name``, ``naive`` by default) with our reward."""
    from verl.trainer.ppo.reward import load_reward_manager

    return load_reward_manager(cfg, tokenizer)


def score_with_reward_manager(manager: Any, tokenizer: Any, item: dict, completion: str) -> dict:
    """Score ``completion`` for dataset ``item`` through the manager's ``run_single`` on a real DataProto.

    The completion is tokenized and decoded back by verl (``skip_special_tokens=True``), as in training.
    Returns verl's result: ``{"reward_score": float, "reward_extra_info": dict}``.
    """
    import copy

    import numpy as np
    import torch
    from verl import DataProto

    prompt_ids = tokenizer.apply_chat_template(list(item["raw_prompt"]), add_generation_prompt=True, tokenize=True)
    if hasattr(prompt_ids, "keys"):  # transformers 5 may return a BatchEncoding
        prompt_ids = prompt_ids["input_ids"]
    response_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompts = torch.tensor([prompt_ids], dtype=torch.long)
    responses = torch.tensor([response_ids], dtype=torch.long)
    input_ids = torch.cat([prompts, responses], dim=1)
    data = DataProto.from_dict(
        tensors={
            "prompts": prompts,
            "responses": responses,
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
        },
        non_tensors={
            "data_source": np.array([item["data_source"]], dtype=object),
            "reward_model": np.array([copy.deepcopy(item["reward_model"])], dtype=object),
            "extra_info": np.array([copy.deepcopy(item["extra_info"])], dtype=object),
        },
    )
    return manager.loop.run_until_complete(manager.run_single(data))

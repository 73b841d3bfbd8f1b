"""verl 0.9.1 dataset plug-in: :class:`DynamicEnvDataset` serves env tasks on the fly.

It takes verl's constructor ``(data_files, tokenizer, processor, config, max_samples)``. Its settings
live under ``data.custom_cls.config`` (see :class:`DatasetSettings`); the split comes from the data
files verl hands over: ``data.train_files=[train]`` and ``data.val_files=[val]`` (the literal words).
Item ``i`` of a split is a pure function of ``(settings, split, i)``: the split position (val
``[0, val_size)``, train ``[val_size, val_size + train_size)``) goes through a seeded bijection of the
env's dense index space (:class:`IndexPermutation`), so train and val are disjoint by construction and
dataloader workers and resumed runs see the same stream.

The classes subclass verl's ``RLHFDataset`` and are created on first access (PEP 562 module
``__getattr__``), so importing this module needs neither torch nor verl.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

from veritas_rl.backends.verl.episodes import EpisodeSettings, game_item, parse_episode_settings
from veritas_rl.envs import Task, make_cached, resolve_name

logger = logging.getLogger(__name__)

__all__ = [
    "DatasetSettings",
    "DynamicEnvDataset",
    "IndexPermutation",
    "LGCV2DynamicDataset",
    "OpenSpielDataset",
    "SPLITS",
    "parse_settings",
    "parse_split",
    "plain",
    "verl_extra_info",
]

SPLITS = ("train", "val")
DEFAULT_TRAIN_SIZE = 10_000_000
DEFAULT_VAL_SIZE = 256


# -- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSettings:
    """``data.custom_cls.config`` of :class:`DynamicEnvDataset` (every key optional)."""

    env: str = field(default="lgc-v2", metadata={"help": "registered env name or alias"})
    adapter_config: dict = field(default_factory=dict, metadata={"help": "the env's own config (make(env, **it))"})
    task_types: tuple[str, ...] | None = field(
        default=None, metadata={"help": "shortcut for adapter_config.task_types (lgc-v2)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the index bijection (which tasks, in which order)"})
    train_size: int = field(default=DEFAULT_TRAIN_SIZE, metadata={"help": "train length (capped by env tasks)"})
    val_size: int | None = field(
        default=None,
        metadata={"help": f"val length; default {DEFAULT_VAL_SIZE}, capped at half the env's tasks"},
    )
    curriculum: Any = field(
        default=None,
        metadata={"help": "stages and failure replay of the train split (backends/verl/curriculum.py)"},
    )
    group_by: str | None = field(
        default=None,
        metadata={
            "help": "a Task.extra field (lgc-v2: task_type, openspiel: case, reasoning-gym: dataset) appended "
            "to data_source as '<env>/<value>', so verl reports validation metrics per group"
        },
    )
    episode: str = field(default="move", metadata={"help": "move (one position per item) | game (one whole game, openspiel)"})
    opponent: str | None = field(default=None, metadata={"help": "episode=game: random | first_legal | mcts:N"})
    max_turns: int | None = field(default=None, metadata={"help": "episode=game: model turns per game (default 50)"})
    legal_move_bonus: float | None = field(default=None, metadata={"help": "episode=game: reward per legal move (default 0)"})

    @property
    def episodes(self) -> EpisodeSettings:
        """The episode settings (validated by :func:`parse_settings`)."""
        return parse_episode_settings(dataclasses.asdict(self), resolve_name(self.env))

    def env_config(self) -> dict[str, Any]:
        """The config passed to ``make(env, **...)``: ``adapter_config`` with ``task_types`` merged in."""
        config = dict(self.adapter_config)
        if self.task_types is not None:
            given = config.get("task_types")
            if given is not None and _as_list(given) != list(self.task_types):
                raise ValueError(
                    f"data.custom_cls.config.task_types={list(self.task_types)} conflicts with "
                    f"data.custom_cls.config.adapter_config.task_types={_as_list(given)}; give one of them"
                )
            config["task_types"] = list(self.task_types)
        return config


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def plain(value: Any) -> Any:
    """OmegaConf containers (what Hydra overrides produce) to plain Python, recursively."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf comes with verl
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _as_int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"data.custom_cls.config.{key}: expected an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"data.custom_cls.config.{key}: expected an integer, got {value!r}") from None
    if number != value and not isinstance(value, str):
        raise ValueError(f"data.custom_cls.config.{key}: expected an integer, got {value!r}")
    if number < minimum:
        raise ValueError(f"data.custom_cls.config.{key}={number} must be >= {minimum}")
    return number


def parse_settings(raw: Mapping[str, Any] | None, *, default_env: str = "lgc-v2") -> DatasetSettings:
    """Validate ``data.custom_cls.config``; unknown keys raise ``ValueError`` naming the valid ones."""
    values = plain(raw) or {}
    if not isinstance(values, Mapping):
        raise ValueError(f"data.custom_cls.config must be a mapping, got {values!r}")
    valid = [f.name for f in dataclasses.fields(DatasetSettings)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown key(s) in data.custom_cls.config: {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(sorted(valid))}"
        )
    env = values.get("env")
    env = default_env if env is None else str(env)
    resolve_name(env)  # unknown env -> ValueError listing the known ones
    adapter_config = values.get("adapter_config")
    adapter_config = {} if adapter_config is None else adapter_config
    if not isinstance(adapter_config, Mapping):
        raise ValueError(f"data.custom_cls.config.adapter_config must be a mapping, got {adapter_config!r}")
    task_types = values.get("task_types")
    if task_types is not None:
        task_types = tuple(str(t) for t in _as_list(task_types))
        if not task_types:
            raise ValueError("data.custom_cls.config.task_types is empty; give at least one task type or leave it out")
    val_size = values.get("val_size")
    group_by = values.get("group_by")
    if group_by is not None and (not isinstance(group_by, str) or not group_by.strip()):
        raise ValueError(f"data.custom_cls.config.group_by must be the name of a Task.extra field, got {group_by!r}")
    episodes = parse_episode_settings(values, resolve_name(env))
    return DatasetSettings(
        env=env,
        adapter_config=dict(adapter_config),
        task_types=task_types,
        seed=_as_int("seed", values.get("seed", 0), minimum=-(2**63)),
        train_size=_as_int("train_size", values.get("train_size", DEFAULT_TRAIN_SIZE), minimum=1),
        val_size=None if val_size is None else _as_int("val_size", val_size, minimum=1),
        group_by=None if group_by is None else group_by.strip(),
        curriculum=_curriculum_settings(values.get("curriculum"), env, adapter_config, task_types),
        **({} if episodes.episode == "move" else dataclasses.asdict(episodes)),
    )


def _curriculum_settings(raw: Any, env: str, adapter_config: Mapping[str, Any], task_types):
    """``data.custom_cls.config.curriculum`` validated, each stage's env config built (a bad one names the stage)."""
    from veritas_rl.backends.verl.curriculum import parse_curriculum_settings
    from veritas_rl.curriculum import stage_configs

    settings = parse_curriculum_settings(plain(raw))
    if settings is not None:
        base = {**dict(adapter_config), **({"task_types": list(task_types)} if task_types is not None else {})}
        stage_configs(settings.spec(), env, base)
    return settings


def parse_split(data_files: Any) -> str:
    """``[train]`` / ``train`` -> ``"train"``, ``[val]`` / ``val`` -> ``"val"``; anything else is an error."""
    files = plain(data_files)
    items = [files] if isinstance(files, str) else list(files) if isinstance(files, (list, tuple)) else None
    if items is not None and len(items) == 1 and str(items[0]).strip() in SPLITS:
        return str(items[0]).strip()
    raise ValueError(
        f"DynamicEnvDataset builds tasks on the fly and reads its split from the data files verl passes: "
        f"set data.train_files=[train] and data.val_files=[val] (got {data_files!r})"
    )


def verl_extra_info(task: Task, env_name: str, env_config_json: str, index: int, split: str) -> dict[str, Any]:
    """The ``extra_info`` of a verl row for ``task``: what :func:`compute_score` routes and scores by.

    Shared by :class:`DynamicEnvDataset` and the static parquet generator (``veritas_rl.data.generate``).
    JSON strings (not nested structs) for the config and the task: parquet needs one schema per column,
    and tasks of different types carry different ``extra`` keys.
    """
    return {
        "env": env_name,
        "env_config": env_config_json,
        "task_id": int(task.task_id),
        "task": json.dumps(task.to_dict(), sort_keys=True),
        "index": int(index),
        "split": split,
    }


# -- index bijection -------------------------------------------------------------------------


class IndexPermutation:
    """A seeded bijection of ``[0, n)`` (balanced Feistel network with cycle walking).

    Works for any ``n`` >= 1, including astronomically large index spaces, in O(1) memory; the same
    ``(n, seed)`` gives the same permutation in every process (blake2b rounds, no Python ``hash``).
    """

    ROUNDS = 4

    def __init__(self, n: int, seed: int = 0):
        if n < 1:
            raise ValueError(f"IndexPermutation needs n >= 1, got {n}")
        self.n = int(n)
        self.seed = int(seed)
        bits = max(2, (self.n - 1).bit_length())
        bits += bits % 2
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        self._key = hashlib.blake2b(f"veritas-rl/verl-split/{self.n}/{self.seed}".encode(), digest_size=16).digest()

    def _round(self, value: int, i: int) -> int:
        digest = hashlib.blake2b(f"{i}:{value}".encode(), key=self._key, digest_size=16).digest()
        return int.from_bytes(digest, "little") & self._mask

    def _encrypt(self, x: int) -> int:
        left, right = x >> self._half, x & self._mask
        for i in range(self.ROUNDS):
            left, right = right, left ^ self._round(right, i)
        return (left << self._half) | right

    def __call__(self, index: int) -> int:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} outside [0, {self.n})")
        y = self._encrypt(index)
        while y >= self.n:  # cycle walking: stays a bijection of [0, n)
            y = self._encrypt(y)
        return y

    def __len__(self) -> int:
        return self.n


# -- dataset ---------------------------------------------------------------------------------


class _DynamicEnvDatasetImpl:
    """Env tasks served on the fly to verl's trainer and agent loop (no parquet).

    ``data_files`` must be ``[train]`` or ``[val]``; settings come from ``config.custom_cls.config``.
    Each item holds what verl 0.9.1 reads: ``raw_prompt`` (chat messages for the agent loop),
    ``data_source`` (the env name, or ``<env>/<group>`` with ``group_by``: validation metrics are grouped
    by it), ``reward_model.ground_truth``,
    ``extra_info`` (``env``, ``env_config`` as JSON, ``task_id``, ``task`` as JSON, ``index``, ``split``),
    ``index``, ``tools_kwargs``, ``interaction_kwargs`` and ``dummy_tensor``.
    """

    #: env used when ``data.custom_cls.config.env`` is not given
    default_env = "lgc-v2"

    def __init__(self, data_files, tokenizer, processor=None, config=None, max_samples: int = -1):
        # RLHFDataset.__init__ is deliberately not called: it reads parquet files.
        self.tokenizer = tokenizer
        self.processor = processor
        self.config = config
        self.split_name = parse_split(data_files)
        self.data_files = [self.split_name]
        custom = config.get("custom_cls", None) if config is not None else None
        raw = custom.get("config", None) if custom is not None else None
        self.settings = parse_settings(raw, default_env=self.default_env)
        self.env_name = resolve_name(self.settings.env)
        self.env_config = self.settings.env_config()
        self._env_config_json = json.dumps(self.env_config, sort_keys=True)
        env = self.env  # build (and validate) the env now: bad config fails at construction
        self.num_env_tasks = int(env.num_tasks)
        self.val_size = self._resolve_val_size(self.num_env_tasks)
        self.train_size = min(self.settings.train_size, self.num_env_tasks - self.val_size)
        if self.train_size < 1:
            raise ValueError(
                f"env {self.env_name!r} has {self.num_env_tasks} tasks and data.custom_cls.config.val_size="
                f"{self.val_size} takes them all: lower val_size so training keeps some"
            )
        self.offset = 0 if self.split_name == "val" else self.val_size
        length = self.val_size if self.split_name == "val" else self.train_size
        self.max_samples = int(max_samples) if max_samples is not None else -1
        if self.max_samples > 0:
            length = min(length, self.max_samples)
        self.length = length
        self.permutation = IndexPermutation(self.num_env_tasks, self.settings.seed)
        self.curriculum = None  # stages / failure replay: train split only, validation is never filtered
        if self.settings.curriculum is not None and self.split_name == "train":
            from veritas_rl.backends.verl.curriculum import DatasetCurriculum

            self.curriculum = DatasetCurriculum(self, config)
        self.episodes = self.settings.episodes
        if self.settings.group_by is not None:
            extra = self.task(0).extra
            if self.settings.group_by not in extra:
                raise ValueError(
                    f"data.custom_cls.config.group_by={self.settings.group_by!r} is not a field of env "
                    f"{self.env_name!r}'s tasks; choose from: {', '.join(sorted(extra)) or '(none)'}"
                )
        if self.split_name == "train" and self.length > 1_000_000 and config is not None and config.get("shuffle"):
            logger.warning(
                "data.shuffle=True on %d items: verl's sampler builds randperm(%d) each epoch; the dataset is "
                "already a seeded shuffle, so data.shuffle=False saves that memory",
                self.length, self.length,
            )
        logger.info(
            "DynamicEnvDataset(%s): env=%s config=%s seed=%d, %d items of %d env tasks",
            self.split_name, self.env_name, self._env_config_json, self.settings.seed, self.length, self.num_env_tasks,
        )

    def _resolve_val_size(self, num_tasks: int) -> int:
        if self.settings.val_size is not None:
            if self.settings.val_size >= num_tasks:
                raise ValueError(
                    f"data.custom_cls.config.val_size={self.settings.val_size} must be smaller than the "
                    f"{num_tasks} tasks of env {self.env_name!r} (training needs the rest)"
                )
            return self.settings.val_size
        size = min(DEFAULT_VAL_SIZE, num_tasks // 2)
        if size < DEFAULT_VAL_SIZE:
            logger.warning(
                "env %r has only %d tasks: validation takes %d (half); set data.custom_cls.config.val_size to choose",
                self.env_name, num_tasks, size,
            )
        if size < 1:
            raise ValueError(f"env {self.env_name!r} has {num_tasks} task(s): too few for a train/val split")
        return size

    @property
    def env(self):
        """This process's env instance (built once per process and config, rebuilt after unpickling)."""
        env = self.__dict__.get("_env")
        if env is None:
            env = self.__dict__["_env"] = make_cached(self.env_name, self.env_config)
        return env

    def __len__(self) -> int:
        return self.length

    def task_id(self, index: int) -> int:
        """The env task id of item ``index`` of this split."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} outside [0, {self.length}) of the {self.split_name} split")
        position = self.offset + index
        if not getattr(self.env, "serves_in_order", False):  # a mix's dense order is its weight schedule
            position = self.permutation(position)
        return int(self.env.task_id_at(position))

    def task(self, index: int) -> Task:
        return self.env.task(self.task_id(index))

    def data_source(self, task: Task) -> str:
        """``<env>``, or ``<env>/<task.extra[group_by]>`` when ``group_by`` is set."""
        if self.settings.group_by is None:
            return self.env_name
        return f"{self.env_name}/{task.extra[self.settings.group_by]}"

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        index = int(index)
        if self.curriculum is not None:
            task, config_json = self.curriculum.task(index)
        else:
            task, config_json = self.task(index), self._env_config_json
        extra_info = verl_extra_info(task, self.env_name, config_json, index, self.split_name)
        if self.curriculum is not None:
            extra_info["curriculum"] = self.curriculum.endpoint(index)
        item = {
            "raw_prompt": [dict(m) for m in task.prompt],
            "data_source": self.data_source(task),
            "reward_model": {"style": "rule", "ground_truth": task.ground_truth},
            "extra_info": extra_info,
            "index": index,
            "tools_kwargs": {},
            "interaction_kwargs": {},
            "dummy_tensor": torch.tensor([0], dtype=torch.uint8),
        }
        # episode=game: one whole game (first-turn prompt, agent_name for the game agent loop, its config)
        return game_item(item, task, self.episodes) if self.episodes.episode == "game" else item

    # verl's trainer calls these on RLHFDataset subclasses; a dynamic dataset has no files to re-read.
    def resume_dataset_state(self):
        return None

    def maybe_filter_out_long_prompts(self, dataframe=None):
        return dataframe

    def split(self, num_splits: int):
        """RLHFDataset's sharding API; a dataset indexed on the fly is not split into sub-datasets."""
        raise NotImplementedError("DynamicEnvDataset is indexed on the fly; it is not split into sub-datasets")

    def __getstate__(self):
        # RLHFDataset's version drops its dataframe; ours drops the env (rebuilt once per process)
        state = dict(self.__dict__)
        state.pop("_env", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split_name!r}, env={self.env_name!r}, config={self._env_config_json}, "
            f"seed={self.settings.seed}, len={self.length})"
        )



_CLASS_LOCK = threading.Lock()

#: name -> (default env, docstring) of the dataset classes verl can load
_DATASET_CLASSES = {
    "DynamicEnvDataset": ("lgc-v2", _DynamicEnvDatasetImpl.__doc__),
    "LGCV2DynamicDataset": ("lgc-v2", "DynamicEnvDataset under the name older launchers use (env defaults to lgc-v2)."),
    "OpenSpielDataset": ("openspiel", "DynamicEnvDataset with env defaulting to openspiel."),
}


def _build_dataset_classes() -> dict[str, type]:
    """The dataset classes, built on first use so that importing ``compute_score`` needs neither torch nor verl.

    ``DynamicEnvDataset`` subclasses verl's ``RLHFDataset`` (a ``torch.utils.data.Dataset``) only to inherit
    the multi-modal hooks the agent loop calls on the dataset class; every method that reads files is
    replaced by :class:`_DynamicEnvDatasetImpl`'s.
    """
    from verl.utils.dataset.rl_dataset import RLHFDataset

    base = type(
        "DynamicEnvDataset",
        (_DynamicEnvDatasetImpl, RLHFDataset),
        {"__module__": __name__, "__doc__": _DATASET_CLASSES["DynamicEnvDataset"][1], "default_env": "lgc-v2"},
    )
    classes = {"DynamicEnvDataset": base}
    for name, (env, doc) in _DATASET_CLASSES.items():
        if name not in classes:
            classes[name] = type(name, (base,), {"__module__": __name__, "__doc__": doc, "default_env": env})
    return classes


def __getattr__(name: str) -> Any:
    # PEP 562: DynamicEnvDataset & co. are created when first asked for (verl's load_extern_object,
    # ``from ... import DynamicEnvDataset``, unpickling), then kept as ordinary module attributes.
    if name in _DATASET_CLASSES:
        with _CLASS_LOCK:
            if name not in globals():
                globals().update(_build_dataset_classes())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

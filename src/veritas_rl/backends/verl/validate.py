"""Validate a verl 0.9.1 command line without GPUs: what ``DRY_RUN=1`` of the launchers runs.

Composes verl's own Hydra config (``ppo_trainer`` for ``verl.trainer.main_ppo``,
``sft_trainer_engine`` for ``verl.trainer.sft_trainer``) with the launcher's overrides, exactly as
``python -m verl.trainer.main_ppo OVERRIDES --cfg job`` does (unknown keys without ``+`` fail), then
goes further where it is cheap:

* new keys: a ``+key=value`` (or ``++key=value``) override whose key verl's config does not have is refused
  under every section verl reads a fixed set of keys from (a config dataclass's fields, or the YAML's keys
  plus the keys verl's code reads with ``.get``), naming the close matches
  (``+trainer.total_trainig_steps`` -> ``trainer.total_training_steps``); free-form sections (``dict``/``Any``
  fields that are empty by default such as ``model.override_config``, ``data.custom_cls.config``,
  ``ray_kwargs.ray_init``) take any key;
* scalar types: an override whose value does not have the type of verl's default for that key
  (a string where verl has an int, a float where it has a bool, ...) fails naming the key;
* verl's own checks: ``validate_config`` (main_ppo) and the ``omega_conf_to_dataclass`` conversions
  the trainers do at start-up (actor, rollout, algorithm, critic, model; SFT: model, engine, optim,
  checkpoint, profiler), so verl's ``__post_init__`` checks run here and not on the cluster;
* the loggers against verl's ``Tracking.supported_backend``;
* ``data.custom_cls.config`` parsed as ``DynamicEnvDataset`` parses it (``env``, ``task_types``,
  ``adapter_config``, sizes, seed), and the env's config built from it (unknown keys, bad values);
  with ``group_by``, one task is built to check the field exists.

The composed config is printed as YAML on stdout (what ``--cfg job`` prints); errors are one line on
stderr naming the key, exit status 2::

    python -m veritas_rl.backends.verl.validate ppo -- algorithm.adv_estimator=grpo ...

Why this module is long: it is one pipeline over one composed config (compose, walk the ``+`` keys,
check scalar types, run verl's own conversions, check our dataset's settings); each step reads the
same OmegaConf tree and the same error format, and splitting it would only pass that state around.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

#: entry name → (verl module, Hydra config name)
ENTRIES = {
    "ppo": ("verl.trainer.main_ppo", "ppo_trainer"),
    "sft": ("verl.trainer.sft_trainer", "sft_trainer_engine"),
}

#: keys whose verl default is an int but that verl also accepts as one of these strings
POLYMORPHIC = {
    "trainer.save_freq": ("after_each_epoch",),
    "trainer.test_freq": ("after_each_epoch",),
}

#: subtrees that take any key although verl's YAML gives them defaults: our dataset's settings (checked by
#: ``check_env``) and the keyword arguments of ``ray.init`` (``address``, ``runtime_env.env_vars``, ...)
FREE_FORM = ("data.custom_cls.config", "ray_kwargs.ray_init")

_ABSENT = object()
_INTERPOLATION = object()


def verl_config_dir() -> Path:
    """``verl/trainer/config`` of the verl that ``python -m verl...`` would import (``VERL_PATH`` included)."""
    found = importlib.util.find_spec("verl")
    if found is None or not found.submodule_search_locations:
        raise ValueError("verl is not importable: pip install verl==0.9.1 (or set VERL_PATH to a verl checkout)")
    path = Path(next(iter(found.submodule_search_locations))) / "trainer" / "config"
    if not path.is_dir():
        raise ValueError(f"{path} is missing: is this a complete verl install?")
    return path


def compose(entry: str, overrides: Sequence[str]):
    """verl's config for ``entry`` composed with ``overrides`` (Hydra's own parser and composition)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if entry not in ENTRIES:
        raise ValueError(f"entry={entry!r} is not valid; choose from: {', '.join(ENTRIES)}")
    config_name = ENTRIES[entry][1]
    try:
        with initialize_config_dir(config_dir=str(verl_config_dir()), version_base=None):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        ours = _missing_key_error(entry, str(err)) if overrides else None
        raise ValueError(ours or f"verl's {config_name} config rejects the overrides: {_one_line(err)}") from None


def _missing_key_error(entry: str, message: str) -> str | None:
    """Our message for Hydra's "Could not override 'KEY'" (a key verl's config lacks, given without ``+``).

    Hydra suggests ``+KEY``, which only adds a key verl never reads: name the close matches instead.
    """
    import re

    found = re.search(r"Could not override '([^']+)'", message)
    if not found:
        return None
    key = found.group(1)
    parent_key, _, leaf = key.rpartition(".")
    parent = _node_at(_base(entry), parent_key)
    matches = _close(leaf, [str(k) for k in parent.keys()]) if parent is not None else []
    if not matches:
        return None
    return f"verl's {ENTRIES[entry][1]} config has no key {key}; did you mean {_or(parent_key, matches)}?"


def _close(word: str, candidates) -> list[str]:
    import difflib

    return difflib.get_close_matches(word, sorted(set(candidates)), n=3, cutoff=0.6)


def _or(parent_key: str, leaves: Sequence[str]) -> str:
    return " or ".join(f"{parent_key}.{leaf}" if parent_key else leaf for leaf in leaves)


def _node_at(cfg, key: str):
    """The ``DictConfig`` at ``key`` without resolving anything, or ``None``."""
    from omegaconf import DictConfig

    node = cfg
    for part in key.split(".") if key else []:
        if not isinstance(node, DictConfig) or part not in node:
            return None
        node = node._get_node(part)
    return node if isinstance(node, DictConfig) and not node._is_none() else None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) < 600 else text[:600] + " ..."


def _raw(cfg, key: str) -> Any:
    """The value at ``key`` without resolving interpolations (``_ABSENT`` / ``_INTERPOLATION`` markers)."""
    from omegaconf import DictConfig, OmegaConf

    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, throw_on_resolution_failure=False) if parent_key else cfg
    if not isinstance(parent, DictConfig) or leaf not in parent:
        return _ABSENT
    if OmegaConf.is_missing(parent, leaf):
        return _ABSENT
    if OmegaConf.is_interpolation(parent, leaf):
        return _INTERPOLATION
    return parent[leaf]


def _type_name(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def _scalar_kind(hint: Any) -> type | None:
    """``bool``/``int``/``float`` for a (possibly Optional) scalar annotation, else ``None``."""
    import typing

    args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) is typing.Union else [hint]
    if float in args:
        return float
    if len(args) == 1 and args[0] in (bool, int):
        return args[0]
    return None


def _annotation(cfg, key: str) -> tuple[bool, type | None]:
    """``(annotated, kind)`` from the config dataclass (``_target_``) that owns ``key``, if any."""
    import dataclasses
    import importlib
    import typing

    from omegaconf import DictConfig, OmegaConf

    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, throw_on_resolution_failure=False) if parent_key else cfg
    if not isinstance(parent, DictConfig) or "_target_" not in parent:
        return False, None
    module, _, name = str(parent._target_).rpartition(".")
    try:
        owner = getattr(importlib.import_module(module), name)
        hints = typing.get_type_hints(owner) if dataclasses.is_dataclass(owner) else {}
    except Exception:  # a target we cannot inspect: fall back to verl's default value
        return False, None
    if leaf not in hints:
        return False, None
    return True, _scalar_kind(hints[leaf])


def _fits(expected: type, value: Any) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


@functools.lru_cache(maxsize=None)
def _base(entry: str):
    return compose(entry, [])


@functools.lru_cache(maxsize=None)
def verl_read_keys() -> frozenset[str]:
    """Names verl's code reads from a config without declaring them: ``.get("KEY"``, ``getattr(x, "KEY"``, ``"KEY" in``.

    A plain section of verl's YAML (``trainer``, ``data``, ...) is read with attribute access, which fails on a key
    the YAML lacks, or with ``.get``; a ``+`` key under it is read only if its name is one of these.
    """
    import re

    pattern = re.compile(r"""(?:\.get\(\s*|getattr\(\s*[\w.\[\]]+\s*,\s*)["']([A-Za-z_]\w*)["']|["']([A-Za-z_]\w*)["']\s+(?:not\s+)?in\b""")
    keys: set[str] = set()
    for path in verl_config_dir().parents[1].rglob("*.py"):
        for got, tested in pattern.findall(path.read_text(encoding="utf-8", errors="replace")):
            keys.add(got or tested)
    return frozenset(keys)


def _target_class(node) -> type | None:
    """The config dataclass a node's ``_target_`` names, or ``None``."""
    import dataclasses
    import importlib

    if "_target_" not in node:
        return None
    module, _, name = str(node._get_node("_target_")).rpartition(".")
    try:
        owner = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return owner if dataclasses.is_dataclass(owner) else None


def _field_hints(owner: type | None) -> dict[str, Any]:
    import typing

    if owner is None:
        return {}
    try:
        return typing.get_type_hints(owner)
    except Exception:  # an annotation that does not resolve here: fall back to the field names
        import dataclasses

        return {field.name: Any for field in dataclasses.fields(owner)}


def _hint_shape(hint: Any) -> str | None:
    """``"names"`` for ``dict[str, SomeConfig]`` (keys are names), ``"mapping"`` for ``dict``/``Any``, ``"config"``
    for a config dataclass, else ``None``."""
    import dataclasses
    import typing

    if hint is None:
        return None
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else Any
    if hint is Any:
        return "mapping"
    if dataclasses.is_dataclass(hint):
        return "config"
    origin = typing.get_origin(hint) or hint
    if isinstance(origin, type) and issubclass(origin, dict):
        args = typing.get_args(hint)
        return "names" if len(args) == 2 and dataclasses.is_dataclass(args[1]) else "mapping"
    return None


def new_key_error(base, key: str) -> str | None:
    """Why ``+key`` adds a key verl never reads, or ``None`` (the key exists, or its section is free-form).

    ``base`` is verl's composed default config. Walking ``key`` down it, the first part that is missing is checked
    against what its section holds: the fields of the config dataclass that section becomes (its ``_target_``, or
    the field's annotation in the parent dataclass), else the YAML's keys plus the names verl reads with ``.get``
    (:func:`verl_read_keys`). Free-form: ``FREE_FORM``, a section that is an empty mapping in verl's defaults
    (``model.override_config: {}``, ``rollout.engine_kwargs.vllm: {}``), and the names of a ``dict[str, Config]``.
    """
    from omegaconf import DictConfig, OmegaConf

    node, owner, path = base, None, []
    for part in key.split("."):
        here = ".".join(path)
        if any(here == free or here.startswith(free + ".") for free in FREE_FORM):
            return None
        owner = _target_class(node) or owner
        hint = _field_hints(owner).get(part)
        if part in node:
            if OmegaConf.is_interpolation(node, part):
                return None
            child = node._get_node(part)
            if not isinstance(child, DictConfig) or child._is_none():
                return None  # adding under a value (None, a list, a scalar): Hydra and verl judge that
            shape = _hint_shape(hint)
            if shape == "names" or (shape == "mapping" and len(child) == 0):
                return None
            node, owner = child, (hint if shape == "config" else None)
            path.append(part)
            continue
        keys = sorted(str(k) for k in node.keys() if not str(k).startswith("_"))
        if not keys and "_target_" not in node:
            return None  # an empty mapping (kwargs passed on as they are)
        if owner is not None:
            import dataclasses

            fields = {field.name for field in dataclasses.fields(owner) if not field.name.startswith("_")}
            if part in fields:
                return None
            candidates, where = fields | set(keys), f"{here} (verl's {owner.__name__})"
        else:
            if part in verl_read_keys():
                return None
            candidates, where = set(keys), here or "the top level"
        matches = _close(part, candidates)
        hint_text = f"did you mean {_or(here, matches)}?" if matches else f"its keys: {', '.join(sorted(candidates))}"
        return f"{where} has no key {part!r}, so verl would never read it; {hint_text}"
    return None


def check_new_keys(entry: str, overrides: Sequence[str]) -> None:
    """Refuse ``+key=value`` / ``++key=value`` overrides that add a key verl's config schema does not read."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    config_dir = verl_config_dir()
    groups = [o for o in parsed if o.package is not None or (config_dir / o.key_or_group).is_dir()]
    group_ids = {id(o) for o in groups}
    base = compose(entry, [o.input_line for o in groups]) if groups else _base(entry)
    for override in parsed:
        key = override.key_or_group
        if not (override.is_add() or override.is_force_add()) or id(override) in group_ids or key.startswith("hydra."):
            continue
        error = new_key_error(base, key)
        if error:
            raise ValueError(f"{override.input_line}: {error}")


def check_types(entry: str, cfg, overrides: Sequence[str]) -> None:
    """Each plain ``key=value`` override must have the scalar type verl declares for ``key``.

    The type is the annotation of the field in verl's config dataclass (the node's ``_target_``) when
    there is one (``entropy_coeff: float`` accepts ``0.001`` although its default is ``0``), else the
    type of verl's default value (``data.train_batch_size: 1024`` wants an int).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    base = _base(entry)
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    for override in parsed:
        key = override.key_or_group
        if override.is_delete() or override.package is not None or key.startswith("hydra"):
            continue
        default = _raw(base, key)
        value = _raw(cfg, key)
        if default in (_ABSENT, _INTERPOLATION) or value in (_ABSENT, _INTERPOLATION) or default is None:
            continue
        if value in POLYMORPHIC.get(key, ()):
            continue
        annotated, expected = _annotation(cfg, key)
        if not annotated:
            expected = bool if isinstance(default, bool) else type(default) if isinstance(default, (int, float)) else None
        if expected is not None and not _fits(expected, value):
            raise ValueError(
                f"{key}={value!r} has type {_type_name(value)}, but verl expects type {expected.__name__} there "
                f"(its default is {default!r})"
            )


def check_loggers(cfg) -> None:
    from verl.utils.tracking import Tracking

    loggers = cfg.trainer.get("logger", [])
    loggers = [loggers] if isinstance(loggers, str) else list(loggers or [])
    for name in loggers:
        if name not in Tracking.supported_backend:
            raise ValueError(
                f"trainer.logger: {name!r} is not a verl logger; choose from: {', '.join(Tracking.supported_backend)}"
            )


def check_env(cfg) -> None:
    """``data.custom_cls.config`` as ``DynamicEnvDataset`` parses it, and the env's config it builds."""
    from omegaconf import OmegaConf

    from veritas_rl.envs.base import build_config, spec
    from veritas_rl.backends.verl.plugins import parse_settings

    raw = OmegaConf.select(cfg, "data.custom_cls.config")
    if raw is None:
        return
    settings = parse_settings(raw)
    env_spec = spec(settings.env)
    try:
        build_config(env_spec.config_cls, settings.env_config(), env_name=env_spec.name)
    except ValueError as err:
        raise ValueError(f"data.custom_cls.config (env {env_spec.name!r}): {err}") from None
    if settings.group_by is not None:
        # group_by names a field of the tasks' extra: build the env (only then) and look at one task.
        from veritas_rl.envs import make_cached

        env = make_cached(env_spec.name, settings.env_config())
        extra = env.task(env.task_id_at(0)).extra
        if settings.group_by not in extra:
            raise ValueError(
                f"data.custom_cls.config.group_by={settings.group_by!r} is not a field of env {env_spec.name!r}'s "
                f"tasks; choose from: {', '.join(sorted(extra)) or '(none)'}"
            )


def _model_is_local(cfg, key: str) -> bool:
    from omegaconf import OmegaConf

    path = OmegaConf.select(cfg, key)
    if path and Path(os.path.expanduser(str(path))).is_dir():
        return True
    log.warning("%s=%s is not a local directory: verl's model config (tokenizer, HF config) not checked", key, path)
    return False


def _to_dataclass(cfg, key: str) -> Any:
    from omegaconf import OmegaConf

    from verl.utils.config import omega_conf_to_dataclass

    node = OmegaConf.select(cfg, key)
    if "use_shm" in node and node.use_shm:
        # HFModelConfig copies the whole model into /dev/shm when use_shm is on: not for a dry run.
        cfg = cfg.copy()
        node = OmegaConf.select(cfg, key)
        node.use_shm = False
    try:
        return omega_conf_to_dataclass(node)
    except Exception as err:  # verl's own __post_init__ checks raise assorted types; report them with the key
        cause = err.__cause__ or err
        raise ValueError(f"{key}: verl rejects it: {type(cause).__name__}: {_one_line(cause)}") from None


def check_ppo(cfg) -> None:
    """What ``verl.trainer.main_ppo`` and its trainer check at start-up, minus GPUs and Ray."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    estimator = cfg.algorithm.adv_estimator
    if estimator not in ADV_ESTIMATOR_REGISTRY:
        raise ValueError(
            f"algorithm.adv_estimator={estimator!r} is not a verl advantage estimator; "
            f"choose from: {', '.join(sorted(ADV_ESTIMATOR_REGISTRY))}"
        )
    use_critic = need_critic(cfg)
    # verl's vLLM rollout server rebuilds HFModelConfig from this section with OmegaConf.merge, which refuses a
    # list for the str field exclude_modules ("Cannot convert 'ListConfig' to string"), minutes into a GPU run.
    exclude = cfg.actor_rollout_ref.model.get("exclude_modules")
    if exclude is not None and not isinstance(exclude, str):
        raise ValueError(
            f"actor_rollout_ref.model.exclude_modules={list(exclude)!r}: "
            "verl 0.9.1 takes one regex string (PEFT full-matches it against module names), e.g. "
            "'(.*[.])?(lm_head|embed_tokens)', not a list"
        )
    env_vars = OmegaConf.select(cfg, "ray_kwargs.ray_init.runtime_env.env_vars") or {}
    for name, value in env_vars.items():  # ray.init refuses the whole runtime_env otherwise, at start-up
        if not isinstance(value, str):
            raise ValueError(
                f"ray_kwargs.ray_init.runtime_env.env_vars.{name}={value!r} is a {_type_name(value)}: Ray takes only "
                f"strings there; quote it: +ray_kwargs.ray_init.runtime_env.env_vars.{name}='{value}'"
            )
    checked = cfg
    lora = cfg.actor_rollout_ref.model.lora_rank > 0 or cfg.actor_rollout_ref.model.lora.get("rank", 0) > 0
    if lora and cfg.actor_rollout_ref.rollout.name == "vllm" and importlib.util.find_spec("vllm") is None:
        # validate_config imports vLLM for its LoRA-rank check; without vLLM, skip only that check.
        checked = cfg.copy()
        checked.actor_rollout_ref.model.lora.merge = True
        log.info("vLLM is not installed here: verl's vLLM LoRA-rank check is skipped")
    from hydra.errors import HydraException

    try:
        validate_config(checked, use_reference_policy=need_reference_policy(cfg), use_critic=use_critic)
    except (AssertionError, ValueError, TypeError, HydraException) as err:  # HydraException: a section's dataclass
        raise ValueError(f"verl's validate_config: {_one_line(err)}") from None
    from veritas_rl.backends.verl import parallel

    parallel.check(cfg)  # batch splits, micro batches, rollout engines, heads over TP: verl asserts these later
    sections = [
        "actor_rollout_ref.actor",
        "actor_rollout_ref.rollout",
        "actor_rollout_ref.rollout.checkpoint_engine",
        "algorithm",
    ]
    if use_critic:
        sections.append("critic")
    if _model_is_local(cfg, "actor_rollout_ref.model.path"):
        sections.append("actor_rollout_ref.model")
    for key in sections:
        _to_dataclass(cfg, key)


def check_sft(cfg) -> None:
    """What ``verl.trainer.sft_trainer.SFTTrainer._build_config`` converts, minus GPUs."""
    sections = ["engine", "optim", "checkpoint", "profiler"]
    if _model_is_local(cfg, "model.path"):
        sections.append("model")
    for key in sections:
        _to_dataclass(cfg, key)
    from veritas_rl.backends.verl import parallel

    parallel.check(cfg, "sft")  # the batch over the data-parallel ranks and its micro batches
    interval = list(cfg.trainer.profile_interval)
    if len(interval) != 2 or interval[1] < interval[0]:
        raise ValueError(f"trainer.profile_interval={interval}: expected [start, end] with end >= start")


TRL_CONFLICT = (
    "trl is installed in this environment but has no AutoModelForCausalLMWithValueHead (trl >= 1.0 dropped it): "
    "verl 0.9.1's FSDP engine imports it whenever trl is importable, so the actor fails at model init with "
    "\"cannot import name 'AutoModelForCausalLMWithValueHead' from 'trl'\". Keep TRL out of the verl environment "
    "(pip uninstall trl; the TRL backend gets its own: pip install -e '.[train]')"
)


def verl_imports_value_head() -> bool:
    """Whether the installed verl's ``monkey_patch.py`` imports trl's value-head model (verl 0.9.1 does, whenever
    trl is importable); read from verl's own source so a verl that stops doing it is not refused."""
    try:
        spec = importlib.util.find_spec("verl.models.transformers.monkey_patch")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return False
    source = Path(spec.origin).read_text(encoding="utf-8", errors="replace")
    return "import AutoModelForCausalLMWithValueHead" in source


def trl_conflict() -> str | None:
    """Why verl 0.9.1 will fail at model init in this environment because of trl, or None."""
    if importlib.util.find_spec("trl") is None or not verl_imports_value_head():
        return None
    for name in ("trl.experimental.ppo", "trl"):  # the two places verl's monkey_patch.py imports it from
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "AutoModelForCausalLMWithValueHead"):
            return None
    return TRL_CONFLICT


def validate(entry: str, overrides: Sequence[str]):
    """Compose and check; returns the composed config or raises ``ValueError`` naming the key."""
    cfg = compose(entry, overrides)
    check_new_keys(entry, overrides)
    check_types(entry, cfg, overrides)
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_loggers(cfg)
        check_env(cfg)
        (check_ppo if entry == "ppo" else check_sft)(cfg)
        conflict = trl_conflict()
    if conflict:
        log.warning("warning: %s", conflict)
    return cfg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m veritas_rl.backends.verl.validate",
        description="Compose verl 0.9.1's config with Hydra overrides and validate it with verl's own checks "
        "(no GPU needed). Prints the composed config as YAML, like `--cfg job`.",
    )
    parser.add_argument("entry", choices=sorted(ENTRIES), help="ppo = verl.trainer.main_ppo, sft = verl.trainer.sft_trainer")
    parser.add_argument("--quiet", action="store_true", help="validate only; do not print the composed config")
    parser.add_argument("--env-only", action="store_true",
                        help="only check the Python environment for what would kill the run minutes in (a trl "
                        "without the value-head model verl imports); exit 2 naming the fix")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides; put them after `--`")
    return parser


def split_overrides(argv: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """``(options, overrides)``: everything after ``--`` is a Hydra override, even if it looks like an option."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def main(argv: Sequence[str] | None = None) -> int:
    argv, extra = split_overrides(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[validate] %(message)s", stream=sys.stderr)
    overrides = [*args.overrides, *extra]
    if args.env_only:
        conflict = trl_conflict()
        if conflict:
            print(f"error: {conflict}", file=sys.stderr)
            return 2
        return 0
    try:
        cfg = validate(args.entry, overrides)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        from omegaconf import OmegaConf

        sys.stdout.write(OmegaConf.to_yaml(cfg))
    log.info("%s: %d overrides composed and validated against verl's schema", ENTRIES[args.entry][0], len(overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())

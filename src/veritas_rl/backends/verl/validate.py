"""Validate a verl 0.9.1 command line without GPUs: what ``DRY_RUN=1`` of the launchers runs.

Composes verl's own Hydra config (``ppo_trainer`` for ``verl.trainer.main_ppo``,
``sft_trainer_engine`` for ``verl.trainer.sft_trainer``) with the launcher's overrides, exactly as
``python -m verl.trainer.main_ppo OVERRIDES --cfg job`` does (unknown keys without ``+`` fail), then
goes further where it is cheap:

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
        raise ValueError(f"verl's {config_name} config rejects the overrides: {_one_line(err)}") from None


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
    checked = cfg
    lora = cfg.actor_rollout_ref.model.lora_rank > 0 or cfg.actor_rollout_ref.model.lora.get("rank", 0) > 0
    if lora and cfg.actor_rollout_ref.rollout.name == "vllm" and importlib.util.find_spec("vllm") is None:
        # validate_config imports vLLM for its LoRA-rank check; without vLLM, skip only that check.
        checked = cfg.copy()
        checked.actor_rollout_ref.model.lora.merge = True
        log.info("vLLM is not installed here: verl's vLLM LoRA-rank check is skipped")
    try:
        validate_config(checked, use_reference_policy=need_reference_policy(cfg), use_critic=use_critic)
    except (AssertionError, ValueError, TypeError) as err:
        raise ValueError(f"verl's validate_config: {_one_line(err)}") from None
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
    interval = list(cfg.trainer.profile_interval)
    if len(interval) != 2 or interval[1] < interval[0]:
        raise ValueError(f"trainer.profile_interval={interval}: expected [start, end] with end >= start")


TRL_CONFLICT = (
    "trl is installed in this environment but has no AutoModelForCausalLMWithValueHead (trl >= 1.0 dropped it): "
    "verl 0.9.1's FSDP engine imports it whenever trl is importable, so the actor fails at model init with "
    "\"cannot import name 'AutoModelForCausalLMWithValueHead' from 'trl'\". Keep TRL out of the verl environment "
    "(pip uninstall trl; the TRL backend gets its own: pip install -e '.[train]')"
)


def trl_conflict() -> str | None:
    """Why verl 0.9.1 will fail at model init in this environment because of trl, or None."""
    if importlib.util.find_spec("trl") is None:
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

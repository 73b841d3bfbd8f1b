"""Building reasoning-gym datasets from our config: names, options and their types checked up front."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any


def rg_dataset_names() -> list[str]:
    """Names of every reasoning-gym dataset (imports reasoning-gym)."""
    import reasoning_gym  # noqa: F401  (registers the datasets)
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _type_error(hint: Any, value: Any) -> str | None:
    """Why ``value`` does not fit the annotation ``hint`` (``None`` when it fits or the type is not checked)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        errors = [_type_error(a, value) for a in args if a is not type(None)]
        return None if any(e is None for e in errors) else f"expected {_type_name(hint)}"
    if origin is typing.Literal:
        return None if value in args else f"expected one of {list(args)}"
    if hint is bool:
        return None if isinstance(value, bool) else "expected a boolean (true/false)"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "expected a number"
    if hint is str:
        return None if isinstance(value, str) else "expected a string"
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, typing.Iterable):
            return "expected a list"
        inner = args[0] if args and args[0] is not Ellipsis else None
        if inner is not None and len(args) <= 2:
            for item in value:
                why = _type_error(inner, item)
                if why is not None:
                    return f"item {item!r}: {why}"
        return None
    return None  # enums, dates, nested option classes: reasoning-gym checks those itself


def check_option_types(name: str, config_cls: type, options: Mapping[str, Any], key: str) -> None:
    """A ``ValueError`` naming the option when a value has the wrong type for reasoning-gym's typed field.

    reasoning-gym does not check types itself: ``{"min_terms": true}`` would silently mean 1.
    """
    hints = typing.get_type_hints(config_cls)
    for option, value in options.items():
        hint = hints.get(option)
        why = _type_error(hint, value) if hint is not None else None
        if why is not None:
            raise ValueError(f"{key}_config.{option}={value!r} for {name!r}: {why} ({_type_name(hint)})")


def _plain(value: Any) -> Any:
    """OmegaConf containers (Hydra) as plain lists/dicts; everything else unchanged."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)) or not isinstance(value, typing.Iterable):
        return value
    items = [_plain(v) for v in value]
    return tuple(items) if isinstance(value, tuple) else items


def build_rg_dataset(name: str, options: Mapping[str, Any], *, seed: int, size: int, key: str = "dataset"):
    """One reasoning-gym dataset instance; unknown names/options and mistyped values are ``ValueError``."""
    import reasoning_gym  # noqa: F401
    from reasoning_gym.factory import DATASETS

    if name not in DATASETS:
        raise ValueError(f"{key}={name!r} is not a reasoning-gym dataset; choose from: {', '.join(sorted(DATASETS))}")
    dataset_cls, config_cls = DATASETS[name]
    options = {k: _plain(v) for k, v in options.items()}
    valid = [f.name for f in dataclasses.fields(config_cls) if f.name not in ("seed", "size")]
    for bad in ("seed", "size"):
        if bad in options:
            raise ValueError(f"{key}_config: set {bad!r} with the env's own `{bad}` key, not inside the dataset config")
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"{key}_config: unknown option(s) {unknown} for {name!r}; valid: {', '.join(valid)}")
    check_option_types(name, config_cls, options, key)
    try:
        config = config_cls(**options, seed=seed, size=size)
        return dataset_cls(config=config)
    except (AssertionError, TypeError, ValueError) as err:  # reasoning-gym validates with assert
        raise ValueError(f"{key}_config={options!r} rejected by reasoning-gym {name!r}: {err}") from None


def answer_to_text(answer: Any) -> str | None:
    if answer is None:
        return None
    return answer if isinstance(answer, str) else json.dumps(answer, default=str)

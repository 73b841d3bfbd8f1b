"""YAML recipes for ``veritas train grpo|sft --config recipes/<model>/<task>.yaml [--flag value ...]``.

A recipe is a mapping whose keys are :class:`~veritas_rl.backends.trl.settings.TrainSettings` fields
(``env``, ``env_config``, ``model``, ``learning_rate``, ``objective``, ``maxent_tau``, ``curriculum``, ...,
and ``preset``) plus ``mixture`` (a list of components, or ``{components, seed}``: shorthand for
``env: mix`` with that ``env_config``, see :mod:`veritas_rl.envs.mix`). Precedence, lowest first:
the dataclass defaults, the preset (``--preset``, else the recipe's ``preset``), the recipe, the flags
given on the command line. TRL's ``TrlParser`` (``trl/scripts/utils.py``) is the model: the file's
values replace the defaults, the command line replaces the file, and keys the settings do not have
are refused — here at once, naming the file, the key and the valid keys. (TrlParser's ``env:``
section of environment variables has no counterpart: ``env`` is the env name here.)

Values are checked against each field's type (``2e-6``, which YAML 1.1 reads as a string, is taken
as the number it spells; ``true``/``1`` for an integer is refused), and a list for
``lora_target_modules`` is joined with commas. ``vllm_server_url`` is accepted for
``vllm_server_base_url`` (the flag is ``--vllm-server-url``).
"""

from __future__ import annotations

import logging
import math
import typing
from pathlib import Path
from typing import Any, Mapping

from veritas_rl.jsonio import load_yaml

log = logging.getLogger(__name__)

#: recipe keys that are not TrainSettings fields
EXTRA_KEYS = ("mixture",)
#: other spellings of a field accepted in recipes (and presets read through here)
ALIASES = {"vllm_server_url": "vllm_server_base_url"}


def valid_keys() -> list[str]:
    from veritas_rl.backends.trl.settings import field_names

    return sorted([*field_names(), *EXTRA_KEYS])


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe at ``path`` as settings values (keys checked, types coerced, ``mixture`` expanded)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"--config {str(path)!r}: no such recipe file")
    data = load_yaml(path.read_text(encoding="utf-8"), f"recipe {path}")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"recipe {path} must be a mapping of settings, got {type(data).__name__}")
    return recipe_values(data, str(path))


def recipe_values(data: Mapping[str, Any], where: str = "recipe") -> dict[str, Any]:
    """Check and coerce a recipe mapping (see the module docstring)."""
    from veritas_rl.backends.trl.settings import TrainSettings

    values = {ALIASES.get(str(k), str(k)): v for k, v in data.items()}
    for alias, name in ALIASES.items():
        if alias in data and name in data:
            raise ValueError(f"{where}: give {name!r} or its alias {alias!r}, not both")
    unknown = sorted(set(values) - set(valid_keys()))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: "
                         f"{', '.join(valid_keys())}")
    if "mixture" in values:
        from veritas_rl.envs.mix import mixture_config

        mixture = values.pop("mixture")
        if values.get("env") not in (None, "mix", "mixture"):
            raise ValueError(f"{where}: mixture makes the env 'mix'; drop env={values['env']!r} (or the mixture)")
        if values.get("env_config"):
            raise ValueError(f"{where}: give mixture or env_config, not both (mixture is the env_config of env mix)")
        values["env"] = "mix"
        values["env_config"] = mixture_config(mixture, f"{where}: mixture")
    hints = typing.get_type_hints(TrainSettings)
    return {k: _coerce(k, v, hints[k], where) for k, v in values.items()}


def _coerce(key: str, value: Any, hint: Any, where: str) -> Any:
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{where}: {key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ValueError(f"{where}: {key} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
        raise ValueError(f"{where}: {key} must be a number, got {value!r}")
    if hint is str:
        if key == "lora_target_modules" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        if isinstance(value, str):
            return value
        raise ValueError(f"{where}: {key} must be a string, got {value!r}")
    if hint is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise ValueError(f"{where}: {key} must be a mapping, got {value!r:.120}")
    return value


def build_with_recipe(recipe: str | Path | None, preset: str | None, flags: Mapping[str, Any]):
    """Settings from defaults < preset < recipe < ``flags`` (``None`` flag values are unset).

    ``preset`` is the ``--preset`` flag (it wins over the recipe's ``preset``). A flag ``env`` that differs
    from the recipe's also drops the recipe's ``env_config`` (the config of another env) unless
    ``env_config`` is a flag too.
    """
    from veritas_rl.backends.trl.settings import build_settings

    values = read_recipe(recipe) if recipe is not None else {}
    flags = {k: v for k, v in flags.items() if v is not None}
    chosen = preset or values.pop("preset", None)
    values.pop("preset", None)
    if "env" in flags and "env" in values and flags["env"] != values["env"] and "env_config" not in flags:
        if values.pop("env_config", None):
            log.info("--env %s replaces the recipe's env %s: its env_config is not used", flags["env"], values["env"])
    settings = build_settings(chosen, {**values, **flags})
    if recipe is not None:
        log.info("settings: defaults < preset %s < recipe %s < flags %s", chosen or "(none)", recipe,
                 ", ".join(sorted(set(flags) - {"mode"})) or "(none)")
    return settings


def recipe_paths(root: str | Path) -> list[Path]:
    """Every ``recipes/<model>/<task>.yaml`` under ``root``."""
    return sorted(Path(root).glob("*/*.yaml"))


__all__ = ["ALIASES", "EXTRA_KEYS", "build_with_recipe", "read_recipe", "recipe_paths", "recipe_values",
           "valid_keys"]

"""The curriculum file: stages, promotion rules and failure-replay settings, validated at start-up.

One schema for both backends (a YAML or JSON file, or a shipped ladder by name)::

    curriculum:
      env: lgc-v2                 # optional; must match the run's env when given
      review_fraction: 0.1        # share of fresh draws taken from earlier stages (0 = none)
      success_score: 1.0          # a completion scoring >= this is a success
      seed: 0                     # seed of the draws (which source, which stage, which task)
      stages:
        - name: easy
          env_config: {operation_max_ops: 1}       # overrides over the run's env config
          promote: {threshold: 0.6, window: 64, min_steps: 5}
        - name: default
          env_config: {}                           # the last stage needs no promote
    failure_replay:               # every key optional; flags and launcher variables win
      enabled: true
      capacity: 1000
      fraction: 0.3
      priority_exponent: 1.0
      failure_threshold: 0.5
      retire_after: 1

Bad keys and values raise ``ValueError`` naming the key path and the valid choices.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from veritas_rl.jsonio import load_yaml

#: the defaults of failure replay (the issue's numbers)
REPLAY_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "capacity": 1000,
    "fraction": 0.3,
    "priority_exponent": 1.0,
    "failure_threshold": 0.5,
    "retire_after": 1,
}
TOP_KEYS = ("curriculum", "failure_replay")
CURRICULUM_KEYS = ("env", "stages", "review_fraction", "success_score", "seed")
STAGE_KEYS = ("name", "env_config", "promote")
PROMOTE_KEYS = ("threshold", "window", "min_steps")


@dataclass(frozen=True)
class Promotion:
    """Promote when the success rate over the last ``window`` fresh samples of the stage is >= ``threshold``
    and the stage has run at least ``min_steps`` steps (a step = one batch of draws scored)."""

    threshold: float
    window: int = 64
    min_steps: int = 0


@dataclass(frozen=True)
class Stage:
    name: str
    env_config: dict = field(default_factory=dict)
    promote: Promotion | None = None


@dataclass(frozen=True)
class ReplaySettings:
    enabled: bool = False
    capacity: int = 1000
    fraction: float = 0.3
    priority_exponent: float = 1.0
    failure_threshold: float = 0.5
    retire_after: int = 1


@dataclass(frozen=True)
class CurriculumSpec:
    stages: tuple[Stage, ...]
    replay: ReplaySettings = field(default_factory=ReplaySettings)
    env: str | None = None
    review_fraction: float = 0.0
    success_score: float = 1.0
    seed: int = 0
    source: str = "<dict>"

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=list))


# -- validation helpers ----------------------------------------------------------------------------


def _keys(where: str, value: Any, valid: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(value).__name__}: {value!r:.120}")
    unknown = sorted(set(map(str, value)) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}")
    return value


def _number(where: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}={value!r} is not a number")
    ok = (lo < value if lo_open else lo <= value) and value <= hi
    if not ok:
        raise ValueError(f"{where}={value!r} must be in {'(' if lo_open else '['}{lo}, {hi}]")
    return float(value)


def _int(where: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise ValueError(f"{where}={value!r} is not an integer")
    if value < lo:
        raise ValueError(f"{where}={value!r} must be >= {lo}")
    return int(value)


def _bool(where: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{where}={value!r} is not a boolean (true/false)")


def parse_replay(raw: Mapping[str, Any] | None, where: str = "failure_replay") -> ReplaySettings:
    values = dict(REPLAY_DEFAULTS)
    values.update({k: v for k, v in dict(_keys(where, raw or {}, tuple(REPLAY_DEFAULTS))).items() if v is not None})
    return ReplaySettings(
        enabled=_bool(f"{where}.enabled", values["enabled"]),
        capacity=_int(f"{where}.capacity", values["capacity"], 1),
        fraction=_number(f"{where}.fraction", values["fraction"], 0.0, 1.0),
        priority_exponent=_number(f"{where}.priority_exponent", values["priority_exponent"], 0.0, 100.0),
        failure_threshold=_number(f"{where}.failure_threshold", values["failure_threshold"], 0.0, 1.0, lo_open=True),
        retire_after=_int(f"{where}.retire_after", values["retire_after"], 1),
    )


def _stage(where: str, raw: Any, last: bool) -> Stage:
    raw = _keys(where, raw, STAGE_KEYS)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}.name is required (a non-empty string)")
    env_config = raw.get("env_config") or {}
    if not isinstance(env_config, Mapping):
        raise ValueError(f"{where}.env_config must be a mapping of env config keys, got {env_config!r:.120}")
    promote = raw.get("promote")
    if promote is None and not last:
        raise ValueError(f"{where} ({name!r}) needs promote: {{threshold: ..., window: ..., min_steps: ...}} "
                         "(only the last stage may leave it out)")
    rule = None
    if promote is not None:
        promote = _keys(f"{where}.promote", promote, PROMOTE_KEYS)
        if "threshold" not in promote:
            raise ValueError(f"{where}.promote.threshold is required (a success rate in (0, 1])")
        rule = Promotion(
            threshold=_number(f"{where}.promote.threshold", promote["threshold"], 0.0, 1.0, lo_open=True),
            window=_int(f"{where}.promote.window", promote.get("window", 64), 1),
            min_steps=_int(f"{where}.promote.min_steps", promote.get("min_steps", 0), 0),
        )
    return Stage(name=name.strip(), env_config=dict(env_config), promote=rule)


def parse_curriculum(data: Mapping[str, Any] | None, *, source: str = "<dict>",
                     replay_overrides: Mapping[str, Any] | None = None) -> CurriculumSpec:
    """Validate a curriculum document (``{"curriculum": ..., "failure_replay": ...}``).

    Without a ``curriculum`` section the run has one stage (the run's own env config, never promoted):
    failure replay on its own. ``replay_overrides`` (flags, launcher variables; ``None`` values ignored)
    win over the file's ``failure_replay`` section.
    """
    data = _keys(source, data or {}, TOP_KEYS)
    replay_raw = dict(data.get("failure_replay") or {})
    replay_raw.update({k: v for k, v in dict(replay_overrides or {}).items() if v is not None})
    replay = parse_replay(replay_raw, f"{source}: failure_replay")
    section = data.get("curriculum")
    if section is None:
        return CurriculumSpec(stages=(Stage("all"),), replay=replay, source=source)
    where = f"{source}: curriculum"
    section = _keys(where, section, CURRICULUM_KEYS)
    stages_raw = section.get("stages")
    if not isinstance(stages_raw, (list, tuple)) or not stages_raw:
        raise ValueError(f"{where}.stages must be a non-empty list of stages")
    stages = tuple(_stage(f"{where}.stages[{i}]", s, i == len(stages_raw) - 1) for i, s in enumerate(stages_raw))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}.stages: stage names must be unique, got {names}")
    env = section.get("env")
    if env is not None and (not isinstance(env, str) or not env.strip()):
        raise ValueError(f"{where}.env must be an env name, got {env!r}")
    return CurriculumSpec(
        stages=stages,
        replay=replay,
        env=env.strip() if env else None,
        review_fraction=_number(f"{where}.review_fraction", section.get("review_fraction", 0.0), 0.0, 1.0),
        success_score=_number(f"{where}.success_score", section.get("success_score", 1.0), 0.0, 1.0, lo_open=True),
        seed=_int(f"{where}.seed", section.get("seed", 0), 0),
        source=source,
    )


# -- files and shipped ladders ---------------------------------------------------------------------


def ladder_names() -> list[str]:
    files = resources.files("veritas_rl.curriculum").joinpath("ladders")
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


def read_document(spec: str | Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """``(document, source)`` for a mapping, a shipped ladder name or a YAML/JSON file path."""
    if spec is None:
        return {}, "<no curriculum file>"
    if isinstance(spec, Mapping):
        return dict(spec), "<dict>"
    text_spec = str(spec).strip()
    if text_spec in ladder_names():
        res = resources.files("veritas_rl.curriculum").joinpath("ladders", f"{text_spec}.yaml")
        text, source = res.read_text(encoding="utf-8"), f"ladder {text_spec!r}"
    else:
        path = Path(text_spec).expanduser()
        if not path.is_file():
            raise ValueError(f"curriculum={text_spec!r} is neither a file nor a shipped ladder; "
                             f"ladders: {', '.join(ladder_names())}")
        text, source = path.read_text(encoding="utf-8"), str(path)
    data = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ValueError(f"{source} must hold a mapping with 'curriculum' and/or 'failure_replay'")
    return data, source


def load_curriculum(spec: str | Mapping[str, Any] | None, *, failure_replay: bool | None = None,
                    replay_overrides: Mapping[str, Any] | None = None) -> CurriculumSpec:
    """Read and validate ``spec``; ``failure_replay`` (a flag) and ``replay_overrides`` win over the file."""
    data, source = read_document(spec)
    overrides = dict(replay_overrides or {})
    if failure_replay is not None:
        overrides["enabled"] = failure_replay
    return parse_curriculum(data, source=source, replay_overrides=overrides)


def stage_configs(spec: CurriculumSpec, env: str, base_config: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Each stage's env config (``base_config`` with the stage's overrides), built once to validate it.

    A bad override raises ``ValueError`` naming the stage and the env's valid keys.
    """
    from veritas_rl.envs import make_cached, resolve_name

    canonical = resolve_name(env)
    if spec.env is not None and resolve_name(spec.env) != canonical:
        raise ValueError(f"{spec.source}: curriculum.env={spec.env!r} but the run trains on env {env!r}")
    configs = []
    for i, stage in enumerate(spec.stages):
        config = {**dict(base_config or {}), **stage.env_config}
        try:
            make_cached(canonical, config)
        except ValueError as err:
            raise ValueError(f"{spec.source}: curriculum.stages[{i}] ({stage.name!r}) env_config: {err}") from None
        configs.append(config)
    return configs

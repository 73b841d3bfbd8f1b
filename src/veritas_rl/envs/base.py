"""The environment contract shared by every backend.

An environment turns an integer ``task_id`` into a :class:`Task` (a pure function of the env's config
and the id: no shared RNG) and scores a model completion for that task with :meth:`Env.score`, which
never raises on model output. Backends (verl's ``compute_score``, the TRL reward adapter, the CLI)
are thin adapters over this one scoring core.

Environments register themselves at the bottom of their module::

    register_env("lgc-v2", LgcV2Env, LgcV2Config, aliases=("lgc_v2",))

and are built by name with a validated config::

    env = make("lgc-v2", task_types=["sudoku"])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

#: Completions longer than this are scored 0.0 without being parsed (a runaway generation).
MAX_COMPLETION_CHARS = 200_000


@dataclass(frozen=True)
class Task:
    """One problem instance. JSON-serialisable through :meth:`to_dict` / :meth:`from_dict`."""

    env: str
    task_id: int
    prompt: list[dict[str, str]]  # chat messages: [{"role": "user", "content": "..."}]
    ground_truth: str  # what a verifier compares against; a JSON string where structured
    extra: dict[str, Any] = field(default_factory=dict)  # everything else scoring needs

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "task_id": self.task_id,
            "prompt": [dict(m) for m in self.prompt],
            "ground_truth": self.ground_truth,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Task":
        return cls(
            env=str(data["env"]),
            task_id=int(data["task_id"]),
            prompt=[dict(m) for m in data["prompt"]],
            ground_truth=data["ground_truth"],
            extra=dict(data.get("extra") or {}),
        )


#: The reason classes a score falls in (``Score.info["kind"]``). Backends log the share of each per
#: step, so a reward hack (a rising ``hedge`` or ``format`` share, say) shows up as a curve:
#:
#: - ``correct``: full credit; ``partial``: 0 < value < 1 (partial credit the env defines);
#: - ``wrong``: an answer of the right type that is not the gold one;
#: - ``no_answer``: nothing that is an answer (empty, unclosed ``<think>``, no tag/box, a prompt echo,
#:   the prompt's own format example, garbage that does not parse as the task's answer type);
#: - ``hedge``: two or more different final answers (compared by value);
#: - ``illegal``: a well-formed answer the task forbids (an illegal move, a refused patch);
#: - ``too_long``: over a size or complexity bound (a runaway completion, a power tower, deep nesting);
#: - ``timeout``: the scorer ran past its wall-clock bound;
#: - ``error``: not text (a wiring error upstream, e.g. ``None``).
SCORE_KINDS = ("correct", "partial", "wrong", "no_answer", "hedge", "illegal", "too_long", "timeout", "error")


@dataclass(frozen=True)
class Score:
    """``value`` in [0, 1]; ``info`` says why.

    ``info["reason"]`` is always set when value is 0; ``info["kind"]`` is always set (one of
    :data:`SCORE_KINDS`): given explicitly by the scorer, else ``correct`` / ``partial`` / ``wrong``
    from the value.
    """

    value: float
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"Score.value={self.value!r} outside [0, 1]")
        kind = self.info.get("kind")
        if kind is None:
            self.info["kind"] = "correct" if self.value >= 1.0 else "partial" if self.value > 0.0 else "wrong"
        elif kind not in SCORE_KINDS:
            raise ValueError(f"Score kind={kind!r} is not valid; choose from: {', '.join(SCORE_KINDS)}")

    @property
    def kind(self) -> str:
        return self.info["kind"]

    @classmethod
    def zero(cls, reason: str, kind: str = "wrong", **info: Any) -> "Score":
        """A zero score with its reason and reason class (:data:`SCORE_KINDS`; default ``wrong``)."""
        return cls(0.0, {"reason": reason, "kind": kind, **info})


def split_thinking(completion: str) -> tuple[str | None, str]:
    """Return ``(answer_text, reason)``: the text after the last ``</think>``.

    A completion that opens ``<think>`` and never closes it has no answer (``None``); one without
    think tags is all answer.
    """
    cut = completion.rfind(THINK_CLOSE)
    if cut >= 0:
        return completion[cut + len(THINK_CLOSE) :], "ok"
    if THINK_OPEN in completion:
        return None, "unclosed <think>: no answer after the reasoning"
    return completion, "ok"


def seeded_rng(*parts: Any) -> random.Random:
    """A ``random.Random`` seeded from ``parts`` with a stable hash (not Python's salted ``hash``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


class Env(ABC):
    """Base class of every environment. Subclasses implement ``task``, ``_score`` and ``oracle``."""

    #: canonical registry name, set by :func:`register_env`
    name: ClassVar[str] = ""

    def __init__(self, config: Any):
        self.config = config

    # -- tasks -------------------------------------------------------------------------------
    @property
    @abstractmethod
    def num_tasks(self) -> int:
        """Size of the dense index space served by :meth:`task_id_at` (may be astronomically large)."""

    @abstractmethod
    def task_id_at(self, index: int) -> int:
        """Map a dense index in ``[0, num_tasks)`` to a task id (types interleaved, for example)."""

    @abstractmethod
    def task(self, task_id: int) -> Task:
        """Build the task for ``task_id``; a pure function of ``(config, task_id)``."""

    # -- scoring -----------------------------------------------------------------------------
    def score(self, task: Task, completion: Any) -> Score:
        """Score a raw model completion. Never raises on model output: bad output scores 0.0."""
        if not isinstance(completion, str):
            return Score.zero(f"completion is {type(completion).__name__}, not str", kind="error")
        if len(completion) > MAX_COMPLETION_CHARS:
            return Score.zero(f"completion longer than {MAX_COMPLETION_CHARS} characters", kind="too_long")
        answer, why = split_thinking(completion)
        if answer is None:
            return Score.zero(why, kind="no_answer")
        if not answer.strip():
            return Score.zero("empty answer", kind="no_answer")
        return self._score(task, answer)

    @abstractmethod
    def _score(self, task: Task, answer: str) -> Score:
        """Score the answer part of a completion (after ``</think>``, non-empty)."""

    def oracle(self, task: Task) -> str | None:
        """A completion that scores 1.0 (for tests and SFT data), or ``None`` when none is known."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"env": self.name, "config": config_to_dict(self.config)}


# -- configuration ---------------------------------------------------------------------------


def config_to_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config):
        return json.loads(json.dumps(dataclasses.asdict(config), default=list))
    return dict(config or {})


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Make values that arrive through Hydra/JSON/CLI (lists, strings) fit the dataclass field.

    Conversions that would change a value's meaning raise ``ValueError`` naming the key and the value:
    ``12.7`` or ``True`` for an integer key, ``2`` or ``"maybe"`` for a boolean key.
    """
    origin = typing.get_origin(hint)
    if value is None:
        return None
    if origin is tuple or hint is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, Mapping) or not isinstance(value, typing.Iterable):
            value = [value]
        else:  # list, tuple, OmegaConf ListConfig, ...
            value = list(value)
        args = typing.get_args(hint)
        inner = args[0] if args else None
        if inner is not None and inner is not Ellipsis:
            return tuple(_coerce(v, inner, key) for v in value)
        return tuple(value)
    if hint is bool:
        # only true/false, 1/0 and their spellings: ``2`` or ``"maybe"`` is a typo, not True
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        elif isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"config key {key!r}: expected a boolean (true/false, yes/no, on/off, 1/0), got {value!r}")
    if hint is int:
        # a boolean is not a count, and 12.7 is not 12: refuse instead of truncating
        if isinstance(value, bool):
            raise ValueError(f"config key {key!r}: expected an integer, got the boolean {value!r}")
        if isinstance(value, int):
            return value
        try:
            as_int = int(value)  # "12", 12.0, numpy integers
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"config key {key!r}: expected an integer, got {value!r}") from None
        if not isinstance(value, str) and as_int != value:
            raise ValueError(f"config key {key!r}: expected an integer, got {value!r} (not a whole number)")
        return as_int
    if hint is float:
        if isinstance(value, bool):
            raise ValueError(f"config key {key!r}: expected a number, got the boolean {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"config key {key!r}: expected a number, got {value!r}") from None
    if origin is dict or hint is dict:
        if hasattr(value, "items"):
            return {k: v for k, v in value.items()}
        raise ValueError(f"config key {key!r}: expected a mapping, got {value!r}")
    return value


def build_config(config_cls: type, values: Mapping[str, Any] | None, *, env_name: str = "") -> Any:
    """Build a frozen config dataclass from a plain mapping, rejecting unknown keys by name."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        where = f" for env {env_name!r}" if env_name else ""
        raise ValueError(
            f"unknown config key(s) {', '.join(map(repr, unknown))}{where}; "
            f"valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(config_cls)
    coerced = {k: _coerce(v, _unwrap_optional(hints.get(k)), k) for k, v in values.items()}
    return config_cls(**coerced)


def _unwrap_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def check_choice(key: str, value: Any, choices: typing.Iterable[Any]) -> None:
    """Raise ``ValueError`` naming ``key`` and the valid choices when ``value`` is not one of them."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{key}={value!r} is not valid; choose from: {', '.join(map(str, choices))}")


# -- registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvSpec:
    name: str
    env_cls: type[Env]
    config_cls: type
    aliases: tuple[str, ...]
    summary: str


_REGISTRY: dict[str, EnvSpec] = {}
_ALIASES: dict[str, str] = {}


def register_env(
    name: str, env_cls: type[Env], config_cls: type, *, aliases: typing.Iterable[str] = (), summary: str = ""
) -> None:
    """Register an environment under ``name`` and its aliases; a clash is an error."""
    aliases = tuple(aliases)
    for key in (name, *aliases):
        owner = _ALIASES.get(key)
        if owner is not None and owner != name:
            raise ValueError(f"env name {key!r} already registered by {owner!r}")
    env_cls.name = name
    doc = summary or next(iter((env_cls.__doc__ or "").strip().splitlines()), "")
    _REGISTRY[name] = EnvSpec(name, env_cls, config_cls, aliases, doc)
    for key in (name, *aliases):
        _ALIASES[key] = name


def _load_builtin() -> None:
    # Importing the package registers every built-in env (heavy deps are imported lazily inside).
    import veritas_rl.envs  # noqa: F401


def resolve_name(name: str) -> str:
    _load_builtin()
    canonical = _ALIASES.get(str(name).strip())
    if canonical is None:
        raise ValueError(f"unknown env {name!r}; known: {', '.join(names(include_aliases=True))}")
    return canonical


def names(include_aliases: bool = False) -> list[str]:
    _load_builtin()
    return sorted(_ALIASES) if include_aliases else sorted(_REGISTRY)


def spec(name: str) -> EnvSpec:
    return _REGISTRY[resolve_name(name)]


def make(name: str, **config: Any) -> Env:
    """Build env ``name`` (or an alias) with ``config``; unknown names and keys raise ``ValueError``."""
    s = spec(name)
    return s.env_cls(build_config(s.config_cls, config, env_name=s.name))


def canonical_config_key(name: str, config: Mapping[str, Any] | None) -> str:
    """A stable string for ``(env, config)``, used to cache one env instance per config per process.

    A config class that reads defaults from the process environment lists those variables in
    ``ENVIRONMENT_VARIABLES`` (e.g. OpenSpiel's ``GAME_TYPES``); their current values are part of the key,
    so changing such a variable never returns an env built under the old value.
    """
    canonical = resolve_name(name)
    variables = getattr(_REGISTRY[canonical].config_cls, "ENVIRONMENT_VARIABLES", ())
    environment = {var: os.environ.get(var) for var in variables}
    return json.dumps([canonical, config or {}, environment], sort_keys=True, default=str)


_CACHE: dict[str, Env] = {}


def make_cached(name: str, config: Mapping[str, Any] | None = None) -> Env:
    """Like :func:`make`, but reuses one instance per (env, config) in this process."""
    key = canonical_config_key(name, config)
    env = _CACHE.get(key)
    if env is None:
        env = _CACHE[key] = make(name, **dict(config or {}))
    return env

"""``mix``: a weighted mixture of registered envs, served by a deterministic schedule.

Config::

    {"components": [{"env": "lgc-v2", "config": {"task_types": ["sudoku"]}, "weight": 2},
                    {"env": "math", "weight": 1, "name": "arith"}],
     "seed": 0}

Each component is ``env`` (a registered name or alias), its own ``config`` (default ``{}``), a
``weight`` > 0 (default 1) and an optional ``name`` (the group label; default the env's name, so two
components of one env need distinct names).

**The schedule.** Weights are reduced to the smallest integer ratio (``0.7/0.3`` -> ``7:3``; decimals
are read as written, ``1/3`` has to be given as a ratio such as ``1:2`` -> weights ``1`` and ``2``); dense
index ``i`` goes to the component chosen at step ``i`` of a smooth weighted round-robin over one period
of ``W`` = the sum of those integers (each step every component gains its weight, the largest total is
served and pays ``W``; ``seed`` orders the components on ties). The schedule repeats every ``W``
items and is a pure function of the config, so every process, worker and resumed run sees it. Its
balance, which ``tests/envs/test_mix.py`` checks: among the first ``n`` items (and any ``n`` from a
multiple of ``W``) component ``c`` appears ``floor(n p_c)`` or ``ceil(n p_c)`` times (``p_c`` its share);
in every window of ``N`` consecutive items anywhere, ``floor(N p_c) - 1`` to ``ceil(N p_c) + 1``
times (exactly ``floor``/``ceil`` with two components). No per-item coin flips.

Component ``c``'s ``k``-th item is its own dense index ``k``; the mixture ends where the first
component runs out (``num_tasks``). **Task ids** are namespaced: ``c * 10**12 + <the component's task
id>`` (component 2's task 42 is ``2000000000042``). ``Task.extra`` holds ``env`` (the component's
name: ``group_by=env`` in verl, a group key in ``veritas eval`` and the TRL backend's held-out
accuracy), ``component``, ``inner_env``, ``inner_task_id`` and ``inner_extra`` (the component task's
own extra).

**Scoring is the component's**: :meth:`MixEnv.score` rebuilds the component's task and calls that
env's ``score``, so every reward-safety rule of that env applies unchanged (the oracle and the audit
hooks delegate the same way). Through the scoring guard a mix score runs under the budget of
``mix`` (the default 5 s); ``swe-synth`` is refused as a component (it is scored unguarded, under its
own test timeouts) and so is a nested ``mix``.

verl's ``DynamicEnvDataset`` serves a ``mix`` in schedule order (:attr:`MixEnv.serves_in_order`)
instead of through its seeded index permutation, so each batch holds the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import reduce
from typing import Any, ClassVar, Mapping

from veritas_rl.envs.base import Env, Score, Task, make, register_env, resolve_name, seeded_rng
from veritas_rl.jsonio import load_yaml

#: task id of component ``c``'s task ``t``: ``c * ID_STRIDE + t``
ID_STRIDE = 10**12
#: the longest schedule period (sum of the reduced integer weights) accepted
MAX_PERIOD = 100_000
COMPONENT_KEYS = ("env", "config", "weight", "name")
#: envs that cannot be components (see the module docstring)
REFUSED = {"mix": "a mix cannot contain a mix; list its components directly",
           "swe-synth": "swe-synth is scored outside the scoring guard's worker (its test suites have their own "
                        "timeouts), so it cannot be scored as part of a mix; train it on its own"}
DEFAULT_COMPONENTS = ({"env": "lgc-v2", "weight": 1}, {"env": "reasoning-gym", "weight": 1})


@dataclass(frozen=True)
class MixConfig:
    components: tuple[dict, ...] = field(default_factory=lambda: tuple(dict(c) for c in DEFAULT_COMPONENTS))
    seed: int = 0  # orders the components on schedule ties

    def __post_init__(self):
        if not isinstance(self.components, tuple) or not self.components:
            raise ValueError("components must be a non-empty list of {env, config, weight, name} mappings")
        for i, comp in enumerate(self.components):
            if not isinstance(comp, Mapping):
                raise ValueError(f"components[{i}] must be a mapping with keys {', '.join(COMPONENT_KEYS)}, "
                                 f"got {comp!r:.120}")
            unknown = sorted(set(comp) - set(COMPONENT_KEYS))
            if unknown:
                raise ValueError(f"components[{i}]: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: "
                                 f"{', '.join(COMPONENT_KEYS)}")
            if not isinstance(comp.get("env"), str) or not comp["env"].strip():
                raise ValueError(f"components[{i}].env must be a registered env name, got {comp.get('env')!r}")
            config = comp.get("config", {})
            if config is not None and not isinstance(config, Mapping):
                raise ValueError(f"components[{i}].config must be a mapping (the env's config), got {config!r:.120}")
            weight_of(comp, i)
            name = comp.get("name")
            if name is not None and (not isinstance(name, str) or not name.strip()):
                raise ValueError(f"components[{i}].name must be a non-empty string, got {name!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed={self.seed!r}: expected an integer")


def weight_of(comp: Mapping[str, Any], i: int) -> Fraction:
    """Component ``i``'s weight as an exact fraction (a decimal as written: ``0.7`` is ``7/10``)."""
    raw = comp.get("weight", 1)
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"components[{i}].weight must be a number > 0, got {raw!r}")
    try:
        value = Fraction(str(raw).strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"components[{i}].weight must be a number > 0, got {raw!r}") from None
    if value <= 0 or (isinstance(raw, float) and not math.isfinite(raw)):
        raise ValueError(f"components[{i}].weight must be a number > 0, got {raw!r}")
    return value


def integer_weights(weights: list[Fraction]) -> list[int]:
    """The smallest integers in the ratio of ``weights`` (``[0.7, 0.3]`` -> ``[7, 3]``)."""
    lcm = reduce(lambda a, b: a * b // math.gcd(a, b), (w.denominator for w in weights), 1)
    ints = [int(w * lcm) for w in weights]
    g = reduce(math.gcd, ints)
    return [n // g for n in ints]


def smooth_schedule(weights: list[int], order: list[int]) -> list[int]:
    """One period (``sum(weights)`` steps) of smooth weighted round-robin; ``order`` breaks ties (first wins)."""
    total = sum(weights)
    rank = {c: r for r, c in enumerate(order)}
    current = [0] * len(weights)
    out = []
    for _ in range(total):
        for c, w in enumerate(weights):
            current[c] += w
        pick = max(range(len(weights)), key=lambda c: (current[c], -rank[c]))
        current[pick] -= total
        out.append(pick)
    return out


class MixEnv(Env):
    """A weighted mixture of registered envs (deterministic schedule; scoring delegated to each env)."""

    #: the dense index order is the weight schedule: datasets serve it in order, not permuted
    serves_in_order: ClassVar[bool] = True

    def __init__(self, config: MixConfig):
        super().__init__(config)
        self.components: list[Env] = []
        self.labels: list[str] = []
        fractions = []
        for i, comp in enumerate(config.components):
            name = resolve_name(comp["env"])
            if name in REFUSED:
                raise ValueError(f"components[{i}].env={comp['env']!r}: {REFUSED[name]}")
            try:
                env = make(name, **dict(comp.get("config") or {}))
            except ValueError as e:
                raise ValueError(f"components[{i}] ({name}): {e}") from None
            label = str(comp.get("name") or name).strip()
            if label in self.labels:
                raise ValueError(f"components[{self.labels.index(label)}] and components[{i}] are both named "
                                 f"{label!r}: give each component of the same env a distinct 'name'")
            self.components.append(env)
            self.labels.append(label)
            fractions.append(weight_of(comp, i))
        self.weights = integer_weights(fractions)
        self.period = sum(self.weights)
        if self.period > MAX_PERIOD:
            raise ValueError(f"components' weights {[str(w) for w in fractions]} reduce to {self.weights}, a schedule "
                             f"period of {self.period} > {MAX_PERIOD}; round them (e.g. 0.333/0.667 -> 1/2)")
        order = list(range(len(self.components)))
        seeded_rng("mix-ties", config.seed).shuffle(order)
        self.schedule = smooth_schedule(self.weights, order)
        seen = [0] * len(self.components)
        self._rank = []  # occurrences of schedule[r]'s component before position r of the period
        self._positions: list[list[int]] = [[] for _ in self.components]
        for r, c in enumerate(self.schedule):
            self._rank.append(seen[c])
            self._positions[c].append(r)
            seen[c] += 1
        # the mixture ends at the first index whose component has run out: component c's occurrence
        # number N_c (0-based) falls in period N_c // w_c at that period's (N_c % w_c)-th position of c
        ends = []
        for c, env in enumerate(self.components):
            q, j = divmod(int(env.num_tasks), self.weights[c])
            ends.append(q * self.period + self._positions[c][j])
        self._num_tasks = min(ends)

    @property
    def shares(self) -> list[float]:
        return [w / self.period for w in self.weights]

    @property
    def num_tasks(self) -> int:
        return self._num_tasks

    def component_at(self, index: int) -> tuple[int, int]:
        """``(component, its dense index)`` of mixture index ``index``."""
        q, r = divmod(int(index), self.period)
        c = self.schedule[r]
        return c, q * self.weights[c] + self._rank[r]

    def task_id_at(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self.num_tasks:
            raise IndexError(f"index {index} outside [0, {self.num_tasks})")
        c, k = self.component_at(index)
        return c * ID_STRIDE + self._inner_id(c, self.components[c].task_id_at(k))

    def _inner_id(self, c: int, inner: int) -> int:
        inner = int(inner)
        if not 0 <= inner < ID_STRIDE:
            raise ValueError(f"components[{c}] ({self.labels[c]}) produced task id {inner}, outside [0, {ID_STRIDE}) "
                             "that mix task ids namespace")
        return inner

    def task(self, task_id: int) -> Task:
        task_id = int(task_id)
        c, inner_id = divmod(task_id, ID_STRIDE)
        if task_id < 0 or c >= len(self.components):
            raise ValueError(f"task_id={task_id}: component {c} is not one of the {len(self.components)} components "
                             f"({', '.join(self.labels)}); mix task ids are component * {ID_STRIDE} + task id")
        inner = self.components[c].task(inner_id)
        extra = {"env": self.labels[c], "component": c, "inner_env": inner.env, "inner_task_id": int(inner.task_id),
                 "inner_extra": dict(inner.extra)}
        return Task(self.name, task_id, [dict(m) for m in inner.prompt], inner.ground_truth, extra)

    def unwrap(self, task: Task) -> tuple[Env, Task]:
        """The component env and its own task behind a mix task (a malformed task is a ``ValueError``)."""
        extra = task.extra if isinstance(task.extra, Mapping) else {}
        missing = [k for k in ("component", "inner_env", "inner_task_id") if k not in extra]
        if missing:
            raise ValueError(f"a mix task carries its component in extra; task {task.task_id} lacks "
                             f"{', '.join(missing)} (has: {', '.join(sorted(map(str, extra))) or 'nothing'})")
        c = extra["component"]
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(self.components):
            raise ValueError(f"mix task {task.task_id}: extra.component={c!r} is not one of 0..{len(self.components) - 1}")
        env = self.components[c]
        if extra["inner_env"] != env.name:
            raise ValueError(f"mix task {task.task_id}: extra.inner_env={extra['inner_env']!r}, but components[{c}] "
                             f"is {env.name!r} (a task of another mix config?)")
        inner_extra = extra.get("inner_extra") or {}
        if not isinstance(inner_extra, Mapping):
            raise ValueError(f"mix task {task.task_id}: extra.inner_extra must be a mapping")
        inner = Task(env.name, int(extra["inner_task_id"]), [dict(m) for m in task.prompt], task.ground_truth,
                     dict(inner_extra))
        return env, inner

    def score(self, task: Task, completion: Any) -> Score:
        env, inner = self.unwrap(task)
        return env.score(inner, completion)

    def _score(self, task: Task, answer: str) -> Score:  # not reached: score() delegates whole completions
        env, inner = self.unwrap(task)
        return env.score(inner, answer)

    def oracle(self, task: Task) -> str | None:
        env, inner = self.unwrap(task)
        return env.oracle(inner)

    def audit_cases(self, task: Task) -> dict[str, list[str]]:
        env, inner = self.unwrap(task)
        hook = getattr(env, "audit_cases", None)
        return dict(hook(inner)) if callable(hook) else {}


def mixture_config(value: Any, where: str = "mixture") -> dict[str, Any]:
    """A mix config from a recipe's ``mixture`` / ``$ENV_MIXTURE``: a list of components or ``{components, seed}``."""
    if isinstance(value, (list, tuple)):
        value = {"components": list(value)}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a list of components or a mapping with 'components' (and 'seed'), "
                         f"got {type(value).__name__}: {value!r:.120}")
    unknown = sorted(set(value) - {"components", "seed"})
    if unknown or "components" not in value:
        raise ValueError(f"{where}: expected keys 'components' (required) and 'seed', got {sorted(map(str, value))}")
    return {k: (list(v) if k == "components" and isinstance(v, (list, tuple)) else v) for k, v in value.items()}


def load_mixture(text: str, where: str = "ENV_MIXTURE") -> dict[str, Any]:
    """``text`` as JSON (starts with ``[`` or ``{``) or the path of a YAML/JSON file; returns :func:`mixture_config`."""
    import json
    from pathlib import Path

    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where} is not valid JSON ({e.msg} at character {e.pos}): {stripped[:200]!r}") from None
    else:
        path = Path(stripped).expanduser()
        if not path.is_file():
            raise ValueError(f"{where}={stripped!r}: neither JSON (starting with [ or {{) nor an existing YAML file")
        data = load_yaml(path.read_text(encoding="utf-8"), f"{where}: {path}")
        if isinstance(data, Mapping) and "mixture" in data and "components" not in data:
            data = data["mixture"]  # a recipe file: its mixture section
    return mixture_config(data, where)


register_env("mix", MixEnv, MixConfig, aliases=("mixture",))

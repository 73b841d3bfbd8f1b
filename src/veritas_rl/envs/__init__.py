"""Environment registry: ``make(name, **config)``, ``names()`` and the built-in environments.

Importing this package registers every built-in environment; each module imports its heavy
dependencies (reasoning-gym, open_spiel, datasets, ...) lazily so that listing envs stays fast.
"""

from veritas_rl.envs.base import (
    SCORE_KINDS,
    Env,
    Score,
    Task,
    make,
    make_cached,
    names,
    register_env,
    resolve_name,
    spec,
    split_thinking,
)

# Built-in environments register themselves on import (order = listing order only).
from veritas_rl.envs import lgc_v2  # noqa: E402,F401
from veritas_rl.envs import reasoning_gym  # noqa: E402,F401
from veritas_rl.envs import math_env  # noqa: E402,F401
from veritas_rl.envs import answer_tag  # noqa: E402,F401
from veritas_rl.envs import openspiel  # noqa: E402,F401
from veritas_rl.envs import swe  # noqa: E402,F401
from veritas_rl.envs import mix  # noqa: E402,F401 - after the envs it mixes

__all__ = [
    "SCORE_KINDS",
    "Env",
    "Score",
    "Task",
    "make",
    "make_cached",
    "names",
    "register_env",
    "resolve_name",
    "spec",
    "split_thinking",
]

"""``reasoning-gym``: any reasoning-gym dataset by name, scored by that dataset's own ``score_answer``.

The answer slot is the text inside the last ``<answer>...</answer>`` pair (reasoning-gym's own
convention); the prompt says so. Task ``i`` is item ``i`` of one dataset instance built once per
config (reasoning-gym items are a pure function of ``(dataset config, seed, index)``).

reasoning-gym's scorers are not written for hostile input, so the env stands in front of them:

- ``guards``: the nine datasets whose scorer evaluates the answer (sympy's ``parse_expr`` or a bare
  ``eval``) see only a canonical form of an answer our strict grammar accepted, never the model's text;
- ``shapes``: a scorer's credit counts only for an answer of the task's shape (a number where the gold
  is a number, ...); the prompt's format example, a copy of the question, an answer that says there is
  none, and hedges (two different final answers, compared by value) score 0 before any scorer runs; the
  gold with more words around it scores 0 whatever the scorer says (those that read a prefix credit it);
  markup around the whole answer (``$...$``, ``\\boxed{}``, ``**...**``, quotes, a fence) comes off first;
- ``datasets``: dataset names, options and option *types* are checked when the env is built.

Modules: ``env`` (config, env, scoring core), ``datasets``, ``shapes``, ``guards``.
"""

from veritas_rl.envs.reasoning_gym.datasets import answer_to_text, build_rg_dataset, rg_dataset_names
from veritas_rl.envs.reasoning_gym.env import (
    ANSWER_INSTRUCTION,
    MAX_ANSWER_CHARS,
    ReasoningGymConfig,
    ReasoningGymEnv,
    answer_slots,
)
from veritas_rl.envs.reasoning_gym.guards import GUARDS

__all__ = [
    "ANSWER_INSTRUCTION",
    "GUARDS",
    "MAX_ANSWER_CHARS",
    "ReasoningGymConfig",
    "ReasoningGymEnv",
    "answer_slots",
    "answer_to_text",
    "build_rg_dataset",
    "rg_dataset_names",
]

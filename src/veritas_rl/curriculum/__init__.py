"""Curriculum stages and failure replay on the env contract, adapted to both backends.

- :mod:`.schema`: the curriculum file (stages, promotion rules, failure-replay settings), validated;
  shipped ladders in ``ladders/*.yaml`` (``openspiel``, ``lgc-v2``, ``reasoning-gym``).
- :mod:`.replay`: the failure-replay buffer (capacity, priority exponent, failure threshold, retirement).
- :mod:`.engine`: :class:`Curriculum` (stages, promotion, seeded draws) and :class:`Schedule` (draws a
  fixed number of batches ahead of the feedback, so the stream is reproducible and resumable).

Adapters: :mod:`veritas_rl.backends.trl.curriculum` (a slot dataset, a reward wrapper and a callback) and
:mod:`veritas_rl.backends.verl.curriculum` (a named Ray actor that the dataloader workers and reward
workers reach over an authenticated socket).
"""

from veritas_rl.curriculum.engine import SOURCES, Curriculum, Draw, NotReady, Schedule
from veritas_rl.curriculum.replay import FailureReplay
from veritas_rl.curriculum.schema import (
    REPLAY_DEFAULTS,
    CurriculumSpec,
    Promotion,
    ReplaySettings,
    Stage,
    ladder_names,
    load_curriculum,
    parse_curriculum,
    stage_configs,
)

__all__ = [
    "REPLAY_DEFAULTS",
    "SOURCES",
    "Curriculum",
    "CurriculumSpec",
    "Draw",
    "FailureReplay",
    "NotReady",
    "Promotion",
    "ReplaySettings",
    "Schedule",
    "Stage",
    "build_schedule",
    "ladder_names",
    "load_curriculum",
    "parse_curriculum",
    "stage_configs",
]


def build_schedule(spec: CurriculumSpec, env: str, base_config, *, offset: int, batch_size: int, group_size: int,
                   lag: int = 2, space=None) -> tuple[Schedule, list[dict]]:
    """The :class:`Schedule` of ``spec`` on ``env`` (stage configs validated) and each stage's env config.

    ``space(stage_env) -> (num_tasks, task_id_at)``: the dense index space fresh tasks are drawn from (default
    the env's own; verl's dataset passes its seeded permutation, so its validation positions are skipped).
    """
    from veritas_rl.envs import make_cached

    configs = stage_configs(spec, env, base_config)
    spaces = []
    for config in configs:
        stage_env = make_cached(env, config)
        spaces.append(space(stage_env) if space is not None else (int(stage_env.num_tasks), stage_env.task_id_at))
    return Schedule(Curriculum(spec, spaces, offset=offset), batch_size, group_size, lag), configs

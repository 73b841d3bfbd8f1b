"""TRL adapter of :mod:`veritas_rl.curriculum`: ``veritas train grpo --curriculum FILE --failure-replay``.

Three parts, wired by :mod:`veritas_rl.backends.trl.runner`:

- a *slot* dataset: row ``i`` is the ``i``-th task of the training stream, resolved when the trainer's
  dataloader reads it (``datasets.Dataset.set_transform``) from :class:`~veritas_rl.curriculum.Schedule`
  (TRL's ``RepeatSampler`` walks the slots in order: ``shuffle_dataset=False``; the draws shuffle);
- :class:`CurriculumReward`, a wrapper of the env reward that feeds every slot's scores back and logs
  ``curriculum/stage``, ``curriculum/promotions``, ``curriculum/buffer_size``, ``curriculum/replay_share``
  and ``curriculum/stage_success_rate`` through TRL's ``log_metric`` (console, TensorBoard, W&B,
  ``metrics.jsonl``);
- :class:`CurriculumCallback`: writes ``curriculum_state.json`` into every checkpoint (``--resume auto``
  restores it, so the resumed stream is the uninterrupted one given the same scores) and logs promotions.

A batch of the schedule is one optimizer step's prompts (``batch_size * grad_accum / num_generations``);
its draws are made one step ahead of the feedback (``LAG``): TRL reads the next step's prompts before
scoring the current ones.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger("veritas_rl.backends.trl")

STATE_FILE = "curriculum_state.json"
#: the draws of step b come from the state after steps 0 .. b-LAG-1 (the trainer reads one step ahead)
LAG = 1
#: TrainSettings fields -> failure_replay keys of the curriculum file
REPLAY_FIELDS = {
    "replay_capacity": "capacity",
    "replay_fraction": "fraction",
    "replay_priority_exponent": "priority_exponent",
    "replay_failure_threshold": "failure_threshold",
    "replay_retire_after": "retire_after",
}


def enabled(s) -> bool:
    return bool(getattr(s, "curriculum", None) or getattr(s, "failure_replay", False))


def spec_of(s):
    """The validated :class:`~veritas_rl.curriculum.CurriculumSpec` of settings ``s``."""
    from veritas_rl.curriculum import load_curriculum

    overrides = {key: getattr(s, name, None) for name, key in REPLAY_FIELDS.items()}
    return load_curriculum(s.curriculum, failure_replay=True if s.failure_replay else None,
                           replay_overrides=overrides)


def check_settings(s) -> None:
    """Called by ``TrainSettings.__post_init__``: bad curriculum settings fail at start-up, naming the key."""
    knobs = [name for name in REPLAY_FIELDS if getattr(s, name, None) is not None]
    if not enabled(s):
        if knobs:
            raise ValueError(f"{', '.join(knobs)} set but neither curriculum nor failure_replay is on "
                             "(--curriculum FILE and/or --failure-replay)")
        return
    if s.mode != "grpo":
        raise ValueError(f"curriculum / failure_replay draw GRPO prompts; they do not apply to mode={s.mode!r}")
    if getattr(s, "episode", "move") != "move":
        raise ValueError("curriculum / failure_replay serve one prompt per position; episode='game' is not "
                         "supported with them")
    if s.max_steps < 1:
        raise ValueError(f"curriculum / failure_replay need max_steps >= 1 (the stream's length), got {s.max_steps}")
    spec_of(s)


class TrlCurriculum:
    """The schedule of one run plus the pieces the runner plugs into TRL."""

    def __init__(self, s, env, eval_size: int):
        from veritas_rl.curriculum import build_schedule

        self.settings = s
        self.env_name = env.name
        self.spec = spec_of(s)
        self.group_size = int(s.num_generations)
        self.batch_size = int(s.completions_per_step) // self.group_size  # prompts per optimizer step
        self.schedule, self.stage_configs = build_schedule(
            self.spec, env.name, s.env_config, offset=eval_size, batch_size=self.batch_size,
            group_size=self.group_size, lag=LAG)
        self.num_slots = int(s.max_steps) * self.batch_size
        log.info("curriculum: %d stage(s) (%s), failure replay %s; %d prompts per step, %d slots",
                 len(self.spec.stages), ", ".join(st.name for st in self.spec.stages),
                 "on" if self.spec.replay.enabled else "off", self.batch_size, self.num_slots)

    # -- the slot dataset --------------------------------------------------------------------------

    def stage_env(self, stage: int):
        from veritas_rl.envs import make_cached

        return make_cached(self.env_name, self.stage_configs[stage])

    def rows(self, batch: dict[str, list]) -> dict[str, list]:
        """``set_transform`` of the slot dataset: slot numbers -> the task rows :class:`EnvReward` scores."""
        from veritas_rl.backends.trl.reward import task_row

        out: dict[str, list] = {}
        for slot in batch["slot"]:
            draw = self.schedule.draw(int(slot))
            stage_env = self.stage_env(draw.stage)
            row = task_row(stage_env, stage_env.task(draw.task_id))
            row.update(slot=int(slot), stage=draw.stage, source=draw.source)
            for key, value in row.items():
                out.setdefault(key, []).append(value)
        return out

    def dataset(self):
        from datasets import Dataset

        ds = Dataset.from_dict({"slot": list(range(self.num_slots))})
        ds.set_transform(self.rows)
        return ds

    def grpo_args(self) -> dict[str, Any]:
        return {"shuffle_dataset": False}

    def wrap(self, reward):
        return CurriculumReward(reward, self)

    def callback(self, run_dir: Path):
        return CurriculumCallback(self, run_dir)

    # -- state ------------------------------------------------------------------------------------

    def save(self, checkpoint_dir: Path) -> Path:
        path = Path(checkpoint_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.schedule.state_dict()) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def load(self, checkpoint_dir: Path) -> None:
        """Restore from ``checkpoint_dir``; a checkpoint without the state (saved without curriculum) fails."""
        path = Path(checkpoint_dir) / STATE_FILE
        if not path.is_file():
            raise ValueError(f"resume: {checkpoint_dir} has no {STATE_FILE}; it was saved without --curriculum / "
                             "--failure-replay (start a new run, or resume without them)")
        self.schedule.load_state_dict(json.loads(path.read_text(encoding="utf-8")))
        log.info("curriculum: restored from %s: step %d, stage %d, %d task(s) in the replay buffer", path.name,
                 self.schedule.applied, self.schedule.curriculum.stage, len(self.schedule.curriculum.replay))


class CurriculumReward:
    """The env reward, plus feedback of each slot's scores to the schedule (TRL passes the ``slot`` column)."""

    def __init__(self, inner, curriculum: TrlCurriculum):
        self.inner = inner
        self.curriculum = curriculum
        self.__name__ = getattr(inner, "__name__", "env_reward")  # TRL names the reward's metrics after it

    def __getattr__(self, name: str):  # take_counts, last_scores, ... of the wrapped reward
        if name in ("inner", "curriculum"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __call__(self, *args, slot: Sequence[int] | None = None, log_metric=None, **kwargs) -> list[float]:
        values = self.inner(*args, log_metric=log_metric, **kwargs)
        if slot is None:
            raise ValueError("curriculum reward: rows carry no `slot` column (the slot dataset was not used)")
        by_slot: dict[int, list[float]] = {}
        for s, v in zip(slot, values):
            by_slot.setdefault(int(s), []).append(float(v))
        schedule = self.curriculum.schedule
        for s in sorted(by_slot):
            schedule.report(s, by_slot[s])
        if log_metric is not None:
            for key, value in schedule.metrics().items():
                log_metric(key, value)
        return values


def _curriculum_line(logs: dict) -> str | None:
    if "curriculum/stage" not in logs:
        return None
    return (f"curriculum stage {int(round(logs['curriculum/stage']))} | promotions "
            f"{int(round(logs.get('curriculum/promotions', 0)))} | buffer {int(round(logs.get('curriculum/buffer_size', 0)))}"
            f" | replay share {logs.get('curriculum/replay_share', 0.0):.2f} | stage success "
            f"{logs.get('curriculum/stage_success_rate', 0.0):.2f}")


def _make_callback_class():
    from transformers import TrainerCallback

    class _Callback(TrainerCallback):
        def __init__(self, curriculum: TrlCurriculum, run_dir: Path):
            self.curriculum = curriculum
            self.run_dir = Path(run_dir)
            self._seen_events = len(curriculum.schedule.events)

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if ckpt.is_dir():
                    self.curriculum.save(ckpt)

        def on_step_end(self, args, state, control, **kwargs):
            events = self.curriculum.schedule.events[self._seen_events:]
            self._seen_events = len(self.curriculum.schedule.events)
            if events and state.is_world_process_zero:
                with (self.run_dir / "curriculum_events.jsonl").open("a", encoding="utf-8") as fh:
                    for event in events:
                        fh.write(json.dumps({"global_step": state.global_step, **event}) + "\n")

        def on_log(self, args, state, control, logs=None, **kwargs):
            line = _curriculum_line(logs or {})
            if line and state.is_world_process_zero:
                log.info(line)

    return _Callback


def CurriculumCallback(curriculum: TrlCurriculum, run_dir: Path):  # noqa: N802 - a class built lazily
    """The ``TrainerCallback`` (transformers is imported only when a run uses a curriculum)."""
    return _make_callback_class()(curriculum, run_dir)

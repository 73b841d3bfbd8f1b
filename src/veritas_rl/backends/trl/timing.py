"""Where a GRPO step goes: ``timing_s/*`` per optimizer step in the TRL backend (verl logs ``timing_s/*`` too).

TRL 1.16 logs one wall time per step (``step_time``) and sends its finer ``profiling_context`` timings
only to W&B / MLflow / Trackio. :class:`StepTimer` wraps the trainer's own phases on the instance and
logs, for every optimizer step, through the trainer's metrics (console, ``metrics.jsonl``, W&B,
TensorBoard):

* ``timing_s/step``: the optimizer step, from ``on_step_begin`` to ``on_step_end`` (generation,
  scoring, forward/backward and the optimizer; not the callbacks' evaluations after it);
* ``timing_s/rollout``: ``_generate_and_score_completions`` (prompts to advantages: generation,
  reward, old/reference log-probs); with ``--episode game`` it includes the games' own moves;
* ``timing_s/gen``: the model's decoding, ``_generate_single_turn`` (transformers ``generate()``
  or the vLLM engine; every turn of a game), vLLM's weight sync excluded;
* ``timing_s/sync_weights``: copying the policy's weights into the colocated vLLM engine;
* ``timing_s/reward``: ``_calculate_rewards`` (our scorers behind the scoring guard);
* ``timing_s/update``: ``step - rollout`` (forward, backward, optimizer, and the rest);
* ``timing_s/gen_share``: ``gen / step``.

With gradient accumulation TRL generates once per generation batch, so in a step that reuses
rollouts ``rollout``/``gen`` are 0. The wrapped names are private API of TRL 1.16 (the pinned
version); a missing one is left unwrapped with a warning, so a TRL change costs the breakdown, not
the run.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger("veritas_rl.backends.trl")

#: trainer method -> phase it is timed as
PHASES = {"_generate_and_score_completions": "rollout", "_generate_single_turn": "gen",
          "_calculate_rewards": "reward"}
KEYS = ("step", "rollout", "gen", "sync_weights", "reward", "update", "gen_share")


class StepTimer(TrainerCallback):
    """Times each optimizer step's phases (see the module doc) and logs them as ``timing_s/<phase>``."""

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.acc: dict[str, float] = {}
        self.rows: list[dict[str, float]] = []  # one per optimizer step (benchmarks read them)
        self._t0: float | None = None
        self._stack: list[str] = []  # the phases being timed now (outermost first)
        for name, phase in PHASES.items():
            self._wrap(trainer, name, phase)
        engine = getattr(trainer, "vllm_generation", None) if getattr(trainer, "use_vllm", False) else None
        if engine is not None:
            self._wrap(engine, "sync_weights", "sync_weights")

    def _wrap(self, owner: Any, name: str, phase: str) -> None:
        method = getattr(owner, name, None)
        if not callable(method):
            log.warning("timing: %s has no %s (TRL changed?): timing_s/%s is not measured",
                        type(owner).__name__, name, phase)
            return

        @functools.wraps(method)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            self._stack.append(phase)
            try:
                return method(*args, **kwargs)
            finally:
                self._stack.pop()
                spent = time.perf_counter() - t0
                self.acc[phase] = self.acc.get(phase, 0.0) + spent
                if phase == "sync_weights" and "gen" in self._stack:  # TRL syncs from inside the decode call
                    self.acc["sync_in_gen"] = self.acc.get("sync_in_gen", 0.0) + spent

        setattr(owner, name, timed)

    def on_step_begin(self, args, state, control, **kwargs):
        self.acc = {}
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._t0 is None:
            return
        step = time.perf_counter() - self._t0
        self._t0 = None
        sync = self.acc.get("sync_weights", 0.0)
        rollout = self.acc.get("rollout", 0.0)
        row = {"step": step, "rollout": rollout,
               # _generate_single_turn syncs the weights first when the step changed: that is not decoding
               "gen": max(0.0, self.acc.get("gen", 0.0) - self.acc.get("sync_in_gen", 0.0)), "sync_weights": sync,
               "reward": self.acc.get("reward", 0.0), "update": max(0.0, step - rollout)}
        row["gen_share"] = row["gen"] / step if step > 0 else 0.0
        self.rows.append(row)
        metrics = getattr(self.trainer, "_metrics", None)
        if isinstance(metrics, dict) and "train" in metrics:
            for key in KEYS:
                metrics["train"][f"timing_s/{key}"].append(row[key])


def summarise(rows: list[dict[str, float]], warmup: int = 1) -> dict[str, Any] | None:
    """Medians per phase over the steps after the first ``warmup`` ones (start-up, compilation), or ``None``."""
    import statistics

    later = rows[warmup:] if len(rows) > warmup else rows
    if not later:
        return None
    out: dict[str, Any] = {f"median_{key}": round(statistics.median(r[key] for r in later), 4) for key in KEYS}
    out.update(steps=len(rows), warmup_steps_left_out=len(rows) - len(later))
    return out

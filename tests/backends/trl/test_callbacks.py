"""The TRL backend's callbacks on transformers' real TrainerState / TrainerControl."""

from __future__ import annotations

import time

import pytest
from transformers import TrainerControl, TrainerState

from veritas_rl.backends.trl.callbacks import TimeBudget


def _step(cb: TimeBudget, step: int, max_steps: int = 100) -> TrainerControl:
    state, control = TrainerState(global_step=step, max_steps=max_steps), TrainerControl()
    cb.on_step_end(None, state, control)
    return control


def test_time_budget_stops_and_saves_at_the_first_step_past_it():
    cb = TimeBudget(minutes=0.5)
    cb.on_train_begin(None, TrainerState(), TrainerControl())
    control = _step(cb, 1)
    assert not control.should_training_stop and not control.should_save and cb.fired_at is None
    cb.t0 = time.perf_counter() - 31.0  # 31 s of training have passed
    control = _step(cb, 7)
    assert control.should_training_stop and control.should_save and cb.fired_at == 7


def test_time_budget_leaves_the_last_step_to_the_trainer():
    cb = TimeBudget(minutes=0.01)
    cb.on_train_begin(None, TrainerState(), TrainerControl())
    cb.t0 -= 60
    control = _step(cb, 100, max_steps=100)  # the run ends here anyway: not a budget stop
    assert not control.should_training_stop and cb.fired_at is None


@pytest.mark.parametrize("minutes", [0, -1])
def test_time_budget_refuses_a_non_positive_budget(minutes):
    with pytest.raises(ValueError, match="max_train_minutes"):
        TimeBudget(minutes)

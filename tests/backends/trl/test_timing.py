"""StepTimer's accounting: phases nest the way TRL 1.16 calls them (sync inside decoding, decoding inside the rollout)."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from veritas_rl.backends.trl.timing import StepTimer, summarise


class _Engine:
    def sync_weights(self):
        time.sleep(0.03)


class _Trainer:
    """The call shape of TRL 1.16's GRPOTrainer (grpo_trainer.py: ``_generate_and_score_completions`` calls
    ``_generate_single_turn``, which syncs the vLLM weights first, then ``_calculate_rewards``)."""

    use_vllm = True

    def __init__(self):
        self.vllm_generation = _Engine()
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}

    def _generate_single_turn(self, *args):
        self.vllm_generation.sync_weights()
        time.sleep(0.05)

    def _calculate_rewards(self, *args):
        time.sleep(0.01)

    def _generate_and_score_completions(self, *args):
        self._generate_single_turn()
        self._calculate_rewards()


def test_sync_inside_decoding_is_not_counted_as_decoding():
    trainer = _Trainer()
    timer = StepTimer(trainer)
    timer.on_step_begin(None, None, None)
    trainer._generate_and_score_completions()
    time.sleep(0.02)  # the update
    timer.on_step_end(None, None, None)
    row = timer.rows[0]
    assert row["sync_weights"] == pytest.approx(0.03, abs=0.02)
    assert row["gen"] == pytest.approx(0.05, abs=0.02)  # 0.08 inside the call, less the sync
    assert row["reward"] == pytest.approx(0.01, abs=0.01)
    assert row["rollout"] >= row["gen"] + row["sync_weights"] + row["reward"]
    assert row["update"] == pytest.approx(0.02, abs=0.015)
    assert trainer._metrics["train"]["timing_s/gen"] == [row["gen"]]


class _TrainerWithoutRewards(_Trainer):
    _calculate_rewards = None  # a TRL without the method: the run goes on, the phase is not measured


def test_a_step_that_reuses_rollouts_has_no_rollout_time_and_a_missing_method_only_warns(caplog):
    with caplog.at_level("WARNING", logger="veritas_rl.backends.trl"):
        timer = StepTimer(_TrainerWithoutRewards())
    assert "timing_s/reward is not measured" in caplog.text
    timer.on_step_begin(None, None, None)
    timer.on_step_end(None, None, None)
    assert timer.rows[0]["rollout"] == timer.rows[0]["gen"] == timer.rows[0]["reward"] == 0.0


def test_summarise_leaves_out_the_first_steps():
    rows = [{k: float(v) for k in ("step", "rollout", "gen", "sync_weights", "reward", "update", "gen_share")}
            for v in (9, 1, 3, 2)]
    out = summarise(rows)
    assert out["median_step"] == 2.0 and out["steps"] == 4 and out["warmup_steps_left_out"] == 1
    assert summarise([]) is None

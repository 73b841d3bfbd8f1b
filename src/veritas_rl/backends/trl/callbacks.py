"""Trainer callbacks: a readable console line per logging step, and the zero-reward breaker."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

log = logging.getLogger("veritas_rl.backends.trl")


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


class ConsoleProgress(ProgressCallback):
    """The tqdm bar of :class:`ProgressCallback`, with one readable line per logging step instead of a dict:

    ``step 12/30 | reward 0.438 | success 0.41 | KL - | wrong 0.41 no_answer 0.18 | grad 0.52 | 850 tok/s | 3.9 s/step (gen 2.7)``
    (GRPO: the shares of the reason classes other than ``correct`` that occurred, from the reward's
    ``kind/<name>``, and the step's seconds from :mod:`veritas_rl.backends.trl.timing`) or
    ``step 12/30 | loss 0.912 | token acc 0.71 | 850 tok/s`` (SFT). Every log is also appended to
    ``metrics.jsonl`` of the run dir.
    """

    def __init__(self, metrics_path: str | Path | None = None):
        super().__init__()
        self.metrics_path = Path(metrics_path) if metrics_path else None
        self._t0 = None
        self._tokens0 = None

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        self.current_step = state.global_step  # a resumed run starts the bar where it left off
        if self.training_bar is not None:
            self.training_bar.update(state.global_step)
        self._t0 = time.perf_counter()
        self._tokens0 = state.num_input_tokens_seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if self.metrics_path is not None:
            with self.metrics_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": state.global_step, **logs}, default=str) + "\n")
        if "train_runtime" in logs:  # the summary at the end
            return
        now = time.perf_counter()
        tokens = logs.get("num_tokens", state.num_input_tokens_seen)
        rate = None
        if tokens is not None and self._tokens0 is not None and now > self._t0:
            rate = (tokens - self._tokens0) / (now - self._t0)
        self._t0, self._tokens0 = now, tokens
        parts = [f"step {state.global_step}/{state.max_steps}"]
        if "reward" in logs:
            parts += [f"reward {_fmt(logs.get('reward'))}", f"success {_fmt(logs.get('success_rate'), '.2f')}",
                      f"KL {_fmt(logs.get('kl'), '.4f')}"]
            kinds = kind_summary(logs)
            if kinds:
                parts.append(kinds)
            if "episode/win_rate" in logs:  # --episode game (backends/trl/episodes.py)
                parts.append("games W/D/L/illegal " + "/".join(
                    _fmt(logs.get(f"episode/{o}_rate"), ".2f") for o in ("win", "draw", "loss", "illegal")))
        else:
            parts += [f"loss {_fmt(logs.get('loss'))}", f"token acc {_fmt(logs.get('mean_token_accuracy'), '.2f')}"]
        if "grad_norm" in logs:  # before clipping: a spike or a non-finite value is the first sign of a collapse
            parts.append(f"grad {_fmt(logs.get('grad_norm'), '.3g')}")
        parts.append(f"{_fmt(rate, '.0f')} tok/s")
        if "timing_s/step" in logs:  # backends/trl/timing.py
            parts.append(f"{_fmt(logs.get('timing_s/step'), '.1f')} s/step (gen {_fmt(logs.get('timing_s/gen'), '.1f')})")
        log.info(" | ".join(parts))


def kind_summary(logs: dict) -> str:
    """``"wrong 0.41 timeout 0.02"``: the non-zero ``kind/<name>`` shares in ``logs`` except ``correct``."""
    shares = [(key[len("kind/"):], value) for key, value in logs.items()
              if key.startswith("kind/") and key != "kind/correct" and isinstance(value, (int, float)) and value > 0]
    return " ".join(f"{name} {value:.2f}" for name, value in sorted(shares, key=lambda kv: -kv[1]))


class ZeroRewardBreaker(TrainerCallback):
    """Stop training after ``patience`` consecutive optimizer steps whose rewards were all zero.

    All-zero rewards mean a broken reward or broken generation (GRPO then has no signal at all), so
    spending more compute is pointless. Reads the counts of :class:`veritas_rl.backends.trl.reward.EnvReward`.
    """

    def __init__(self, reward, patience: int):
        self.reward = reward
        self.patience = int(patience)
        self.zero_steps = 0
        self.fired = False
        self.message = ""

    def on_step_end(self, args, state, control, **kwargs):
        scored, nonzero = self.reward.take_counts()
        if scored == 0:  # no fresh generations this step (reused rollouts): no evidence either way
            return
        self.zero_steps = self.zero_steps + 1 if nonzero == 0 else 0
        if self.patience and self.zero_steps >= self.patience:
            self.fired = True
            self.message = (
                f"zero-reward breaker: the last {self.zero_steps} steps (up to step {state.global_step}) scored 0.0 "
                "on every completion, so GRPO has no learning signal. Check the env's reward on sample completions "
                "(`veritas sample ... --with-oracle`, `veritas score`), max_new_tokens (truncated answers) and the "
                "prompt format; raise --zero-reward-patience (0 = off) to keep going."
            )
            log.error(self.message)
            control.should_training_stop = True
            control.should_save = True


class TimeBudget(TrainerCallback):
    """End training cleanly (checkpoint saved, after-evaluation still run) once ``minutes`` of training have passed.

    The clock starts at ``on_train_begin`` (model loading and the baseline evaluation are not counted) and is
    checked after every optimizer step, so a run stops at the first step boundary past the budget.
    """

    def __init__(self, minutes: float):
        if minutes <= 0:
            raise ValueError(f"max_train_minutes={minutes!r}; expected > 0 (0 turns the budget off)")
        self.seconds = 60.0 * float(minutes)
        self.t0: float | None = None
        self.fired_at: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.t0 is not None and time.perf_counter() - self.t0 >= self.seconds and state.global_step < state.max_steps:
            self.fired_at = state.global_step
            log.info("time budget: %.1f min of training reached at step %d; saving and stopping", self.seconds / 60,
                     state.global_step)
            control.should_training_stop = True
            control.should_save = True

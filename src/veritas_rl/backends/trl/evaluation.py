"""Held-out evaluation inside a TRL run: the generator it uses, and a periodic held-out curve.

The before/after accuracy of a run and ``veritas eval`` share :func:`veritas_rl.eval.greedy.score_greedy`;
only the generator differs. With ``use_vllm`` in colocate mode the run evaluates with the trainer's own
vLLM engine (after syncing the current weights into it), which is what makes a 500-task held-out curve
affordable on one GPU; otherwise it decodes with transformers ``generate`` on the trainer's model.

``eval_steps > 0`` adds :class:`HeldOutCurve`: every ``eval_steps`` optimizer steps the same held-out
tasks are decoded greedily and scored; each point (step, accuracy, share at the token cap, score kinds)
goes to ``<run>/eval_curve.jsonl`` and the console, and :func:`plot_curve` draws ``eval_curve.png``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from veritas_rl.eval.greedy import HFGenerator, VLLMGenerator, score_greedy

log = logging.getLogger("veritas_rl.backends.trl")


def trainer_generator(trainer, tokenizer, batch_size: int):
    """The generator for held-out evaluation during/after training (see the module docstring)."""
    vg = getattr(trainer, "vllm_generation", None) if getattr(trainer, "use_vllm", False) else None
    if vg is None or getattr(vg, "mode", None) != "colocate":
        return HFGenerator(trainer.model, tokenizer, batch_size)

    def before():
        vg.sync_weights()  # the engine holds the weights of the last rollout; evaluate the current ones
        if vg.enable_sleep_mode:
            vg.llm.wake_up(tags=["kv_cache"])

    def after():
        if vg.enable_sleep_mode:  # as TRL leaves it after a rollout; the next rollout re-syncs the weights
            vg.llm.sleep(level=2)
            vg._llm_weights_sleeping = True
            trainer._last_loaded_step = -1

    return VLLMGenerator(vg.llm, tokenizer, before=before, after=after)


def curve_point(step: int, result) -> dict[str, Any]:
    return {"step": step, "accuracy": result.accuracy, "mean_score": result.mean_score, "clipped": result.clipped,
            "n": result.n, "kinds": result.kinds}


class HeldOutCurve(TrainerCallback):
    """Greedy held-out accuracy every ``every`` steps (and the step-0 point from the run's baseline)."""

    def __init__(self, trainer, tokenizer, env, tasks, max_new_tokens: int, every: int, path: Path,
                 batch_size: int = 32, baseline: dict[str, Any] | None = None):
        if every < 1:
            raise ValueError(f"eval_steps={every!r}; expected >= 1 (0 turns the curve off)")
        self.trainer, self.tokenizer, self.env, self.tasks = trainer, tokenizer, env, tasks
        self.max_new_tokens, self.every, self.path, self.batch_size = max_new_tokens, every, Path(path), batch_size
        self.points: list[dict[str, Any]] = []
        if self.path.is_file():  # a resumed run keeps its earlier points
            self.points = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]
        elif baseline is not None:
            self._append({"step": 0, **{k: baseline.get(k) for k in ("accuracy", "mean_score", "clipped", "n",
                                                                    "kinds")}})

    def _append(self, point: dict[str, Any]) -> None:
        self.points.append(point)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(point) + "\n")

    def evaluate(self, step: int) -> dict[str, Any]:
        gen = trainer_generator(self.trainer, self.tokenizer, self.batch_size)
        result = score_greedy(gen, self.env, self.tasks, self.max_new_tokens, keep_samples=0,
                              desc=f"held-out eval (step {step})")
        point = curve_point(step, result)
        self._append(point)
        log.info("held-out greedy accuracy at step %d: %.1f%% (%d tasks, %.0f%% at the token cap)", step,
                 100 * result.accuracy, result.n, 100 * result.clipped)
        return point

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if step % self.every == 0 and step < state.max_steps and not any(p["step"] == step for p in self.points):
            self.evaluate(step)


def plot_curve(points: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Held-out accuracy vs step (``eval_curve.png``); None when there are fewer than two points."""
    points = [p for p in points if p.get("accuracy") is not None]
    if len(points) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([p["step"] for p in points], [100 * p["accuracy"] for p in points], marker="o", label="greedy accuracy")
    ax.plot([p["step"] for p in points], [100 * (p.get("clipped") or 0) for p in points], linestyle="--",
            label="replies at the token cap")
    ax.set_xlabel("step")
    ax.set_ylabel("% of held-out tasks")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

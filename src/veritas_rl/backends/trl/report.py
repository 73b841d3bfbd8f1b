"""End-of-run report in the run dir: ``report.json``, ``report.md`` and ``reward.png``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def reward_curve(log_history: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """``(step, mean reward)`` of every training log entry that has a reward (GRPO)."""
    return [(int(e["step"]), float(e["reward"])) for e in log_history if "reward" in e and e.get("reward") is not None]


def plot_rewards(curve: list[tuple[int, float]], path: Path, title: str) -> Path | None:
    if not curve:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps, rewards = zip(*curve)
    ax.plot(steps, rewards, marker="o" if len(steps) < 40 else None, linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(run_dir: Path, report: dict[str, Any], log_history: list[dict[str, Any]]) -> dict[str, Path]:
    run_dir = Path(run_dir)
    curve = reward_curve(log_history)
    report = {**report, "reward_curve": curve}
    paths = {"json": run_dir / "report.json", "md": run_dir / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    title = f"{report.get('mode', '').upper()} {report.get('env', '')} — reward per step"
    png = plot_rewards(curve, run_dir / "reward.png", title)
    if png is not None:
        paths["png"] = png
    paths["md"].write_text(markdown(report, has_plot=png is not None), encoding="utf-8")
    return paths


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _stopped_by(report: dict[str, Any]) -> str:
    if report.get("stopped_by"):
        return str(report["stopped_by"])
    if report.get("time_budget_stop_step") is not None:
        return f"time budget (max_train_minutes) at step {report['time_budget_stop_step']}"
    return "step budget"


def markdown(report: dict[str, Any], has_plot: bool) -> str:
    before, after = report.get("before") or {}, report.get("after") or {}
    lines = [
        f"# {report.get('mode', '').upper()} on `{report.get('env')}`",
        "",
        f"- model: `{report.get('model')}`",
        f"- env config: `{json.dumps(report.get('env_config') or {})}`",
        f"- steps: {report.get('steps')} (wall-clock {report.get('train_seconds', 0):.0f} s, device {report.get('device')})",
        f"- stopped by: {_stopped_by(report)}",
        "",
        "| held-out greedy | tasks | accuracy | mean score |",
        "|---|---|---|---|",
        f"| before | {before.get('n', '-')} | {_pct(before.get('accuracy'))} | {_pct(before.get('mean_score'))} |",
        f"| after | {after.get('n', '-')} | {_pct(after.get('accuracy'))} | {_pct(after.get('mean_score'))} |",
        "",
    ]
    timing = report.get("timing")
    if timing:
        from veritas_rl.backends.trl.timing import KEYS

        phases = [k for k in KEYS if k != "gen_share"]
        lines += [f"Median seconds per step (`timing_s/*`, {timing['steps'] - timing['warmup_steps_left_out']} steps "
                  f"after the first {timing['warmup_steps_left_out']}; generation share "
                  f"{100 * timing['median_gen_share']:.0f}%):", "",
                  "| " + " | ".join(phases) + " |", "|" + "---|" * len(phases),
                  "| " + " | ".join(f"{timing[f'median_{k}']:.2f}" for k in phases) + " |", ""]
    if has_plot:
        lines += ["![reward per step](reward.png)", ""]
    return "\n".join(lines)

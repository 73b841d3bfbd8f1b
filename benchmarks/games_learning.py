#!/usr/bin/env python
"""Whole-game RL that wins: GRPO on tic_tac_toe against ``random`` in game mode (TRL backend), win rate before/after.

    python benchmarks/games_learning.py --model embedded:qwen2.5-coder-0.5b --use-vllm --warmup-steps 0 \
        --learning-rate 5e-6 --steps 1000 --max-train-minutes 6 --out "$OUT"   # one GPU, the stronger embedded model
    python benchmarks/games_learning.py --steps 300 --out "$OUT"            # one GPU, SmolLM2 (needs the warm-up)
    python benchmarks/games_learning.py --smoke --out /tmp/games-smoke       # CPU check of the plumbing (~3 min)

Stages, all with the code behind ``veritas train grpo`` (:func:`veritas_rl.backends.trl.runner.run`):

1. **Before**: the model (default ``embedded:smollm2-135m``) plays ``--eval-games`` seat-balanced games
   of tic_tac_toe against ``random`` and against ``mcts:10`` (the games ``veritas eval-games --episode
   game --num-episodes N --seed 0`` plays, turns batched: :mod:`veritas_rl.eval.batched`).
2. **Warm-up** (``--warmup-steps``, default 40; 0 skips it): GRPO in move mode on the ``legal`` reward.
   The untrained SmolLM2 never writes a legal ``<answer>`` (docs/benchmarks.md), so every game would end
   at its first move with reward 0 and GRPO would have no signal at all; 40 legal-move steps taught it
   the answer format before (0% -> 95% legal). Its rows are reported too.
3. **Game GRPO** (``--steps``): ``--episode game --opponent random`` from the warm-up model, one whole
   game per rollout, reward = the normalised game result (+ ``--legal-move-bonus`` per legal move).
   Every ``--curve-every`` steps the current weights play ``--curve-games`` games against ``random``
   (seed 1, so the curve's games are not the final table's) -> ``curve.jsonl`` and ``win_rate.png``.
4. **After**: the trained model, same games as stage 1.

Writes ``<out>/games_learning.json`` (everything), ``games_learning.md`` (rows in the eval-games table
format of docs/benchmarks.md: policy | opponent | case | episodes | win | draw | loss | illegal move)
and ``win_rate.png``. Full fine-tuning by default (``--lora-rank`` for LoRA); ``--use-vllm`` generates
the training rollouts with TRL's colocated vLLM (the game loop calls the trainer's own generate).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger("benchmarks.games_learning")

CASE = "tic_tac_toe"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="embedded:smollm2-135m", help="model (default: embedded:smollm2-135m)")
    p.add_argument("--steps", type=int, default=300, help="game-mode GRPO steps (default: 300)")
    p.add_argument("--warmup-steps", type=int, default=40, help="move-mode legal GRPO steps first (default: 40)")
    p.add_argument("--opponent", default="random", help="training opponent rung (default: random)")
    p.add_argument("--eval-games", type=int, default=200, help="games per before/after row (default: 200)")
    p.add_argument("--eval-opponents", nargs="+", default=["random", "mcts:10"], help="(default: random mcts:10)")
    p.add_argument("--curve-every", type=int, default=25, help="curve point every K steps (default: 25)")
    p.add_argument("--curve-games", type=int, default=40, help="games per curve point (default: 40)")
    p.add_argument("--games-per-step", type=int, default=8, help="distinct games per step (default: 8)")
    p.add_argument("--num-generations", type=int, default=8, help="rollouts per game (GRPO group, default: 8)")
    p.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches per step: the loss forward holds games-per-step x num-generations / this "
                        "whole transcripts' logits at once (default: 1)")
    p.add_argument("--learning-rate", type=float, default=1e-5, help="(default: 1e-5)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="tokens per model turn (default: 32)")
    p.add_argument("--legal-move-bonus", type=float, default=0.0, help="shaping per legal move (default: 0)")
    p.add_argument("--rollout-seeds", choices=("shared", "distinct"), default="shared",
                   help="the rollouts of one game share its opponent/chance seed, or each draws its own (default: "
                        "shared)")
    p.add_argument("--lora-rank", type=int, default=0, help="0 = full fine-tuning (default: 0)")
    p.add_argument("--zero-reward-patience", type=int, default=20,
                   help="stop game training after this many steps whose every game scored 0 (a collapsed policy: "
                        "GRPO has no signal left), then evaluate; 0 = never (default: 20)")
    p.add_argument("--use-vllm", action="store_true", help="training rollouts through TRL's colocated vLLM")
    p.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.3,
                   help="GPU share of the colocated vLLM engine (default: 0.3)")
    p.add_argument("--max-train-minutes", type=float, default=0.0,
                   help="stop game-mode training after this many minutes, then evaluate (default: 0 = no limit)")
    p.add_argument("--eval-batch-size", type=int, default=100, help="games answered per generate call (default: 100)")
    p.add_argument("--label", default=None, help="model name in the table (default: from --model)")
    p.add_argument("--out", default="games-learning-out", help="output dir (default: ./games-learning-out)")
    p.add_argument("--smoke", action="store_true", help="tiny CPU run of every stage (LoRA r=4, 2+1 steps, 4 games)")
    return p


def _settings(args, run_dir: Path, name: str, **over):
    from veritas_rl.backends.trl.settings import build_settings

    base = {"env": "openspiel", "output_dir": str(run_dir), "run_name": name, "learning_rate": args.learning_rate,
            "max_new_tokens": args.max_new_tokens, "num_generations": args.num_generations,
            "batch_size": args.games_per_step * args.num_generations // args.grad_accum,
            "grad_accum": args.grad_accum, "lora_rank": args.lora_rank,
            "use_vllm": args.use_vllm, "vllm_gpu_memory_utilization": args.vllm_gpu_memory_utilization,
            "zero_reward_patience": args.zero_reward_patience, "report_to": "none", "save_total_limit": 1}
    if args.smoke:
        base.update(lora_rank=4, lora_alpha=8, cpu_threads=1, max_new_tokens=8, batch_size=4, num_generations=2,
                    grad_accum=1)
    base.update(over)
    base["save_steps"] = max(1, int(base.get("max_steps", 1)))
    return build_settings(None, base)


def _evaluate(model, tokenizer, args, label: str, opponents, games: int, seed: int = 0) -> dict:
    from veritas_rl.eval.batched import BatchGenerator, evaluate_batched

    gen = BatchGenerator(model, tokenizer, max_new_tokens=8 if args.smoke else args.max_new_tokens)
    return {opp: evaluate_batched(gen, label, opp, [CASE], games, seed, episode="game", batch_size=args.eval_batch_size)
            for opp in opponents}


def _save(out: Path, report: dict) -> None:
    """Write the report so far (a run cut short still leaves every finished stage on disk)."""
    (out / "games_learning.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def _free() -> None:
    """Hand the cached GPU memory of dropped models back (vLLM checks free memory when it starts)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _load(spec: str):
    from veritas_rl.models import load_causal_lm, resolve_checkpoint
    import torch

    path, adapter = resolve_checkpoint(spec)
    return load_causal_lm(path, "cuda" if torch.cuda.is_available() else "cpu", adapter=adapter)


def win_rate_curve(args, path: Path):
    """A TrainerCallback: the current weights against ``random`` every ``--curve-every`` steps (and at step 0)."""
    from transformers import TrainerCallback

    class WinRateCurve(TrainerCallback):
        def __init__(self):
            self.points: list[dict] = []

        def _point(self, step, model, tokenizer):
            t0 = time.perf_counter()
            rep = _evaluate(model, tokenizer, args, "curve", ["random"], args.curve_games, seed=1)["random"]
            detail = rep["cases"][CASE]["episodes_detail"]
            point = {"step": step, **rep["cases"][CASE]["rates"], "games": args.curve_games,
                     "seconds": round(time.perf_counter() - t0, 1), **curve_evidence(detail)}
            self.points.append(point)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(point) + "\n")
            log.info("curve: step %d: %s", step, " ".join(f"{k}={point[k]:.2f}" for k in ("win", "draw", "loss",
                                                                                           "illegal")))

        def on_train_begin(self, targs, state, control, model=None, processing_class=None, **kwargs):
            if state.global_step == 0:
                self._point(0, model, processing_class)

        def on_step_end(self, targs, state, control, model=None, processing_class=None, **kwargs):
            if state.global_step % args.curve_every == 0:
                self._point(state.global_step, model, processing_class)

    return WinRateCurve()


def curve_evidence(detail: list[dict]) -> dict:
    """What a curve point shows besides rates, so a collapse can be read: the illegal games' reasons (counted)
    and the model's last text in the first game of each outcome (a format-only or degenerate policy shows here)."""
    from collections import Counter

    reasons = Counter(d["reason"] for d in detail if d["outcome"] == "illegal" and d.get("reason"))
    samples = {}
    for d in detail:
        samples.setdefault(d["outcome"], d.get("last_completion"))
    return {"illegal_reasons": dict(reasons.most_common(5)), "last_completion_by_outcome": samples}


def plot(points, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    steps = [p["step"] for p in points]
    for key, colour in (("win", "#2a9d8f"), ("draw", "#e9c46a"), ("loss", "#e76f51"), ("illegal", "#6c757d")):
        ax.plot(steps, [p[key] for p in points], marker="o", label=key, color=colour)
    ax.set_ylim(0, 1)
    ax.set_xlabel("GRPO step (game mode)")
    ax.set_ylabel(f"rate vs random ({points[0]['games'] if points else 0} games)")
    ax.set_title(title)
    ax.legend(loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    from veritas_rl.backends.trl.runner import run
    from veritas_rl.eval.games import markdown_rows

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.grad_accum < 1 or (args.games_per_step * args.num_generations) % args.grad_accum:
        parser.error(f"--grad-accum {args.grad_accum} must divide --games-per-step x --num-generations = "
                     f"{args.games_per_step * args.num_generations}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if args.smoke:
        import torch

        torch.set_num_threads(1)  # a shared CPU: one thread is often several times faster than two
        args.steps, args.warmup_steps = min(args.steps, 2), min(args.warmup_steps, 1)
        args.eval_games, args.curve_games, args.curve_every = 4, 2, 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = out / "runs"
    name = args.label or args.model.split(":")[-1].split("/")[-1]
    report = {"args": vars(args), "case": CASE, "stages": {}}
    t_all = time.perf_counter()

    model, tok = _load(args.model)
    report["stages"]["before"] = _evaluate(model, tok, args, f"{name} (untrained)", args.eval_opponents,
                                           args.eval_games)
    _save(out, report)
    del model
    _free()

    start = args.model
    if args.warmup_steps:
        t0 = time.perf_counter()
        # the warm-up generates with transformers even under --use-vllm: TRL's colocated vLLM engine sets up
        # torch.distributed for its process, and one process gets one engine (the game stage's)
        # zero_reward_patience 0: the untrained SmolLM2 scores 0 for a while before it learns the format
        warm = run(_settings(args, runs, "warmup", use_vllm=False, zero_reward_patience=0,
                             env_config={"reward_mode": "legal", "cases": [CASE],
                                                               "num_tasks_per_case": 4096},
                             max_steps=args.warmup_steps, train_size=max(64, args.warmup_steps * args.games_per_step),
                             eval_size=8 if args.smoke else 100))
        start = str(warm.run_dir / "final")
        model, tok = _load(start)
        label = f"{name} after GRPO (move, legal, {args.warmup_steps} steps)"
        report["stages"]["warmup"] = {"seconds": round(time.perf_counter() - t0, 1), "run_dir": str(warm.run_dir),
                                      "held_out_legal": warm.after,
                                      "eval": _evaluate(model, tok, args, label, args.eval_opponents, args.eval_games)}
        _save(out, report)
        del model
    _free()

    curve = win_rate_curve(args, out / "curve.jsonl")
    (out / "curve.jsonl").write_text("", encoding="utf-8")
    t0 = time.perf_counter()
    game = run(_settings(args, runs, "game", model=start, env_config={"cases": [CASE]}, episode="game",
                         opponent=args.opponent, legal_move_bonus=args.legal_move_bonus, max_steps=args.steps,
                         rollout_seeds=args.rollout_seeds,
                         max_train_minutes=args.max_train_minutes,
                         train_size=max(64, args.steps * args.games_per_step), eval=False), callbacks=[curve])
    train_seconds = time.perf_counter() - t0
    # the run dir: its final/ model, or (a run the zero-reward breaker stopped) the checkpoint it saved then
    model, tok = _load(str(game.run_dir))
    stopped = f", stopped by the {game.stopped_by}" if game.stopped_by else ""
    # the row names the settings that differ between runs (docs/benchmarks.md compares them)
    used = [f"game vs {args.opponent}", f"lr {args.learning_rate:g}".replace("e-0", "e-")]
    used += [f"legal-move bonus {args.legal_move_bonus:g}"] if args.legal_move_bonus else []
    used += ["distinct seeds"] if args.rollout_seeds == "distinct" else []
    label = f"{name} after GRPO ({', '.join(used)}, {game.steps} steps{stopped})"
    report["stages"]["after"] = _evaluate(model, tok, args, label, args.eval_opponents, args.eval_games)
    report["game_training"] = {"steps": game.steps, "seconds": round(train_seconds, 1), "run_dir": str(game.run_dir),
                               "curve": curve.points, "device": game.report.get("device"),
                               "stopped_by": game.stopped_by, "message": game.report.get("message", "")}
    report["seconds"] = round(time.perf_counter() - t_all, 1)

    rows = ["| policy | opponent | case | episodes | win | draw | loss | illegal move |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    for stage in ("before", "warmup", "after"):
        reps = report["stages"].get(stage)
        if reps is None:
            continue
        reps = reps["eval"] if stage == "warmup" else reps
        for rep in reps.values():
            rows += markdown_rows(rep)
    table = "\n".join(rows) + "\n"
    (out / "games_learning.md").write_text(table, encoding="utf-8")
    _save(out, report)
    if curve.points:
        plot(curve.points, out / "win_rate.png", f"{name}: {CASE} vs random while training")
    print(table)
    print(f"game-mode training: {game.steps} steps in {train_seconds:.0f} s; everything: {report['seconds']:.0f} s; "
          f"outputs in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

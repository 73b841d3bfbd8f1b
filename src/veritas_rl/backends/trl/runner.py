"""Run a GRPO or SFT job with TRL on one machine: data, model, trainer, resume, evaluation, report."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veritas_rl.backends.trl.settings import TrainSettings

log = logging.getLogger("veritas_rl.backends.trl")

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    stopped_by: str | None  # None = ran its step budget
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    report: dict[str, Any] = field(default_factory=dict)
    trainer: Any = field(default=None, repr=False)  # the TRL trainer, for callers that inspect its state

    @property
    def ok(self) -> bool:
        return self.stopped_by is None


# -- run directories and checkpoints ---------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The ``checkpoint-N`` with the largest N that has a ``trainer_state.json`` (a complete save)."""
    if not run_dir.is_dir():
        return None
    found = []
    for p in run_dir.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m and p.is_dir() and (p / "trainer_state.json").is_file():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def resolve_run_dir(s: TrainSettings, now: _dt.datetime | None = None) -> tuple[Path, Path | None]:
    """``(run_dir, checkpoint to resume from or None)``. A new run never reuses an existing directory."""
    out = Path(s.output_dir).expanduser()
    suffix = f"{s.mode}-{_slug(s.env)}"
    if s.resume not in (None, "auto"):  # an explicit run dir or checkpoint dir
        path = Path(s.resume).expanduser()
        if CHECKPOINT_RE.match(path.name) and (path / "trainer_state.json").is_file():
            return path.parent, path
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise ValueError(f"resume={s.resume!r}: no checkpoint-N with trainer_state.json in {path}")
        return path, ckpt
    if s.resume == "auto":
        if s.run_name:
            run_dir = out / s.run_name
            return run_dir, latest_checkpoint(run_dir)
        candidates = sorted(
            (p for p in out.glob(f"*-{suffix}") if latest_checkpoint(p) is not None),
            key=lambda p: p.stat().st_mtime,
        ) if out.is_dir() else []
        if candidates:
            return candidates[-1], latest_checkpoint(candidates[-1])
        log.info("resume=auto: no earlier %s run with a checkpoint under %s; starting a new run", suffix, out)
    name = s.run_name or f"{(now or _dt.datetime.now()).strftime('%Y%m%d-%H%M%S')}-{suffix}"
    run_dir = out / name
    if run_dir.exists():
        if s.run_name:
            raise ValueError(f"run_name={s.run_name!r}: {run_dir} exists; pass --resume auto to continue it, or "
                             "another --run-name (runs are never overwritten)")
        n = 2
        while (out / f"{name}-{n}").exists():
            n += 1
        run_dir = out / f"{name}-{n}"
    return run_dir, None


# -- model -------------------------------------------------------------------------------------


def _device_and_precision(s: TrainSettings) -> tuple[str, str]:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = s.precision
    if precision == "auto":
        precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if device == "cpu" and s.cpu_threads:
        torch.set_num_threads(s.cpu_threads)
    if device == "cpu" and precision == "fp16":
        raise ValueError("precision='fp16' needs a GPU; use fp32 or bf16 on a CPU")
    return device, precision


def load_model(model_path: str, device: str):
    """fp32 model + tokenizer, loaded as ``veritas eval`` loads them (so the before-accuracy matches it)."""
    from veritas_rl.models import load_causal_lm

    return load_causal_lm(model_path, device)


def lora_config(s: TrainSettings):
    if s.lora_rank == 0:
        return None
    from peft import LoraConfig

    targets: Any = s.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
        if not targets:
            raise ValueError("lora_target_modules is empty; give module names (q_proj,v_proj) or all-linear")
    return LoraConfig(r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=0.0, target_modules=targets,
                      task_type="CAUSAL_LM")


def _report_to(s: TrainSettings, run_dir: Path) -> str | list[str]:
    if s.report_to == "none":
        return "none"
    if s.report_to == "wandb":
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise ValueError("report_to='wandb' needs wandb: pip install wandb (WANDB_MODE=offline works "
                             "without an account)") from None
        os.environ.setdefault("WANDB_PROJECT", "veritas-rl")
        os.environ.setdefault("WANDB_DIR", str(run_dir))
    if s.report_to == "tensorboard":  # transformers reads the directory from the environment; one per run
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tensorboard")
    return [s.report_to]


def _common_args(s: TrainSettings, run_dir: Path, precision: str) -> dict[str, Any]:
    return dict(
        output_dir=str(run_dir),
        run_name=run_dir.name,
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        learning_rate=s.learning_rate,
        lr_scheduler_type=s.lr_scheduler,
        warmup_steps=s.warmup_steps,
        weight_decay=s.weight_decay,
        max_grad_norm=s.max_grad_norm,
        max_steps=s.max_steps,
        num_train_epochs=s.epochs,
        seed=s.seed,
        logging_steps=s.logging_steps,
        save_strategy="steps",
        save_steps=s.save_steps,
        save_total_limit=s.save_total_limit,
        report_to=_report_to(s, run_dir),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        gradient_checkpointing=s.gradient_checkpointing,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def colocate_master_port(environ=os.environ) -> str:
    """The torch.distributed port for a single-process colocated vLLM engine, chosen by the OS when unset.

    TRL (``trainer/utils.py: ensure_master_addr_port``) takes the first free port of 29500, 23456, ... when
    ``MASTER_PORT`` is unset: two runs started together on one GPU both see 29500 free and the second dies
    with EADDRINUSE (measured on an H200, 2026-12-02). A port the kernel hands out (bind to port 0) differs
    between processes. A ``MASTER_PORT`` already set (torchrun, accelerate, Slurm, the user) is kept; ``0``
    and ``auto`` mean "choose one", as in TRL.
    """
    import socket

    if environ.get("MASTER_PORT", "").strip().lower() not in {"", "0", "auto"}:
        return environ["MASTER_PORT"]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    environ["MASTER_PORT"] = port
    environ.setdefault("MASTER_ADDR", "localhost")
    return port


def _vllm_args(s: TrainSettings) -> dict[str, Any]:
    """TRL's vLLM settings, after checking that vLLM can run here (a GPU and the package)."""
    if not s.use_vllm:
        return {"use_vllm": False}
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise ValueError("use_vllm needs a CUDA GPU; on a CPU leave it off (transformers generate())")
    if importlib.util.find_spec("vllm") is None:
        raise ValueError("use_vllm needs vLLM: pip install 'veritas-rl[vllm]' (see docs/training.md)")
    args: dict[str, Any] = {"use_vllm": True, "vllm_mode": s.vllm_mode}
    if s.vllm_mode == "colocate":
        colocate_master_port()
        args.update(vllm_gpu_memory_utilization=s.vllm_gpu_memory_utilization,
                    vllm_enable_sleep_mode=s.vllm_enable_sleep_mode)
    else:
        args.update(vllm_server_base_url=s.vllm_server_base_url, vllm_server_timeout=s.vllm_server_timeout)
    return args


def build_trainer(s: TrainSettings, env, model, tokenizer, train_rows: list[dict], run_dir: Path, precision: str,
                  curriculum=None):
    """The TRL trainer for ``s.mode`` plus the reward adapter (GRPO) or ``None`` (SFT)."""
    from datasets import Dataset

    # with a curriculum (backends/trl/curriculum.py) the rows are slots of the stream, drawn when read
    dataset = Dataset.from_list(train_rows) if curriculum is None else curriculum.dataset()
    if s.mode == "grpo":
        from trl import GRPOConfig, GRPOTrainer

        from veritas_rl.backends.trl.maxent import objective_parts
        from veritas_rl.backends.trl.reward import EnvReward

        trainer_cls, config_extra, trainer_extra = objective_parts(s)  # grpo: GRPOTrainer; maxent: maxent.py
        config = GRPOConfig(
            **_common_args(s, run_dir, precision),
            num_generations=s.num_generations,
            max_completion_length=s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            beta=s.beta,
            log_completions=s.num_completions_to_print > 0,
            num_completions_to_print=s.num_completions_to_print or None,
            remove_unused_columns=False,
            loss_type=s.loss_type,
            mask_truncated_completions=s.mask_truncated_completions,
            **_vllm_args(s),
            **(curriculum.grpo_args() if curriculum is not None else {}),
            **config_extra,
        )
        if s.episode == "game":  # whole games per rollout: rows, reward and rollout_func from backends/trl/episodes.py
            from veritas_rl.backends.trl.episodes import game_trainer_parts

            parts = game_trainer_parts(s, env)
            trainer = GRPOTrainer(model=model, args=config, processing_class=tokenizer, peft_config=lora_config(s),
                                  **parts)
            return trainer, parts["reward_funcs"][0]
        reward = EnvReward(env.name, s.env_config)
        if curriculum is not None:
            reward = curriculum.wrap(reward)
        trainer = trainer_cls(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                              processing_class=tokenizer, peft_config=lora_config(s), **trainer_extra)
        return trainer, reward
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(**_common_args(s, run_dir, precision), completion_only_loss=True, packing=False)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=lora_config(s))
    return trainer, None


# -- the run ---------------------------------------------------------------------------------------


def run(s: TrainSettings, callbacks: Any = ()) -> RunResult:
    """Train per ``s``; returns where it went and the before/after greedy accuracy.

    ``callbacks``: extra ``transformers.TrainerCallback`` objects (benchmarks' periodic evaluations)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from veritas_rl.envs import make
    from veritas_rl.models import resolve_model
    from veritas_rl.backends.trl import curriculum as trl_curriculum
    from veritas_rl.backends.trl import data
    from veritas_rl.backends.trl.callbacks import ConsoleProgress, TimeBudget, ZeroRewardBreaker
    from veritas_rl.eval.greedy import greedy_accuracy, score_greedy
    from veritas_rl.backends.trl.evaluation import HeldOutCurve, plot_curve, trainer_generator
    from veritas_rl.backends.trl.report import write_report

    env = make(s.env, **s.env_config)  # bad env config fails here, before any model is loaded
    # --episode game: the training rows are games (backends/trl/episodes.py), not env tasks
    train_size = 0 if s.episode == "game" else s.train_size
    train_idx, eval_idx = data.split_indices(env, train_size, s.eval_size if s.eval else 0)
    run_dir, checkpoint = resolve_run_dir(s)
    run_dir.mkdir(parents=True, exist_ok=True)
    if checkpoint is not None:
        log.info("resuming %s from %s", run_dir, checkpoint.name)
    (run_dir / "settings.json").write_text(json.dumps(s.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    log.info("run dir: %s", run_dir)

    device, precision = _device_and_precision(s)
    model_path = resolve_model(s.model)
    model, tokenizer = load_model(model_path, device)
    train_tasks = data.tasks_at(env, train_idx)
    eval_tasks = data.tasks_at(env, eval_idx)
    rows = data.grpo_rows(env, train_tasks) if s.mode == "grpo" else data.sft_rows(env, train_tasks)
    log.info("%s on %s: %d training tasks, %d held-out, model %s on %s (%s)", s.mode, env.name, len(rows),
             len(eval_tasks), model_path, device, precision)

    before = None
    baseline_path = run_dir / "baseline.json"
    # with vLLM colocated, the baseline is decoded by the trainer's engine (below, once the trainer exists)
    vllm_eval = s.use_vllm and s.vllm_mode == "colocate"
    if eval_tasks and not vllm_eval:
        if baseline_path.is_file():  # a resumed run keeps the baseline of the untrained model
            before = json.loads(baseline_path.read_text(encoding="utf-8"))
        else:
            before = greedy_accuracy(model, tokenizer, env, eval_tasks, s.max_new_tokens, s.eval_batch_size,
                                     desc="greedy eval (before)").to_dict()
            baseline_path.write_text(json.dumps(before, indent=2) + "\n", encoding="utf-8")
        log.info("held-out greedy accuracy before training: %.1f%% (%d tasks)", 100 * before["accuracy"], before["n"])

    curriculum = None
    if s.mode == "grpo" and trl_curriculum.enabled(s):
        curriculum = trl_curriculum.TrlCurriculum(s, env, len(eval_tasks))
        if checkpoint is not None:
            curriculum.load(checkpoint)
    trainer, reward = build_trainer(s, env, model, tokenizer, rows, run_dir, precision, curriculum=curriculum)
    if curriculum is not None:
        trainer.add_callback(curriculum.callback(run_dir))
    if eval_tasks and vllm_eval:
        if baseline_path.is_file():
            before = json.loads(baseline_path.read_text(encoding="utf-8"))
        else:
            before = score_greedy(trainer_generator(trainer, tokenizer, s.eval_batch_size), env, eval_tasks,
                                  s.max_new_tokens, desc="greedy eval (before)").to_dict()
            baseline_path.write_text(json.dumps(before, indent=2) + "\n", encoding="utf-8")
        log.info("held-out greedy accuracy before training: %.1f%% (%d tasks, vLLM)", 100 * before["accuracy"],
                 before["n"])
    curve = None
    if eval_tasks and s.eval_steps:
        curve = HeldOutCurve(trainer, tokenizer, env, eval_tasks, s.max_new_tokens, s.eval_steps,
                             run_dir / "eval_curve.jsonl", s.eval_batch_size, baseline=before)
        trainer.add_callback(curve)
    from transformers.trainer_callback import ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(ConsoleProgress(run_dir / "metrics.jsonl"))
    timer = None
    if s.mode == "grpo":  # timing_s/* per step: where the step goes (backends/trl/timing.py)
        from veritas_rl.backends.trl.timing import StepTimer

        timer = StepTimer(trainer)
        trainer.add_callback(timer)
    for callback in callbacks:
        trainer.add_callback(callback)
    breaker = None
    if reward is not None and s.zero_reward_patience:
        breaker = ZeroRewardBreaker(reward, s.zero_reward_patience)
        trainer.add_callback(breaker)

    budget = TimeBudget(s.max_train_minutes) if s.max_train_minutes else None
    if budget is not None:
        trainer.add_callback(budget)

    t0 = time.perf_counter()
    with logging_redirect_tqdm(loggers=[logging.getLogger("veritas_rl")]):
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_seconds = time.perf_counter() - t0
    stopped_by = "zero-reward breaker" if breaker is not None and breaker.fired else None

    after = None
    if eval_tasks and stopped_by is None:
        after = score_greedy(trainer_generator(trainer, tokenizer, s.eval_batch_size), env, eval_tasks,
                             s.max_new_tokens, desc="greedy eval (after)").to_dict()
        if curve is not None and not any(p["step"] == trainer.state.global_step for p in curve.points):
            curve._append({"step": trainer.state.global_step, **{k: after[k] for k in ("accuracy", "mean_score",
                                                                                      "clipped", "n", "kinds")}})
        log.info("held-out greedy accuracy: %.1f%% before -> %.1f%% after (%d tasks)", 100 * before["accuracy"],
                 100 * after["accuracy"], after["n"])
    if s.save_final_model and stopped_by is None:
        trainer.save_model(str(run_dir / "final"))
        tokenizer.save_pretrained(str(run_dir / "final"))

    report = {
        "mode": s.mode,
        "env": env.name,
        "env_config": s.env_config,
        "model": model_path,
        "device": _device_name(device),
        "precision": precision,
        "lora_rank": s.lora_rank,
        "steps": trainer.state.global_step,
        "train_seconds": round(train_seconds, 1),
        "resumed_from": checkpoint.name if checkpoint else None,
        "stopped_by": stopped_by,
        "time_budget_stop_step": budget.fired_at if budget is not None else None,
        "message": breaker.message if stopped_by else "",
        "before": before,
        "after": after,
        "settings": s.to_dict(),
        "eval_curve": curve.points if curve is not None else None,
        "timing": _timing(timer),
    }
    if curve is not None:
        plot_curve(curve.points, run_dir / "eval_curve.png", f"{env.name}: held-out greedy accuracy per step")
    paths = write_report(run_dir, report, trainer.state.log_history)
    log.info("report: %s", ", ".join(str(p) for p in paths.values()))
    return RunResult(run_dir=run_dir, steps=trainer.state.global_step, stopped_by=stopped_by, before=before,
                     after=after, report=report, trainer=trainer)


def _timing(timer) -> dict | None:
    if timer is None:
        return None
    from veritas_rl.backends.trl.timing import summarise

    return summarise(timer.rows)


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores)"

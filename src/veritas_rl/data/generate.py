"""Tasks of any registered env → RL or SFT parquet for verl (static datasets).

**RL** rows follow verl's schema and hold exactly what :func:`veritas_rl.backends.verl.plugins.compute_score`
routes and scores by, the same ``extra_info`` that :class:`~veritas_rl.backends.verl.plugins.DynamicEnvDataset`
serves, so a static file can replace the dynamic class (``data.train_files=<parquet>`` with verl's own
``RLHFDataset``) while keeping the reward::

    data_source   env name ("lgc-v2")
    prompt        the task's chat messages
    ability       a coarse label ("logic", "math", ...)
    reward_model  {"style": "rule", "ground_truth": task.ground_truth}
    extra_info    {"env", "env_config" (JSON), "task_id", "task" (Task.to_dict as JSON), "index", "split"}

**SFT** rows hold ``messages`` = the task's prompt + one assistant turn (the env's oracle answer, or
with ``--teacher`` a worked solution from an OpenAI-compatible endpoint, kept only if the env scores
it 1.0), which verl 0.9.1's ``MultiTurnSFTDataset`` reads (loss on the assistant turn only).

Which tasks: ``--task-ids`` (explicit), else ``--start-task-id S`` (the env's dense index space from
``S``: ``env.task_id_at(S), env.task_id_at(S+1), ...``), else ``--num-samples`` distinct indices picked
by ``--seed`` (the same pick as ``veritas sample --seed``). Train and val are split by task id
(``--val-ratio``, chosen by ``--seed``): disjoint, deterministic.

    python data_processing/generate_dataset.py --env lgc-v2 --task-types sudoku,game_of_24 --num-samples 5000
    python data_processing/generate_dataset.py --env math --format sft --num-samples 2000 \\
        --teacher --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from veritas_rl.backends.verl.plugins import verl_extra_info

log = logging.getLogger(__name__)

FORMATS = ("rl", "sft")

#: ``ability`` column by env (verl copies it through; it only labels rows)
ABILITY = {
    "lgc-v2": "logic",
    "reasoning-gym": "reasoning",
    "math": "math",
    "answer-tag": "qa",
    "openspiel": "games",
    "swe-synth": "coding",
}


# -- rows ------------------------------------------------------------------------------------


def rl_row(task: Any, env_name: str, env_config_json: str, index: int, split: str) -> dict[str, Any]:
    """One verl RL row for ``task`` (see the module docstring)."""
    return {
        "data_source": env_name,
        "prompt": [dict(m) for m in task.prompt],
        "ability": ABILITY.get(env_name, env_name),
        "reward_model": {"style": "rule", "ground_truth": str(task.ground_truth)},
        "extra_info": verl_extra_info(task, env_name, env_config_json, index, split),
    }


def sft_row(task: Any, completion: str, env_name: str, env_config_json: str, index: int, split: str,
            source: str) -> dict[str, Any]:
    """One SFT row: ``messages`` = prompt + the assistant ``completion`` (``source``: oracle | teacher)."""
    prompt = [dict(m) for m in task.prompt]
    return {
        "data_source": env_name,
        "messages": [*prompt, {"role": "assistant", "content": completion}],
        "prompt": prompt,
        "response": completion,
        "extra_info": {**verl_extra_info(task, env_name, env_config_json, index, split), "source": source},
    }


# -- task ids --------------------------------------------------------------------------------


def select_task_ids(env: Any, *, num_samples: int | None, start_task_id: int | None = None,
                    task_ids: Sequence[int] | None = None, seed: int = 0) -> list[int]:
    """The task ids to generate, in output order (see the module docstring)."""
    if task_ids:
        ids = [int(t) for t in task_ids]
        if len(set(ids)) != len(ids):
            raise ValueError("--task-ids lists a task id twice")
        return ids
    total = int(env.num_tasks)
    if num_samples is None or num_samples <= 0:
        raise ValueError(f"--num-samples={num_samples}; expected a positive integer (or give --task-ids)")
    if start_task_id is not None:
        if not 0 <= start_task_id < total:
            raise ValueError(f"--start-task-id={start_task_id} outside the env's index space [0, {total})")
        stop = min(total, start_task_id + num_samples)
        if stop - start_task_id < num_samples:
            log.warning("env %s has %d tasks: only %d from index %d", env.name, total, stop - start_task_id, start_task_id)
        return [int(env.task_id_at(i)) for i in range(start_task_id, stop)]
    from veritas_rl.commands.envs import pick_task_ids

    if num_samples > total:
        log.warning("env %s has %d tasks, fewer than --num-samples=%d: taking them all", env.name, total, num_samples)
    return [int(t) for t in pick_task_ids(env, num_samples, seed)]


# -- generation ------------------------------------------------------------------------------


@dataclass
class Result:
    train: list[dict[str, Any]] = field(default_factory=list)
    val: list[dict[str, Any]] = field(default_factory=list)
    tasks: int = 0
    dropped: Counter = field(default_factory=Counter)

    def line(self) -> str:
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        return (f"tasks: {self.tasks}, rows: {len(self.train) + len(self.val)} "
                f"(train {len(self.train)}, val {len(self.val)}), dropped: {sum(self.dropped.values())} ({dropped})")


def generate(env: Any, env_config: dict[str, Any], ids: Sequence[int], *, fmt: str = "rl", val_ratio: float = 0.0,
             seed: int = 0, teacher: Any = None, progress: bool = True) -> Result:
    """Build the rows for ``ids``; ``teacher`` is ``(TeacherClient, TeacherCache)`` for SFT from a teacher."""
    from tqdm.auto import tqdm

    from veritas_rl.data.parquet import split_groups

    if fmt not in FORMATS:
        raise ValueError(f"--format={fmt!r}; choose from: {', '.join(FORMATS)}")
    config_json = json.dumps(env_config, sort_keys=True)
    val_ids = split_groups(ids, val_ratio, seed)
    result = Result(tasks=len(ids))
    tasks = [env.task(t) for t in tqdm(ids, desc=f"{env.name} tasks", unit="task", disable=not progress)]

    completions: dict[int, tuple[str | None, str]] = {}  # task_id -> (completion, source or drop reason)
    if fmt == "sft" and teacher is not None:
        from veritas_rl.data.teacher import solve_tasks

        client, cache = teacher
        for task_id, record in solve_tasks(tasks, env, client, cache, progress=progress).items():
            if record["accepted"]:
                completions[task_id] = (record["completion"], "teacher")
            elif str(record["reason"]).startswith("teacher error"):
                completions[task_id] = (None, "teacher_error")
            else:
                completions[task_id] = (None, "teacher_rejected")
    elif fmt == "sft":
        for task in tasks:
            oracle = env.oracle(task)
            completions[task.task_id] = (oracle, "oracle") if oracle is not None else (None, "no_oracle")

    for task in tasks:
        split = "val" if task.task_id in val_ids else "train"
        out = result.val if split == "val" else result.train
        if fmt == "rl":
            out.append(rl_row(task, env.name, config_json, len(out), split))
            continue
        completion, source = completions[task.task_id]
        if completion is None:
            result.dropped[source] += 1
            continue
        out.append(sft_row(task, completion, env.name, config_json, len(out), split, source))
    return result


# -- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="generate_dataset.py",
        description="Write tasks of a registered env as verl parquet: RL rows (prompt, reward_model, extra_info "
        "for compute_score) or SFT rows (messages with the oracle answer, or a teacher's worked solution "
        "that the env scores 1.0). Files: <name>_train.parquet and <name>_val.parquet.",
    )
    parser.add_argument("--env", required=True, help="env name or alias (see `veritas envs`)")
    parser.add_argument("--config", default="{}", help="env config as a JSON object (default: {})")
    parser.add_argument("--task-types", default=None, help="comma-separated task types (lgc-v2): sets config task_types")
    parser.add_argument("--num-samples", type=int, default=None, help="number of tasks (train + val)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--start-task-id", type=int, default=None,
                       help="take --num-samples consecutive tasks of the env's index space from this index")
    which.add_argument("--task-ids", default=None, help="comma-separated task ids (instead of --num-samples)")
    parser.add_argument("--seed", type=int, default=0, help="picks the tasks (without --start-task-id/--task-ids) and the val split (default: 0)")
    parser.add_argument("--format", choices=FORMATS, default="rl", help="rl (verl RLHFDataset) or sft (messages) (default: rl)")
    parser.add_argument("--output-dir", default="train/parquet", help="where the parquet files go (default: train/parquet)")
    parser.add_argument("--name", default=None, help="file name prefix (default: <env>_<format>)")
    parser.add_argument("--val-ratio", type=float, default=0.1, help="share of the tasks held out for validation (default: 0.1)")
    teacher = parser.add_argument_group("teacher (SFT only): worked solutions from an OpenAI-compatible endpoint")
    teacher.add_argument("--teacher", action="store_true", help="ask a teacher model instead of using the oracle answer")
    teacher.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"), help="endpoint base URL, e.g. http://localhost:8000/v1 (default: $OPENAI_BASE_URL)")
    teacher.add_argument("--model", default=None, help="model name the endpoint serves")
    teacher.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key (default: OPENAI_API_KEY)")
    teacher.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default: 0.7)")
    teacher.add_argument("--max-tokens", type=int, default=4096, help="completion token limit (default: 4096)")
    teacher.add_argument("--attempts", type=int, default=1, help="completions asked per task until one scores 1.0 (default: 1)")
    teacher.add_argument("--concurrency", type=int, default=8, help="requests in flight (default: 8)")
    teacher.add_argument("--retries", type=int, default=3, help="retries per request on errors, 429 and 5xx (default: 3)")
    teacher.add_argument("--timeout", type=float, default=300.0, help="seconds per request (default: 300)")
    teacher.add_argument("--cache", default=None, help="resume file (default: <output-dir>/<name>_teacher.jsonl)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def env_config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from veritas_rl.commands.envs import parse_config

    config = parse_config(args.config)
    if args.task_types:
        types = [t.strip() for t in args.task_types.split(",") if t.strip()]
        if "task_types" in config and list(config["task_types"]) != types:
            raise ValueError("--task-types conflicts with task_types in --config; give one of them")
        config["task_types"] = types
    return config


def run(args: argparse.Namespace) -> Result:
    from veritas_rl.data.parquet import write_parquet
    from veritas_rl.envs import make, resolve_name

    env_name = resolve_name(args.env)
    env_config = env_config_from_args(args)
    env = make(env_name, **env_config)  # bad config: ValueError naming the key
    if args.task_ids:
        try:
            task_ids = [int(t) for t in args.task_ids.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"--task-ids must be comma-separated integers, got {args.task_ids!r}") from None
    else:
        task_ids = None
    if not 0.0 <= args.val_ratio < 1.0:
        raise ValueError(f"--val-ratio={args.val_ratio}; expected a number in [0, 1)")
    ids = select_task_ids(env, num_samples=args.num_samples, start_task_id=args.start_task_id, task_ids=task_ids, seed=args.seed)
    name = args.name or f"{env_name}_{args.format}"
    out = Path(args.output_dir)

    teacher = None
    if args.teacher:
        if args.format != "sft":
            raise ValueError("--teacher writes SFT data: add --format sft")
        from veritas_rl.data.teacher import TeacherCache, TeacherClient, TeacherConfig

        if not args.base_url:
            raise ValueError("--teacher needs --base-url (or $OPENAI_BASE_URL)")
        config = TeacherConfig(
            base_url=args.base_url, model=args.model or "", api_key=os.environ.get(args.api_key_env),
            temperature=args.temperature, max_tokens=args.max_tokens, timeout=args.timeout, retries=args.retries,
            attempts=args.attempts, concurrency=args.concurrency,
        )
        cache_path = Path(args.cache) if args.cache else out / f"{name}_teacher.jsonl"
        key = {"env": env_name, "env_config": json.dumps(env_config, sort_keys=True), "model": config.model}
        teacher = (TeacherClient(config), TeacherCache(cache_path, key))

    result = generate(env, env_config, ids, fmt=args.format, val_ratio=args.val_ratio, seed=args.seed,
                      teacher=teacher, progress=not args.no_progress)
    if not result.train:
        raise ValueError(f"no training row ({result.line()}); nothing written")
    for split, rows in (("train", result.train), ("val", result.val)):
        path = out / f"{name}_{split}.parquet"
        if rows:
            write_parquet(rows, path)
            log.info("wrote %d rows to %s", len(rows), path)
        elif path.exists():
            path.unlink()  # a stale file from an earlier run would not match this one
    return result


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        result = run(args)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    log.info("%s", result.line())
    return 0

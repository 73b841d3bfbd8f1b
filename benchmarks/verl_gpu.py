#!/usr/bin/env python3
"""Run the project's verl launchers for a few steps on one GPU and summarise what they did.

Runs, as a user would (variables and Hydra overrides only, no edited launcher):

  grpo       train/scripts/lgc-v2-RL-GRPO-trainer.sh   lgc-v2 boolean_expressions, full fine-tuning
  openspiel  train/scripts/openspiel-ppo-trainer.sh    LoRA, reward_mode=legal, tic_tac_toe + connect_four
  openspiel-game  the same launcher, EPISODE=game: whole tic_tac_toe games against --game-opponent (agent loop
             veritas_game), validation win/draw/loss/illegal rates before the first step and at the end
  merge-ppo  train/scripts/merge-ppo.sh                on the openspiel LoRA checkpoint (merge verified vs PEFT)
  sft        data_processing/generate_dataset.py --format sft, then train/scripts/lgc-v2-SFT-trainer.sh
  merge      train/scripts/merge.sh                    on the SFT checkpoint (loaded back, compared with the base)
  trl        benchmarks/learning.py                    the TRL backend on the same envs and number of steps

and writes <out>/verl_gpu.json and <out>/verl_gpu.md (steps, s/step after the first step, generation
throughput, reward mean per step, checkpoint, merge result) plus one log per part (<out>/<part>.log).
Parts that fail are recorded with their exit status and the last error line; the others still run.

On the lent GPU (verl 0.9.1 + vLLM staged into /root/site, see ../shared/gpu/README.md):
    PYTHONPATH=/root/site:$PWD/src python3 benchmarks/verl_gpu.py --out "$OUT" --parts grpo,openspiel,merge-ppo
Without flash-attn (that image) the runs use ATTN_IMPLEMENTATION=sdpa (--attn). trl must not be importable
for the verl parts (verl 0.9.1 imports trl's value-head model when it is; trl 1.x has none): stage it apart and
put it on PYTHONPATH only for --parts trl. What ran on 2026-11-22 (docs/benchmarks.md, verl-gpu):
    python3 benchmarks/verl_gpu.py --out "$OUT" --parts sft,merge,grpo --steps 6 --sft-steps 39 --sft-samples 1400 \
        --grpo-model sft --timeout 400 --no-validate --override actor_rollout_ref.rollout.enforce_eager=True
    FSDP_STRATEGY=fsdp2 python3 benchmarks/verl_gpu.py --out "$OUT" --parts openspiel,merge-ppo --steps 4 --timeout 400 \
        --no-validate --diag-lora --override actor_rollout_ref.rollout.enforce_eager=True
(fsdp2 is now the launchers' default for LoRA runs.) Whole games (EPISODE=game) for a few steps, from the model a
move-mode run merged (the base model writes no legal answer, so its games all score 0):
    PYTHONPATH=/root/site:$PWD/src python3 benchmarks/verl_gpu.py --out "$OUT" --parts openspiel,merge-ppo,openspiel-game \
        --steps 6 --game-model merged --timeout 540 --override actor_rollout_ref.rollout.enforce_eager=True
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("verl_gpu")
REPO = Path(__file__).resolve().parents[1]
PARTS = ("grpo", "openspiel", "openspiel-game", "merge-ppo", "sft", "merge", "trl")
GAME_RATE_RE = re.compile(r"^val-aux/(openspiel/[^/]+)/game/(win|draw|loss|illegal|max_turns)/mean@\d+$")
STEP_RE = re.compile(r"step:(\d+) - (.*)$")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def nonempty_path(text: str) -> str:
    """An argparse type: ``--model-dir ""`` (a shell variable that came out empty) is an error, not the cwd."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path (is the variable that should hold it set?)")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="where the summary and the logs go")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of: {', '.join(PARTS)}")
    p.add_argument("--steps", type=int, default=8, help="training steps per launcher (default: 8)")
    p.add_argument("--model-dir", default="/root/smol", type=nonempty_path,
                   help="HF model dir; built from --gguf when it has no config.json")
    p.add_argument("--gguf", default="/root/stage/smollm2.gguf", help="SmolLM2-135M-Instruct GGUF to build --model-dir from")
    p.add_argument("--attn", default="sdpa", help="ATTN_IMPLEMENTATION for the launchers ('' = verl's default)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per RL step (TRAIN_BATCH_SIZE; default: 8, as learning.py)")
    p.add_argument("--rollout-n", type=int, default=8, help="completions per prompt (ROLLOUT_N; default: 8)")
    p.add_argument("--sft-samples", type=int, default=1400,
                   help="lgc-v2 SFT tasks generated (train + val; 1400 = 1260 + 140 rows, 39 steps of 32 per epoch)")
    p.add_argument("--timeout", type=int, default=420, help="seconds one launcher may run before it is stopped")
    p.add_argument("--override", action="append", default=[],
                   help="Hydra override for the RL launchers (repeatable), e.g. actor_rollout_ref.rollout.enforce_eager=True")
    p.add_argument("--no-validate", action="store_true", help="VALIDATE=0: skip the launchers' schema check (~30 s each)")
    p.add_argument("--run-prefix", default="gpu", help="RUN_NAME prefix")
    p.add_argument("--sft-steps", type=int, default=None, help="SFT steps (default: --steps)")
    p.add_argument("--sft-lr", default="1e-5", help="SFT learning rate (default: 1e-5)")
    p.add_argument("--grpo-model", choices=("base", "sft"), default="base",
                   help="grpo part starts from the base model or from the model merged by the merge part (SFT -> GRPO)")
    p.add_argument("--lgc-config", default="{}",
                   help='lgc-v2 config for the grpo part as JSON, e.g. \'{"boolean_max_depth": 2}\' (adapter_config)')
    p.add_argument("--grpo-max-response", type=int, default=96, help="MAX_RESPONSE_LENGTH of the grpo part")
    p.add_argument("--gpu-memory-utilization", default="0.4",
                   help="GPU_MEMORY_UTILIZATION of the RL parts (default: 0.4; lower it to share the GPU)")
    p.add_argument("--lora-merge", action="store_true", help="LORA_MERGE=1 for the openspiel part")
    p.add_argument("--game-opponent", default="random", help="OPPONENT of the openspiel-game part (random, mcts:N, ...)")
    p.add_argument("--game-model", choices=("base", "merged"), default="base",
                   help="openspiel-game starts from the base model or from the model merge-ppo merged (a move-mode "
                        "openspiel run first: the base SmolLM2 writes no legal answer, so its games give GRPO no signal)")
    p.add_argument("--game-max-response", type=int, default=1024,
                   help="MAX_RESPONSE_LENGTH of the openspiel-game part: a whole tic-tac-toe game (replies + user turns)")
    p.add_argument("--diag-lora", action="store_true",
                   help="log what crosses the LoRA weight sync (benchmarks/gpu_diag/sitecustomize.py; no behaviour change)")
    p.add_argument("--trl-cases", default="lgc-v2-boolean,openspiel-legal", help="benchmarks/learning.py cases of the trl part")
    p.add_argument("--trl-set", action="append", default=[], help="KEY=VALUE passed to learning.py --set (repeatable)")
    return p


def ensure_model(model_dir: Path, gguf: Path) -> Path:
    """A plain HF dir of SmolLM2-135M-Instruct, from the embedded GGUF, built in a clean subprocess.

    With the verl stack staged, `import gguf` pulls in mistral_common (a vLLM dependency), which failed there
    for want of pycountry; the build therefore sees only the gguf package (and its metadata) on its path."""
    if (model_dir / "config.json").is_file():
        return model_dir
    import importlib.util
    import tempfile

    spec = importlib.util.find_spec("gguf")
    if spec is None or spec.origin is None:
        raise SystemExit("the model build needs the gguf package: pip install gguf==0.19.0")
    pkg = Path(spec.origin).parent
    with tempfile.TemporaryDirectory() as tmp:
        for path in (pkg, *pkg.parent.glob("gguf-*.dist-info")):
            os.symlink(path, Path(tmp) / path.name)
        env = dict(os.environ, PYTHONPATH=tmp)
        src = Path(__file__).resolve().parent.parent / "src"  # veritas_rl.models imports nothing heavy
        code = (f"import sys; sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(src)!r}]; import verl_gpu; "
                f"from pathlib import Path; verl_gpu.build_model(Path({str(model_dir)!r}), Path({str(gguf)!r}))")
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return model_dir


def build_model(model_dir: Path, gguf: Path) -> None:
    from veritas_rl.models import materialise_gguf

    materialise_gguf(gguf, model_dir, dtype="bfloat16")


def parse_value(text: str):
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return text


def run_logged(cmd: list[str], env: dict, log_path: Path, timeout: int) -> dict:
    """Run CMD, tee its output to LOG_PATH, and collect verl's console metric lines with their arrival time."""
    t0 = time.monotonic()
    steps: dict[int, dict] = {}
    last_error = ""
    with log_path.open("a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True)

        def read():
            nonlocal last_error
            for line in proc.stdout:
                fh.write(line)
                clean = ANSI_RE.sub("", line.rstrip("\n"))
                m = STEP_RE.search(clean)
                if m:
                    metrics = {}
                    for item in m.group(2).split(" - "):
                        key, sep, value = item.partition(":")
                        if sep:
                            metrics[key.strip()] = parse_value(value)
                    entry = steps.setdefault(int(m.group(1)), {"t": time.monotonic() - t0})
                    entry.update(metrics)
                elif re.search(r"(Error|error:|Traceback|FAILED)", clean):
                    last_error = clean.strip()[-400:]

        # a reader thread, so that daemons that inherited the pipe (Ray) cannot keep us waiting
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher's leftovers (Ray workers in its session)
        reader.join(15)
        if rc == "timeout":
            fh.write(f"\n[verl_gpu] stopped after {timeout} s\n")
    return {"rc": rc, "seconds": round(time.monotonic() - t0, 1), "steps": steps, "last_error": last_error}


def latest_checkpoint(run_dir: Path) -> str | None:
    tracker = run_dir / "latest_checkpointed_iteration.txt"
    if tracker.is_file():
        return str(run_dir / f"global_step_{tracker.read_text().strip()}")
    found = sorted(run_dir.glob("global_step_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    return str(found[-1]) if found else None


def latest_run_checkpoint(project_dir: Path, kind: str) -> str | None:
    """The checkpoint of the newest run of KIND under PROJECT_DIR (a part run in an earlier call)."""
    runs = sorted(project_dir.glob(f"*-{kind}-*"), key=lambda p: p.stat().st_mtime)
    return latest_checkpoint(runs[-1]) if runs else None


def mean(values):
    values = [v for v in values if isinstance(v, float)]
    return sum(values) / len(values) if values else None


def summarise_rl(res: dict, responses_per_step: int) -> dict:
    steps = res.pop("steps")
    rows = []
    for k in sorted(steps):
        s = steps[k]
        gen = s.get("timing_s/gen")
        resp = s.get("response_length/mean")
        tok_s = resp * responses_per_step / gen if isinstance(gen, float) and isinstance(resp, float) and gen > 0 else None
        rows.append({"step": k, "score_mean": s.get("critic/score/mean"), "reward_mean": s.get("critic/rewards/mean"),
                     "s_step": s.get("timing_s/step"), "s_gen": gen, "response_len": resp,
                     "gen_tokens_per_s": round(tok_s, 1) if tok_s else None,
                     "throughput_tok_s_gpu": s.get("perf/throughput")})
    later = rows[1:]
    rates: dict = {}  # validation game outcome rates per step and case (EPISODE=game)
    for k in sorted(steps):
        for key, value in steps[k].items():
            m = GAME_RATE_RE.match(key)
            if m:
                rates.setdefault(k, {}).setdefault(m.group(1), {})[m.group(2)] = value
    if rates:
        res["val_game_rates"] = rates
    res.update(
        steps_run=len(rows), per_step=rows,
        s_step_first=rows[0]["s_step"] if rows else None,
        s_step_after_first=mean([r["s_step"] for r in later]),
        gen_tokens_per_s_after_first=mean([r["gen_tokens_per_s"] for r in later]),
        nonzero_reward_steps=sum(1 for r in rows if isinstance(r["score_mean"], float) and r["score_mean"] > 0),
    )
    return res


def summarise_sft(res: dict) -> dict:
    steps = res.pop("steps")
    rows = [{"step": k, "loss": steps[k].get("train/loss"), "tokens": steps[k].get("train/global_tokens"),
             "t": round(steps[k]["t"], 2)} for k in sorted(steps)]
    gaps = [b["t"] - a["t"] for a, b in zip(rows, rows[1:])]
    tokens = [r["tokens"] for r in rows[1:] if isinstance(r["tokens"], float)]
    res.update(steps_run=len(rows), per_step=rows, s_step_after_first=mean(gaps),
               train_tokens_per_s_after_first=(sum(tokens) / sum(gaps)) if gaps and tokens else None)
    return res


def base_env(args, model_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(MODEL_PATH=str(model_dir), ATTN_IMPLEMENTATION=args.attn, LOGGER="console", WANDB_MODE="disabled",
               GPU_COUNT="1", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", VLLM_LOGGING_LEVEL="WARNING",
               RAY_DEDUP_LOGS="1")
    if args.no_validate:
        env["VALIDATE"] = "0"
    if args.diag_lora:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "benchmarks" / "gpu_diag"), env.get("PYTHONPATH")]))
    return env


def rl_env(args, model_dir: Path, **extra) -> dict:
    env = base_env(args, model_dir)
    env.update(TOTAL_TRAINING_STEPS=str(args.steps), SAVE_FREQ=str(args.steps), TEST_FREQ="-1", VAL_BEFORE_TRAIN="0",
               TRAIN_BATCH_SIZE=str(args.prompts), PPO_MINI_BATCH_SIZE=str(args.prompts), ROLLOUT_N=str(args.rollout_n),
               MICRO_BATCH_SIZE_PER_GPU="16", GPU_MEMORY_UTILIZATION=str(args.gpu_memory_utilization), DATASET_VAL_SIZE="16")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def merge_result(target: Path) -> dict:
    info_path = target / "merge_info.json"
    if not info_path.is_file():
        return {"merged_dir": str(target), "merge_info": None}
    info = json.loads(info_path.read_text())
    return {"merged_dir": str(target), "merge_info": info}


def compare_with_base(merged: Path, base: Path) -> dict:
    """Load the merged full model back and measure how far its logits moved from the base."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(merged)
    ids = tok("Evaluate: not ( True and False ) or False =", return_tensors="pt")
    out = {}
    for name, path in (("merged", merged), ("base", base)):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        with torch.no_grad():
            out[name] = model(**ids).logits
    return {"loads": True, "max_abs_logit_diff_vs_base": float((out["merged"] - out["base"]).abs().max())}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = build_parser().parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; choose from: {', '.join(PARTS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "verl_gpu.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    model_dir = ensure_model(Path(args.model_dir), Path(args.gguf))
    try:
        import torch

        summary["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        import verl
        import vllm

        summary["versions"] = {"verl": verl.__version__, "vllm": vllm.__version__, "torch": torch.__version__}
    except ImportError as exc:
        summary["versions"] = {"error": str(exc)}
    summary["date"] = time.strftime("%Y-%m-%d")
    stamp = time.strftime("%H%M%S")
    scripts = REPO / "train" / "scripts"
    ckpt_rl = REPO / "train" / "artifacts" / "RL" / "checkpoints" / "veritas-rl"
    responses = args.prompts * args.rollout_n

    def save():
        summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        (out / "verl_gpu.md").write_text(render(summary))

    for part in parts:
        log.info("part %s", part)
        logf = out / f"{part}.log"
        if part == "grpo":
            run_name = f"{args.run_prefix}-grpo-{stamp}"
            start = model_dir
            if args.grpo_model == "sft":
                merged = (summary.get("merge") or {}).get("merged_dir")
                if not merged or not (Path(merged) / "config.json").is_file():
                    summary[part] = {"rc": "skipped", "reason": "--grpo-model sft needs the merge part's model"}
                    save()
                    continue
                start = Path(merged)
            lgc = json.loads(args.lgc_config)
            lgc_overrides = [f"+data.custom_cls.config.adapter_config.{k}={json.dumps(v)}" for k, v in lgc.items()]
            env = rl_env(args, start, RUN_NAME=run_name, LGC_TASK_TYPES="boolean_expressions", ACTOR_LR="2e-5",
                         MAX_PROMPT_LENGTH=256, MAX_RESPONSE_LENGTH=args.grpo_max_response)
            res = summarise_rl(run_logged(["bash", str(scripts / "lgc-v2-RL-GRPO-trainer.sh"), *lgc_overrides,
                                           *args.override], env, logf, args.timeout), responses)
            res.update(checkpoint=latest_checkpoint(ckpt_rl / run_name), run_name=run_name, model=str(start),
                       settings=f"lgc-v2 boolean_expressions {lgc or ''}, full FT, lr 2e-5, from the "
                                f"{'SFT-merged' if args.grpo_model == 'sft' else 'base'} model, "
                                f"{args.prompts}x{args.rollout_n}, <={args.grpo_max_response} new tokens")
        elif part == "openspiel":
            run_name = f"{args.run_prefix}-openspiel-{stamp}"
            env = rl_env(args, model_dir, RUN_NAME=run_name, OPENSPIEL_REWARD_MODE="legal",
                         GAME_TYPES="tic_tac_toe,connect_four", MAX_PROMPT_LENGTH=768, MAX_RESPONSE_LENGTH=64,
                         LORA_MERGE=int(args.lora_merge))
            res = summarise_rl(run_logged(["bash", str(scripts / "openspiel-ppo-trainer.sh"), *args.override], env, logf,
                                          args.timeout), responses)
            res.update(checkpoint=latest_checkpoint(ckpt_rl / run_name), run_name=run_name,
                       settings="openspiel legal, tic_tac_toe+connect_four, LoRA r32 a32 lr 6e-5, "
                                f"{'merged' if args.lora_merge else 'adapter'} weight sync, "
                                f"{args.prompts}x{args.rollout_n}, <=64 new tokens")
        elif part == "openspiel-game":
            run_name = f"{args.run_prefix}-openspiel-game-{stamp}"
            start = model_dir
            if args.game_model == "merged":
                merged = (summary.get("merge-ppo") or {}).get("merged_dir")
                if not merged or not (Path(merged) / "config.json").is_file():
                    summary[part] = {"rc": "skipped", "reason": "--game-model merged needs the merge-ppo part's model"}
                    save()
                    continue
                start = Path(merged)
            env = rl_env(args, start, RUN_NAME=run_name, EPISODE="game", OPPONENT=args.game_opponent,
                         GAME_TYPES="tic_tac_toe", MAX_PROMPT_LENGTH=768, MAX_RESPONSE_LENGTH=args.game_max_response,
                         TEST_FREQ=args.steps, VAL_BEFORE_TRAIN=1, LORA_MERGE=int(args.lora_merge))
            res = summarise_rl(run_logged(["bash", str(scripts / "openspiel-ppo-trainer.sh"), *args.override], env, logf,
                                          args.timeout), responses)
            res.update(checkpoint=latest_checkpoint(ckpt_rl / run_name), run_name=run_name, model=str(start),
                       settings=f"openspiel EPISODE=game tic_tac_toe vs {args.game_opponent}, LoRA r32 a32 lr 6e-5, "
                                f"{args.prompts} games x {args.rollout_n}, <={args.game_max_response} response tokens")
        elif part == "merge-ppo":
            ckpt = ((summary.get("openspiel") or summary.get("openspiel-game") or {}).get("checkpoint")
                    or latest_run_checkpoint(ckpt_rl, "openspiel"))
            if not ckpt:
                summary[part] = {"rc": "skipped", "reason": "no openspiel checkpoint"}
                save()
                continue
            experiment = Path(ckpt).parent
            env = base_env(args, model_dir)
            env.update(CHECKPOINT_BASE=str(experiment), OVERWRITE="1")
            res = run_logged(["bash", str(scripts / "merge-ppo.sh")], env, logf, args.timeout)
            res.pop("steps")
            res.update(merge_result(Path(ckpt) / "merged"))
        elif part == "sft":
            run_name = f"{args.run_prefix}-sft-{stamp}"
            data_dir = REPO / "train" / "parquet"
            gen = run_logged([sys.executable, str(REPO / "data_processing" / "generate_dataset.py"), "--env", "lgc-v2",
                              "--format", "sft", "--task-types", "boolean_expressions", "--num-samples",
                              str(args.sft_samples), "--output-dir", str(data_dir)], base_env(args, model_dir), logf, 120)
            env = base_env(args, model_dir)
            env.update(RUN_NAME=run_name, SFT_PARQUET_DIR=str(data_dir), SFT_TOTAL_EPOCHS="1",
                       SFT_TRAIN_BATCH_SIZE="32", SFT_MICRO_BATCH_SIZE_PER_GPU="8", SFT_MAX_LENGTH="512",
                       SFT_LR=args.sft_lr, SFT_SAVE_FREQ="-1", SFT_TEST_FREQ="-1")
            sft_steps = args.sft_steps or args.steps
            res = summarise_sft(run_logged(["bash", str(scripts / "lgc-v2-SFT-trainer.sh"),
                                            f"trainer.total_training_steps={sft_steps}"], env, logf, args.timeout))
            res.update(generate_rc=gen["rc"], run_name=run_name,
                       checkpoint=latest_checkpoint(REPO / "train" / "artifacts" / "checkpoints" / "veritas-rl" / run_name),
                       settings=f"lgc-v2 boolean_expressions SFT parquet ({args.sft_samples} tasks), full FT, lr {args.sft_lr}, "
                                "batch 32, micro 8, max_length 512")
        elif part == "merge":
            ckpt = (summary.get("sft") or {}).get("checkpoint") or latest_run_checkpoint(
                REPO / "train" / "artifacts" / "checkpoints" / "veritas-rl", "sft")
            if not ckpt:
                summary[part] = {"rc": "skipped", "reason": "no sft checkpoint"}
                save()
                continue
            env = base_env(args, model_dir)
            env.update(CHECKPOINT_BASE=str(Path(ckpt).parent), OVERWRITE="1")
            res = run_logged(["bash", str(scripts / "merge.sh")], env, logf, args.timeout)
            res.pop("steps")
            target = Path(ckpt) / "merged"
            res["merged_dir"] = str(target)
            if res["rc"] == 0:
                try:
                    res["check"] = compare_with_base(target, model_dir)
                except Exception as exc:  # recorded, not hidden: the summary says the merged model did not load
                    res["check"] = {"loads": False, "error": repr(exc)[:400]}
        elif part == "trl":
            trl_out = Path("/tmp/verl_gpu_trl")
            sets = [item for kv in args.trl_set for item in ("--set", kv)]
            res = run_logged([sys.executable, str(REPO / "benchmarks" / "learning.py"), "--cases",
                              args.trl_cases, *sets, "--steps", str(args.steps), "--eval-size", "64",
                              "--prompts-per-step", str(args.prompts), "--num-generations", str(args.rollout_n),
                              "--model", str(model_dir), "--out", str(trl_out)], base_env(args, model_dir), logf,
                             args.timeout)
            res.pop("steps")
            result = trl_out / "learning.json"
            res["rows"] = json.loads(result.read_text()) if result.is_file() else None
        summary[part] = res
        save()
        log.info("part %s: rc=%s in %.0f s", part, res.get("rc"), res.get("seconds", 0))
    save()
    return 0


def fmt(value, digits=2):
    return "—" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def render(summary: dict) -> str:
    lines = [f"# verl launchers on {summary.get('device')} ({summary.get('date')}), {summary.get('versions')}", ""]
    for part in ("grpo", "openspiel", "openspiel-game", "sft"):
        res = summary.get(part)
        if not res:
            continue
        lines.append(f"## {part}: rc={res.get('rc')}, {res.get('steps_run')} steps in {res.get('seconds')} s; "
                     f"{res.get('settings')}")
        lines.append(f"s/step after the first: {fmt(res.get('s_step_after_first'))}; checkpoint: {res.get('checkpoint')}")
        if part == "sft":
            lines.append("losses: " + ", ".join(fmt(r["loss"], 3) for r in res.get("per_step", [])))
        else:
            lines.append(f"generation tokens/s after the first step: {fmt(res.get('gen_tokens_per_s_after_first'), 0)}")
            lines.append("score mean per step: " + ", ".join(fmt(r["score_mean"], 3) for r in res.get("per_step", [])))
            for step, cases in (res.get("val_game_rates") or {}).items():
                for case, rate in cases.items():
                    lines.append(f"validation at step {step}, {case}: " + ", ".join(f"{o} {fmt(v, 3)}" for o, v in rate.items()))
        if res.get("last_error") and res.get("rc") != 0:
            lines.append(f"last error: {res['last_error']}")
        lines.append("")
    for part in ("merge-ppo", "merge"):
        res = summary.get(part)
        if res:
            info = res.get("merge_info") or {}
            lines.append(f"## {part}: rc={res.get('rc')} in {res.get('seconds')} s -> {res.get('merged_dir')}")
            if info:
                lines.append("verification: " + json.dumps(info.get("verification", info), default=str)[:600])
            if res.get("check"):
                lines.append(f"check: {res['check']}")
            lines.append("")
    trl = summary.get("trl")
    if trl:
        lines.append(f"## trl: rc={trl.get('rc')} in {trl.get('seconds')} s")
        for row in trl.get("rows") or []:
            curve = row.get("reward_curve") or []
            rewards = [c[1] if isinstance(c, (list, tuple)) else c for c in curve]
            lines.append(f"{row['case']}: {row['steps']} steps, train {fmt(row['train_seconds'], 1)} s, "
                         f"rewards {', '.join(fmt(r, 3) for r in rewards)}, greedy {row['before']} -> {row['after']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

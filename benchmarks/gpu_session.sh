#!/usr/bin/env bash
# The project's pending GPU measurements, run in the background on a lent machine (../shared/gpu/README.md),
# with the results gathered into $OUT on every `status` call, so a machine taken back mid-run still leaves
# every finished stage behind. Not part of the product: a driver for benchmarks/*.py.
#
#   bash benchmarks/gpu_session.sh launch PHASE...  copy the tree to /root/repo, prepare, run the phases in order in
#                                                the background; a phase is a plan or plans joined by commas
#                                                (side by side on the GPU): launch verl_games learning speed
#   bash benchmarks/gpu_session.sh status        progress + GPU, and $OUT/res.tgz (logs, JSON, Markdown, PNG)
#
# Plans (`launch P1,P2` runs them side by side, `launch P1 P2` one after the other; a new launch while one runs
# is refused):
#   learning  TRL learning runs side by side on one GPU (each its own process, so each gets one vLLM engine):
#             games (Qwen-0.5B, tic_tac_toe vs random, game mode), curriculum (uniform arm, then curriculum arm),
#             MaxEnt vs GRPO (arithmetic, SmolLM2). Wall times are shared-GPU times: learning figures only.
#   verl      benchmarks/verl_logprob.py (verl's two log-prob paths on Qwen's head), then benchmarks/verl_defaults.py
#             new (one GPU to itself: these are timings).
#   verl_old  benchmarks/verl_defaults.py old: the launcher's defaults before the size rules, for the reward curve
#             beside new (and its timings when it has the GPU to itself).
#   verl_games  benchmarks/verl_gpu.py openspiel-game: whole games through verl's agent loop, Qwen-0.5B
#             (rollout engine at VERL_GAME_MEM, 0.4 of the GPU; run it as its own phase).
#   speed     benchmarks/trl_speed.py on Qwen-0.5B: generate and vLLM at 8 x 8, then speed64 (one GPU alone).
#   speed64   vLLM at 64 x 8 (grad-accum 8), with the decode / update bounds (benchmarks/roofline.py).
#
# Expects `../shared/gpu/stage.py --qwen --pins verl-gpu-pins.txt --add antlr49.sdist pycountry==26.2.16` staged
# into /root/site (pycountry: `import gguf` pulls in mistral_common, which needs it; without it the model dirs are
# not built and prepare stops the session), with hydra's antlr4 4.9.3 sdist carried as /root/stage/antlr49.sdist
# and its copy from the pins taken out of the bundle and manifest (not installed into /root/site: math-verify's
# 4.13.2 is). verl runs
# with PYTHONPATH=/root/antlr49:/root/siteverl (the site without trl: verl 0.9.1 imports trl's value-head model).
# The games run's loss forward holds whole transcripts' logits (64 x ~1k tokens x 152k vocab in fp32 is ~40 GB at
# grad-accum 1; on 2026-12-03 its process held 117 GB, vLLM's 28 included, and the runs beside it ran out of
# memory), hence --grad-accum 4.
# Knobs: GAMES_MINUTES (6), GAMES_LR (5e-6), GAMES_OPPONENT (random), GAMES_ROLLOUT_SEEDS (shared), GAMES_LEGAL_BONUS (0), CURRICULUM_STEPS (60; 0 skips the curriculum arms), CURRICULUM_TASK (operation-qwen), CURRICULUM_ARGS (more
# benchmarks/curriculum.py flags, word-split: "--model embedded:qwen2.5-coder-0.5b --max-new-tokens 384"), MAXENT_STEPS (100; 0 skips it),
# VERL_STEPS (30), VERL_LOGPROB (1; 0 skips verl_logprob.py), VERL_GAME_STEPS (6), VERL_GAME_MEM (0.4),
# VERL_GAMES_AFTER (a log under $R, e.g. maxent.log: verl_games starts once it shows step 1).
set -uo pipefail
R=/root/res
PLANS="learning, verl, verl_old, verl_games, speed, speed64"
export VERITAS_GGUF_DIR=/root/stage VERITAS_MODELS_DIR=/root/models HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONHASHSEED=0 \
  TOKENIZERS_PARALLELISM=false TRL_EXPERIMENTAL_SILENCE=1
SITE=/root/site:/root/repo/src
VERL_SITE=/root/antlr49:/root/siteverl:/root/repo/src

prepare() {
  if [[ ! -d /root/antlr49/antlr4 && -f /root/stage/antlr49.sdist ]]; then
    cp /root/stage/antlr49.sdist /tmp/antlr4-python3-runtime-4.9.3.tar.gz
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /root/antlr49 \
      /tmp/antlr4-python3-runtime-4.9.3.tar.gz > "$R/antlr.log" 2>&1
  fi
  mkdir -p /root/siteverl
  local x
  for x in /root/site/*; do
    case ${x##*/} in trl | trl-*) ;; *) ln -sfn "$x" /root/siteverl/ ;; esac
  done
  PYTHONPATH=$SITE python3 -c "from veritas_rl.models import embedded_model_dir as d; print(d(name='qwen2.5-coder-0.5b')); print(d(name='smollm2-135m'))" \
    > "$R/models.txt" 2> "$R/models.err"
  if [[ $(grep -c . "$R/models.txt") -lt 2 ]]; then  # every plan needs both model dirs: stop here, say why
    echo "prepare FAILED $(date -u +%T): no model dirs; $(tail -1 "$R/models.err")" >> "$R/phase"
    return 1
  fi
  echo "prepared $(date -u +%T): $(tr '\n' ' ' < "$R/models.txt")" >> "$R/phase"
}

# vLLM sizes its KV cache from what the GPU holds before and after a profile run (vllm/v1/worker/gpu_worker.py,
# determine_available_memory): a neighbour that allocates meanwhile leaves "No available memory for the cache
# blocks", one that frees trips "Error in memory profiling". So engines start one at a time (the next process
# starts once the previous engine is up) and a run that hit either error is run once more.
VLLM_RACE='Error in memory profiling|No available memory for the cache blocks|EADDRINUSE|address already in use'

wait_engine() {  # LOG CAP: until LOG shows an engine up (or a failure), at most CAP seconds
  local i
  for ((i = 0; i < $2; i += 5)); do
    grep -qE 'step 1/|Traceback' "$1" 2> /dev/null && return 0
    sleep 5
  done
}

retry_race() {  # LOG CMD...: CMD > LOG; once more when it died of a start-up race with a neighbour
  : > "$1.start"
  "${@:2}" > "$1" 2>&1 && return 0
  grep -qE "$VLLM_RACE" "$1" || return 1
  mv "$1" "$1.race1"
  # the failed start already made its run dir under CMD's --out (runs are never overwritten): move aside the
  # run dirs made since this start, so the retry starts the same run afresh
  local a out='' d
  for a in "${@:2}"; do [[ $out == next ]] && out=$a && break; [[ $a == --out ]] && out=next; done
  if [[ -n $out && $out != next && -d $out/runs ]]; then
    mkdir -p "$1.race1.runs"
    find "$out/runs" -mindepth 1 -maxdepth 1 -newer "$1.start" -print0 | while IFS= read -r -d '' d; do
      mv "$d" "$1.race1.runs/"
    done
  fi
  echo "retry ${1##*/} $(date -u +%T)" >> "$R/phase"
  sleep 30
  "${@:2}" > "$1" 2>&1
}

plan_learning() {
  cd /root/repo || exit 1
  retry_race "$R/games-qwen.log" env PYTHONPATH=$SITE python3 benchmarks/games_learning.py \
    --model embedded:qwen2.5-coder-0.5b --use-vllm --vllm-gpu-memory-utilization 0.2 --warmup-steps 0 --steps 1000 \
    --learning-rate "${GAMES_LR:-5e-6}" --opponent "${GAMES_OPPONENT:-random}" --grad-accum 4 \
    --rollout-seeds "${GAMES_ROLLOUT_SEEDS:-shared}" --legal-move-bonus "${GAMES_LEGAL_BONUS:-0}" \
    --max-train-minutes "${GAMES_MINUTES:-6}" --curve-every 15 --out "$R/games-qwen" &
  wait_engine "$R/games-qwen.log" 300
  [[ ${CURRICULUM_STEPS:-60} != 0 ]] && (for arm in uniform curriculum; do
     # shellcheck disable=SC2086  # CURRICULUM_ARGS is word-split on purpose
     retry_race "$R/curriculum-$arm.log" env PYTHONPATH=$SITE python3 benchmarks/curriculum.py --arms "$arm" \
       --vllm-gpu-memory-utilization 0.15 --steps "${CURRICULUM_STEPS:-60}" --out "$R/curriculum" --task "${CURRICULUM_TASK:-operation-qwen}" ${CURRICULUM_ARGS:-}
   done) &
  [[ ${CURRICULUM_STEPS:-60} != 0 ]] && wait_engine "$R/curriculum-uniform.log" 150
  if [[ ${MAXENT_STEPS:-100} != 0 ]]; then  # MAXENT_STEPS=0: no MaxEnt comparison
    retry_race "$R/maxent.log" env PYTHONPATH=$SITE python3 benchmarks/maxent_vs_grpo.py --case arithmetic \
      --steps "${MAXENT_STEPS:-100}" --eval-steps 20 --out "$R/maxent" &
  fi
  wait
}

plan_verl() {
  cd /root/repo || exit 1
  local qwen
  qwen=$(head -1 "$R/models.txt")
  [[ ${VERL_LOGPROB:-1} == 1 ]] && PYTHONPATH=$VERL_SITE python3 benchmarks/verl_logprob.py --model-dir "$qwen" \
    --tokens 26000 --out "$R/verl" > "$R/verl-logprob.log" 2>&1
  PYTHONPATH=$VERL_SITE python3 benchmarks/verl_defaults.py --out "$R/verl" --configs new --model-dir "$qwen" \
    --steps "${VERL_STEPS:-30}" > "$R/verl-new.log" 2>&1
}

plan_verl_old() {
  cd /root/repo || exit 1
  PYTHONPATH=$VERL_SITE python3 benchmarks/verl_defaults.py --out "$R/verl" --configs old \
    --model-dir "$(head -1 "$R/models.txt")" --steps "${VERL_STEPS:-30}" > "$R/verl-old.log" 2>&1
}

plan_verl_games() {  # game episodes through verl's agent loop (GameAgentLoop), Qwen-0.5B, a few steps
  cd /root/repo || exit 1
  # beside `learning` (launch learning,verl_games): start once its last run is up, so engines start one at a time
  [[ -n ${VERL_GAMES_AFTER:-} ]] && { sleep 20; wait_engine "$R/$VERL_GAMES_AFTER" 900; }
  PYTHONPATH=$VERL_SITE python3 benchmarks/verl_gpu.py --out "$R/verl-games" --parts openspiel-game \
    --steps "${VERL_GAME_STEPS:-6}" --model-dir "$(head -1 "$R/models.txt")" --timeout 540 \
    --gpu-memory-utilization "${VERL_GAME_MEM:-0.4}" \
    --override actor_rollout_ref.rollout.enforce_eager=True > "$R/verl-games.log" 2>&1
}

plan_speed() {  # the TRL rows of the three-way table, then a batch that fills the GPU
  cd /root/repo || exit 1
  local qwen
  qwen=$(head -1 "$R/models.txt")
  PYTHONPATH=$SITE python3 benchmarks/trl_speed.py --model "$qwen" --steps "${SPEED_STEPS:-6}" --out "$R/speed" \
    > "$R/speed.log" 2>&1
  plan_speed64
}

plan_speed64() {  # vLLM at a batch that fills the GPU, beside the H200's bounds (512 completions, 64 per forward)
  cd /root/repo || exit 1
  PYTHONPATH=$SITE python3 benchmarks/trl_speed.py --model "$(head -1 "$R/models.txt")" --systems vllm --prompts 64 \
    --grad-accum 8 --steps 4 --set vllm_gpu_memory_utilization=0.5 --out "$R/speed64" > "$R/speed64.log" 2>&1
}

case ${1:-status} in
  launch)
    shift
    (($#)) || { echo "usage: gpu_session.sh launch PHASE [PHASE ...]; a phase is PLAN or PLAN,PLAN ($PLANS)" >&2; exit 2; }
    for phase in "$@"; do
      for plan in ${phase//,/ }; do
        declare -F "plan_$plan" > /dev/null || {
          echo "unknown plan '$plan'; choose from: $PLANS" >&2
          exit 2
        }
      done
    done
    if [[ -f /root/session.pid ]] && kill -0 "$(cat /root/session.pid)" 2> /dev/null; then
      echo "a launch is still running (pid $(cat /root/session.pid)); see: gpu_session.sh status" >&2
      exit 2
    fi
    mkdir -p "$R"
    rm -rf /root/repo && mkdir -p /root/repo && cp -r . /root/repo/ && rm -rf /root/repo/.device
    # one prepare, then the phases in order; the plans of one phase ("a,b") side by side on the GPU
    body="source /root/repo/benchmarks/gpu_session.sh lib; prepare || exit 1;"
    for phase in "$@"; do
      body+=" ("
      for plan in ${phase//,/ }; do
        body+=" (echo \"$plan started \$(date -u +%T)\" >> $R/phase; plan_$plan; echo \"$plan done rc \$? \$(date -u +%T)\" >> $R/phase) &"
      done
      body+=" wait);"
    done
    setsid nohup bash -c "$body" > "$R/session-${1}.log" 2>&1 < /dev/null &
    echo $! > /root/session.pid
    echo "launched $* (pid $!)"
    ;;
  status)
    cat "$R/phase" 2> /dev/null
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2> /dev/null
    for f in "$R"/*.log; do
      [[ -e $f ]] || continue
      echo "== ${f##*/}"
      tail -n 3 "$f" | tr '\r' '\n' | tail -n 3 | cut -c1-240
    done
    if [[ -n ${OUT:-} ]]; then
      mkdir -p "$OUT"
      # without the weights and checkpoints, but with every run's metrics.jsonl (grad norms, per-step rewards)
      (cd "$R" && tar cf "$OUT/res.tar" --exclude=runs --exclude='*.safetensors' --exclude='*.pt' --exclude='*.bin' . &&
        find . -path '*/runs/*' -name metrics.jsonl -not -path '*/checkpoint-*' -print0 |
        tar rf "$OUT/res.tar" --null --no-recursion -T - && gzip -c "$OUT/res.tar" > "$OUT/res.tgz" && rm "$OUT/res.tar")
    fi
    ;;
  lib) ;;  # sourced by `launch` for the functions above
  *)
    echo "usage: gpu_session.sh launch PHASE [PHASE ...] | status (plans: $PLANS)" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# RL on SWE-bench-style tasks (env swe-synth: the reward runs the repository's tests) with verl 0.9.1.
#   train/scripts/swe-synth-ppo-trainer.sh [HYDRA_OVERRIDE ...]     (--help lists every variable)
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
vr_load_env

VR_USAGE="usage: $(basename "$0") [HYDRA_OVERRIDE ...]

verl.trainer.main_ppo on SWE-bench-shaped tasks served by DynamicEnvDataset (env swe-synth) and scored
by compute_score (the patch is applied and FAIL_TO_PASS / PASS_TO_PASS tests are run). Long prompts
and diffs: lengths are larger than the other launchers'. Full fine-tuning by default.
DRY_RUN=1 prints the command and validates it against verl's config without a GPU."
vr_var WANDB_EXP swe-synth-ppo "experiment name prefix of the run names"
vr_var SWE_DATASET_NAME "" "Hugging Face dataset of tasks (e.g. princeton-nlp/SWE-bench_Verified); empty = the env's default (SWE-bench_Lite)"
vr_var SWE_SPLIT "" "dataset split; empty = the env's default (test)"
vr_var SWE_CACHE_DIR "" "local directory of task_{id}.json files"
vr_var SWE_USE_CACHE_ONLY "" "1 = only the cache dir, never the hub; empty = the env's default"
vr_var SWE_TASK_IDS "" "task ids, comma-separated; empty = SWE_TASK_ID_RANGE or the env's default (the first 100)"
vr_var SWE_TASK_ID_RANGE "" "task id range START:END (END excluded), e.g. 0:50"
vr_var SWE_REPOS_DIR "" "clones of the task repositories for the local test backend"
vr_var MAX_PROMPT_LENGTH 4096 "prompt tokens (data.max_prompt_length): problem statement + code context"
vr_var MAX_RESPONSE_LENGTH 2048 "completion tokens (data.max_response_length): the diff"
vr_var TRAIN_BATCH_SIZE 16 "prompts per step (data.train_batch_size)"
vr_var PPO_MINI_BATCH_SIZE 8 "prompts per actor update (actor.ppo_mini_batch_size)"
vr_var MICRO_BATCH_SIZE_PER_GPU 1 "sequences per GPU forward (actor ppo / rollout and ref log-prob micro batches)"
vr_var ROLLOUT_N 4 "completions per prompt, the GRPO group size (actor_rollout_ref.rollout.n)"
vr_declare_common_vars
vr_declare_rl_vars
vr_args "$@"

vr_setup_common rl "$TRAIN_DIR/artifacts/RL/checkpoints"
vr_rl_overrides swe-synth
adapter=+data.custom_cls.config.adapter_config
if [[ -n $SWE_DATASET_NAME ]]; then VR_ARGS+=("$adapter.dataset_name=$SWE_DATASET_NAME"); fi
if [[ -n $SWE_SPLIT ]]; then VR_ARGS+=("$adapter.split=$SWE_SPLIT"); fi
if [[ -n $SWE_CACHE_DIR ]]; then VR_ARGS+=("$adapter.cache_dir=$(vr_abspath "$SWE_CACHE_DIR")"); fi
if [[ -n $SWE_REPOS_DIR ]]; then VR_ARGS+=("$adapter.repos_dir=$(vr_abspath "$SWE_REPOS_DIR")"); fi
if [[ -n $SWE_USE_CACHE_ONLY ]]; then
  vr_check_bool SWE_USE_CACHE_ONLY
  VR_ARGS+=("$adapter.use_cache_only=$(vr_py_bool "$SWE_USE_CACHE_ONLY")")
fi
if [[ -n $SWE_TASK_IDS && -n $SWE_TASK_ID_RANGE ]]; then
  vr_die "SWE_TASK_IDS and SWE_TASK_ID_RANGE are both set; choose one"
fi
if [[ -n $SWE_TASK_IDS ]]; then VR_ARGS+=("$adapter.task_ids=$(vr_hydra_int_list SWE_TASK_IDS)"); fi
if [[ -n $SWE_TASK_ID_RANGE ]]; then
  if ! [[ $SWE_TASK_ID_RANGE =~ ^([0-9]+):([0-9]+)$ ]] || ((BASH_REMATCH[1] >= BASH_REMATCH[2])); then
    vr_die "SWE_TASK_ID_RANGE=$SWE_TASK_ID_RANGE is not START:END with START < END (e.g. 0:50)"
  fi
  VR_ARGS+=("$adapter.task_id_range=[${BASH_REMATCH[1]},${BASH_REMATCH[2]}]")
fi
vr_launch ppo "$PYTHON" -m verl.trainer.main_ppo -- "${VR_ARGS[@]}" "${VR_OVERRIDES[@]}"

#!/usr/bin/env bash
# PPO-family RL (GRPO advantage by default) on OpenSpiel move tasks with verl 0.9.1, LoRA by default.
#   train/scripts/openspiel-ppo-trainer.sh [HYDRA_OVERRIDE ...]     (--help lists every variable)
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
vr_load_env

VR_USAGE="usage: $(basename "$0") [HYDRA_OVERRIDE ...]

verl.trainer.main_ppo on OpenSpiel positions served by DynamicEnvDataset (env openspiel) and scored by
compute_score. LoRA by default (rank 32, alpha 32, all-linear minus lm_head/embed_tokens, safetensors
weight sync, /dev/shm loading, lr 6e-5); ENABLE_LORA=0 trains all weights with FULL_FT_LR.
DRY_RUN=1 prints the command and validates it against verl's config without a GPU."
vr_var WANDB_EXP openspiel-ppo "experiment name prefix of the run names"
vr_var GAME_TYPES "" "OpenSpiel cases to train on, comma-separated short names or load strings (e.g. hex,chess or 'hex(board_size=5)'); empty = the env's default cases"
vr_var OPENSPIEL_REWARD_MODE "" "legal (1 for a legal move) or outcome (playouts against the opponent); empty = the env's default"
vr_var ENABLE_LORA 1 "1 = LoRA, 0 = full fine-tuning (lora_rank=0, FULL_FT_LR)"
vr_var USE_SHM 1 "1 = load the model through /dev/shm (actor_rollout_ref.model.use_shm)"
vr_var MAX_PROMPT_LENGTH 2048 "prompt tokens (data.max_prompt_length): board + legal moves"
vr_var MAX_RESPONSE_LENGTH 512 "completion tokens (data.max_response_length)"
vr_var DATASET_GROUP_BY case "validation metrics per case (data.custom_cls.config.group_by); \"\" = one group"
vr_declare_common_vars
vr_declare_rl_vars
vr_args "$@"

vr_setup_common rl "$TRAIN_DIR/artifacts/RL/checkpoints"
if [[ -n $OPENSPIEL_REWARD_MODE ]]; then vr_check_choice OPENSPIEL_REWARD_MODE legal outcome; fi
vr_rl_overrides openspiel
adapter=+data.custom_cls.config.adapter_config
if [[ -n ${GAME_TYPES//[[:space:],]/} ]]; then VR_ARGS+=("$adapter.game_types=$(vr_hydra_list GAME_TYPES)"); fi
if [[ -n $OPENSPIEL_REWARD_MODE ]]; then VR_ARGS+=("$adapter.reward_mode=$OPENSPIEL_REWARD_MODE"); fi
vr_launch ppo "$PYTHON" -m verl.trainer.main_ppo -- "${VR_ARGS[@]}" "${VR_OVERRIDES[@]}"

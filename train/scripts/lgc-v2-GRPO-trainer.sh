#!/usr/bin/env bash
# GRPO on the lgc-v2 logic environment with verl 0.9.1 (verl.trainer.main_ppo, DynamicEnvDataset + compute_score).
#   train/scripts/lgc-v2-RL-GRPO-trainer.sh [HYDRA_OVERRIDE ...]     (--help lists every variable)
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
vr_load_env

VR_USAGE="usage: $(basename "$0") [HYDRA_OVERRIDE ...]

GRPO (verl.trainer.main_ppo, algorithm.adv_estimator=grpo) on lgc-v2 tasks generated on the fly by
DynamicEnvDataset and scored by compute_score. Full fine-tuning by default (ENABLE_LORA=1 for LoRA).
DRY_RUN=1 prints the command and validates it against verl's config without a GPU."
vr_var WANDB_EXP lgc-v2-grpo "experiment name prefix of the run names"
vr_var LGC_TASK_TYPES "" "lgc-v2 task types, comma-separated (e.g. game_of_24,sudoku); empty = all"
vr_var DATASET_GROUP_BY task_type "validation metrics per task_type (data.custom_cls.config.group_by); \"\" = one group"
vr_declare_common_vars
vr_declare_rl_vars
vr_args "$@"

vr_setup_common rl "$TRAIN_DIR/artifacts/RL/checkpoints"
vr_rl_overrides lgc-v2
if [[ -n ${LGC_TASK_TYPES//[[:space:],]/} ]]; then
  VR_ARGS+=("+data.custom_cls.config.task_types=$(vr_hydra_list LGC_TASK_TYPES)")
fi
vr_launch ppo "$PYTHON" -m verl.trainer.main_ppo -- "${VR_ARGS[@]}" "${VR_OVERRIDES[@]}"

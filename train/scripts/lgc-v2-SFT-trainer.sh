#!/usr/bin/env bash
# Supervised fine-tuning with verl 0.9.1's SFT trainer (torchrun -m verl.trainer.sft_trainer) on parquet.
#   train/scripts/lgc-v2-SFT-trainer.sh [HYDRA_OVERRIDE ...]     (--help lists every variable)
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
vr_load_env

VR_USAGE="usage: $(basename "$0") [HYDRA_OVERRIDE ...]

SFT with verl 0.9.1's engine-based trainer (torchrun -m verl.trainer.sft_trainer). verl 0.9.1 trains on a
chat 'messages' column: files that have SFT_PROMPT_KEY/SFT_RESPONSE_KEY columns instead are converted into
the run directory first (python -m veritas_rl.backends.verl.sft_data). SFT_HF_DATASET converts a Hugging Face
SWE-synth trajectory dataset with data_processing/convert_swe_synth_sft.py first.
Recipe: bf16, AdamW betas [0.9, 0.98], weight decay 0.05.
DRY_RUN=1 prints the command and validates it against verl's sft_trainer_engine config without a GPU."
vr_var WANDB_EXP lgc-v2-sft "experiment name prefix of the run names"
vr_var SFT_PARQUET_DIR "$TRAIN_DIR/parquet" "directory of the SFT parquet files (and of SFT_HF_DATASET's conversion)" "train/parquet"
vr_var SFT_TRAIN_FILES "" "training parquet files, comma-separated" "\$SFT_PARQUET_DIR/lgc-v2_sft_train.parquet (what data_processing/generate_dataset.py --env lgc-v2 --format sft writes)"
vr_var SFT_VAL_FILES "" "validation parquet files, comma-separated; 'none' = no validation" "\$SFT_PARQUET_DIR/lgc-v2_sft_val.parquet when it exists"
vr_var SFT_PROMPT_KEY prompt "prompt column (a string or chat messages), used when a file has no messages column"
vr_var SFT_RESPONSE_KEY response "response column, used when a file has no messages column"
vr_var SFT_MESSAGES_KEY messages "chat messages column verl trains on (data.messages_key)"
vr_var SFT_HF_DATASET "" "convert this Hugging Face SWE-synth SFT dataset first, e.g. swesynth/SWE-Synth_Moatless-SFT-Trajectories"
vr_var SFT_VAL_RATIO 0.1 "validation share of SFT_HF_DATASET's conversion"
vr_var SFT_TRAIN_BATCH_SIZE 32 "global batch size (data.train_batch_size)"
vr_var SFT_MICRO_BATCH_SIZE_PER_GPU "" "micro batch per GPU (data.micro_batch_size_per_gpu); must divide SFT_TRAIN_BATCH_SIZE / (GPU_COUNT x NNODES)" "8, or the largest divisor of SFT_TRAIN_BATCH_SIZE / (GPU_COUNT x NNODES) below 8"
vr_var SFT_USE_DYNAMIC_BSZ 0 "1 = token-budget micro batches (data.use_dynamic_bsz) instead of SFT_MICRO_BATCH_SIZE_PER_GPU"
vr_var SFT_MAX_LENGTH 2048 "tokens per example (data.max_length)"
vr_var SFT_TOTAL_EPOCHS 10 "epochs (trainer.total_epochs)"
vr_var SFT_LR 2e-6 "learning rate (optim.lr)"
vr_var SFT_SAVE_DIR "$TRAIN_DIR/artifacts/checkpoints" "checkpoint root; the run dir is <root>/<project>/<run>" "train/artifacts/checkpoints"
vr_var SFT_SAVE_FREQ 50 "checkpoint every N steps (-1 = only at the end)"
vr_var SFT_TEST_FREQ 50 "validate every N steps (-1 = never; -1 when there are no validation files)"
vr_var SFT_MAX_CKPT_TO_KEEP "" "keep the last N checkpoints; empty = all"
vr_var SFT_LORA_RANK 0 "LoRA rank; 0 = full fine-tuning"
vr_var SFT_LORA_ALPHA 32 "LoRA alpha"
vr_var SFT_LORA_TARGET_MODULES all-linear "LoRA target modules: all-linear or a comma-separated list"
vr_var NODE_RANK 0 "this node's rank (multi-node torchrun)"
vr_var MASTER_ADDR "" "rank-0 node address (multi-node torchrun; required when NNODES > 1)"
vr_var MASTER_PORT 29500 "rank-0 node port (multi-node torchrun)"
vr_declare_common_vars
vr_args "$@"

vr_setup_common sft "$(vr_abspath "$SFT_SAVE_DIR")"
vr_check_int SFT_TRAIN_BATCH_SIZE 1
if [[ -z $SFT_MICRO_BATCH_SIZE_PER_GPU ]]; then  # each rank's rows per step must split into whole micro batches
  # the user's Hydra overrides of the batch and the GPUs win over the variables, as they do for verl
  batch=$(vr_effective SFT_TRAIN_BATCH_SIZE data.train_batch_size)
  gpus=$(vr_effective GPU_COUNT trainer.n_gpus_per_node)
  nodes=$(vr_effective NNODES trainer.nnodes)
  [[ $batch =~ ^[1-9][0-9]*$ && $gpus =~ ^[1-9][0-9]*$ && $nodes =~ ^[1-9][0-9]*$ ]] ||
    { batch=$SFT_TRAIN_BATCH_SIZE gpus=$GPU_COUNT nodes=$NNODES; }
  per_rank=$((batch / (gpus * nodes)))
  SFT_MICRO_BATCH_SIZE_PER_GPU=8
  while ((SFT_MICRO_BATCH_SIZE_PER_GPU > 1 && per_rank % SFT_MICRO_BATCH_SIZE_PER_GPU)); do
    SFT_MICRO_BATCH_SIZE_PER_GPU=$((SFT_MICRO_BATCH_SIZE_PER_GPU - 1))
  done
fi
for name in SFT_TRAIN_BATCH_SIZE SFT_MICRO_BATCH_SIZE_PER_GPU SFT_MAX_LENGTH SFT_TOTAL_EPOCHS; do vr_check_int "$name" 1; done
for name in SFT_LORA_RANK NODE_RANK; do vr_check_int "$name" 0; done
vr_check_int SFT_LORA_ALPHA 1
vr_check_int MASTER_PORT 1
vr_check_int SFT_SAVE_FREQ -1
vr_check_int SFT_TEST_FREQ -1
for name in SFT_SAVE_FREQ SFT_TEST_FREQ; do  # verl's SFT trainer computes global_step % N
  [[ ${!name} != 0 ]] || vr_die "$name=0 is not valid: verl's SFT trainer divides the step by it (ZeroDivisionError at step 1); use N >= 1, or -1 (save: only at the end; test: never)"
done
[[ -z $SFT_MAX_CKPT_TO_KEEP ]] || vr_check_int SFT_MAX_CKPT_TO_KEEP 1
vr_check_number SFT_LR
vr_check_number SFT_VAL_RATIO
vr_check_bool SFT_USE_DYNAMIC_BSZ
parquet_dir=$(vr_abspath "$SFT_PARQUET_DIR")

# --- data: optional Hugging Face conversion, then the messages column -------------------------
skip_check=0
if [[ -n $SFT_HF_DATASET ]]; then
  [[ -z $SFT_TRAIN_FILES ]] || vr_die "SFT_HF_DATASET and SFT_TRAIN_FILES are both set; choose one"
  convert=("$PYTHON" "$REPO_ROOT/data_processing/convert_swe_synth_sft.py" --dataset "$SFT_HF_DATASET"
    --val-ratio "$SFT_VAL_RATIO" --output-dir "$parquet_dir")
  if [[ $DRY_RUN == 0 ]]; then
    vr_log "converting $SFT_HF_DATASET into $parquet_dir"
    vr_run "${convert[@]}" || vr_die "converting SFT_HF_DATASET=$SFT_HF_DATASET failed (reason above)"
  else
    vr_log "DRY_RUN: a real run first converts the dataset with:"
    vr_print_cmd "${convert[@]}" >&2
    skip_check=1
  fi
  SFT_TRAIN_FILES="$parquet_dir/swe_synth_sft_train.parquet"
  if [[ -z $SFT_VAL_FILES ]]; then SFT_VAL_FILES="$parquet_dir/swe_synth_sft_val.parquet"; fi
fi
[[ -n $SFT_TRAIN_FILES ]] || SFT_TRAIN_FILES="$parquet_dir/lgc-v2_sft_train.parquet"
if [[ -z $SFT_VAL_FILES && -f $parquet_dir/lgc-v2_sft_val.parquet ]]; then SFT_VAL_FILES="$parquet_dir/lgc-v2_sft_val.parquet"; fi
[[ $SFT_VAL_FILES == none ]] && SFT_VAL_FILES=""

# sft_sources NAME: the comma-separated files of variable NAME as absolute paths, one per line.
sft_sources() {
  local name=$1 raw file files=()
  IFS=, read -r -a raw <<<"${!1}"
  for file in "${raw[@]}"; do
    file=${file//[[:space:]]/}
    [[ -n $file ]] && files+=("$(vr_abspath "$file")")
  done
  ((${#files[@]} > 0)) || vr_die "$name is empty"
  printf '%s\n' "${files[@]}"
}

# sft_data NAME [--check] FILE...: the files (of variable NAME) to train on, one per FILE, in order: FILE itself when
# it has the messages column, else its copy with one in $RUN_DIR/data (written unless --check).
sft_data() {
  local name=$1 out
  shift
  out=$("$PYTHON" -m veritas_rl.backends.verl.sft_data --out-dir "$RUN_DIR/data" --prompt-key "$SFT_PROMPT_KEY" \
    --response-key "$SFT_RESPONSE_KEY" --messages-key "$SFT_MESSAGES_KEY" "$@") ||
    vr_die "$name: the SFT data is not usable (reason above)"
  printf '%s\n' "$out"
}

# sft_list NAME SOURCES FILES: fill the arrays named SOURCES (the files of variable NAME) and FILES (what verl gets:
# the converted copies' paths, written after the checks below), and record in row_sources where FILES' rows are.
row_sources=()
sft_list() {
  local name=$1 out i
  local -n source_list=$2 file_list=$3
  out=$(sft_sources "$name") || exit 1
  mapfile -t source_list <<<"$out"
  if [[ $skip_check == 1 ]]; then file_list=("${source_list[@]}"); return; fi
  out=$(sft_data "$name" --check "${source_list[@]}") || exit 1
  mapfile -t file_list <<<"$out"
  for i in "${!file_list[@]}"; do row_sources+=(--source "${file_list[i]}" "${source_list[i]}"); done
}
train_sources=() train_files=() val_sources=() val_files=()
sft_list SFT_TRAIN_FILES train_sources train_files
# shellcheck disable=SC2034  # read by name in vr_hydra_list
SFT_TRAIN_LIST=$(IFS=,; echo "${train_files[*]}")
val_arg=data.val_files=null
test_freq=-1  # verl 0.9.1 iterates the missing val loader at each test step: no val files, no test steps
if [[ -n $SFT_VAL_FILES ]]; then
  sft_list SFT_VAL_FILES val_sources val_files
  # shellcheck disable=SC2034  # read by name in vr_hydra_list
  SFT_VAL_LIST=$(IFS=,; echo "${val_files[*]}")
  val_arg="data.val_files=$(vr_hydra_list SFT_VAL_LIST)"
  test_freq=$SFT_TEST_FREQ
fi

# --- command ----------------------------------------------------------------------------------
cmd=("$PYTHON" -m torch.distributed.run "--nnodes=$NNODES" "--nproc_per_node=$GPU_COUNT")
if ((NNODES == 1)); then
  cmd+=(--standalone)
else
  [[ -n $MASTER_ADDR ]] || vr_die "NNODES=$NNODES needs MASTER_ADDR (the rank-0 node's address) and NODE_RANK on each node"
  cmd+=("--node_rank=$NODE_RANK" "--master_addr=$MASTER_ADDR" "--master_port=$MASTER_PORT")
fi
cmd+=(-m verl.trainer.sft_trainer)

VR_ARGS=(
  "data.train_files=$(vr_hydra_list SFT_TRAIN_LIST)"
  "$val_arg"
  "data.messages_key=$SFT_MESSAGES_KEY"
  "data.train_batch_size=$SFT_TRAIN_BATCH_SIZE"
  "data.micro_batch_size_per_gpu=$SFT_MICRO_BATCH_SIZE_PER_GPU"
  "data.use_dynamic_bsz=$(vr_py_bool "$SFT_USE_DYNAMIC_BSZ")"
  "data.max_length=$SFT_MAX_LENGTH"
  "model.path=$MODEL_PATH"
  "model.use_remove_padding=$(vr_py_bool "$USE_REMOVE_PADDING")"
  "model.use_fused_kernels=$(vr_py_bool "$USE_FUSED_KERNELS")"
  "model.lora_rank=$SFT_LORA_RANK"
  "model.lora_alpha=$SFT_LORA_ALPHA"
  "engine.strategy=${FSDP_STRATEGY:-fsdp}"
  engine.dtype=bfloat16
  "optim.lr=$SFT_LR"
  "optim.betas=[0.9,0.98]"
  optim.weight_decay=0.05
  "trainer.total_epochs=$SFT_TOTAL_EPOCHS"
  "trainer.save_freq=$SFT_SAVE_FREQ"
  "trainer.test_freq=$test_freq"
)
vr_trainer_overrides
if [[ $SFT_LORA_TARGET_MODULES == all-linear ]]; then
  VR_ARGS+=(model.target_modules=all-linear)
else
  VR_ARGS+=("model.target_modules=$(vr_hydra_list SFT_LORA_TARGET_MODULES)")
fi
[[ -z $ATTN_IMPLEMENTATION ]] || VR_ARGS+=("+model.override_config.attn_implementation=$ATTN_IMPLEMENTATION")
[[ -z $RESUME_FROM ]] || VR_ARGS+=("trainer.resume_from_path=$RESUME_FROM")
[[ -z $SFT_MAX_CKPT_TO_KEEP ]] || VR_ARGS+=("trainer.max_ckpt_to_keep=$SFT_MAX_CKPT_TO_KEEP")

# --- batches and steps: verl's dataloaders drop incomplete batches, also in validation --------
# Fewer val rows than a batch logs val/loss NaN; total_training_steps beyond epochs x steps per epoch ends the
# run without its final checkpoint. Checked in every mode but DRY_RUN=print, with the user's overrides.
if [[ $DRY_RUN != print && $skip_check == 0 ]]; then
  "$PYTHON" -m veritas_rl.backends.verl.sft_steps --world-size "$((GPU_COUNT * NNODES))" "${row_sources[@]}" \
    -- "${VR_ARGS[@]}" "${VR_OVERRIDES[@]}" ||
    vr_die "the SFT data does not fit the batch size or the steps (reason above)"
fi
if [[ $DRY_RUN == 0 ]]; then  # now write the messages copies (a dry run only names them)
  sft_data SFT_TRAIN_FILES "${train_sources[@]}" >/dev/null
  ((${#val_sources[@]} == 0)) || sft_data SFT_VAL_FILES "${val_sources[@]}" >/dev/null
fi
vr_launch sft "${cmd[@]}" -- "${VR_ARGS[@]}" "${VR_OVERRIDES[@]}"

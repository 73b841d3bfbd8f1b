#!/usr/bin/env bash
# Turn a verl 0.9.1 FSDP checkpoint into one full Hugging Face model (LoRA merged in, verified).
#   train/scripts/merge.sh          SFT checkpoints (global_step_N/, train/artifacts/checkpoints)
#   train/scripts/merge-ppo.sh      RL checkpoints  (global_step_N/actor/, train/artifacts/RL/checkpoints)
# --help lists every variable. The one implementation; merge-ppo.sh only sets MERGE_KIND=rl.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
vr_load_env

# --- variables (environment or .env wins over the defaults) -----------------------------------
vr_var MERGE_KIND sft "sft: checkpoints of verl's SFT trainer (global_step_N/); rl: of main_ppo (global_step_N/actor/)"
if [[ $MERGE_KIND == rl ]]; then default_base=$TRAIN_DIR/artifacts/RL/checkpoints; else default_base=$TRAIN_DIR/artifacts/checkpoints; fi
vr_var CHECKPOINT_BASE "$default_base" "the experiment dir (trainer.default_local_dir, holding global_step_N/ and latest_checkpointed_iteration.txt); a dir above it picks the most recently updated experiment below it" "train/artifacts/checkpoints (sft), train/artifacts/RL/checkpoints (rl)"
vr_var GLOBAL_STEP "" "the step to merge" "the step in <experiment>/latest_checkpointed_iteration.txt"
vr_var TARGET_DIR "" "where the merged model goes (a LoRA run also keeps its adapter in TARGET_DIR/lora_adapter)" "<experiment>/global_step_N/merged"
vr_var DTYPE bf16 "dtype of a merged LoRA model: bf16, fp16, fp32 (verl's merger itself writes bf16)"
vr_var VERIFY 1 "0 = skip the verification of the LoRA merge against the PEFT model"
vr_var LORA_ALPHA "" "LoRA alpha, when the checkpoint has no lora_train_meta.json (verl then writes lora_alpha 0)"
vr_var BASE_MODEL "" "LoRA runs: merge the adapter into this model (local dir or hub id) instead of the bf16 base verl's merger writes; required for checkpoints saved with checkpoint.save_lora_only" "the base from verl's merger"
vr_var TRUST_REMOTE_CODE 0 "1 = allow the model's custom code"
vr_var OVERWRITE 0 "1 = replace an existing TARGET_DIR (only once the new model is complete)"
vr_var PYTHON python3 "Python interpreter with verl and veritas-rl"
vr_var DRY_RUN 0 "1 = print the commands, run nothing"

VR_HYDRA_ARGS=0  # this script takes variables only
VR_USAGE="usage: $(basename "$0") [-h|--help]

Merges a verl 0.9.1 FSDP checkpoint into a Hugging Face model with 'python -m verl.model_merger merge
--backend fsdp', and, when the checkpoint holds a LoRA adapter (verl writes it un-merged, as
lora_adapter/ beside the base), merges the adapter into the base with
train/tools/merge_adapter_into_base.py in the same run and verifies the result against the PEFT model:
TARGET_DIR then holds the full trained model, with the adapter kept in TARGET_DIR/lora_adapter."

merge_abspath() { if [[ $1 == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }

vr_args "$@"
((${#VR_OVERRIDES[@]} == 0)) || vr_die "unknown argument ${VR_OVERRIDES[0]}: $(basename "$0") takes only variables (see --help)"

vr_check_choice MERGE_KIND sft rl
case $DTYPE in bf16 | fp16 | fp32) ;; *) vr_die "DTYPE=$DTYPE is not valid; choose from: bf16, fp16, fp32" ;; esac
for name in VERIFY TRUST_REMOTE_CODE OVERWRITE DRY_RUN; do vr_check_bool "$name"; done
[[ -z $LORA_ALPHA || $LORA_ALPHA =~ ^[0-9]*\.?[0-9]+$ ]] || vr_die "LORA_ALPHA=$LORA_ALPHA is not a positive number"
[[ -z $GLOBAL_STEP || $GLOBAL_STEP =~ ^[0-9]+$ ]] || vr_die "GLOBAL_STEP=$GLOBAL_STEP is not a non-negative integer"
command -v "$PYTHON" >/dev/null 2>&1 || vr_die "PYTHON=$PYTHON is not an executable on PATH"
export PYTHONPATH="$REPO_ROOT/src${PYTHONPATH:+:$PYTHONPATH}"

# --- which checkpoint ---------------------------------------------------------------------------
tracker=latest_checkpointed_iteration.txt
[[ -d $CHECKPOINT_BASE ]] || vr_die "CHECKPOINT_BASE=$CHECKPOINT_BASE is not a directory (set it to the experiment dir, trainer.default_local_dir)"
experiment=$(cd "$CHECKPOINT_BASE" && pwd)
if [[ ! -f $experiment/$tracker ]] && ! compgen -G "$experiment/global_step_*" >/dev/null; then
  found=$(find "$experiment" -mindepth 2 -maxdepth 3 -name "$tracker" -printf '%T@ %h\n' 2>/dev/null | sort -n | tail -n 1 | cut -d' ' -f2-)
  [[ -n $found ]] || vr_die "no checkpoint under CHECKPOINT_BASE=$experiment: no global_step_N/ and no $tracker (in it or in <project>/<run>/ below it)"
  vr_log "CHECKPOINT_BASE=$experiment holds no checkpoint itself; using the most recently updated experiment below it: $found"
  experiment=$found
fi
if [[ -z $GLOBAL_STEP ]]; then
  [[ -f $experiment/$tracker ]] || vr_die "no $tracker in $experiment: set GLOBAL_STEP (there: $(cd "$experiment" && echo global_step_* | tr ' ' ','))"
  GLOBAL_STEP=$(tr -d '[:space:]' <"$experiment/$tracker")
  [[ $GLOBAL_STEP =~ ^[0-9]+$ ]] || vr_die "$experiment/$tracker holds '$GLOBAL_STEP', not a step number: set GLOBAL_STEP"
fi
step_dir=$experiment/global_step_$GLOBAL_STEP
[[ -d $step_dir ]] || vr_die "no $step_dir (there: $(cd "$experiment" && echo global_step_* | tr ' ' ','))"
if [[ $MERGE_KIND == rl ]]; then local_dir=$step_dir/actor other=$step_dir; else local_dir=$step_dir other=$step_dir/actor; fi
if [[ ! -f $local_dir/fsdp_config.json ]]; then
  [[ -f $other/fsdp_config.json ]] || vr_die "no FSDP checkpoint (fsdp_config.json + model_world_size_*_rank_*.pt) in $local_dir"
  vr_log "MERGE_KIND=$MERGE_KIND expects $local_dir, but the FSDP checkpoint is in $other: using that"
  local_dir=$other
fi
[[ -n $TARGET_DIR ]] || TARGET_DIR=$step_dir/merged
TARGET_DIR=$(merge_abspath "$TARGET_DIR")
[[ ! -e $TARGET_DIR || $OVERWRITE == 1 ]] || vr_die "TARGET_DIR=$TARGET_DIR already exists: set OVERWRITE=1 to replace it, or another TARGET_DIR"
vr_log "merging $local_dir (step $GLOBAL_STEP, $MERGE_KIND) into $TARGET_DIR"

# --- 1. verl's merger: FSDP shards -> HF model (+ un-merged lora_adapter/), into a staging dir ----
staging=$(dirname "$TARGET_DIR")/.$(basename "$TARGET_DIR").verl-$$
cleanup() { rm -rf "$staging"; }
trap cleanup EXIT
remote=()
[[ $TRUST_REMOTE_CODE == 1 ]] && remote=(--trust-remote-code)
[[ $DRY_RUN == 1 ]] || mkdir -p "$(dirname "$TARGET_DIR")"
verl_ok=1
vr_run "$PYTHON" -m verl.model_merger merge --backend fsdp --local_dir "$local_dir" --target_dir "$staging" "${remote[@]}" ||
  verl_ok=0
if [[ $verl_ok == 0 ]]; then
  # a checkpoint saved with checkpoint.save_lora_only: verl writes lora_adapter/ and the config, then fails for
  # want of base weights
  if [[ ! -d $staging/lora_adapter ]] || compgen -G "$staging/*.safetensors" >/dev/null; then
    vr_die "verl's model merger failed (reason above)"
  fi
  [[ -n $BASE_MODEL ]] ||
    vr_die "the checkpoint holds only the LoRA weights (checkpoint.save_lora_only): set BASE_MODEL to the model it was trained from"
  vr_log "LoRA-only checkpoint: verl wrote the adapter only; merging it into BASE_MODEL=$BASE_MODEL"
fi

# --- 2. a LoRA run: merge the adapter into the base, verified, and keep the adapter beside it --------
meta=""
for candidate in "$local_dir/lora_train_meta.json" "$step_dir/lora_train_meta.json"; do
  if [[ -f $candidate ]]; then meta=$candidate; break; fi
done
tool=(
  "$PYTHON" "$REPO_ROOT/train/tools/merge_adapter_into_base.py"
  --base_model "${BASE_MODEL:-$staging}" --adapter_model "$staging/lora_adapter" --output_dir "$TARGET_DIR" --dtype "$DTYPE"
)
[[ -n $LORA_ALPHA ]] && tool+=(--lora_alpha "$LORA_ALPHA")
[[ -n $meta ]] && tool+=(--lora_train_meta "$meta")
[[ $VERIFY == 0 ]] && tool+=(--no_verify)
[[ $TRUST_REMOTE_CODE == 1 ]] && tool+=(--trust_remote_code)
[[ $OVERWRITE == 1 ]] && tool+=(--overwrite)
if [[ $DRY_RUN == 1 ]]; then
  vr_log "if the checkpoint holds a LoRA adapter (verl writes $staging/lora_adapter):"
  vr_print_cmd "${tool[@]}" >&2
  exit 0
fi

if [[ -d $staging/lora_adapter ]]; then
  vr_run "${tool[@]}" || vr_die "the LoRA merge failed (reason above); nothing was written to $TARGET_DIR"
  mv "$staging/lora_adapter" "$TARGET_DIR/lora_adapter"
  [[ -n $meta ]] && cp "$meta" "$TARGET_DIR/lora_adapter/lora_train_meta.json"
  # verl wrote lora_alpha 0 when it had no metadata: record the alpha the merge used, so the kept adapter loads right
  "$PYTHON" - "$TARGET_DIR" <<'PY'
import json, sys
from pathlib import Path
target = Path(sys.argv[1])
info = json.loads((target / "merge_info.json").read_text())
cfg_path = target / "lora_adapter" / "adapter_config.json"
cfg = json.loads(cfg_path.read_text())
if cfg.get("lora_alpha") != info["lora_alpha"]:
    cfg["lora_alpha"] = info["lora_alpha"]
    cfg_path.write_text(json.dumps(cfg, indent=4) + "\n")
    print(f"set lora_alpha={info['lora_alpha']} in {cfg_path} (from {info['lora_alpha_source']})", file=sys.stderr)
PY
  vr_log "done: merged model in $TARGET_DIR (adapter kept in $TARGET_DIR/lora_adapter)"
else
  [[ -z $BASE_MODEL ]] || vr_log "BASE_MODEL is ignored: the checkpoint holds no LoRA adapter (full fine-tuning)"
  [[ -e $TARGET_DIR ]] && rm -rf "$TARGET_DIR"
  mv "$staging" "$TARGET_DIR"
  vr_log "done: full fine-tuned model in $TARGET_DIR (no LoRA adapter in the checkpoint)"
fi

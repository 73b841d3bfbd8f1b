#!/usr/bin/env bash
# Shared library of every launcher in train/scripts/. Source it; do not run it.
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# Provides: REPO_ROOT, TRAIN_DIR, vr_die, vr_log, vr_load_env, vr_print_cmd, vr_run.
# (The launchers issue extends it: model resolution, GPU count, run names, W&B, DRY_RUN validation.)

# shellcheck disable=SC2034  # variables here are used by the scripts that source this file
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
TRAIN_DIR="$REPO_ROOT/train"

vr_die() { echo "error: $*" >&2; exit 1; }
vr_log() { echo "[$(basename "$0")] $*" >&2; }

# Load $REPO_ROOT/.env (or $ENV_FILE); variables already set in the environment win over the file.
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

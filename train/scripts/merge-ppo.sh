#!/usr/bin/env bash
# RL checkpoints (verl main_ppo: global_step_N/actor/, train/artifacts/RL/checkpoints): merge.sh with MERGE_KIND=rl.
MERGE_KIND=${MERGE_KIND:-rl} exec "$(dirname "${BASH_SOURCE[0]}")/merge.sh" "$@"

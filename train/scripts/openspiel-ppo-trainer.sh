#!/usr/bin/env bash
# PPO-family RL (GRPO advantage by default) on OpenSpiel moves or whole games with verl 0.9.1, LoRA by default.
#   train/scripts/openspiel-ppo-trainer.sh [HYDRA_OVERRIDE ...]     (--help lists every variable)
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
vr_load_env

VR_USAGE="usage: $(basename "$0") [HYDRA_OVERRIDE ...]

verl.trainer.main_ppo on OpenSpiel positions served by DynamicEnvDataset (env openspiel) and scored by
compute_score. LoRA by default (rank 32, alpha 32, all-linear minus lm_head/embed_tokens, safetensors
weight sync, /dev/shm loading, lr 6e-5); ENABLE_LORA=0 trains all weights with FULL_FT_LR.
EPISODE=game plays one whole game per trajectory against OPPONENT (verl agent loop veritas_game from
src/veritas_rl/backends/verl/agent_loops.yaml; only the model's tokens are trained; the reward is the game's result).
DRY_RUN=1 prints the command and validates it against verl's config without a GPU."
vr_var WANDB_EXP openspiel-ppo "experiment name prefix of the run names"
vr_var GAME_TYPES "" "OpenSpiel cases to train on, comma-separated short names or load strings (e.g. hex,chess or 'hex(board_size=5)'); empty = the env's default cases"
vr_var OPENSPIEL_REWARD_MODE "" "EPISODE=move: legal (1 for a legal move) or outcome (playouts against the opponent); empty = the env's default"
vr_var EPISODE move "move (one position per prompt) or game (one whole game per trajectory, data.custom_cls.config.episode)"
vr_var OPPONENT "" "EPISODE=game: random, first_legal or mcts:N (N simulations per move); empty = random"
vr_var MAX_TURNS "" "EPISODE=game: model turns per game (then the game stops as max_turns); empty = 50"
if [[ $EPISODE == game ]]; then response_default=4096; else response_default=512; fi
vr_var ENABLE_LORA 1 "1 = LoRA, 0 = full fine-tuning (lora_rank=0, FULL_FT_LR)"
vr_var USE_SHM 1 "1 = load the model through /dev/shm (actor_rollout_ref.model.use_shm)"
vr_var MAX_PROMPT_LENGTH 2048 "prompt tokens (data.max_prompt_length): board + legal moves"
vr_var MAX_RESPONSE_LENGTH "$response_default" "response tokens (data.max_response_length): EPISODE=game, the whole game after the first prompt (the model's replies and the user turns between them)" "512, or 4096 with EPISODE=game"
vr_var DATASET_GROUP_BY case "validation metrics per case (data.custom_cls.config.group_by); \"\" = one group"
vr_declare_common_vars
vr_declare_rl_vars
vr_args "$@"

vr_setup_common rl "$TRAIN_DIR/artifacts/RL/checkpoints"
if [[ -n $OPENSPIEL_REWARD_MODE ]]; then vr_check_choice OPENSPIEL_REWARD_MODE legal outcome; fi
vr_check_choice EPISODE move game
if [[ $EPISODE == game ]]; then
  [[ -z $OPENSPIEL_REWARD_MODE ]] || vr_die "OPENSPIEL_REWARD_MODE=$OPENSPIEL_REWARD_MODE scores single moves; EPISODE=game scores whole games (leave it empty)"
  [[ -z $OPPONENT || $OPPONENT =~ ^(random|first_legal|mcts:[1-9][0-9]*)$ ]] ||
    vr_die "OPPONENT=$OPPONENT is not valid; choose from: random, first_legal, mcts:N (policy:PATH opponents: the TRL backend)"
  [[ -z $MAX_TURNS ]] || vr_check_int MAX_TURNS 1
  agent_loops="$REPO_ROOT/src/veritas_rl/backends/verl/agent_loops.yaml"
  [[ -f $agent_loops ]] || vr_die "$agent_loops is missing: the game agent loop's YAML ships with the package"
else
  for name in OPPONENT MAX_TURNS; do
    [[ -z ${!name} ]] || vr_die "$name=${!name} is read only with EPISODE=game (EPISODE=$EPISODE)"
  done
fi
vr_rl_overrides openspiel
adapter=+data.custom_cls.config.adapter_config
if [[ -n ${GAME_TYPES//[[:space:],]/} ]]; then VR_ARGS+=("$adapter.game_types=$(vr_hydra_list GAME_TYPES)"); fi
if [[ -n $OPENSPIEL_REWARD_MODE ]]; then VR_ARGS+=("$adapter.reward_mode=$OPENSPIEL_REWARD_MODE"); fi
if [[ $EPISODE == game ]]; then
  # rollout.mode is async (verl 0.9.1's only mode): the agent loop workers run the games; multi_turn.enable
  # marks the batch multi-turn for the trainer. Items get agent_name=veritas_game from DynamicEnvDataset.
  VR_ARGS+=(
    +data.custom_cls.config.episode=game
    "actor_rollout_ref.rollout.agent.agent_loop_config_path=$agent_loops"
    actor_rollout_ref.rollout.multi_turn.enable=True
  )
  [[ -z $OPPONENT ]] || VR_ARGS+=("+data.custom_cls.config.opponent=$OPPONENT")
  [[ -z $MAX_TURNS ]] || VR_ARGS+=("+data.custom_cls.config.max_turns=$MAX_TURNS")
fi
vr_launch ppo "$PYTHON" -m verl.trainer.main_ppo -- "${VR_ARGS[@]}" "${VR_OVERRIDES[@]}"

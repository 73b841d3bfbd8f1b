"""Run a launcher of train/scripts/ as a user would (clean environment, no .env) and read what it printed.

Shared by tests/scripts/test_verl_defaults.py and tests/scripts/test_multi_gpu_launchers.py. ``DRY_RUN=print``
runs pure bash (plus the model probe) and prints the final command; :func:`compose` then validates that exact
command in this process with ``veritas_rl.backends.verl.validate`` — the code ``DRY_RUN=1`` runs — so verl is
imported once per test process.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "train" / "scripts"
GRPO = "lgc-v2-RL-GRPO-trainer.sh"
OPENSPIEL = "openspiel-ppo-trainer.sh"
SFT = "lgc-v2-SFT-trainer.sh"
ENTRY = {SFT: "sft"}

#: the tokenizer files a model dir needs for verl's HFModelConfig (the validator builds it); no weights
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


def launch(script: str, *args: str, env: dict | None = None, cwd: Path, dry: str = "print", check: bool = True,
           timeout: int = 300) -> subprocess.CompletedProcess:
    """Run SCRIPT with DRY_RUN=DRY, GPU_COUNT=1, no .env file and only the variables in ENV (None removes one)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SFT_", "LORA_", "GPU_", "HF_", "NCCL_"))}
    for key in ("CUDA_VISIBLE_DEVICES", "RAY_ADDRESS", "NNODES", "VERL_PATH", "RUN_NAME", "AGENT_MODEL_REPO_ID",
                "PYTHONPATH"):
        base.pop(key, None)
    base.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}", PYTHON=sys.executable,
                ENV_FILE=str(cwd / "absent.env"), GPU_COUNT="1", DRY_RUN=dry, HF_HUB_OFFLINE="1")
    base.update(env or {})
    base = {k: v for k, v in base.items() if v is not None}
    proc = subprocess.run(["bash", str(SCRIPTS / script), *args], env=base, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def command_of(proc: subprocess.CompletedProcess) -> list[str]:
    """The argv a DRY_RUN=print launcher printed."""
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    return shlex.split(lines[0])


def overrides_of(argv: list[str]) -> list[str]:
    for entry in ("verl.trainer.main_ppo", "verl.trainer.sft_trainer"):
        if entry in argv:
            return argv[argv.index(entry) + 1 :]
    raise AssertionError(f"no verl entry in {argv}")


def compose(script: str, proc: subprocess.CompletedProcess):
    """Validate the printed command as DRY_RUN=1 does; the composed config (an OmegaConf DictConfig)."""
    from veritas_rl.backends.verl.validate import validate

    return validate(ENTRY.get(script, "ppo"), overrides_of(command_of(proc)))


def model_dir(tmp: Path, source: Path, **config) -> Path:
    """A model dir with SOURCE's tokenizer and SOURCE's config.json changed by CONFIG (no weights: the launchers and
    the validator read only the config and the tokenizer)."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, tmp / name)
    cfg = json.loads((source / "config.json").read_text())
    cfg.update(config)
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    return tmp


#: a 7B-class Qwen2.5 shape on SmolLM2's tokenizer: 6.6B parameters by the probe's count
LARGE = dict(hidden_size=3584, num_hidden_layers=28, intermediate_size=18944, num_attention_heads=28,
             num_key_value_heads=4, head_dim=128, tie_word_embeddings=False)

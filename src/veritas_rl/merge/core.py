"""Streaming merge of a LoRA adapter into its base model.

For every tensor of every base ``.safetensors`` shard, in the file's own order: read it, add
``scale · B @ A`` (in float32) where the adapter targets it, cast to the output dtype and append it to
the output shard. The output has the base's tensor names, shard files and index (tied embeddings stay
tied: a base without an ``lm_head`` tensor gets none), and the base's config, tokenizer and generation
config. At most one base tensor, its merged copy and the (small) adapter are in memory at a time.

Everything is written to a hidden sibling directory and renamed to ``output_dir`` only after the
verification passed, so a failed merge never leaves a finished-looking model behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from veritas_rl.merge.adapter import Adapter, MergeError, load_adapter
from veritas_rl.merge.safetensors_stream import SafetensorsReader, SafetensorsWriter, dtype_code
from veritas_rl.merge.shards import WEIGHTS_INDEX, base_shards
from veritas_rl.merge.verify import verify_merge

log = logging.getLogger(__name__)

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "base": None}
MERGE_INFO = "merge_info.json"  # provenance of a merged model: adapter, alpha and its source, verification
#: files of the base directory that are weights (rewritten) or belong to an adapter (not copied)
_NOT_COPIED = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_NOT_COPIED_NAMES = {WEIGHTS_INDEX, "pytorch_model.bin.index.json", "adapter_config.json", "lora_train_meta.json",
                     MERGE_INFO}


@dataclass
class MergeResult:
    output_dir: Path
    num_parameters: int  # tensors written (= base parameter count)
    merged_modules: int
    replaced_tensors: int
    seconds: float
    verification: object | None = None  # veritas_rl.merge.verify.VerifyReport


def resolve_base(base_model: str, *, trust_remote_code: bool = False) -> Path:
    """A local directory as is; ``embedded:NAME`` materialised; otherwise a hub id fetched with huggingface_hub."""
    if base_model.startswith("embedded:"):
        from veritas_rl.models import resolve_model

        try:
            return Path(resolve_model(base_model))
        except ValueError as err:
            raise MergeError(f"--base_model {err}") from err
    path = Path(base_model).expanduser()
    if path.is_dir():
        return path
    if path.exists() or base_model.startswith((".", "/")):
        raise MergeError(f"--base_model {base_model} is not a directory")
    from huggingface_hub import snapshot_download

    log.info("fetching base model %s from the Hugging Face hub (or its local cache)", base_model)
    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]
    if trust_remote_code:
        patterns.append("*.py")
    try:
        return Path(snapshot_download(base_model, allow_patterns=patterns))
    except Exception as err:  # offline, unknown repo, gated, bad id: one clear line instead of a hub traceback
        raise MergeError(f"{base_model!r} is neither a local directory nor a fetchable hub model ({err})") from err


def _tied_embeddings(config: dict) -> bool:
    if config.get("tie_word_embeddings"):
        return True
    text = config.get("text_config") or {}
    return bool(text.get("tie_word_embeddings"))


def natural_key(name: str) -> list:
    """Sort key that puts layers in model order: ``layers.2`` before ``layers.10``."""
    return [int(part) if part.isdigit() else part for part in name.split(".")]


def check_compatible(adapter: Adapter, layout: dict[str, tuple[str, tuple[int, ...]]], base_config: dict) -> None:
    """Fail, naming the first mismatching module (in layer order), if the adapter was not trained on this base."""
    tied = _tied_embeddings(base_config)
    for name in sorted(adapter.modules, key=natural_key):
        lm = adapter.modules[name]
        if name not in layout:
            if tied and name.endswith("lm_head.weight"):
                raise MergeError(
                    f"the adapter targets {lm.module}, which this base ties to its input embeddings "
                    "(tie_word_embeddings=true): merging would change both; untie the base first"
                )
            raise MergeError(f"adapter module {lm.module} has no weight {name!r} in the base model")
        if tied and name.endswith(("embed_tokens.weight", "wte.weight", "word_embeddings.weight")):
            raise MergeError(
                f"the adapter targets {lm.module}, which this base ties to lm_head (tie_word_embeddings=true): "
                "merging would change the output projection too, unlike the PEFT model"
            )
        shape = layout[name][1]
        if tuple(shape) != tuple(lm.expected_shape):
            raise MergeError(
                f"base does not match the adapter at module {lm.module}: the adapter expects a weight of shape "
                f"{list(lm.expected_shape)} (lora_A {list(lm.A.shape)}, lora_B {list(lm.B.shape)}), the base has "
                f"{list(shape)} — was the adapter trained on a different base model?"
            )
    for name in sorted(adapter.replacements, key=natural_key):
        tensor = adapter.replacements[name]
        if name not in layout:
            raise MergeError(f"adapter tensor {name!r} (modules_to_save) has no counterpart in the base model")
        if tuple(tensor.shape) != tuple(layout[name][1]):
            raise MergeError(
                f"base does not match the adapter at {name}: adapter {list(tensor.shape)}, base {list(layout[name][1])}"
            )


def _output_dtype(code: str, dtype_name: str | None):
    import torch

    from veritas_rl.merge.safetensors_stream import torch_dtype

    src = torch_dtype(code)
    if dtype_name is None or not src.is_floating_point:
        return src
    return getattr(torch, dtype_name)


def merge_adapter(
    base_model: str | os.PathLike,
    adapter_model: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    dtype: str = "bf16",
    lora_alpha: float | None = None,
    lora_train_meta: str | os.PathLike | None = None,
    trust_remote_code: bool = False,
    verify: bool = True,
    overwrite: bool = False,
    prompts: tuple[str, ...] | None = None,
) -> MergeResult:
    """Merge ``adapter_model`` into ``base_model`` and write the full model to ``output_dir``.

    Raises :class:`MergeError` (a ``ValueError``) for an unmergeable adapter or mismatched base before
    anything is written, and :class:`veritas_rl.merge.verify.VerificationError` when the written model
    does not reproduce the PEFT model; in both cases ``output_dir`` is not created.
    """
    import time

    from tqdm import tqdm

    if dtype not in DTYPES:
        raise MergeError(f"dtype={dtype!r}; expected one of {', '.join(DTYPES)}")
    output_dir = Path(output_dir)
    if output_dir.exists() and not overwrite:
        raise MergeError(f"output_dir {output_dir} already exists (pass overwrite=True / --overwrite to replace it)")
    started = time.perf_counter()
    base_dir = resolve_base(str(base_model), trust_remote_code=trust_remote_code)
    adapter_dir = Path(adapter_model)
    if not adapter_dir.is_dir():
        adapter_dir = resolve_base(str(adapter_model))
    adapter = load_adapter(adapter_dir, lora_alpha=lora_alpha, lora_train_meta=lora_train_meta)

    base_config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    shards, index = base_shards(base_dir)
    layout: dict[str, tuple[str, tuple[int, ...]]] = {}
    for shard in shards:
        with SafetensorsReader(base_dir / shard) as reader:
            for name, info in reader.tensors.items():
                layout[name] = (shard, info.shape)
    check_compatible(adapter, layout, base_config)

    dtype_name = DTYPES[dtype]
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_dir.parent / f".{output_dir.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        n_params = merged = replaced = 0
        total_size = 0
        bar = tqdm(total=len(layout), desc="merging", unit="tensor", disable=None)
        for shard in shards:
            with SafetensorsReader(base_dir / shard) as reader:
                plan = [
                    (name, dtype_code(_output_dtype(info.dtype, dtype_name)), info.shape)
                    for name, info in reader.tensors.items()
                ]
                metadata = {**reader.metadata, "format": "pt"}
                with SafetensorsWriter(tmp / shard, plan, metadata) as writer:
                    for name, code, _shape in plan:
                        tensor = reader.get(name)
                        out_dtype = _output_dtype(reader.tensors[name].dtype, dtype_name)
                        if name in adapter.replacements:  # modules_to_save, or a LoRA'd embedding saved in full
                            tensor = adapter.replacements[name].clone()  # the LoRA add below is in place
                            replaced += 1
                        if name in adapter.modules:
                            tensor = tensor.float().add_(adapter.modules[name].delta())
                            merged += 1
                        writer.write(name, tensor.to(out_dtype))
                        n_params += tensor.numel()
                        del tensor
                        bar.update()
                total_size += writer.total_bytes
        bar.close()
        if index is not None:
            new_index = {**index, "metadata": {**(index.get("metadata") or {}), "total_size": total_size}}
            (tmp / WEIGHTS_INDEX).write_text(json.dumps(new_index, indent=2) + "\n", encoding="utf-8")
        _copy_side_files(base_dir, tmp, dtype_name)
        result = MergeResult(output_dir, n_params, merged, replaced, 0.0)
        log.info(
            "merged into %s (renamed to %s once verified): %d parameters, %d LoRA modules merged, "
            "%d tensors replaced, dtype %s", tmp.name, output_dir, n_params, merged, replaced, dtype,
        )
        if verify:
            result.verification = verify_merge(
                base_dir, adapter, tmp, prompts=prompts, trust_remote_code=trust_remote_code
            )
        info = {
            "base_model": str(base_model),
            "adapter_model": str(adapter_model),
            "lora_alpha": adapter.lora_alpha,
            "lora_alpha_source": adapter.alpha_source,
            "r": adapter.config.get("r"),
            "use_rslora": bool(adapter.config.get("use_rslora")),
            "dtype": dtype,
            "num_parameters": n_params,
            "merged_modules": merged,
            "replaced_tensors": replaced,
            "verification": result.verification.to_dict() if result.verification is not None else None,
        }
        (tmp / MERGE_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        tmp.rename(output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.seconds = time.perf_counter() - started
    return result


def _copy_side_files(base_dir: Path, out_dir: Path, dtype_name: str | None) -> None:
    """Config, generation config, tokenizer, chat template, remote code: every top-level non-weight file."""
    for path in sorted(base_dir.iterdir()):
        if not path.is_file() or path.name in _NOT_COPIED_NAMES or path.name.endswith(_NOT_COPIED):
            continue
        shutil.copy2(path, out_dir / path.name)
    config_path = out_dir / "config.json"
    if dtype_name is not None and config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["dtype"] = dtype_name
        if "torch_dtype" in config:
            config["torch_dtype"] = dtype_name
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")

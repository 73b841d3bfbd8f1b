"""A saved LoRA adapter, resolved to per-module weight deltas.

Reads ``adapter_config.json`` + ``adapter_model.safetensors`` (or ``.bin``) as PEFT and verl 0.9.1's
model merger write them, resolves the scaling of every targeted module the way PEFT does
(``lora_alpha / r``, ``lora_alpha / sqrt(r)`` with ``use_rslora``, per-module ``rank_pattern`` /
``alpha_pattern``), and refuses what cannot be merged into plain weights.

verl's merger writes ``lora_alpha: 0`` when the checkpoint lacks ``lora_train_meta.json``; merging
that adapter would silently return the base model. An alpha of 0 or a missing alpha is therefore
taken from ``--lora_alpha`` or a ``lora_train_meta.json``, and without either the merge is refused.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
LORA_TRAIN_META = "lora_train_meta.json"

#: adapter_config keys whose non-default value makes the adapter something other than ``W + s·B@A``
UNSUPPORTED_OPTIONS = {
    "use_dora": "DoRA rescales the merged weight by a learned magnitude vector",
    "lora_bias": "a LoRA bias term on lora_B",
    "layer_replication": "layer replication changes the model's layer layout",
    "target_parameters": "LoRA on raw nn.Parameters (MoE experts)",
    "trainable_token_indices": "trainable token embeddings",
    "alora_invocation_tokens": "activated LoRA only applies after invocation tokens, it cannot be merged",
    "use_qalora": "QA-LoRA (quantisation-aware pooling)",
    "use_bdlora": "block-diagonal LoRA",
    "arrow_config": "Arrow routing between adapters",
    "monteclora_config": "MonteCLoRA",
    "velora_config": "VeLoRA",
    "kasa_config": "KaSA",
}
#: init methods that change the *base* weights at training time: the saved adapter is only correct on
#: that modified base unless PEFT converted it on save
BASE_CHANGING_INITS = ("pissa", "olora", "corda", "loftq")

_LORA_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.(?P<part>lora_A|lora_B)(?:\.(?P<adapter>[^.]+))?\.weight$"
)
_EMB_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.(?P<part>lora_embedding_A|lora_embedding_B)(?:\.(?P<adapter>[^.]+))?$"
)


class MergeError(ValueError):
    """The adapter, base or options cannot produce a correct merged model (nothing is written)."""


@dataclass
class LoraModule:
    """One targeted module: ``weight += scale · (B @ A)`` (transposed for embeddings / fan_in_fan_out)."""

    module: str  # module path in the base model, e.g. "model.layers.0.self_attn.q_proj"
    A: object  # torch.Tensor (r, in) — lora_embedding_A is (r, num_embeddings)
    B: object  # torch.Tensor (out, r) — lora_embedding_B is (dim, r)
    r: int
    alpha: float
    scale: float
    transpose: bool  # embeddings and fan_in_fan_out layers store the weight transposed w.r.t. B @ A

    @property
    def weight_name(self) -> str:
        return f"{self.module}.weight"

    @property
    def expected_shape(self) -> tuple[int, int]:
        out_dim, in_dim = self.B.shape[0], self.A.shape[1]
        return (in_dim, out_dim) if self.transpose else (out_dim, in_dim)

    def delta(self):
        """``scale · B @ A`` in float32, laid out like the base weight."""
        d = self.B.float() @ self.A.float()
        if self.transpose:
            d = d.T
        return d * self.scale


@dataclass
class Adapter:
    path: Path
    config: dict
    modules: dict[str, LoraModule]  # keyed by base weight name
    replacements: dict[str, object] = field(default_factory=dict)  # base tensor name -> full tensor (modules_to_save)
    alpha_source: str = "adapter_config.json"

    @property
    def lora_alpha(self) -> float:
        return self.config["lora_alpha"]


def pattern_value(patterns: dict, module: str, default):
    """``rank_pattern`` / ``alpha_pattern`` lookup with PEFT's semantics: the first key that matches a
    dotted suffix of the module path (as a regular expression) wins."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def find_adapter_weights(adapter_dir: Path) -> Path:
    for name in ADAPTER_WEIGHTS:
        if (adapter_dir / name).is_file():
            return adapter_dir / name
    raise MergeError(f"{adapter_dir} has no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")


def read_lora_train_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise MergeError(f"cannot read {path}: {err}") from None
    if not isinstance(meta, dict):
        raise MergeError(f"{path} must hold a JSON object like {{'r': 16, 'lora_alpha': 32}}")
    return meta


def meta_candidates(adapter_dir: Path, explicit: str | Path | None) -> list[Path]:
    """Where a ``lora_train_meta.json`` for this adapter may live (explicit path first)."""
    if explicit:
        return [Path(explicit)]
    return [adapter_dir / LORA_TRAIN_META, adapter_dir.parent / LORA_TRAIN_META]


def resolve_alpha(config: dict, adapter_dir: Path, cli_alpha: float | None, meta_path: str | Path | None):
    """The effective ``lora_alpha`` and where it came from; raises :class:`MergeError` if there is none."""
    cfg_alpha = config.get("lora_alpha")
    if cfg_alpha:  # present and non-zero
        if cli_alpha is not None and float(cli_alpha) != float(cfg_alpha):
            raise MergeError(
                f"--lora_alpha={cli_alpha} contradicts lora_alpha={cfg_alpha} in {adapter_dir / ADAPTER_CONFIG}; "
                "drop --lora_alpha or fix the adapter config"
            )
        return cfg_alpha, ADAPTER_CONFIG
    if cli_alpha is not None:
        if not cli_alpha > 0:
            raise MergeError(f"--lora_alpha must be > 0, got {cli_alpha}")
        return cli_alpha, "--lora_alpha"
    looked = meta_candidates(adapter_dir, meta_path)
    for path in looked:
        if path.is_file():
            meta = read_lora_train_meta(path)
            alpha = meta.get("lora_alpha")
            if not alpha:
                raise MergeError(
                    f"lora_alpha is {alpha!r} in {path} too: the adapter would merge as a no-op; pass --lora_alpha"
                )
            meta_r = int(meta.get("r") or 0)
            if meta_r and meta_r != int(config.get("r") or meta_r):
                raise MergeError(f"{path} says r={meta_r} but {adapter_dir / ADAPTER_CONFIG} says r={config.get('r')}")
            return alpha, str(path)
    if meta_path and not Path(meta_path).is_file():
        raise MergeError(f"--lora_train_meta {meta_path} does not exist")
    raise MergeError(
        f"lora_alpha is {cfg_alpha!r} in {adapter_dir / ADAPTER_CONFIG} and no other source was found "
        f"(looked for {', '.join(str(p) for p in looked)}; or pass --lora_alpha): refusing to write a model, "
        "the merge would return the base model unchanged"
    )


def check_supported(config: dict, adapter_dir: Path) -> None:
    peft_type = str(config.get("peft_type") or "LORA").upper()
    if peft_type != "LORA":
        raise MergeError(f"peft_type={peft_type!r} in {adapter_dir / ADAPTER_CONFIG}; only LORA adapters can be merged")
    for key, what in UNSUPPORTED_OPTIONS.items():
        if config.get(key):
            raise MergeError(f"{key}={config[key]!r} in {adapter_dir / ADAPTER_CONFIG} ({what}) is not supported")
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(BASE_CHANGING_INITS):
        log.warning(
            "init_lora_weights=%r trains against a modified base; the merge is correct only if the adapter was "
            "converted on save (PEFT's path_initial_model_for_weight_conversion)", init
        )


def load_adapter(
    adapter_dir: str | Path,
    *,
    lora_alpha: float | None = None,
    lora_train_meta: str | Path | None = None,
) -> Adapter:
    """Load and resolve an adapter directory (local path). Raises :class:`MergeError` on anything unmergeable."""
    import torch

    adapter_dir = Path(adapter_dir)
    cfg_path = adapter_dir / ADAPTER_CONFIG
    if not cfg_path.is_file():
        raise MergeError(f"{adapter_dir} has no {ADAPTER_CONFIG}")
    config = json.loads(cfg_path.read_text(encoding="utf-8"))
    check_supported(config, adapter_dir)
    alpha, alpha_source = resolve_alpha(config, adapter_dir, lora_alpha, lora_train_meta)
    config = {**config, "lora_alpha": alpha}

    weights_path = find_adapter_weights(adapter_dir)
    if weights_path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights_path))
    else:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)

    parts: dict[str, dict[str, object]] = {}
    kinds: dict[str, bool] = {}  # module -> is_embedding
    replacements: dict[str, object] = {}
    for key, tensor in state.items():
        m = _LORA_KEY.match(key) or _EMB_KEY.match(key)
        if m:
            module, part = m["module"], m["part"]
            parts.setdefault(module, {})[part[-1]] = tensor
            kinds[module] = part.startswith("lora_embedding")
            continue
        # anything else is a full tensor trained alongside (modules_to_save, bias="all"/"lora_only", embeddings
        # PEFT saved because they were targeted): it replaces the base tensor, as PEFT does when loading
        name = key.removeprefix("base_model.model.")
        name = re.sub(r"\.modules_to_save\.[^.]+\.", ".", name)
        name = re.sub(r"\.original_module\.", ".", name)
        name = name.replace(".base_layer.", ".")  # a targeted embedding PEFT saved in full
        replacements[name] = tensor

    r_default = int(config.get("r") or 0)
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    use_rslora = bool(config.get("use_rslora"))
    fan_in_fan_out = bool(config.get("fan_in_fan_out"))
    modules: dict[str, LoraModule] = {}
    for module, ab in parts.items():
        if set(ab) != {"A", "B"}:
            raise MergeError(f"{weights_path}: module {module} has lora_{''.join(ab)} but not both lora_A and lora_B")
        A, B = ab["A"], ab["B"]
        is_emb = kinds[module]
        r = int(pattern_value(rank_pattern, module, r_default))
        if A.dim() != 2 or B.dim() != 2:
            raise MergeError(
                f"{weights_path}: module {module} has lora_A {list(A.shape)} / lora_B {list(B.shape)}; only Linear "
                "and Embedding LoRA layers (2-D) can be merged here (conv LoRA is not supported)"
            )
        if A.shape[0] != r or B.shape[1] != r:
            raise MergeError(
                f"{weights_path}: module {module} has rank {A.shape[0]} in its weights but r={r} in {ADAPTER_CONFIG}"
            )
        m_alpha = float(pattern_value(alpha_pattern, module, alpha))
        scale = m_alpha / math.sqrt(r) if use_rslora else m_alpha / r
        lm = LoraModule(module, A, B, r, m_alpha, scale, transpose=is_emb or fan_in_fan_out)
        modules[lm.weight_name] = lm
    if not modules:
        raise MergeError(f"{weights_path} holds no lora_A/lora_B weights")
    log.info(
        "adapter %s: %d LoRA modules, r=%s, lora_alpha=%s (from %s)%s%s",
        adapter_dir, len(modules), r_default, alpha, alpha_source, ", rsLoRA" if use_rslora else "",
        f", {len(replacements)} full tensors (modules_to_save)" if replacements else "",
    )
    return Adapter(adapter_dir, config, modules, replacements, alpha_source)

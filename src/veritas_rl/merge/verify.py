"""Check a merged model against the PEFT model it replaces.

On by default in :func:`veritas_rl.merge.core.merge_adapter`; the model is renamed into place only if
every check passes:

1. **Weights** (streamed, one tensor at a time): every tensor of the written model equals the base
   tensor plus the adapter delta, computed in float32 and rounded once to the output dtype (untouched
   tensors equal the base, cast); every module whose delta is above the output dtype's resolution
   differs from the base; an adapter whose delta is zero everywhere is rejected (the "merged" model
   would be the base model).
2. **Merge math** (float32): the base plus our deltas, in float32, reproduces the PEFT model's
   logits (base + adapter, float32) within ``1e-3``: this pins module mapping, scaling (alpha/r, rsLoRA,
   patterns) and transposition to PEFT's own implementation.
3. **Written model**: the merged model as written, upcast to float32, reproduces the PEFT logits within
   :data:`LOGIT_BOUNDS` for its dtype (bfloat16 rounding of every weight moves logits a little).

The adapter's own effect (PEFT with the adapter disabled vs enabled) is reported beside the differences,
so the margin is visible. Models are loaded one at a time.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from veritas_rl.merge.adapter import Adapter

log = logging.getLogger(__name__)

#: max abs logit difference, merged-as-written vs PEFT (float32 compute), by the merged weights' dtype.
#: float32 differs from PEFT only by summation order. bfloat16/float16 round every weight to 8/11
#: significant bits; on SmolLM2-135M (30 layers, logits up to ~25) bf16 moved logits by 0.23 (measured,
#: docs/training.md), the bound leaves a margin for deeper models. The tight check is the float32 one.
LOGIT_BOUNDS = {"float32": 1e-3, "bfloat16": 0.75, "float16": 0.1}
MATH_BOUND = 1e-3

DEFAULT_PROMPTS = (
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "Question: What is 17 times 23?\nAnswer:",
)


class VerificationError(RuntimeError):
    """The merged model does not reproduce the PEFT model (it is not written to output_dir)."""


@dataclass
class VerifyReport:
    ok: bool
    dtype: str
    max_abs_logit_diff: float  # merged model as written (upcast) vs PEFT
    logit_bound: float
    math_diff: float  # base + our deltas in float32 vs PEFT
    adapter_effect: float  # max abs logit diff, PEFT with vs without the adapter
    modules_checked: int
    modules_changed: int
    modules_below_resolution: int
    tensors_checked: int
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        status = "PASSED" if self.ok else "FAILED"
        return (
            f"verification {status}: max|logits(merged) - logits(PEFT)| = {self.max_abs_logit_diff:.3g} "
            f"(bound {self.logit_bound:g} for {self.dtype} weights), float32 merge math {self.math_diff:.3g} "
            f"(bound {MATH_BOUND:g}); adapter effect max|logits(PEFT) - logits(base)| = {self.adapter_effect:.3g}; "
            f"{self.modules_changed}/{self.modules_checked} adapted modules differ from the base "
            f"({self.modules_below_resolution} entirely below {self.dtype} resolution); "
            f"{self.tensors_checked} tensors bit-checked"
            + "".join(f"\n  - {f}" for f in self.failures)
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class WeightCheck:
    tensors: int = 0
    checked: int = 0
    changed: int = 0
    below: int = 0
    dtype: str = "float32"
    failures: list[str] = field(default_factory=list)


def check_weights(base_dir: Path, adapter: Adapter, merged_dir: Path) -> WeightCheck:
    """Compare every written tensor with its expected value, streaming over the base and merged shards."""
    import torch

    from veritas_rl.merge.safetensors_stream import SafetensorsReader
    from veritas_rl.merge.shards import base_shards

    shards, _ = base_shards(base_dir)
    out = WeightCheck()
    any_nonzero = False
    for shard in shards:
        with SafetensorsReader(base_dir / shard) as base, SafetensorsReader(merged_dir / shard) as merged:
            if set(base.keys()) != set(merged.keys()):
                out.failures.append(f"{shard}: tensor names differ from the base's")
                continue
            for name in base.keys():
                got, ref = merged.get(name), base.get(name)
                ref = adapter.replacements.get(name, ref)  # PEFT loads a saved full tensor before adding LoRA
                out.tensors += 1
                lm = adapter.modules.get(name)
                if lm is None:
                    want = ref.to(got.dtype)
                    if not torch.equal(got, want):
                        what = "the adapter's saved tensor (modules_to_save)" if name in adapter.replacements else "the base"
                        out.failures.append(f"{name}: differs from {what}")
                    continue
                out.dtype = str(got.dtype).removeprefix("torch.")
                out.checked += 1
                delta = lm.delta()
                any_nonzero |= bool(delta.abs().max().item() > 0)
                if not torch.equal(got, (ref.float() + delta).to(got.dtype)):
                    out.failures.append(f"{name}: differs from base + scale*B@A rounded to {out.dtype}")
                significant = bool((delta.abs() > torch.finfo(got.dtype).eps * ref.float().abs()).any())
                differs = not torch.equal(got, ref.to(got.dtype))
                out.changed += differs
                if not significant:
                    out.below += 1
                elif not differs:
                    out.failures.append(
                        f"{lm.module}: adapter delta up to {delta.abs().max().item():.3g} (scale {lm.scale:g}) but "
                        "the merged weight equals the base weight"
                    )
    if not any_nonzero:
        out.failures.append("the adapter's delta is zero in every module: the merged model would be the base model")
    return out


def _logits(model, batch):
    """Logits at the real (non-padding) positions of the prompt batch, float32."""
    import torch

    with torch.inference_mode():
        logits = model(**batch).logits.float()
    return logits[batch["attention_mask"].bool()]


def _max_diff(a, b) -> float:
    return (a - b).abs().max().item()


def verify_merge(
    base_dir: str | Path,
    adapter: Adapter,
    merged_dir: str | Path,
    *,
    prompts: tuple[str, ...] | None = None,
    trust_remote_code: bool = False,
    raise_on_failure: bool = True,
) -> VerifyReport:
    """Run the three checks; log the summary; raise :class:`VerificationError` on failure (unless told not to)."""
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir, merged_dir = Path(base_dir), Path(merged_dir)
    weights = check_weights(base_dir, adapter, merged_dir)
    failures = list(weights.failures)
    if failures:  # the written weights are already wrong: fail fast, without loading three models
        nan = float("nan")
        report = VerifyReport(False, weights.dtype, nan, LOGIT_BOUNDS.get(weights.dtype, MATH_BOUND), nan, nan,
                              weights.checked, weights.changed, weights.below, weights.tensors, failures)
        log.error("%s", report.summary())
        if raise_on_failure:
            raise VerificationError(report.summary())
        return report

    tokenizer = AutoTokenizer.from_pretrained(merged_dir, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batches = tokenizer(list(prompts or DEFAULT_PROMPTS), return_tensors="pt", padding=True)

    def load(path):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=trust_remote_code)
        return model.eval()

    # one model in memory at a time: PEFT (with and without the adapter), base + our deltas, merged as written
    config = LoraConfig.from_pretrained(str(adapter.path))
    config.lora_alpha = adapter.lora_alpha  # the resolved alpha (verl may have written 0)
    peft_model = PeftModel.from_pretrained(load(base_dir), str(adapter.path), config=config).eval()
    want = _logits(peft_model, batches)
    with peft_model.disable_adapter():
        plain = _logits(peft_model, batches)
    del peft_model
    gc.collect()

    model = load(base_dir)

    def param(name: str):
        try:
            return model.get_parameter(name)
        except AttributeError:
            raise VerificationError(
                f"tensor {name!r} of the checkpoint is not a parameter of the loaded {type(model).__name__} "
                "(transformers renames this architecture's weights on load); verify this merge another way "
                "and pass --no_verify"
            ) from None

    with torch.no_grad():
        for name, tensor in adapter.replacements.items():
            param(name).copy_(tensor)
        for name, lm in adapter.modules.items():
            param(name).add_(lm.delta())
    math_diff = _max_diff(_logits(model, batches), want)
    del model
    gc.collect()

    got = _logits(load(merged_dir), batches)
    gc.collect()

    diff = _max_diff(got, want)
    effect = _max_diff(plain, want)
    bound = LOGIT_BOUNDS.get(weights.dtype, LOGIT_BOUNDS["float32"])
    if not math_diff <= MATH_BOUND:  # `not <=` also catches NaN
        failures.append(f"base + adapter deltas (float32) differ from the PEFT model's logits by {math_diff:.3g} > {MATH_BOUND:g}")
    if not diff <= bound:
        failures.append(f"merged logits differ from the PEFT model's by {diff:.3g} > {bound:g}")
    report = VerifyReport(
        not failures, weights.dtype, diff, bound, math_diff, effect, weights.checked, weights.changed,
        weights.below, weights.tensors, failures,
    )
    (log.info if report.ok else log.error)("%s", report.summary())
    if not report.ok and raise_on_failure:
        raise VerificationError(report.summary())
    return report

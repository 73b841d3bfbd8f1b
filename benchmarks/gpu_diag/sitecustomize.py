"""Diagnostics for verl LoRA weight sync on the GPU (benchmarks/verl_gpu.py --diag-lora puts this dir on PYTHONPATH).

Python imports ``sitecustomize`` in every process, Ray and vLLM workers included. This one wraps three
functions of verl 0.9.1 / vLLM 0.24 once their modules load, and prints what crosses the LoRA weight sync:
what the FSDP engine sends, what the vLLM worker receives, and what vLLM's LoRA manager holds before packing.
It changes no behaviour. Lines start with ``[lora-diag]``.
"""

import importlib.abc
import importlib.machinery
import sys

TARGETS = {
    "verl.workers.engine.fsdp.transformer_impl",
    "verl.workers.rollout.vllm_rollout.utils",
    "vllm.lora.model_manager",
}


def _say(*parts):
    print("[lora-diag]", *parts, file=sys.stderr, flush=True)


def _names(keys, n=4):
    keys = list(keys)
    return f"{len(keys)} {keys[:n]}"


def _patch(module):
    name = module.__name__
    if name == "verl.workers.engine.fsdp.transformer_impl":
        cls = module.FSDPEngine
        orig = cls.get_per_tensor_param

        def get_per_tensor_param(self, *args, **kwargs):
            params, peft = orig(self, *args, **kwargs)
            if peft is not None and kwargs.get("base_sync_done"):
                items = list(params)
                _say("engine sends", _names(k for k, _ in items), "peft target_modules", peft.get("target_modules"),
                     "exclude", peft.get("exclude_modules"))
                return items, peft
            return params, peft

        cls.get_per_tensor_param = get_per_tensor_param
    elif name == "verl.workers.rollout.vllm_rollout.utils":
        cls = module.vLLMColocateWorkerExtension
        orig = cls._update_weights

        def _update_weights(self, weights, peft_config, base_sync_done):
            weights = list(weights)
            if peft_config and base_sync_done:
                _say("vllm worker receives", _names(n for n, _ in weights))
            return orig(self, weights, peft_config, base_sync_done)

        cls._update_weights = _update_weights
    elif name == "vllm.lora.model_manager":
        cls = module.LoRAModelManager
        orig = cls._create_merged_loras_inplace

        def _create_merged_loras_inplace(self, lora_model):
            _say("lora manager gets", _names(lora_model.loras), "packed", _names(self.packed_modules, 2),
                 "modules", _names(self.modules, 3))
            return orig(self, lora_model)

        cls._create_merged_loras_inplace = _create_merged_loras_inplace


class _Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        try:
            _patch(module)
        except Exception as exc:  # a diagnostic must never break the run
            _say("patch failed for", module.__name__, repr(exc))


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in TARGETS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


sys.meta_path.insert(0, _Finder())

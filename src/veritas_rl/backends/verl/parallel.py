"""Batch and parallelism arithmetic of a composed ``main_ppo`` config, checked before any GPU is touched.

verl 0.9.1 checks some of this in ``validate_config`` (only without dynamic batch sizes) and asserts the rest
deep inside its workers, minutes into a run, often only when there are several GPUs:

* the step's ``data.train_batch_size x rollout.n`` sequences are split evenly over the actor's data-parallel
  ranks (``trainer.balance_batch`` partitions with ``equal_size=True``), and so is each actor update's
  ``ppo_mini_batch_size x rollout.n`` (``engine_workers``: ``mini_batch_size % dp == 0``);
* without dynamic batch sizes, each rank's share is cut into micro batches that must divide it
  (``prepare_micro_batches``: "data size must be divisible by ... micro_batch_size_per_gpu");
* with dynamic batch sizes, one whole sequence must fit a micro batch's token budget
  (``rearrange_micro_batches``: "max_token_len must be greater than the sequence length");
* the rollout's engines of ``tensor x data x pipeline`` GPUs must tile the GPUs (``init_model``: "rollout
  world_size ... is not divisible by infer_world_size"), spanning whole nodes when larger than one;
* vLLM splits the attention heads over its tensor-parallel ranks: the query heads must divide, and the KV heads
  must divide or be replicated evenly (read from the model's ``config.json`` when the path is a local dir).

:func:`check` raises one ``ValueError`` listing every problem (one line, ``; ``-separated), each naming the Hydra key and the launcher
variable that sets it. The validator (``DRY_RUN=1``, and every launch with ``VALIDATE=1``) calls it.
"""

from __future__ import annotations

import math
from pathlib import Path

from veritas_rl.backends.verl.model_probe import read_shape

#: Hydra key -> the launcher variable that sets it (for the messages)
VARIABLE = {
    "data.train_batch_size": "TRAIN_BATCH_SIZE",
    "actor_rollout_ref.rollout.n": "ROLLOUT_N",
    "actor_rollout_ref.actor.ppo_mini_batch_size": "PPO_MINI_BATCH_SIZE",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "MICRO_BATCH_SIZE_PER_GPU",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "MICRO_BATCH_SIZE_PER_GPU",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": "MICRO_BATCH_SIZE_PER_GPU",
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": "PPO_MAX_TOKEN_LEN_PER_GPU",
    "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu": "LOG_PROB_MAX_TOKEN_LEN_PER_GPU",
    "actor_rollout_ref.ref.log_prob_max_token_len_per_gpu": "LOG_PROB_MAX_TOKEN_LEN_PER_GPU",
    "actor_rollout_ref.rollout.tensor_model_parallel_size": "ROLLOUT_TP",
    "actor_rollout_ref.rollout.data_parallel_size": "ROLLOUT_DP",
    "trainer.n_gpus_per_node": "GPU_COUNT",
    "trainer.nnodes": "NNODES",
}


def _name(key: str) -> str:
    return f"{key} ({VARIABLE[key]})" if key in VARIABLE else key


def _int(cfg, key: str, default: int | None = None) -> int | None:
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key, default=default)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def problems(cfg) -> list[str]:
    """Everything in ``cfg`` (verl's composed ``ppo_trainer`` config) that verl would assert on later."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import need_reference_policy

    out: list[str] = []
    per_node, nodes = _int(cfg, "trainer.n_gpus_per_node"), _int(cfg, "trainer.nnodes")
    if not per_node or not nodes or per_node < 1 or nodes < 1:
        return out  # verl's own type checks report these
    world = per_node * nodes
    gpus = f"{world} GPUs ({_name('trainer.n_gpus_per_node')}={per_node} x {_name('trainer.nnodes')}={nodes})"
    sp = _int(cfg, "actor_rollout_ref.actor.ulysses_sequence_parallel_size", 1) or 1
    if world % sp:
        out.append(f"actor_rollout_ref.actor.ulysses_sequence_parallel_size={sp} does not divide the {gpus}")
        return out
    dp = world // sp

    # --- batches over the actor's data-parallel ranks ---------------------------------------------
    n = _int(cfg, "actor_rollout_ref.rollout.n")
    train, mini = _int(cfg, "data.train_batch_size"), _int(cfg, "actor_rollout_ref.actor.ppo_mini_batch_size")
    if not (n and train and mini):
        return out
    for key, prompts, what in (("data.train_batch_size", train, "a step's"),
                               ("actor_rollout_ref.actor.ppo_mini_batch_size", mini, "an actor update's")):
        if prompts * n % dp:
            out.append(
                f"{what} {prompts} x {n} = {prompts * n} sequences ({_name(key)} x {_name('actor_rollout_ref.rollout.n')}) "
                f"do not split evenly over the {dp} data-parallel ranks of the {gpus}: verl 0.9.1 balances the batch into "
                f"equal parts and asserts it at the first step. Use a multiple of {dp // math.gcd(n, dp)} prompts"
            )
    if out:
        return out
    seq = (_int(cfg, "data.max_prompt_length") or 0) + (_int(cfg, "data.max_response_length") or 0)
    recompute = not OmegaConf.select(cfg, "algorithm.rollout_correction.bypass_mode", default=False)
    forwards = [("actor_rollout_ref.actor", "ppo", mini * n // dp, "an actor update")]
    if recompute:
        forwards.append(("actor_rollout_ref.rollout", "log_prob", train * n // dp, "the old log-probs"))
    if need_reference_policy(cfg):
        forwards.append(("actor_rollout_ref.ref", "log_prob", train * n // dp, "the reference log-probs"))
    dynamic = bool(OmegaConf.select(cfg, "actor_rollout_ref.actor.use_dynamic_bsz", default=False))
    for section, kind, rows, what in forwards:
        if dynamic:
            key = f"{section}.{kind}_max_token_len_per_gpu"
            budget = _int(cfg, key)
            if budget is not None and seq and budget * sp < seq:
                out.append(
                    f"{_name(key)}={budget} is below data.max_prompt_length + data.max_response_length = {seq}: verl "
                    f"0.9.1 asserts that one whole sequence fits a micro batch of {what}; use {seq} or more"
                )
        else:
            key = f"{section}.{kind}_micro_batch_size_per_gpu"
            micro = _int(cfg, key)
            if micro and rows % micro:
                out.append(
                    f"{_name(key)}={micro} does not divide the {rows} sequences each of the {dp} data-parallel ranks "
                    f"gets for {what} ({_name('data.train_batch_size' if kind == 'log_prob' else 'actor_rollout_ref.actor.ppo_mini_batch_size')}"
                    f" x rollout.n / {dp}): verl 0.9.1 asserts it at the first step. Use a divisor of {rows}, "
                    "or USE_DYNAMIC_BSZ=1"
                )

    # --- rollout engines over the GPUs, attention heads over tensor parallelism -----------------------
    tp = _int(cfg, "actor_rollout_ref.rollout.tensor_model_parallel_size") or 1
    rdp = _int(cfg, "actor_rollout_ref.rollout.data_parallel_size") or 1
    pp = _int(cfg, "actor_rollout_ref.rollout.pipeline_model_parallel_size") or 1
    engine = tp * rdp * pp
    sizes = (f"{_name('actor_rollout_ref.rollout.tensor_model_parallel_size')}={tp} x "
             f"{_name('actor_rollout_ref.rollout.data_parallel_size')}={rdp} x pipeline_model_parallel_size={pp}")
    if world % engine:
        out.append(f"rollout engines of {engine} GPUs ({sizes}) do not tile the {gpus}: verl 0.9.1 asserts the rollout "
                   f"world size divides it; use sizes whose product divides {world}")
    elif engine > per_node and engine % per_node:
        out.append(f"a rollout engine of {engine} GPUs ({sizes}) spans part of a node of {per_node} GPUs: verl 0.9.1 "
                   "needs an engine larger than one node to be whole nodes")
    if OmegaConf.select(cfg, "actor_rollout_ref.rollout.name") in ("vllm", "sglang") and tp > 1:
        path = OmegaConf.select(cfg, "actor_rollout_ref.model.path")
        shape = read_shape(path) if isinstance(path, str) and Path(path).is_dir() else None
        if shape and shape.heads and shape.heads % tp:
            out.append(f"{_name('actor_rollout_ref.rollout.tensor_model_parallel_size')}={tp} does not divide the model's "
                       f"{shape.heads} attention heads ({path}/config.json): vLLM refuses to start; use a divisor of "
                       f"{shape.heads}")
        elif shape and shape.kv_heads and (tp % shape.kv_heads if tp >= shape.kv_heads else shape.kv_heads % tp):
            out.append(f"{_name('actor_rollout_ref.rollout.tensor_model_parallel_size')}={tp} and the model's "
                       f"{shape.kv_heads} KV heads ({path}/config.json): vLLM needs one to divide the other")
    return out


def sft_problems(cfg) -> list[str]:
    """The same for verl's composed ``sft_trainer_engine`` config (torchrun on n_gpus_per_node x nnodes ranks).

    verl's SFT trainer gives each data-parallel rank ``data.train_batch_size // dp`` rows per step (a remainder is
    dropped while the loss is still normalised by the full batch) and, without dynamic batch sizes, asserts that
    ``data.micro_batch_size_per_gpu`` divides them."""
    per_node, nodes = _int(cfg, "trainer.n_gpus_per_node"), _int(cfg, "trainer.nnodes")
    batch, micro = _int(cfg, "data.train_batch_size"), _int(cfg, "data.micro_batch_size_per_gpu")
    sp = _int(cfg, "engine.ulysses_sequence_parallel_size", 1) or 1
    if not (per_node and nodes and batch and micro) or per_node < 1 or nodes < 1:
        return []
    dp = max(1, per_node * nodes // sp)
    ranks = f"{dp} data-parallel ranks (trainer.n_gpus_per_node (GPU_COUNT)={per_node} x trainer.nnodes (NNODES)={nodes})"
    if batch % dp:
        return [f"data.train_batch_size (SFT_TRAIN_BATCH_SIZE)={batch} does not split evenly over the {ranks}: verl 0.9.1 "
                f"trains {batch // dp * dp} rows per step and drops the rest; use a multiple of {dp}"]
    from omegaconf import OmegaConf

    if not OmegaConf.select(cfg, "data.use_dynamic_bsz", default=False) and batch // dp % micro:
        return [f"data.micro_batch_size_per_gpu (SFT_MICRO_BATCH_SIZE_PER_GPU)={micro} does not divide the {batch // dp} rows "
                f"each of the {ranks} gets per step (SFT_TRAIN_BATCH_SIZE / {dp}): verl 0.9.1 asserts it at the first "
                f"step. Use a divisor of {batch // dp} (or leave SFT_MICRO_BATCH_SIZE_PER_GPU empty), or SFT_USE_DYNAMIC_BSZ=1"]
    return []


def check(cfg, entry: str = "ppo") -> None:
    """Raise ``ValueError`` with every problem :func:`problems` (``sft``: :func:`sft_problems`) finds."""
    found = problems(cfg) if entry == "ppo" else sft_problems(cfg)
    if found:
        raise ValueError("; ".join(found))

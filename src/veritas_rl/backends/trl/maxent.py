"""MaxEnt-GRPO for the TRL backend (``--objective maxent``): sequence-level maximum-entropy GRPO.

The objective is the one stated in the public ``liv-daliberti/maxent-grpo`` project ("Objective and
Closed-Form Solution"; written here from the formula, not from its code). For one prompt with ``K``
sampled completions ``a_1..a_K``:

1. **Listwise target** ``q`` from the rewards ``r_i`` (temperature ``T`` = ``maxent_q_temperature``,
   floor ``eps`` = ``maxent_q_epsilon`` for full support)::

       p_i = softmax(r / T)_i,      q_i = (p_i + eps) / (1 + K eps)

2. **Per-prompt optimum** of ``max_pi E_pi[log q] + tau H(pi) - beta KL(pi || pi_ref)`` over the ``K``
   candidates (``tau`` = ``maxent_tau``, ``beta`` = the run's KL coefficient ``beta``; ``tau + beta > 0``)::

       pi*_i  ∝  q_i^(1/(tau+beta)) · pi_ref(a_i)^(beta/(tau+beta))

   ``pi_ref(a_i)`` is the reference model's probability of the whole completion; with
   ``maxent_length_normalize_ref`` (default) its log is the *mean* token log-prob, so long and short
   completions compare per token. With ``beta = 0`` no reference model is loaded: ``pi* ∝ q^(1/tau)``.
   Limits (tested): ``tau -> 0`` gives ``q^(1/beta) · pi_ref``; a one-hot ``q`` (``eps = 0``) gives a
   one-hot ``pi*`` whatever ``tau``, ``beta`` and ``pi_ref``; ``tau = 1, beta = 0`` gives ``pi* = q``.

3. **Projection to tokens by weighted maximum likelihood**: with ``w_i = pi*_i`` (each group sums to 1)
   the loss of a generation batch of ``P`` prompts is::

       L = -(1 / (P K L_max)) · sum_prompts sum_i (K w_i) · sum_t log pi_theta(a_i,t | a_i,<t, x)

   (``L_max`` = ``max_new_tokens``, a constant, as TRL's ``dr_grpo`` normalises, so that a long
   completion is not down-weighted per token). Its gradient moves ``pi_theta`` towards ``pi*`` on the
   sampled support; ``beta`` acts through ``pi_ref`` in ``w``, not as a separate KL penalty.

How it sits in TRL 1.16: :class:`MaxEntGRPOTrainer` subclasses ``GRPOTrainer``. Generation, rewards
and the reference log-probs are TRL's (``_generate_and_score_completions``, with
``scale_rewards="none"`` so the ``advantages`` it returns are the rewards minus the group mean —
``softmax`` is shift-invariant, so ``q`` is exactly ``softmax(r / T)``). The weights are computed there,
on the whole generation batch (groups gathered across processes, before TRL shuffles and splits the
batch into micro-batches), and travel to ``_compute_loss`` as the ``maxent_weights`` column. Logged:
``maxent/weight_entropy`` and ``maxent/q_entropy`` (mean per group, nats), ``maxent/weight_max`` and
``entropy`` (the policy's token entropy, as GRPO runs log it).

On verl there is no such objective; the nearest built-in is the token-entropy bonus
``actor_rollout_ref.actor.entropy_coeff`` (``ENTROPY_COEFF`` in the launchers), see docs/training.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

OBJECTIVES = ("grpo", "maxent")


@dataclass(frozen=True)
class MaxEntParams:
    tau: float
    beta: float
    q_temperature: float
    q_epsilon: float
    length_normalize_ref: bool


def params_of(s) -> MaxEntParams:
    return MaxEntParams(float(s.maxent_tau), float(s.beta), float(s.maxent_q_temperature), float(s.maxent_q_epsilon),
                        bool(s.maxent_length_normalize_ref))


def check_settings(s) -> None:
    """Validate ``objective`` and the ``maxent_*`` settings of a :class:`TrainSettings` (ValueError naming the key)."""
    if s.objective not in OBJECTIVES:
        raise ValueError(f"objective={s.objective!r} is not valid; choose from: {', '.join(OBJECTIVES)}")
    for key in ("maxent_tau", "maxent_q_temperature", "maxent_q_epsilon"):
        value = getattr(s, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{key}={value!r} must be a finite number")
    if s.maxent_tau < 0:
        raise ValueError(f"maxent_tau={s.maxent_tau!r} must be >= 0")
    if s.maxent_q_temperature <= 0:
        raise ValueError(f"maxent_q_temperature={s.maxent_q_temperature!r} must be > 0")
    if s.maxent_q_epsilon < 0:
        raise ValueError(f"maxent_q_epsilon={s.maxent_q_epsilon!r} must be >= 0")
    if not isinstance(s.maxent_length_normalize_ref, bool):
        raise ValueError(f"maxent_length_normalize_ref={s.maxent_length_normalize_ref!r} must be true or false")
    if s.objective != "maxent":
        return
    if s.mode != "grpo":
        raise ValueError(f"objective='maxent' is a GRPO objective; it does not apply to mode={s.mode!r}")
    if s.maxent_tau + s.beta <= 0:
        raise ValueError(f"objective='maxent' needs maxent_tau + beta > 0 (got maxent_tau={s.maxent_tau}, "
                         f"beta={s.beta}): the optimum q^(1/(tau+beta)) is undefined at 0")
    if getattr(s, "episode", "move") != "move":
        raise ValueError(f"objective='maxent' trains on one prompt per task; episode={s.episode!r} is not supported")


# -- the weights (pure tensor functions, tested against the closed form) ----------------------------


def listwise_target(rewards, group_size: int, temperature: float, epsilon: float):
    """``q`` per group: ``(softmax(r / T) + eps) / (1 + K eps)``; ``rewards`` is ``(P * K,)``, returns ``(P, K)``."""
    import torch

    r = rewards.reshape(-1, group_size).to(torch.float64)
    p = torch.softmax(r / temperature, dim=1)
    return (p + epsilon) / (1.0 + group_size * epsilon)


def maxent_weights(rewards, group_size: int, params: MaxEntParams, ref_logps=None):
    """``(w, q)``, each ``(P, K)``: ``w ∝ q^(1/(tau+beta)) · exp(ref_logps)^(beta/(tau+beta))``, normalised per group.

    ``ref_logps`` (``(P * K,)``, the reference log-probability of each completion, already length-normalised
    if wanted) is needed when ``beta > 0`` and ignored when ``beta == 0``.
    """
    import torch

    q = listwise_target(rewards, group_size, params.q_temperature, params.q_epsilon)
    scale = params.tau + params.beta
    if scale <= 0:
        raise ValueError(f"maxent weights need tau + beta > 0, got tau={params.tau}, beta={params.beta}")
    log_w = torch.log(q) / scale
    if params.beta > 0:
        if ref_logps is None:
            raise ValueError("maxent weights with beta > 0 need the reference log-probs of the completions")
        log_w = log_w + (params.beta / scale) * ref_logps.reshape(-1, group_size).to(torch.float64)
    return torch.softmax(log_w, dim=1), q


def sequence_logps(per_token_logps, mask, length_normalize: bool):
    """Sum (or mean, with ``length_normalize``) of the masked token log-probs of each completion."""
    mask = mask.to(per_token_logps.dtype)
    total = (per_token_logps * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1.0) if length_normalize else total


def _entropy(dist):
    import torch

    return -(dist * torch.log(dist.clamp(min=1e-300))).sum(dim=1)


# -- the trainer ----------------------------------------------------------------------------------

_TRAINER: type | None = None


def trainer_class() -> type:
    """``MaxEntGRPOTrainer`` (built on first use, so importing this module needs neither torch nor TRL)."""
    global _TRAINER
    if _TRAINER is None:
        _TRAINER = _build_trainer_class()
    return _TRAINER


def _build_trainer_class() -> type:
    import torch
    from trl import GRPOTrainer

    class MaxEntGRPOTrainer(GRPOTrainer):
        """``GRPOTrainer`` whose loss is MaxEnt-GRPO's weighted MLE (see the module docstring)."""

        def __init__(self, *args: Any, maxent: MaxEntParams, **kwargs: Any):
            super().__init__(*args, **kwargs)
            if self.args.scale_rewards != "none":
                raise ValueError("MaxEntGRPOTrainer needs GRPOConfig(scale_rewards='none'): q is built from the "
                                 "rewards, which TRL's advantages equal up to a per-group shift only then")
            if self.args.multi_objective_aggregation != "sum_then_normalize":
                raise ValueError("MaxEntGRPOTrainer needs multi_objective_aggregation='sum_then_normalize'")
            if maxent.beta != self.beta:
                raise ValueError(f"maxent beta={maxent.beta} differs from the trainer's beta={self.beta}")
            self.maxent = maxent

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            mode = "train" if self.model.training else "eval"
            k = self.num_generations if mode == "train" else self.num_generations_eval
            centred = out["advantages"]  # reward - group mean (scale_rewards="none")
            ref = None
            if self.maxent.beta > 0:
                ref = sequence_logps(out["ref_per_token_logps"], out["completion_mask"],
                                     self.maxent.length_normalize_ref)
            # a prompt's group may span processes (TRL gathers rewards the same way): weigh the gathered batch
            all_centred = self.accelerator.gather(centred)
            all_ref = self.accelerator.gather(ref) if ref is not None else None
            w, q = maxent_weights(all_centred, k, self.maxent, all_ref)
            n, i = centred.size(0), self.accelerator.process_index
            out["maxent_weights"] = (w.reshape(-1)[i * n:(i + 1) * n] * k).to(centred.dtype)
            self._metrics[mode]["maxent/weight_entropy"].append(_entropy(w).mean().item())
            self._metrics[mode]["maxent/q_entropy"].append(_entropy(q).mean().item())
            self._metrics[mode]["maxent/weight_max"].append(w.max(dim=1).values.mean().item())
            return out

        def _compute_loss(self, model, inputs):
            prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
            completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
            input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
            attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
            mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
            per_token_logps, entropies, _ = self._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True)
            weights = inputs["maxent_weights"].unsqueeze(1)
            per_token_loss = -weights * per_token_logps
            loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * self.max_completion_length)
            mode = "train" if self.model.training else "eval"
            if mode == "train":
                loss = loss / self.current_gradient_accumulation_steps
            totals = self.accelerator.reduce(torch.stack([(entropies * mask).sum(), mask.sum().float()]),
                                             reduction="sum")
            self._metrics[mode]["entropy"].append((totals[0] / totals[1].clamp(min=1.0)).item())
            return loss

    return MaxEntGRPOTrainer


def objective_parts(s) -> tuple[type, dict[str, Any], dict[str, Any]]:
    """``(trainer class, extra GRPOConfig kwargs, extra trainer kwargs)`` for ``s.objective``."""
    if s.objective == "maxent":
        return trainer_class(), {"scale_rewards": "none"}, {"maxent": params_of(s)}
    from trl import GRPOTrainer

    return GRPOTrainer, {}, {}

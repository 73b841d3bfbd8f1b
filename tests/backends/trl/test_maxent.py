"""MaxEnt-GRPO: the weights against the closed form (and its limits), the settings, the loss on the real
SmolLM2, and a 2-step CPU run through the runner."""

from __future__ import annotations

import math
import random

import pytest
import torch

from veritas_rl.backends.trl.maxent import (
    MaxEntParams,
    listwise_target,
    maxent_weights,
    sequence_logps,
)
from veritas_rl.backends.trl.settings import build_settings


def closed_form(rewards, ref_logps, tau, beta, temperature, eps):
    """pi*_i ∝ q_i^(1/(tau+beta)) pi_ref_i^(beta/(tau+beta)), q = (softmax(r/T) + eps) / (1 + K eps); plain floats."""
    k = len(rewards)
    top = max(r / temperature for r in rewards)
    e = [math.exp(r / temperature - top) for r in rewards]
    q = [(x / sum(e) + eps) / (1 + k * eps) for x in e]
    unnorm = [qi ** (1 / (tau + beta)) * math.exp(ref) ** (beta / (tau + beta)) for qi, ref in zip(q, ref_logps)]
    return [u / sum(unnorm) for u in unnorm], q


def objective(pi, q, ref, tau, beta):
    """E_pi[log q] + tau H(pi) - beta KL(pi || pi_ref), pi_ref = softmax-normalised exp(ref) over the K candidates."""
    z = sum(math.exp(r) for r in ref)
    pref = [math.exp(r) / z for r in ref]
    return sum(p * (math.log(qi) - tau * math.log(p) - beta * (math.log(p) - math.log(pr)))
               for p, qi, pr in zip(pi, q, pref) if p > 0)


@pytest.mark.parametrize("tau, beta, temperature, eps", [(0.2, 0.04, 1.0, 1e-6), (1.0, 0.0, 0.5, 0.01),
                                                         (0.5, 2.0, 2.0, 0.0), (0.0, 0.3, 1.0, 1e-3)])
def test_weights_equal_the_closed_form(tau, beta, temperature, eps):
    rng = random.Random(int(tau * 100 + beta * 10))
    k, prompts = 6, 5
    rewards = [rng.choice([0.0, 0.25, 1.0]) for _ in range(k * prompts)]
    refs = [rng.uniform(-3.0, -0.2) for _ in range(k * prompts)]
    params = MaxEntParams(tau, beta, temperature, eps, True)
    w, q = maxent_weights(torch.tensor(rewards, dtype=torch.float64), k, params, torch.tensor(refs, dtype=torch.float64))
    for g in range(prompts):
        want_w, want_q = closed_form(rewards[g * k:(g + 1) * k], refs[g * k:(g + 1) * k], tau, beta, temperature, eps)
        assert w[g].tolist() == pytest.approx(want_w, rel=1e-9, abs=1e-12)
        assert q[g].tolist() == pytest.approx(want_q, rel=1e-9)
        assert float(w[g].sum()) == pytest.approx(1.0)


def test_weights_maximise_the_per_prompt_objective():
    rng = random.Random(0)
    rewards, refs = [0.0, 1.0, 0.5, 0.0, 1.0], [-1.0, -2.5, -0.3, -1.7, -0.9]
    tau, beta = 0.3, 0.2
    w, q = maxent_weights(torch.tensor(rewards, dtype=torch.float64), 5, MaxEntParams(tau, beta, 1.0, 1e-3, False), torch.tensor(refs, dtype=torch.float64))
    best = objective(w[0].tolist(), q[0].tolist(), refs, tau, beta)
    for _ in range(200):  # any other distribution over the candidates scores lower
        noise = [max(1e-9, p * math.exp(rng.gauss(0, 0.3))) for p in w[0].tolist()]
        other = [x / sum(noise) for x in noise]
        assert objective(other, q[0].tolist(), refs, tau, beta) <= best + 1e-12


def test_tau_to_zero_with_beta_fixed():
    rewards, refs, beta = [0.0, 1.0, 0.0, 0.5], [-0.5, -2.0, -1.0, -1.5], 0.5
    q = listwise_target(torch.tensor(rewards, dtype=torch.float64), 4, 1.0, 1e-6)[0].tolist()
    limit = [qi ** (1 / beta) * math.exp(r) for qi, r in zip(q, refs)]  # q^(1/beta) * pi_ref
    limit = [x / sum(limit) for x in limit]
    for tau in (1e-3, 1e-6, 0.0):
        w, _ = maxent_weights(torch.tensor(rewards, dtype=torch.float64), 4, MaxEntParams(tau, beta, 1.0, 1e-6, True), torch.tensor(refs, dtype=torch.float64))
        assert w[0].tolist() == pytest.approx(limit, abs=5 * tau + 1e-12)


def test_one_hot_q_gives_one_hot_weights():
    rewards = torch.tensor([0.0, 1.0, 0.0, 0.0])
    q = listwise_target(rewards, 4, 1e-3, 0.0)  # a cold temperature and no floor: q is one-hot
    assert q[0].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.0], abs=1e-300)
    refs = torch.tensor([-0.1, -9.0, -0.2, -0.3])  # the reference prefers the others
    for tau, beta in ((0.2, 0.0), (0.2, 5.0), (3.0, 0.04), (0.0, 1.0)):
        w, _ = maxent_weights(rewards, 4, MaxEntParams(tau, beta, 1e-3, 0.0, True), refs)
        assert w[0].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.0], abs=1e-12)


def test_special_cases():
    rewards = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.3, 0.3])
    w, q = maxent_weights(rewards, 3, MaxEntParams(1.0, 0.0, 1.0, 0.0, True))  # tau 1, beta 0: w = q
    torch.testing.assert_close(w, q)
    same = torch.zeros(4)  # equal rewards: w ∝ pi_ref^(beta/(tau+beta))
    refs = torch.tensor([-1.0, -2.0, -3.0, -4.0])
    w, _ = maxent_weights(same, 4, MaxEntParams(0.5, 0.5, 1.0, 1e-6, True), refs)
    want = torch.softmax(0.5 * refs.double(), dim=0)
    torch.testing.assert_close(w[0], want)
    with pytest.raises(ValueError, match="need the reference log-probs"):
        maxent_weights(rewards, 3, MaxEntParams(0.2, 0.1, 1.0, 0.0, True))


def test_sequence_logps_length_normalisation():
    logps = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert sequence_logps(logps, mask, False).tolist() == [-3.0, -15.0]
    assert sequence_logps(logps, mask, True).tolist() == [-1.5, -5.0]


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values, message", [
    ({"objective": "maxent", "maxent_tau": 0.0, "beta": 0.0}, "maxent_tau \\+ beta > 0"),
    ({"objective": "maxent", "maxent_tau": -0.1}, "maxent_tau=-0.1 must be >= 0"),
    ({"objective": "maxent", "maxent_q_temperature": 0.0}, "maxent_q_temperature=0.0 must be > 0"),
    ({"objective": "maxent", "maxent_q_epsilon": -1e-3}, "maxent_q_epsilon"),
    ({"objective": "maxent", "maxent_tau": float("nan")}, "finite"),
    ({"objective": "maxent", "mode": "sft"}, "does not apply to mode='sft'"),
    ({"objective": "nope"}, "objective='nope' is not valid; choose from: grpo, maxent"),
])
def test_bad_maxent_settings_fail_naming_the_key(values, message):
    with pytest.raises(ValueError, match=message):
        build_settings(None, {"env": "math", **values})


def test_cli_flags():
    from veritas_rl.cli import build_parser
    from veritas_rl.commands.train import settings_from_args

    s = settings_from_args(build_parser().parse_args(
        ["train", "grpo", "--env", "math", "--objective", "maxent", "--maxent-tau", "0.5", "--beta", "0.1",
         "--maxent-q-temperature", "2", "--maxent-q-epsilon", "0", "--no-maxent-length-normalize-ref"]))
    assert (s.objective, s.maxent_tau, s.beta, s.maxent_q_temperature, s.maxent_q_epsilon,
            s.maxent_length_normalize_ref) == ("maxent", 0.5, 0.1, 2.0, 0.0, False)


# -- the real trainer on the real SmolLM2 ---------------------------------------------------------

SUMS = {"rg_dataset": "basic_arithmetic", "last_number_fallback": True,
        "rg_config": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+"],
                      "allow_parentheses": False, "allow_negation": False}}


@pytest.mark.slow
def test_two_step_cpu_run_and_the_loss_is_the_weighted_mle(smollm2_dir, tmp_path):
    from veritas_rl.backends.trl.maxent import trainer_class
    from veritas_rl.backends.trl.runner import run

    s = build_settings(None, {
        "env": "math", "env_config": SUMS, "model": str(smollm2_dir), "train_size": 8, "eval": False,
        "num_generations": 4, "batch_size": 4, "max_new_tokens": 8, "lora_rank": 4, "lora_alpha": 8,
        "learning_rate": 5e-4, "max_steps": 2, "save_steps": 2, "zero_reward_patience": 0,
        "save_final_model": False, "cpu_threads": 1, "seed": 1, "objective": "maxent", "beta": 0.05,
        "maxent_tau": 0.2, "output_dir": str(tmp_path), "run_name": "maxent"})
    result = run(s)
    trainer = result.trainer
    assert result.steps == 2 and isinstance(trainer, trainer_class())
    assert trainer.args.scale_rewards == "none"
    logged = [e for e in trainer.state.log_history if "reward" in e]
    assert len(logged) == 2
    for entry in logged:  # our loss ran (TRL's clipped loss would log clip ratios), with its own metrics
        assert 0.0 <= entry["maxent/weight_entropy"] <= math.log(4) + 1e-6
        assert 0.25 - 1e-6 <= entry["maxent/weight_max"] <= 1.0
        assert "entropy" in entry and "clip_ratio/region_mean" not in entry

    # the loss on a hand-made batch equals -sum_i w_i sum_t log p / (B * L_max), from a plain forward pass
    tok = trainer.processing_class
    prompt = tok(["What is 2 + 3?", "What is 1 + 1?"], return_tensors="pt", padding=True)
    completion = tok(["5 is the answer", "2"], return_tensors="pt", padding=True, add_special_tokens=False)
    weights = torch.tensor([1.7, 0.3])
    inputs = {"prompt_ids": prompt.input_ids, "prompt_mask": prompt.attention_mask,
              "completion_ids": completion.input_ids, "completion_mask": completion.attention_mask,
              "maxent_weights": weights}
    model = trainer.model
    model.eval()
    with torch.no_grad():
        loss = trainer._compute_loss(model, inputs)
        ids = torch.cat([prompt.input_ids, completion.input_ids], dim=1)
        logits = model(input_ids=ids, attention_mask=torch.cat([prompt.attention_mask,
                                                                completion.attention_mask], dim=1)).logits
        n = completion.input_ids.size(1)
        logps = torch.log_softmax(logits[:, -n - 1:-1].float() / trainer.temperature, dim=-1)
        token_logps = logps.gather(-1, completion.input_ids.unsqueeze(-1)).squeeze(-1)
        want = -(weights.unsqueeze(1) * token_logps * completion.attention_mask).sum() / (2 * s.max_new_tokens)
    assert float(loss) == pytest.approx(float(want), rel=1e-4)

"""The RL launchers' size- and batch-dependent defaults (train/scripts/lib/common.sh: vr_probe_model, vr_rl_rules).

One test per rule, each through the launcher's printed command composed and validated with verl 0.9.1's real
config (what DRY_RUN=1 runs), on the real SmolLM2-135M (small) and on a 7B-shaped config.json (large; tokenizer
copied from SmolLM2, no weights: the launchers and the validator read only config.json and the tokenizer).
Each rule is also shown to yield to its variable and to a Hydra override ("$@" comes last).
"""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from tests.scripts.launch_helpers import GRPO, LARGE, OPENSPIEL, SFT, command_of, compose, launch, model_dir

ACTOR = "actor_rollout_ref.actor"


@pytest.fixture()
def run(tmp_path, smollm2_dir):
    def _run(script=GRPO, *args, env=None, **kw):
        return launch(script, *args, env={"MODEL_PATH": str(smollm2_dir), **(env or {})}, cwd=tmp_path, **kw)

    return _run


@pytest.fixture()
def large_dir(tmp_path, smollm2_dir):
    return model_dir(tmp_path / "large", smollm2_dir, **LARGE)


def sel(cfg, key):
    return OmegaConf.select(cfg, key)


# -- the probe: parameter count from config.json -------------------------------------------------


def test_probe_counts_the_real_parameters_of_smollm2_and_a_7b_shape(smollm2_dir, large_dir):
    from safetensors import safe_open

    from veritas_rl.backends.verl.model_probe import estimate_params, read_shape

    with safe_open(str(smollm2_dir / "model.safetensors"), "pt") as f:
        real = sum(_numel(f.get_slice(name).get_shape()) for name in f.keys())
    shape = read_shape(smollm2_dir)
    assert abs(shape.params - real) / real < 0.01 and (shape.heads, shape.kv_heads) == (9, 3)
    # Qwen2.5-7B's published config: 7.62B parameters (untied head, biases left out of the estimate)
    qwen7b = dict(hidden_size=3584, num_hidden_layers=28, intermediate_size=18944, num_attention_heads=28,
                  num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False, hidden_act="silu")
    assert abs(estimate_params(qwen7b) - 7.62e9) / 7.62e9 < 0.01
    assert read_shape(large_dir).params > 1e9
    assert read_shape(large_dir.parent / "nowhere").params is None  # no config.json: unknown, not an error


def _numel(shape) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


# -- KL loss / reference model --------------------------------------------------------------------


def test_kl_is_off_and_no_reference_model_unless_asked(run):
    from verl.trainer.ppo.utils import need_reference_policy

    cfg = compose(GRPO, run())
    assert sel(cfg, f"{ACTOR}.use_kl_loss") is False and need_reference_policy(cfg) is False
    assert not any("kl_loss_coef" in a for a in command_of(run()))
    cfg = compose(GRPO, run(env={"KL_LOSS_COEF": "0.01"}))  # a coefficient turns it on
    assert need_reference_policy(cfg) is True and sel(cfg, f"{ACTOR}.kl_loss_coef") == pytest.approx(0.01)
    cfg = compose(GRPO, run(env={"USE_KL_LOSS": "1"}))
    assert need_reference_policy(cfg) is True and sel(cfg, f"{ACTOR}.kl_loss_coef") == pytest.approx(0.001)
    argv = command_of(run(GRPO, f"{ACTOR}.kl_loss_coef=0.05"))  # so does a Hydra coefficient
    assert f"{ACTOR}.use_kl_loss=True" in argv and argv[-1] == f"{ACTOR}.kl_loss_coef=0.05"
    assert f"{ACTOR}.use_kl_loss=False" in command_of(run(env={"USE_KL_LOSS": "0", "KL_LOSS_COEF": "0.01"}))
    proc = run(env={"KL_LOSS_COEF": "much"}, check=False)
    assert proc.returncode != 0 and "KL_LOSS_COEF=much" in proc.stderr


# -- old log-probs: recompute only when a step has several actor updates -----------------------------


def _bypass(proc) -> bool:
    return "algorithm.rollout_correction.bypass_mode=True" in command_of(proc)


def test_one_update_per_step_uses_the_rollout_log_probs(run):
    from verl.trainer.config.algorithm import RolloutCorrectionConfig
    from verl.utils.config import omega_conf_to_dataclass

    proc = run(env={"TRAIN_BATCH_SIZE": "8"})  # PPO_MINI_BATCH_SIZE defaults to min(16, 8): one update
    cfg = compose(GRPO, proc)
    assert sel(cfg, f"{ACTOR}.ppo_mini_batch_size") == 8
    corr = omega_conf_to_dataclass(cfg.algorithm.rollout_correction, RolloutCorrectionConfig)
    # what ray_trainer.fit reads to skip the old_log_prob pass, and what apply_bypass_mode needs from the rollout
    assert corr.bypass_mode is True and corr.loss_type == "ppo_clip" and corr.rollout_is is None
    assert sel(cfg, "actor_rollout_ref.rollout.calculate_log_probs") is True
    assert "from the rollout (bypass)" in proc.stderr


@pytest.mark.parametrize("env, args", [
    ({}, ()),                                                            # 32 prompts, mini batch 16: two updates
    ({"TRAIN_BATCH_SIZE": "8", "PPO_MINI_BATCH_SIZE": "4"}, ()),
    ({"TRAIN_BATCH_SIZE": "8"}, (f"{ACTOR}.ppo_mini_batch_size=4",)),      # the rule reads Hydra's value
    ({"TRAIN_BATCH_SIZE": "8"}, (f"{ACTOR}.ppo_epochs=2",)),
    ({"TRAIN_BATCH_SIZE": "8"}, (f"{ACTOR}.policy_loss.loss_mode=gspo",)),  # bypass would replace the loss mode
    ({"TRAIN_BATCH_SIZE": "8", "RECOMPUTE_OLD_LOG_PROB": "1"}, ()),
])
def test_old_log_probs_are_recomputed_otherwise(run, env, args):
    assert not _bypass(run(GRPO, *args, env=env))


def test_a_hydra_override_of_bypass_mode_wins(run):
    cfg = compose(GRPO, run(GRPO, "algorithm.rollout_correction.bypass_mode=False", env={"TRAIN_BATCH_SIZE": "8"}))
    assert sel(cfg, "algorithm.rollout_correction.bypass_mode") is False
    assert _bypass(run(env={"RECOMPUTE_OLD_LOG_PROB": "0"}))  # and the variable forces it on with 2 updates


# -- gradient checkpointing by model size -------------------------------------------------------------


def test_gradient_checkpointing_off_for_small_models_on_for_large(run, large_dir, smollm2_dir, tmp_path):
    key = "actor_rollout_ref.model.enable_gradient_checkpointing"
    assert sel(compose(GRPO, run()), key) is False  # 135M
    assert sel(compose(GRPO, run(env={"MODEL_PATH": str(large_dir)})), key) is True  # 6.6B, from config.json only
    just_under = model_dir(tmp_path / "under", smollm2_dir, hidden_size=1536, num_hidden_layers=24, intermediate_size=6144,
                           num_attention_heads=12, num_key_value_heads=2, head_dim=128)  # ~0.84B
    assert f"{key}=False" in command_of(run(env={"MODEL_PATH": str(just_under)}))
    assert f"{key}=True" in command_of(run(env={"GRADIENT_CHECKPOINTING": "1"}))
    assert command_of(run(GRPO, f"{key}=True"))[-1] == f"{key}=True"
    # a hub id not downloaded yet (dry run): size unknown, verl's default (on)
    argv = command_of(run(env={"MODEL_PATH": None, "AGENT_MODEL_REPO_ID": "someone/not-here"}))
    assert f"{key}=True" in argv


# -- micro batches by token budget ----------------------------------------------------------------


def test_dynamic_batch_budget_follows_the_lengths(run):
    cfg = compose(GRPO, run())
    assert sel(cfg, f"{ACTOR}.use_dynamic_bsz") is True and sel(cfg, f"{ACTOR}.ppo_max_token_len_per_gpu") == 8192
    for section in ("rollout", "ref"):  # verl's engine asserts the rollout's flag equals the actor's
        assert sel(cfg, f"actor_rollout_ref.{section}.log_prob_use_dynamic_bsz") is True
        assert sel(cfg, f"actor_rollout_ref.{section}.log_prob_max_token_len_per_gpu") == 16384
    argv = command_of(run(env={"MAX_PROMPT_LENGTH": "4096", "MAX_RESPONSE_LENGTH": "8192"}))
    assert f"{ACTOR}.ppo_max_token_len_per_gpu=12288" in argv  # one whole sequence at least
    argv = command_of(run(GRPO, "data.max_response_length=16384"))  # the lengths' Hydra overrides count too
    assert f"{ACTOR}.ppo_max_token_len_per_gpu=17408" in argv
    cfg = compose(GRPO, run(env={"USE_DYNAMIC_BSZ": "0"}))
    assert sel(cfg, f"{ACTOR}.use_dynamic_bsz") is False and sel(cfg, f"{ACTOR}.ppo_micro_batch_size_per_gpu") == 4


@pytest.mark.slow  # a DRY_RUN=1 subprocess (imports verl)
def test_a_token_budget_below_one_sequence_fails_naming_the_key(run):
    with pytest.raises(ValueError, match=r"ppo_max_token_len_per_gpu \(PPO_MAX_TOKEN_LEN_PER_GPU\)=1000 .* 2048"):
        compose(GRPO, run(env={"PPO_MAX_TOKEN_LEN_PER_GPU": "1000"}))
    proc = run(env={"PPO_MAX_TOKEN_LEN_PER_GPU": "1000"}, dry="1", check=False)  # the launcher's own DRY_RUN=1
    assert proc.returncode != 0 and "PPO_MAX_TOKEN_LEN_PER_GPU" in proc.stderr


# -- attention kernel and padding-free path by flash-attn ------------------------------------------------


def _flash_stub(tmp_path, body: str):
    """A flash_attn package on PYTHONPATH: the only way to give a CPU machine an importable (or broken) one."""
    pkg = tmp_path / "site" / "flash_attn"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(body)
    return str(pkg.parent)


@pytest.mark.parametrize("script", [GRPO, SFT])
def test_remove_padding_only_where_flash_attn_imports(run, tmp_path, script, smollm2_dir):
    model = "model" if script == SFT else "actor_rollout_ref.model"
    extra = {} if script == GRPO else {"SFT_TRAIN_FILES": str(_sft_file(tmp_path))}
    argv = command_of(run(script, env=extra))  # this machine: no flash_attn
    assert f"+{model}.override_config.attn_implementation=sdpa" in argv and f"{model}.use_remove_padding=False" in argv
    works = _flash_stub(tmp_path / "ok", "__version__ = '2.8.3'\n")
    argv = command_of(run(script, env={**extra, "PYTHONPATH": works}))
    assert f"+{model}.override_config.attn_implementation=flash_attention_2" in argv
    assert f"{model}.use_remove_padding=True" in argv
    broken = _flash_stub(tmp_path / "broken", "raise ImportError('undefined symbol: _ZN3c10')\n")
    assert f"{model}.use_remove_padding=False" in command_of(run(script, env={**extra, "PYTHONPATH": broken}))
    argv = command_of(run(script, env={**extra, "PYTHONPATH": works, "ATTN_IMPLEMENTATION": "eager"}))
    assert f"{model}.use_remove_padding=False" in argv and f"+{model}.override_config.attn_implementation=eager" in argv
    assert f"{model}.use_remove_padding=True" in command_of(run(script, env={**extra, "USE_REMOVE_PADDING": "1"}))


@pytest.mark.parametrize("script", [GRPO, SFT])
def test_fused_log_prob_head_where_flash_attn_does_not_import(run, tmp_path, script):
    """Without flash_attn verl 0.9.1 loops over every token's logits row (logprobs_from_logits_v2); the rule turns
    on its chunked fused head instead, and the actor (RL) or the SFT engine reads it from the model config."""
    model = "model" if script == SFT else "actor_rollout_ref.model"
    extra = {} if script == GRPO else {"SFT_TRAIN_FILES": str(_sft_file(tmp_path))}
    proc = run(script, env=extra)  # this machine: no flash_attn
    assert f"{model}.use_fused_kernels=True" in command_of(proc)
    if script == GRPO:
        assert "log-probs by the fused torch head" in proc.stderr
        cfg = compose(GRPO, proc)
        assert sel(cfg, f"{ACTOR}.use_fused_kernels") is True  # verl's actor config follows the model's
        assert sel(cfg, f"{model}.fused_kernel_options.impl_backend") == "torch"
    works = _flash_stub(tmp_path / "ok", "__version__ = '2.8.3'\n")
    assert f"{model}.use_fused_kernels=False" in command_of(run(script, env={**extra, "PYTHONPATH": works}))
    assert f"{model}.use_fused_kernels=False" in command_of(run(script, env={**extra, "USE_FUSED_KERNELS": "0"}))
    argv = command_of(run(script, f"{model}.use_fused_kernels=False", env=extra))  # a Hydra override comes last
    assert argv[-1] == f"{model}.use_fused_kernels=False"
    bad = run(script, env={**extra, "USE_FUSED_KERNELS": "fast"}, check=False)
    assert bad.returncode != 0 and "USE_FUSED_KERNELS=fast is not valid" in bad.stderr


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_fused_log_prob_head_gives_the_whole_logits_log_probs_and_gradients(smollm2_dir, monkeypatch, lora):
    """What the rule switches on computes the same objective: verl's own torch fused head on the real SmolLM2
    (tied embeddings, as Qwen2.5-0.5B's) against log_softmax over whole logits, values and gradients; with a
    LoRA adapter too (the openspiel launcher's default), patched first and wrapped after, in verl's order
    (fsdp_workers: apply_monkey_patch, then get_peft_model)."""
    import torch
    from transformers import AutoModelForCausalLM
    from verl.models.transformers.monkey_patch import patch_forward_with_backends

    torch.manual_seed(0)
    ids = torch.randint(0, 49152, (2, 600))  # 1,200 tokens: three of verl's 512-token chunks, the last partial
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    monkeypatch.setattr(type(model), "forward", type(model).forward)  # verl patches the class: undone after the test
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
        for name, p in model.named_parameters():  # B starts at zero: make the adapter change the output
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.02)
    trained = [p for p in model.parameters() if p.requires_grad]

    def grads():
        return [p.grad.clone() for p in trained]

    labels = torch.roll(ids, shifts=-1, dims=-1)
    logits = model(input_ids=ids).logits
    want = torch.log_softmax(logits.float(), -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    want.sum().backward()
    want_grads = grads()
    model.zero_grad()
    patch_forward_with_backends(model.get_base_model() if lora else model, use_fused_kernels=True,
                                fused_kernels_backend="torch")
    out = model(input_ids=ids, return_dict=True, temperature=1.0)
    assert out.log_probs.shape == want.shape and getattr(out, "logits", None) is None  # no whole logits held
    torch.testing.assert_close(out.log_probs, want.detach(), atol=2e-4, rtol=1e-4)
    out.log_probs.sum().backward()
    got = grads()
    if lora:  # only the adapter trains: q and v, A and B, in every layer
        assert len(got) == 4 * model.config.num_hidden_layers
    for g, w in zip(got, want_grads):
        torch.testing.assert_close(g, w, atol=1e-3, rtol=1e-3)
    assert max(float(w.abs().max()) for w in want_grads) > 0.1  # the gradients compared are not vanishing


def _sft_file(tmp_path):
    import pandas as pd

    path = tmp_path / "chat.parquet"
    chat = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "blue"}]
    pd.DataFrame({"messages": [chat] * 64}).to_parquet(path)
    return path


# -- every rule at once, end to end, and the log line that says what was chosen ---------------------------


@pytest.mark.slow
def test_large_model_defaults_validate_through_dry_run(run, large_dir):
    """DRY_RUN=1 in the launcher itself (verl's Hydra composition and checks) on the 7B-shaped config."""
    proc = run(OPENSPIEL, dry="1", env={"MODEL_PATH": str(large_dir), "TRAIN_BATCH_SIZE": "16", "KL_LOSS_COEF": "0.002"})
    assert "gradient checkpointing on" in proc.stderr and "KL loss on (0.002" in proc.stderr
    cfg = OmegaConf.create(proc.stdout)  # the composed config DRY_RUN=1 prints
    assert sel(cfg, "actor_rollout_ref.model.enable_gradient_checkpointing") is True
    assert sel(cfg, "actor_rollout_ref.actor.use_kl_loss") is True
    assert sel(cfg, "algorithm.rollout_correction.bypass_mode") is True  # 16 prompts, mini batch 16
    assert json.loads((large_dir / "config.json").read_text())["hidden_size"] == 3584

"""``veritas train grpo`` and ``veritas train sft``: the single-machine TRL backend.

Every flag maps to a field of :class:`veritas_rl.backends.trl.settings.TrainSettings` (``--lora-rank`` ->
``lora_rank``); defaults come from that dataclass, then ``--preset``, then the flags given.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import typing

from veritas_rl.commands.argtypes import float_in, non_negative_float, positive_float, positive_int

log = logging.getLogger(__name__)

#: settings that are not plain flags (set by the subcommand or given special handling)
_SPECIAL = {"mode", "preset", "env_config"}
_CHOICES = {"report_to": "REPORT_TO", "lr_scheduler": "LR_SCHEDULERS", "precision": "PRECISIONS",
            "loss_type": "LOSS_TYPES", "vllm_mode": "VLLM_MODES", "episode": "EPISODES", "objective": "OBJECTIVES",
            "rollout_seeds": "ROLLOUT_SEEDS"}
#: other option strings of a setting's flag (the first is listed in --help)
_FLAG_ALIASES = {"vllm_server_base_url": ("--vllm-server-url", "--vllm-server-base-url")}
#: bounds of the numeric settings that TrainSettings.__post_init__ does not check itself (it checks counts, sizes,
#: steps, learning rate, temperature and vLLM's memory share, naming the setting): refused at parse time, exit 2
_FLAG_TYPES = {"top_p": float_in(0.0, 1.0, low_open=True), "epochs": positive_float, "lora_alpha": positive_int,
               "weight_decay": non_negative_float, "max_grad_norm": non_negative_float, "beta": non_negative_float}
_GRPO_ONLY = {"num_generations", "temperature", "top_p", "beta", "zero_reward_patience", "num_completions_to_print",
              "use_vllm", "vllm_mode", "vllm_gpu_memory_utilization", "vllm_enable_sleep_mode", "vllm_server_base_url",
              "mask_truncated_completions", "loss_type", "episode", "opponent", "max_turns", "legal_move_bonus",
              "rollout_seeds", "curriculum", "failure_replay", "replay_capacity", "replay_fraction",
              "replay_priority_exponent", "replay_failure_threshold", "replay_retire_after", "vllm_server_timeout",
              "objective", "maxent_tau", "maxent_q_temperature", "maxent_q_epsilon", "maxent_length_normalize_ref"}

EPILOG = """examples:
  veritas train grpo --env reasoning-gym --env-config '{"dataset": "basic_arithmetic"}' --preset fast
  veritas train grpo --env lgc-v2 --preset 1hour --lora-rank 16 --report-to wandb
  veritas train grpo --env lgc-v2 --preset 1hour --run-name my-run --resume auto   # continue after a kill
  veritas train sft --env answer-tag --max-steps 100
  veritas train grpo --config recipes/smollm2-135m/arithmetic.yaml --max-steps 20   # recipe, then flags
  veritas train grpo --env math --objective maxent --maxent-tau 0.2 --beta 0.04      # MaxEnt-GRPO
  veritas train grpo --env openspiel --env-config '{"cases": ["tic_tac_toe"]}' --episode game --opponent random
Each run writes <output-dir>/<time>-<mode>-<env>/ with checkpoints, metrics.jsonl, report.json,
report.md and reward.png (GRPO). With no --model, the embedded SmolLM2-135M-Instruct is used.
"""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_settings_flags(p: argparse.ArgumentParser, mode: str) -> None:
    from veritas_rl.backends.trl import settings as st

    p.add_argument("--config", metavar="RECIPE", default=None,
                   help="a YAML recipe (recipes/<model>/<task>.yaml) of settings: defaults < preset < recipe < flags")
    p.add_argument("--env", default=None, help="env name or alias (see `veritas envs`); required unless the recipe "
                                               "names it")
    p.add_argument("--env-config", default=None, help="env config as a JSON object (default: {})")
    p.add_argument("--preset", choices=("fast", "1hour", "3hour", "full"),
                   help="start from a preset (veritas_rl/presets/NAME.yaml); flags override it")
    hints = typing.get_type_hints(st.TrainSettings)
    for f in dataclasses.fields(st.TrainSettings):
        if f.name in _SPECIAL or f.name == "env" or (mode == "sft" and f.name in _GRPO_ONLY):
            continue
        hint = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        kwargs: dict[str, typing.Any] = {"default": None, "help": help_text, "dest": f.name}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            base = typing.get_args(hint)[0] if typing.get_origin(hint) is not None else hint
            kwargs["type"] = _FLAG_TYPES.get(f.name) or (base if base in (int, float) else str)
            kwargs["metavar"] = {int: "N", float: "X"}.get(base, "STR")
            if f.name in _CHOICES:
                kwargs["choices"] = getattr(st, _CHOICES[f.name])
                kwargs.pop("metavar")
        p.add_argument(*_FLAG_ALIASES.get(f.name, (_flag(f.name),)), **kwargs)


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train on one machine with TRL (GRPO or SFT)",
        description="Train a model on a registered env on one machine (CPU or one GPU) with TRL.",
    )
    sub = train.add_subparsers(dest="train_command", metavar="{grpo,sft}", required=True)
    for mode, summary in (
        ("grpo", "GRPO: sample a group of completions per task, reward them with the env's scorer"),
        ("sft", "SFT: fine-tune on the env's oracle answers (assistant turn = env.oracle)"),
    ):
        p = sub.add_parser(mode, help=summary, description=summary + ".", epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_settings_flags(p, mode)
        p.set_defaults(func=cmd_train, mode=mode)


def settings_from_args(args: argparse.Namespace):
    from veritas_rl.jsonio import parse_json_object
    from veritas_rl.backends.trl.recipes import build_with_recipe
    from veritas_rl.backends.trl.settings import field_names

    overrides = {k: getattr(args, k) for k in field_names() if k not in _SPECIAL and hasattr(args, k)}
    overrides["mode"] = args.mode
    if args.env_config is not None:
        overrides["env_config"] = parse_json_object("--env-config", args.env_config)
    return build_with_recipe(getattr(args, "config", None), args.preset, overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from veritas_rl.backends.trl.runner import run

    settings = settings_from_args(args)
    result = run(settings)
    if result.stopped_by:
        log.error("stopped by the %s; report in %s", result.stopped_by, result.run_dir)
        return 3
    if result.before and result.after:
        print(
            f"held-out greedy accuracy ({result.after['n']} tasks): {100 * result.before['accuracy']:.1f}% before -> "
            f"{100 * result.after['accuracy']:.1f}% after {result.steps} steps; run dir: {result.run_dir}"
        )
    else:
        print(f"trained {result.steps} steps; run dir: {result.run_dir}")
    return 0

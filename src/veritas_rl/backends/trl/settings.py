"""Settings of a single-machine (TRL) training run, presets, and their validation.

Precedence: the dataclass defaults, then the preset file (``--preset``), then explicit flags.
Presets are YAML files in ``veritas_rl/presets/`` whose keys are :class:`TrainSettings` fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

from veritas_rl.jsonio import parse_json_object

MODES = ("grpo", "sft")
REPORT_TO = ("none", "wandb", "tensorboard")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: TRL 1.16's GRPO losses (``GRPOConfig.loss_type``)
LOSS_TYPES = ("dapo", "grpo", "bnpo", "dr_grpo", "cispo", "sapo", "luspo", "vespo")
#: TRL 1.16's vLLM integration: in the trainer's process (``colocate``) or a ``trl vllm-serve`` server
VLLM_MODES = ("colocate", "server")
#: the policy objective: TRL's GRPO loss, or sequence-level maximum-entropy GRPO (backends/trl/maxent.py)
OBJECTIVES = ("grpo", "maxent")
#: a prompt per position (the env's reward) or a whole game per rollout (backends/trl/episodes.py)
EPISODES = ("move", "game")
#: game episodes: the rollouts of one game share its seed (opponent and chance), or each draws its own
ROLLOUT_SEEDS = ("shared", "distinct")
GAME_ENVS = ("openspiel", "open_spiel")


def preset_names() -> list[str]:
    files = resources.files("veritas_rl.presets")
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The settings of preset ``name`` as a dict (unknown names raise with the valid ones)."""
    import yaml

    known = preset_names()
    if name not in known:
        raise ValueError(f"preset={name!r} is not valid; choose from: {', '.join(known)}")
    text = resources.files("veritas_rl.presets").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"preset {name!r} is not a mapping of settings")
    return data


@dataclass
class TrainSettings:
    """Everything a run needs. Field names are the preset keys and (with ``-``) the CLI flags."""

    mode: str = field(default="grpo", metadata={"help": "grpo (RL on the env's reward) or sft (oracle answers)"})
    env: str = field(default="", metadata={"help": "env name (see `veritas envs`)"})
    env_config: dict = field(default_factory=dict, metadata={"help": "env config (JSON object)"})
    model: str | None = field(default=None, metadata={"help": "hub id or local dir; none = embedded SmolLM2"})
    preset: str | None = field(default=None, metadata={"help": "the preset these settings started from"})
    # data: dense env indices [0, eval_size) are held out, training uses [eval_size, eval_size + train_size)
    train_size: int = field(default=256, metadata={"help": "number of training tasks"})
    eval_size: int = field(default=64, metadata={"help": "number of held-out tasks for greedy accuracy"})
    eval: bool = field(default=True, metadata={"help": "greedy accuracy before and after training"})
    eval_batch_size: int = field(default=32, metadata={"help": "prompts per greedy-generation batch"})
    eval_steps: int = field(default=0, metadata={"help": "held-out greedy accuracy every N steps as well "
                                                         "(eval_curve.jsonl/.png); 0 = before and after only"})
    # length of training
    max_steps: int = field(default=30, metadata={"help": "optimizer steps; -1 = use epochs"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the training tasks when max_steps is -1"})
    max_train_minutes: float = field(default=0.0, metadata={"help": "stop cleanly (save, evaluate) after this many "
                                                                    "minutes of training; 0 = no time budget"})
    # generation (GRPO rollouts; max_new_tokens also bounds greedy evaluation)
    num_generations: int = field(default=4, metadata={"help": "completions per prompt (GRPO group size)"})
    max_new_tokens: int = field(default=32, metadata={"help": "max new tokens per completion"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of rollouts"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling of rollouts"})
    use_vllm: bool = field(default=False, metadata={"help": "generate rollouts with vLLM (GPU only; pip install "
                                                            "'veritas-rl[vllm]'); off = transformers generate()"})
    vllm_mode: str = field(default="colocate", metadata={"help": "colocate (vLLM in the trainer's process, same "
                                                                 "GPU) or server (a `trl vllm-serve` server)"})
    vllm_gpu_memory_utilization: float = field(default=0.3, metadata={"help": "share of GPU memory vLLM takes "
                                                                              "in colocate mode"})
    vllm_enable_sleep_mode: bool = field(default=False, metadata={"help": "colocate: vLLM releases its memory "
                                                                          "during the optimizer step"})
    vllm_server_base_url: str | None = field(default=None, metadata={"help": "server mode: the server's URL, "
                                                                             "e.g. http://127.0.0.1:8000"})
    mask_truncated_completions: bool = field(default=False, metadata={"help": "completions that hit "
                                                                              "max_new_tokens get no loss"})
    loss_type: str = field(default="dapo", metadata={"help": "TRL's GRPO loss normalisation"})
    vllm_server_timeout: float = field(default=240.0, metadata={"help": "server mode: seconds to wait for the "
                                                                         "server's /health before failing"})
    # the objective (backends/trl/maxent.py); beta above is the KL coefficient of both
    objective: str = field(default="grpo", metadata={"help": "grpo (TRL's clipped GRPO loss, --loss-type) or maxent "
                                                             "(MaxEnt-GRPO: weighted MLE on q^(1/(tau+beta)) "
                                                             "pi_ref^(beta/(tau+beta)))"})
    maxent_tau: float = field(default=0.2, metadata={"help": "maxent: sequence-level entropy weight tau (>= 0; "
                                                             "tau + beta > 0)"})
    maxent_q_temperature: float = field(default=1.0, metadata={"help": "maxent: temperature of the listwise target "
                                                                       "q = softmax(reward / T) over a group"})
    maxent_q_epsilon: float = field(default=1e-6, metadata={"help": "maxent: floor added to q for full support, "
                                                                    "then renormalised"})
    maxent_length_normalize_ref: bool = field(default=True, metadata={"help": "maxent: reference log-prob of a "
                                                                              "completion per token, not summed"})
    # whole games (--episode game; backends/trl/episodes.py)
    episode: str = field(default="move", metadata={"help": "move (one position per prompt) or game (one whole "
                                                           "OpenSpiel game per rollout; --env openspiel)"})
    opponent: str = field(default="random", metadata={"help": "game episodes: the opponent rung, random | "
                                                              "first_legal | mcts:N | policy:PATH"})
    max_turns: int = field(default=50, metadata={"help": "game episodes: model turns before the game is cut"})
    legal_move_bonus: float = field(default=0.0, metadata={"help": "game episodes: reward added per legal move (at most 0.5 per game in all)"})
    rollout_seeds: str = field(default="shared", metadata={"help": "game episodes: the GRPO group of one game plays "
                                                                   "its seed in every rollout (shared) or rollout k "
                                                                   "plays a seed derived from (seed, k) (distinct: "
                                                                   "the opponent's and chance's moves vary)"})
    # optimisation
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate"})
    lr_scheduler: str = field(default="constant", metadata={"help": "learning-rate schedule"})
    warmup_steps: int = field(default=0, metadata={"help": "warm-up steps"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    batch_size: int = field(default=16, metadata={"help": "per-device micro-batch (GRPO: completions)"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    beta: float = field(default=0.0, metadata={"help": "GRPO KL coefficient (0 = no reference model)"})
    # model adaptation
    lora_rank: int = field(default=0, metadata={"help": "LoRA rank; 0 = full fine-tuning"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_target_modules: str = field(default="all-linear", metadata={"help": "comma-separated module names"})
    precision: str = field(default="auto", metadata={"help": "auto = bf16 on a GPU that has it, else fp32"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "trade compute for memory"})
    cpu_threads: int = field(default=0, metadata={"help": "torch threads on a CPU; 0 = torch's default"})
    # bookkeeping
    seed: int = field(default=0, metadata={"help": "seed of weights init, sampling and data order"})
    output_dir: str = field(default="train/runs", metadata={"help": "parent of the run directories (git-ignored)"})
    run_name: str | None = field(default=None, metadata={"help": "run directory name (default: time-env-mode)"})
    resume: str | None = field(default=None, metadata={"help": "auto, a run dir or a checkpoint dir"})
    report_to: str = field(default="none", metadata={"help": "none, wandb or tensorboard"})
    logging_steps: int = field(default=1, metadata={"help": "console line / tracker log every N steps"})
    save_steps: int = field(default=50, metadata={"help": "checkpoint every N steps (and at the end)"})
    save_total_limit: int = field(default=2, metadata={"help": "checkpoints kept"})
    zero_reward_patience: int = field(default=10, metadata={"help": "stop after N all-zero-reward steps; 0 = off"})
    num_completions_to_print: int = field(default=0, metadata={"help": "sample completions logged per step"})
    save_final_model: bool = field(default=True, metadata={"help": "save the trained model to <run>/final"})
    # curriculum stages and failure replay (veritas_rl/curriculum; backends/trl/curriculum.py)
    curriculum: str | None = field(default=None, metadata={"help": "curriculum file (YAML/JSON) or a shipped "
                                                                  "ladder: lgc-v2, openspiel, reasoning-gym"})
    failure_replay: bool = field(default=False, metadata={"help": "replay failed tasks (also on when the "
                                                                  "curriculum file enables it)"})
    replay_capacity: int | None = field(default=None, metadata={"help": "failed tasks kept; none = 1000"})
    replay_fraction: float | None = field(default=None, metadata={"help": "share of prompts from the buffer; "
                                                                         "none = 0.3"})
    replay_priority_exponent: float | None = field(default=None, metadata={"help": "priority (1-score)^x; "
                                                                                  "none = 1.0"})
    replay_failure_threshold: float | None = field(default=None, metadata={"help": "mean score below which a "
                                                                                  "task failed; none = 0.5"})
    replay_retire_after: int | None = field(default=None, metadata={"help": "successes in a row that retire a "
                                                                           "task; none = 1"})

    def __post_init__(self):
        _choice("mode", self.mode, MODES)
        _choice("report_to", self.report_to, REPORT_TO)
        _choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("loss_type", self.loss_type, LOSS_TYPES)
        _choice("vllm_mode", self.vllm_mode, VLLM_MODES)
        if not 0.0 < float(self.vllm_gpu_memory_utilization) <= 1.0:
            raise ValueError(f"vllm_gpu_memory_utilization={self.vllm_gpu_memory_utilization!r} must be in (0, 1]")
        if self.use_vllm and self.mode != "grpo":
            raise ValueError("use_vllm generates GRPO rollouts; it does not apply to mode='sft'")
        if self.use_vllm and self.vllm_mode == "server" and not self.vllm_server_base_url:
            raise ValueError("vllm_mode='server' needs vllm_server_base_url (the `trl vllm-serve` server's URL)")
        _check_server_url(self)
        from veritas_rl.backends.trl.maxent import check_settings as _check_objective

        _check_objective(self)
        if not self.env:
            raise ValueError("env is required (--env NAME; see `veritas envs`)")
        if isinstance(self.env_config, str):
            self.env_config = parse_json_object("env_config", self.env_config)
        if not isinstance(self.env_config, dict):
            raise ValueError(f"env_config must be a JSON object, got {self.env_config!r}")
        for key in ("train_size", "num_generations", "max_new_tokens", "batch_size", "grad_accum", "eval_batch_size",
                    "logging_steps", "save_steps", "save_total_limit"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key}={getattr(self, key)!r} must be >= 1")
        for key in ("eval_size", "eval_steps", "lora_rank", "zero_reward_patience", "warmup_steps",
                    "num_completions_to_print", "cpu_threads"):
            if int(getattr(self, key)) < 0:
                raise ValueError(f"{key}={getattr(self, key)!r} must be >= 0")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps={self.max_steps!r} must be >= 1, or -1 to train for `epochs`")
        if self.max_steps == -1 and self.epochs <= 0:
            raise ValueError(f"epochs={self.epochs!r} must be > 0 when max_steps is -1")
        if float(self.max_train_minutes) < 0:
            raise ValueError(f"max_train_minutes={self.max_train_minutes!r} must be >= 0 (0 = no time budget)")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} must be > 0")
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature!r} must be > 0")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p={self.top_p!r} must be in (0, 1]")
        for key in ("weight_decay", "max_grad_norm", "beta"):
            if float(getattr(self, key)) < 0:
                raise ValueError(f"{key}={getattr(self, key)!r} must be >= 0")
        if self.lora_alpha < 1:
            raise ValueError(f"lora_alpha={self.lora_alpha!r} must be >= 1")
        if self.mode == "grpo":
            if self.num_generations < 2:
                raise ValueError(f"num_generations={self.num_generations} must be >= 2 (GRPO compares a group)")
            if (self.batch_size * self.grad_accum) % self.num_generations:
                raise ValueError(
                    f"batch_size * grad_accum = {self.batch_size * self.grad_accum} completions per step must be a "
                    f"multiple of num_generations={self.num_generations}"
                )
        _check_episode(self)
        from veritas_rl.backends.trl.curriculum import check_settings

        check_settings(self)
        if self.resume is not None and self.resume in ("", "none"):
            self.resume = None

    @property
    def completions_per_step(self) -> int:
        return self.batch_size * self.grad_accum

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_episode(s: TrainSettings) -> None:
    """The game-episode settings (``episode``, ``opponent``, ``max_turns``, ``legal_move_bonus``, ``rollout_seeds``)."""
    import math

    from veritas_rl.games.opponents import parse_rung

    _choice("episode", s.episode, EPISODES)
    _choice("rollout_seeds", s.rollout_seeds, ROLLOUT_SEEDS)
    parse_rung(s.opponent, key="opponent")
    if isinstance(s.max_turns, bool) or not isinstance(s.max_turns, int) or s.max_turns < 1:
        raise ValueError(f"max_turns={s.max_turns!r} must be an integer >= 1")
    bonus = s.legal_move_bonus
    if isinstance(bonus, bool) or not isinstance(bonus, (int, float)) or not math.isfinite(bonus) or bonus < 0:
        raise ValueError(f"legal_move_bonus={bonus!r} must be a finite number >= 0")
    if s.episode == "game":
        if s.mode != "grpo":
            raise ValueError(f"episode='game' trains with GRPO rollouts; it does not apply to mode={s.mode!r}")
        if s.env not in GAME_ENVS:
            raise ValueError(f"episode='game' plays OpenSpiel games: env={s.env!r} must be one of "
                             f"{', '.join(GAME_ENVS)}")


def _check_server_url(s: TrainSettings) -> None:
    """``vllm_server_base_url`` (``--vllm-server-url``): ``http(s)://host[:port]``, what TRL's ``VLLMClient`` takes."""
    from urllib.parse import urlparse

    url = s.vllm_server_base_url
    if url is not None:
        parsed = urlparse(str(url))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"vllm_server_base_url={url!r} must be http(s)://HOST[:PORT] (e.g. http://127.0.0.1:8000, "
                             "where `trl vllm-serve` listens)")
        try:
            parsed.port
        except ValueError:
            raise ValueError(f"vllm_server_base_url={url!r}: the port is not a number in 0..65535") from None
    if not float(s.vllm_server_timeout) > 0:
        raise ValueError(f"vllm_server_timeout={s.vllm_server_timeout!r} must be > 0 seconds")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{key}={value!r} is not valid; choose from: {', '.join(choices)}")


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainSettings)]


def build_settings(preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> TrainSettings:
    """Defaults, then ``preset``, then ``overrides`` (``None`` values are ignored); validated."""
    values: dict[str, Any] = {}
    if preset:
        values.update(load_preset(preset))
        values["preset"] = preset
    values.update({k: v for k, v in dict(overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(field_names()))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(map(repr, unknown))}; valid: {', '.join(field_names())}")
    return TrainSettings(**values)

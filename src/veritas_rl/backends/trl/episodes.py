"""Whole games as GRPO rollouts in the TRL backend (``veritas train grpo --env openspiel --episode game``).

One rollout = one game played by :class:`veritas_rl.games.episode.GameEpisode`: the model's turns are
sampled from the policy being trained, the opponent (a ladder rung, ``--opponent``) and chance move in
between, and the episode's reward (the model's normalised return, plus ``legal_move_bonus`` per
legal move) is the reward of the whole sequence.

**Why ``rollout_func`` and not ``environment_factory``** (TRL 1.16, ``trl/trainer/grpo_trainer.py``):

* ``environment_factory`` drives the environment through *tool calls*: the env's public methods become
  tools, the model must emit the chat template's tool-call syntax, and the trainer refuses tokenizers
  whose template cannot render a tool-calling conversation (``supports_tool_calling``; SmolLM2's
  cannot) and needs transformers >= 5.2. Our env contract is a plain ``<answer>ID</answer>`` reply
  parsed by the env's strict parser; games would need a second, tool-shaped contract.
* ``rollout_func(prompts, trainer)`` lets us play the game ourselves and return ``prompt_ids``,
  ``completion_ids``, ``logprobs`` and an ``env_mask`` (TRL's name for "1 = model token, 0 = text the
  environment inserted"; it becomes ``tool_mask`` and multiplies the completion mask in the loss).
  It does **not** need vLLM: the trainer only syncs vLLM weights before calling it when vLLM is on,
  and ``logprobs`` may be ``None`` (they are only read for vLLM's importance-sampling correction).
  Each model turn is generated with the trainer's own ``_generate_single_turn`` (transformers
  ``generate()`` on a CPU, the trainer's vLLM engine when ``--use-vllm``), so sampling settings
  (temperature, top_p, ``max_new_tokens`` per turn) are the trainer's. That method is private API of
  TRL 1.16 (the version the project pins); its tool loop calls it the same way.

The trained sequence is ``prompt_ids`` (the chat template of the first turn's messages) followed by
turn 1's sampled tokens, the observation tokens (the template's end of the assistant turn, the next
user message, the start of the next assistant turn: ``env_mask`` 0), turn 2's tokens, and so on.
Sampled tokens are kept as ids (never re-tokenised), so the loss is on exactly what was sampled.

Episode identity travels inside the prompt: each row's first message carries an ``episode`` key (a
JSON :class:`EpisodeConfig`) that chat templates ignore and :func:`strip_episode_key` removes before
templating. Single process only (the game loop generates a varying number of turns per process).
Win/draw/loss/illegal/max_turns rates, legal moves and model turns per game are logged per step as
``episode/<name>`` through the trainer's metrics (console, metrics.jsonl, W&B).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from typing import Any, Sequence

from veritas_rl.envs.base import seeded_rng
from veritas_rl.games import spiel
from veritas_rl.games.episode import OUTCOMES, EpisodeConfig, GameEpisode

log = logging.getLogger("veritas_rl.backends.trl")

EPISODE_KEY = "episode"
#: a text no template alters, standing in for an assistant reply when the observation's framing is rendered
_SENTINEL = "\u2063VERITAS-ASSISTANT-REPLY\u2063"


def config_to_json(config: EpisodeConfig) -> str:
    return json.dumps({k: getattr(config, k) for k in ("case", "seat", "seed", "opponent", "max_turns",
                                                       "legal_move_bonus", "uct_c")}, sort_keys=True)


def config_from_prompt(prompt: Sequence[dict]) -> EpisodeConfig:
    raw = next((m.get(EPISODE_KEY) for m in prompt if m.get(EPISODE_KEY)), None)
    if not raw:
        raise ValueError(f"an --episode game prompt must carry its {EPISODE_KEY!r} key (rows from episode_rows)")
    return EpisodeConfig(**json.loads(raw))


def strip_episode_key(messages: Sequence[dict]) -> list[dict[str, str]]:
    return [{k: v for k, v in m.items() if k != EPISODE_KEY} for m in messages]


def episode_configs(s, env) -> list[EpisodeConfig]:
    """``train_size`` episodes: cases in turn, seats balanced per case, seeds from ``(seed, case, index)``."""
    cases = list(env.cases)
    out = []
    for i in range(s.train_size):
        case = cases[i % len(cases)]
        seat = (i // len(cases)) % spiel.load_game(case).num_players()
        seed = seeded_rng("trl-episode", s.seed, case, i).getrandbits(31)
        out.append(EpisodeConfig(case, seat, seed, s.opponent, s.max_turns, s.legal_move_bonus))
    return out


def episode_rows(configs: Sequence[EpisodeConfig]) -> list[dict[str, Any]]:
    """One dataset row per episode: its first-turn messages (with the ``episode`` key) and its case/seat."""
    rows = []
    for config in configs:
        messages = GameEpisode(config).start()
        if not messages:
            raise ValueError(f"episode {config}: the game ends before the model's first turn")
        tagged = [{**m, EPISODE_KEY: config_to_json(config) if i == 0 else ""} for i, m in enumerate(messages)]
        rows.append({"prompt": tagged, "case": config.case, "seat": config.seat})
    return rows


def template_ids(tokenizer, messages: Sequence[dict]) -> list[int]:
    text = tokenizer.apply_chat_template(strip_episode_key(messages), add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def observation_ids(tokenizer, first_messages: Sequence[dict], turn_ids: Sequence[int], observation: str) -> list[int]:
    """The tokens between one model turn and the next: the template's end of the assistant turn (minus the
    end token the model already sampled), the user message ``observation``, the next assistant header.

    Rendered from the template itself (with a sentinel reply) so any chat template's framing is right.
    """
    base = strip_episode_key(first_messages)
    text = tokenizer.apply_chat_template(
        [*base, {"role": "assistant", "content": _SENTINEL}, {"role": "user", "content": observation}],
        add_generation_prompt=True, tokenize=False,
    )
    between = text[text.rindex(_SENTINEL) + len(_SENTINEL):]
    ended = [t for t in (tokenizer.eos_token_id,) if t is not None]
    if turn_ids and turn_ids[-1] in ended:
        closer = tokenizer.decode([turn_ids[-1]])
        if between.startswith(closer):
            between = between[len(closer):]
    return list(tokenizer(between, add_special_tokens=False)["input_ids"])


def rollout_config(config: EpisodeConfig, k: int, rollout_seeds: str = "shared") -> EpisodeConfig:
    """The config rollout ``k`` of a game's GRPO group plays: the game's own (``shared``, and rollout 0 always), or
    the same game with the seed ``seeded_rng("trl-rollout", seed, k)`` draws (``distinct``), so the opponent's and
    chance's moves differ between the rollouts while every rollout stays a pure function of its config and texts."""
    if rollout_seeds == "shared" or k == 0:
        return config
    if rollout_seeds != "distinct":
        raise ValueError(f"rollout_seeds={rollout_seeds!r} is not valid; choose from: shared, distinct")
    return dataclasses.replace(config, seed=seeded_rng("trl-rollout", config.seed, k).getrandbits(31))


class GameRollout:
    """TRL ``rollout_func``: plays one game per prompt with the policy being trained.

    TRL repeats each prompt ``num_generations`` times (its group); with ``rollout_seeds="distinct"`` the k-th
    copy of a game within one call plays :func:`rollout_config` ``(config, k)``.
    """

    def __init__(self, rollout_seeds: str = "shared"):
        if rollout_seeds not in ("shared", "distinct"):
            raise ValueError(f"rollout_seeds={rollout_seeds!r} is not valid; choose from: shared, distinct")
        self.rollout_seeds = rollout_seeds
        self.last_results: list = []  # the EpisodeResults of the latest call (tests, logging)
        self.last_configs: list[EpisodeConfig] = []  # the configs they played

    def __call__(self, prompts: list, trainer) -> dict[str, Any]:
        tokenizer = trainer.processing_class
        episodes, firsts, seen = [], [], Counter()
        for prompt in prompts:
            config = config_from_prompt(prompt)
            key = config_to_json(config)
            episode = GameEpisode(config)
            first = episode.start()
            if strip_episode_key(prompt) != first:
                raise ValueError(f"episode {config}: its prompt differs from the game's first turn")
            if seen[key] and self.rollout_seeds == "distinct":
                # a chance move before the model's first turn (a card deal) makes this rollout's first turn its own
                episode = GameEpisode(rollout_config(config, seen[key], self.rollout_seeds))
                first = episode.start()
            seen[key] += 1
            episodes.append(episode)
            firsts.append(first)
        self.last_configs = [e.config for e in episodes]
        prompt_ids = [template_ids(tokenizer, m) for m in firsts]
        completion_ids: list[list[int]] = [[] for _ in prompts]
        env_mask: list[list[int]] = [[] for _ in prompts]
        logprobs: list[list[float]] = [[] for _ in prompts]
        have_logprobs = True
        active = [i for i, e in enumerate(episodes) if not e.done]
        while active:
            inputs = [prompt_ids[i] + completion_ids[i] for i in active]
            new_ids, new_lps = trainer._generate_single_turn(inputs, None, {}, 1)
            have_logprobs = have_logprobs and new_lps is not None
            for k, i in enumerate(active):
                ids = list(new_ids[k])
                text = tokenizer.decode(ids, skip_special_tokens=True)
                out = episodes[i].step(text)
                completion_ids[i] += ids
                env_mask[i] += [1] * len(ids)
                logprobs[i] += list(new_lps[k]) if new_lps is not None else [0.0] * len(ids)
                if not out.done:
                    obs = observation_ids(tokenizer, firsts[i], ids, out.observation)
                    completion_ids[i] += obs
                    env_mask[i] += [0] * len(obs)
                    logprobs[i] += [0.0] * len(obs)
            active = [i for i in active if not episodes[i].done]
        results = [e.result() for e in episodes]
        self.last_results = results
        _log_metrics(trainer, results)
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": completion_ids,
            "logprobs": logprobs if have_logprobs else None,
            "env_mask": env_mask,
            "episode_reward": [r.reward for r in results],
            "episode_outcome": [r.outcome for r in results],
        }


def episode_stats(results: Sequence) -> dict[str, float]:
    n = max(1, len(results))
    stats = {f"{o}_rate": sum(r.outcome == o for r in results) / n for o in OUTCOMES}
    stats["legal_moves"] = sum(r.legal_moves for r in results) / n
    stats["model_turns"] = sum(r.model_turns for r in results) / n
    stats["reward"] = sum(r.reward for r in results) / n
    return stats


def _log_metrics(trainer, results: Sequence) -> None:
    metrics = getattr(trainer, "_metrics", None)
    if metrics is None:
        return
    mode = "train" if trainer.model.training else "eval"
    for name, value in episode_stats(results).items():
        metrics[mode][f"episode/{name}"].append(value)


class EpisodeReward:
    """The GRPO reward of a game rollout: the episode reward :class:`GameRollout` computed (``episode_reward``)."""

    __name__ = "episode_reward"

    def __init__(self):
        self.scored = self.nonzero = 0

    def __call__(self, prompts=None, completions=None, episode_reward=None, **kwargs) -> list[float]:
        if episode_reward is None:
            raise ValueError("episode_reward is missing: --episode game needs GameRollout as the rollout_func")
        values = [float(v) for v in episode_reward]
        self.scored += len(values)
        self.nonzero += sum(v != 0.0 for v in values)
        return values

    def take_counts(self) -> tuple[int, int]:
        """``(scored, nonzero)`` since the last call (:class:`~veritas_rl.backends.trl.callbacks.ZeroRewardBreaker`)."""
        out = (self.scored, self.nonzero)
        self.scored = self.nonzero = 0
        return out


def game_trainer_parts(s, env) -> dict[str, Any]:
    """``train_dataset``, ``reward_funcs`` and ``rollout_func`` for ``GRPOTrainer`` in ``--episode game`` mode."""
    from datasets import Dataset

    if not hasattr(env, "cases"):
        raise ValueError(f"episode='game' needs the openspiel env (its cases are the games); got env {env.name!r}")
    rows = episode_rows(episode_configs(s, env))
    log.info("--episode game: %d training games of %s against %s (max %d model turns each, %s rollout seeds)",
             len(rows), ", ".join(env.cases), s.opponent, s.max_turns, s.rollout_seeds)
    return {"train_dataset": Dataset.from_list(rows), "reward_funcs": [EpisodeReward()],
            "rollout_func": GameRollout(s.rollout_seeds)}

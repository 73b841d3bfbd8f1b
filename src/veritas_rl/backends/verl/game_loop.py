"""verl 0.9.1 agent loop :class:`GameAgentLoop`: one trajectory = one whole game.

Registered as ``veritas_game`` (``@register`` for in-process use; the YAML
``veritas_rl/backends/verl/agent_loops.yaml`` for verl's workers, named by
``actor_rollout_ref.rollout.agent.agent_loop_config_path``). :class:`DynamicEnvDataset` sets
``agent_name=veritas_game`` on every item when ``data.custom_cls.config.episode=game``.

Per game (``extra_info["episode"]``, see :mod:`.episodes`)::

    prompt_ids = chat template of the first turn (GameEpisode.start())
    repeat: generate (max_tokens = what is left of rollout.response_length)   -> response_mask 1
            GameEpisode.step(text); done -> stop
            the observation as the next user turn (chat template, incremental) -> response_mask 0
            no room left for it -> stop, the game is "truncated" (scored as a max_turns stop)

Token bookkeeping is verl's own Continuous Token builder (``ct_build_initial_tokens``,
``ct_merge_assistant_token``, ``ct_merge_context_msg``), as in ``ToolAgentLoop``: the model's sampled
tokens are kept verbatim (never re-tokenized) and the user turns are the chat template's tokens of
each appended message. For ChatML templates (``<|im_end|>\\n`` between turns) that verl's model-type
table does not know (SmolLM2's ``llama``), verl's ChatML boundary builder is used, so the
sequence is exactly the chat template of the whole conversation.

The reward is not computed here: ``extra_fields`` carry the model's texts (``game_completions``),
``game_truncated`` and the loop's ``game_outcome``; verl's reward loop merges them into
``extra_info`` and ``compute_score`` replays the game (:func:`.episodes.score_episode`).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.profiler import simple_timer
from verl.utils.tokenizer.continuous_token import ContinuousTokenBuilder, QwenContinuousTokenBuilder

from veritas_rl.backends.verl.episodes import (
    AGENT_NAME,
    COMPLETIONS_KEY,
    LOOP_OUTCOME_KEY,
    TRUNCATED_KEY,
    episode_config_from,
)

logger = logging.getLogger(__name__)

__all__ = ["GameAgentLoop"]


def _chatml_builder(builder, tokenizer, chat_template_kwargs):
    """verl's ChatML boundary builder when verl chose the generic one for a ChatML template, else ``builder``.

    The generic builder appends the next user turn right after the model's ``<|im_end|>``; a ChatML
    template puts ``<|im_end|>\\n`` between turns, and verl's ``QwenContinuousTokenBuilder`` inserts
    that newline (mask 0), which keeps the sequence equal to the chat template's.
    """
    if type(builder) is not ContinuousTokenBuilder:
        return builder  # verl has a model-specific builder: trust it
    vocab = tokenizer.get_vocab()
    if "<|im_end|>" not in vocab or len(tokenizer.encode("\n", add_special_tokens=False)) != 1:
        return builder
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
        tokenize=False, **(chat_template_kwargs or {}),
    )
    if "b<|im_end|>\n<|im_start|>user" not in text:
        return builder
    return QwenContinuousTokenBuilder(tokenizer, chat_template_kwargs=chat_template_kwargs)


@register(AGENT_NAME)
class GameAgentLoop(AgentLoopBase):
    """Whole OpenSpiel games against the episode's opponent (see the module docstring)."""

    def __init__(self, *args, tools=None, **kwargs):  # verl passes its tool list to every loop; games use none
        super().__init__(*args, **kwargs)
        self.prompt_length = self.rollout_config.prompt_length
        self.response_length = self.rollout_config.response_length
        self.continuous_token_builder = _chatml_builder(
            self.continuous_token_builder, self.tokenizer, self.apply_chat_template_kwargs
        )

    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs) -> AgentLoopOutput:
        from veritas_rl.games.episode import GameEpisode

        priority = int(priority)
        config = episode_config_from(kwargs.get("extra_info"))
        metrics: dict[str, Any] = {}
        with simple_timer("tool_calls", metrics):  # the game's own time (opponent search, chance) is the "tool" time
            episode = GameEpisode(config)
            messages = episode.start()
        if not messages:
            raise ValueError(f"case {config.case!r}: the game ends before the model's first turn (seat {config.seat})")
        prompt_ids = await self.ct_build_initial_tokens(messages)
        runtime, mask = list(prompt_ids), []
        logprobs: list[float] | None = None
        completions: list[str] = []
        versions: dict[str, Any] = {}  # the rollout weights' version(s) the game was played with
        truncated = False
        full_determinism = getattr(self.rollout_config, "full_determinism", False)
        request_id = f"det-{priority}" if full_determinism else uuid4().hex  # one sticky session per game

        while True:
            budget = self.response_length - len(mask)  # >= 1: a user turn is only added when a reply still fits
            with simple_timer("generate_sequences", metrics):
                output = await self.server_manager.generate(
                    request_id=request_id,
                    prompt_ids=runtime,
                    sampling_params={**sampling_params, "max_tokens": budget},
                    priority=priority,
                )
            # verl's trainer reads min_global_steps / max_global_steps of every trajectory (staleness metrics,
            # trainer_base._compute_metrics): the first turn's fields, then the last turn's max (as its tool loop)
            if not versions:
                versions.update(output.extra_fields or {})
            elif (output.extra_fields or {}).get("max_global_steps") is not None:
                versions["max_global_steps"] = output.extra_fields["max_global_steps"]
            preempted = output.num_preempted if output.num_preempted is not None else 0
            metrics["num_preempted"] = metrics.get("num_preempted", 0) + preempted
            if output.log_probs and logprobs is None:
                logprobs = [0.0] * len(mask)
            merged, mask, logprobs = await self.ct_merge_assistant_token(
                runtime, output.token_ids, mask, logprobs, assistant_logprobs=output.log_probs or None
            )
            runtime = merged.token_ids
            text = self.tokenizer.decode(output.token_ids, skip_special_tokens=True)
            completions.append(text)
            with simple_timer("tool_calls", metrics):
                step = episode.step(text)
            messages = [*messages, {"role": "assistant", "content": text}]
            if step.done:
                break
            updated = [*messages, {"role": "user", "content": step.observation}]
            merged, new_mask, new_logprobs = await self.ct_merge_context_msg(messages, updated, runtime, mask, logprobs)
            if len(new_mask) >= self.response_length:  # the observation (and a reply) do not fit any more
                truncated = True
                break
            runtime, mask, logprobs, messages = merged.token_ids, new_mask, new_logprobs, updated

        outcome = episode.result().outcome if episode.done else "max_turns"
        response_ids = runtime[len(prompt_ids):]
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids[: self.response_length],
            response_mask=mask[: self.response_length],
            response_logprobs=logprobs[: self.response_length] if logprobs else None,
            num_turns=len(messages),
            metrics=metrics,
            extra_fields={
                **versions,
                COMPLETIONS_KEY: completions,
                TRUNCATED_KEY: truncated,
                LOOP_OUTCOME_KEY: outcome,
                "turn_scores": [],
                "tool_rewards": [],
            },
        )

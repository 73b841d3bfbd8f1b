"""GameAgentLoop: whole games through verl 0.9.1's real AgentLoopWorker, with the real SmolLM2 served in-process.

The worker, its LLM client and load balancer, the reward loop worker and the naive reward manager are
verl's own classes; the model is the real SmolLM2-135M on CPU behind the rollout server's ``generate``
(see ``served_model`` for what that leaves untested: vLLM, Ray, the PPO update).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.backends.verl.served_model import HFTokenServer, agent_loop_worker, answer_guide, game_batch
from tests.verl_utils import build_verl_dataset, compose_ppo_config, plugin_overrides
from veritas_rl.backends.verl.episodes import AGENT_LOOP_CONFIG, AGENT_NAME, episode_config_from
from veritas_rl.games.episode import GameEpisode, replay_episode

PROMPT_LENGTH = 1024


def _config(smollm2_dir, response_length: int, *extra: str):
    return compose_ppo_config(plugin_overrides(env="openspiel", extra=[
        "+data.custom_cls.config.episode=game",
        "+data.custom_cls.config.opponent=random",
        "+data.custom_cls.config.group_by=case",
        "+data.custom_cls.config.adapter_config.game_types=[tic_tac_toe]",
        "+data.custom_cls.config.val_size=8",
        f"data.max_prompt_length={PROMPT_LENGTH}",
        f"data.max_response_length={response_length}",
        f"actor_rollout_ref.model.path={smollm2_dir}",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={AGENT_LOOP_CONFIG}",
        "actor_rollout_ref.rollout.multi_turn.enable=True",
        "actor_rollout_ref.rollout.name=vllm",  # the client's code path for vLLM servers (ours is HFTokenServer)
        *extra,
    ]))


def _play(cfg, smollm2_dir, items, *, guide=None, validate=False, seed=0, server=None):
    server = server or HFTokenServer(smollm2_dir, prompt_length=PROMPT_LENGTH, seed=seed, guide=guide,
                                     response_length=cfg.actor_rollout_ref.rollout.response_length)

    batch = game_batch(items, validate=validate)
    # verl's worker picks each item's loop by agent_name (DynamicEnvDataset sets it); a missing one would
    # run verl's single-turn loop, which writes no game_completions
    assert list(batch.non_tensor_batch["agent_name"]) == [AGENT_NAME] * len(items)

    async def main():
        worker = await agent_loop_worker(cfg, server)
        return await worker.generate_sequences(batch)

    return asyncio.run(main()), server


def _runs(mask: list[int]) -> list[tuple[int, int, int]]:
    """``(value, start, end)`` of each run of equal mask values."""
    runs, start = [], 0
    for i in range(1, len(mask) + 1):
        if i == len(mask) or mask[i] != mask[start]:
            runs.append((mask[start], start, i))
            start = i
    return runs


def _ids(encoded):
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def _sample(out, i: int):
    """Sample ``i`` of the agent loop's output: unpadded prompt, response and mask, and its fields."""
    prompt = out.batch["prompts"][i]
    attention = out.batch["attention_mask"][i]
    plen = prompt.shape[0]
    prompt_ids = prompt[attention[:plen].bool()].tolist()
    valid = int(attention[plen:].sum())
    response = out.batch["responses"][i][:valid].tolist()
    mask = out.batch["response_mask"][i][:valid].tolist()
    assert out.batch["response_mask"][i][valid:].sum() == 0, "padding carries no loss"
    fields = {k: v[i] for k, v in out.non_tensor_batch.items()}
    return prompt_ids, response, mask, fields


@pytest.fixture(scope="module")
def guided_games(smollm2_dir, smollm2_tokenizer):
    """Two tic-tac-toe games: the real SmolLM2 picks every move (guided to the answer format), with a weight sync
    (the server's version 3 -> 4) landing after the first reply, while the games are being played."""
    cfg = _config(smollm2_dir, 1024)
    dataset = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    items = [dataset[i] for i in range(2)]
    server = HFTokenServer(smollm2_dir, prompt_length=PROMPT_LENGTH, global_steps=3,
                           guide=answer_guide(smollm2_tokenizer, [str(a) for a in range(9)]),
                           response_length=cfg.actor_rollout_ref.rollout.response_length)
    generate = server.generate

    async def synced_after_first_call(*args, **kwargs):
        out = await generate(*args, **kwargs)
        server.global_steps = 4
        return out

    server.generate = synced_after_first_call
    out, server = _play(cfg, smollm2_dir, items, server=server)
    return cfg, items, out, server


@pytest.mark.slow
def test_one_trajectory_is_one_game_and_the_mask_covers_exactly_the_model_tokens(guided_games, smollm2_tokenizer):
    tok = smollm2_tokenizer
    cfg, items, out, server = guided_games
    longest = 0
    for i, item in enumerate(items):
        prompt_ids, response, mask, fields = _sample(out, i)
        config = episode_config_from(item["extra_info"])
        texts = list(fields["game_completions"])
        longest = max(longest, len(texts))
        # the prompt is the chat template of the game's first turn
        assert prompt_ids == _ids(tok.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=True))
        # replaying the model's texts gives the user turns the model saw between its moves
        episode = GameEpisode(config)
        episode.start()
        observations = [episode.step(t).observation for t in texts]
        assert observations[-1] is None and None not in observations[:-1]
        runs = _runs(mask)
        model_runs = [r for r in runs if r[0] == 1]
        env_runs = [r for r in runs if r[0] == 0]
        assert len(model_runs) == len(texts) and len(env_runs) == len(texts) - 1
        for (_, a, b), text in zip(model_runs, texts):  # mask 1: the model's sampled tokens, EOS included, nothing else
            assert tok.decode(response[a:b], skip_special_tokens=True) == text
            assert tok.decode(response[a:b]) == text + tok.eos_token
        for (_, a, b), observation in zip(env_runs, observations):  # mask 0: exactly one chat-template user turn
            assert tok.decode(response[a:b]) == f"\n<|im_start|>user\n{observation}<|im_end|>\n<|im_start|>assistant\n"
        # the whole sequence is the chat template of the whole conversation (it stops at the model's last EOS)
        messages = list(item["raw_prompt"])
        for text, observation in zip(texts, observations):
            messages.append({"role": "assistant", "content": text})
            if observation is not None:
                messages.append({"role": "user", "content": observation})
        template = _ids(tok.apply_chat_template(messages, tokenize=True))
        assert prompt_ids + response == template[:-1] and tok.decode(template[-1:]) == "\n"
        assert fields["__num_turns__"] == len(messages)
        # the reward at the last token is the replayed game's, and the outcome rates are there
        result = replay_episode(config, texts)
        assert fields["game_outcome"] == result.outcome and not fields["game_truncated"]
        assert float(out.batch["rm_scores"][i].sum()) == pytest.approx(result.reward)
        assert float(out.batch["rm_scores"][i][len(response) - 1]) == pytest.approx(result.reward)
        assert fields[f"game/{result.outcome}"] == 1.0 and fields["game/model_turns"] == len(texts)
        assert fields["score"] == pytest.approx(result.reward)
    assert longest >= 2, "no game lasted two model moves: the observation turns were not exercised"
    # every turn asked for what was left of the response budget, one sticky session per game
    assert all(c["max_tokens"] <= cfg.actor_rollout_ref.rollout.response_length for c in server.calls)
    assert len({c["request_id"] for c in server.calls}) <= len(server.calls)


@pytest.mark.slow
def test_reward_extra_info_reaches_the_batch_under_every_key(guided_games):
    _, _, out, _ = guided_games
    keys = set(out.meta_info["reward_extra_keys"])
    assert {"score", "acc", "kind", "game/win", "game/draw", "game/loss", "game/illegal", "game/max_turns"} <= keys
    for key in keys:
        assert len(out.non_tensor_batch[key]) == 2
    rates = sum(out.non_tensor_batch[f"game/{o}"] for o in ("win", "draw", "loss", "illegal", "max_turns"))
    assert list(rates) == [1.0] * 2  # exactly one outcome per game


@pytest.mark.slow
def test_each_game_carries_the_weights_versions_verl_trainer_reads(guided_games):
    """min/max_global_steps per trajectory: verl 0.9.1's trainer turns them into ints for its staleness metrics
    (trainer_base._compute_metrics); a game without them stopped the first GPU run at step 1 (2026-12-03)."""
    import numpy as np

    _, _, out, _ = guided_games
    low = np.array(list(out.non_tensor_batch["min_global_steps"]), dtype=int)  # what verl's trainer does
    high = np.array(list(out.non_tensor_batch["max_global_steps"]), dtype=int)
    turns = [len(out.non_tensor_batch["game_completions"][i]) for i in range(2)]
    assert low.min() == 3 and set(low) <= {3, 4}
    for i in range(2):  # a game of several model turns was played across the sync: it spans both versions
        assert high[i] == (4 if turns[i] >= 2 else low[i]) and low[i] <= high[i]
    assert max(turns) >= 2


@pytest.mark.slow
def test_free_text_and_a_short_budget_end_the_game_without_an_error(smollm2_dir, smollm2_tokenizer):
    """Unguided greedy SmolLM2 with a 12-token budget: whatever it writes, the game ends (illegal or truncated)."""
    tok = smollm2_tokenizer
    cfg = _config(smollm2_dir, 12)
    dataset = build_verl_dataset(cfg, "val", tok)
    item = dataset[0]
    out, server = _play(cfg, smollm2_dir, [item], validate=True)  # validation: greedy (val_kwargs)
    prompt_ids, response, mask, fields = _sample(out, 0)
    texts = list(fields["game_completions"])
    assert 1 <= len(response) <= 12 and server.calls[0]["max_tokens"] == 12
    config = episode_config_from(item["extra_info"])
    if fields["game_truncated"]:
        assert fields["game_outcome"] == "max_turns" and fields["game/truncated"] == 1.0
    else:
        assert fields["game_outcome"] == replay_episode(config, texts).outcome
    first = _runs(mask)[0]
    assert first[0] == 1 and tok.decode(response[first[1]:first[2]], skip_special_tokens=True) == texts[0]
    assert fields["kind"] in ("correct", "partial", "wrong", "no_answer", "illegal", "hedge", "too_long")
    assert float(out.batch["rm_scores"][0].sum()) == pytest.approx(fields["score"])

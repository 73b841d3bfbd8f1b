"""``--episode game`` in the TRL backend: the rollout's token bookkeeping, its reward, and a real 2-step run."""

from __future__ import annotations

import json

import pytest

from veritas_rl.backends.trl.episodes import (
    EPISODE_KEY,
    EpisodeReward,
    config_from_prompt,
    episode_configs,
    episode_rows,
    observation_ids,
    template_ids,
)
from veritas_rl.backends.trl.settings import build_settings
from veritas_rl.cli import main
from veritas_rl.envs import make
from veritas_rl.games.episode import EpisodeConfig, GameEpisode, replay_episode

GAME = {"env": "openspiel", "env_config": {"cases": ["tic_tac_toe"]}, "episode": "game", "opponent": "first_legal",
        "train_size": 4, "eval": False, "num_generations": 2, "batch_size": 2, "max_new_tokens": 8, "lora_rank": 4,
        "lora_alpha": 8, "max_steps": 2, "cpu_threads": 1, "zero_reward_patience": 0, "save_final_model": False,
        "seed": 1}


def test_rows_carry_their_episode_and_their_first_turn():
    s = build_settings(None, {**GAME, "env_config": {"cases": ["tic_tac_toe", "kuhn_poker"]}, "opponent": "random"})
    configs = episode_configs(s, make("openspiel", cases=["tic_tac_toe", "kuhn_poker"]))
    assert [(c.case, c.seat) for c in configs] == [("tic_tac_toe", 0), ("kuhn_poker", 0), ("tic_tac_toe", 1),
                                                   ("kuhn_poker", 1)]
    assert len({c.seed for c in configs}) == 4
    rows = episode_rows(configs)
    for config, row in zip(configs, rows):
        assert config_from_prompt(row["prompt"]) == config
        assert [{k: v for k, v in m.items() if k != EPISODE_KEY} for m in row["prompt"]] == GameEpisode(config).start()
    # seat 1 of tic-tac-toe: the opponent's first move is already on the board of the first prompt
    assert "x" in rows[2]["prompt"][0]["content"].split("State from your point of view:")[1].split("Legal")[0]


def test_observation_tokens_are_the_templates_framing_of_the_next_user_turn(smollm2_tokenizer):
    tok = smollm2_tokenizer
    first = [{"role": "user", "content": "first position"}]
    reply = tok("<answer>4</answer>", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    obs = observation_ids(tok, first, reply, "Player 1 played 0: o(0,0).")
    whole = template_ids(tok, first) + reply + obs
    expected = tok.apply_chat_template(
        [*first, {"role": "assistant", "content": "<answer>4</answer>"},
         {"role": "user", "content": "Player 1 played 0: o(0,0)."}],
        add_generation_prompt=True, tokenize=False)
    assert tok.decode(whole) == expected
    assert tok.decode(obs) == "\n<|im_start|>user\nPlayer 1 played 0: o(0,0).<|im_end|>\n<|im_start|>assistant\n"
    # a turn cut by max_new_tokens (no end token): the observation closes the turn itself
    cut = tok("<answer>4", add_special_tokens=False)["input_ids"]
    assert tok.decode(observation_ids(tok, first, cut, "next")).startswith("<|im_end|>\n<|im_start|>user\nnext")


def test_the_reward_is_the_episode_reward_and_counts_for_the_breaker():
    reward = EpisodeReward()
    assert reward(prompts=[[]] * 3, completions=[[]] * 3, episode_reward=[1.0, 0.0, 0.5]) == [1.0, 0.0, 0.5]
    assert reward.take_counts() == (3, 2) and reward.take_counts() == (0, 0)
    with pytest.raises(ValueError, match="episode_reward is missing"):
        reward(prompts=[], completions=[])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"episode": "games"}, "episode='games' is not valid; choose from: move, game"),
        ({"opponent": "mcts"}, "opponent='mcts' needs a simulation count"),
        ({"opponent": "stockfish"}, "opponent='stockfish' is not a rung; valid forms: random | first_legal | mcts:N"),
        ({"max_turns": 0}, "max_turns=0 must be an integer >= 1"),
        ({"legal_move_bonus": -0.1}, "legal_move_bonus=-0.1 must be a finite number >= 0"),
        ({"env": "math"}, "episode='game' plays OpenSpiel games: env='math' must be one of openspiel, open_spiel"),
        ({"mode": "sft"}, "episode='game' trains with GRPO rollouts"),
    ],
)
def test_bad_game_settings_fail_at_start_naming_the_key(overrides, message):
    with pytest.raises(ValueError) as err:
        build_settings(None, {**GAME, **overrides})
    assert message in str(err.value)


def test_cli_refuses_a_bad_rung_with_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "grpo", "--env", "openspiel", "--episode", "game", "--opponent", "mcts:x",
              "--output-dir", str(tmp_path)])
    assert exc.value.code == 2 and "N in mcts:N must be an integer" in capsys.readouterr().err


def _scripted_generator(tok, replies):
    """Stands in for the trainer's sampler only: the next scripted reply per call, as the model's tokens + eos."""
    script = iter(replies)

    def generate(prompt_ids, images, multimodal_fields, num_generations):
        assert num_generations == 1 and images is None
        texts = [next(script) for _ in prompt_ids]
        return [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts], None

    return generate


@pytest.mark.slow
def test_rollout_masks_cover_exactly_the_models_tokens(smollm2_dir, tmp_path, monkeypatch):
    """A real GRPOTrainer (built by the runner) and the real tokenizer; only the sampled texts are scripted, so
    that games last several turns (the untrained SmolLM2 never names a legal move)."""
    from veritas_rl.backends.trl.runner import build_trainer
    from veritas_rl.models import load_causal_lm

    s = build_settings(None, {**GAME, "model": str(smollm2_dir), "output_dir": str(tmp_path)})
    model, tok = load_causal_lm(str(smollm2_dir), "cpu")
    trainer, reward = build_trainer(s, make("openspiel", cases=["tic_tac_toe"]), model, tok, [], tmp_path, "fp32")
    rows = list(trainer.train_dataset)[:2]
    assert [r["seat"] for r in rows] == [0, 1]
    # seat 0 (x): x4 o0 x8 o1, then x4 again: illegal. Seat 1 (o, first_legal plays x): x0 o4 x1 o8 x2: x wins.
    replies = ["<answer>4</answer>", "<answer>4</answer>", "<think>corner</think><answer>8</answer>",
               "<answer>8</answer>", "<answer>4</answer>", "<answer>4</answer>"]
    monkeypatch.setattr(trainer, "_generate_single_turn", _scripted_generator(tok, replies))
    out = trainer.rollout_func([r["prompt"] for r in rows], trainer)
    assert out["logprobs"] is None  # transformers generate: no sampling logprobs (only vLLM's IS correction reads them)
    results = trainer.rollout_func.last_results
    for i, row in enumerate(rows):
        ids, mask, result = out["completion_ids"][i], out["env_mask"][i], results[i]
        assert len(ids) == len(mask)
        model_part = tok.decode([t for t, m in zip(ids, mask) if m])
        env_part = tok.decode([t for t, m in zip(ids, mask) if not m])
        texts = result.completions()
        assert model_part == "<|im_end|>".join(texts) + "<|im_end|>"  # every model token, nothing else
        # the masked part is exactly the observations the episode produced, in the template's framing
        replay = GameEpisode(config_from_prompt(row["prompt"]))
        replay.start()
        observations = []
        for text in texts:
            step = replay.step(text)
            if not step.done:
                observations.append(step.observation)
        assert env_part == "".join(f"\n<|im_start|>user\n{o}<|im_end|>\n<|im_start|>assistant\n" for o in observations)
        assert replay.result().to_dict() == result.to_dict() == replay_episode(config_from_prompt(row["prompt"]),
                                                                                texts).to_dict()
        expected = [("illegal", 2, 3), ("loss", 2, 2)][i]
        assert (result.outcome, result.legal_moves, result.model_turns) == expected
        assert out["episode_reward"][i] == 0.0 and out["episode_outcome"][i] == expected[0]
    assert reward(episode_reward=out["episode_reward"]) == [0.0, 0.0]


@pytest.mark.slow
def test_two_step_game_run_on_smollm2_logs_win_draw_loss(smollm2_dir, tmp_path):
    flags = ["train", "grpo", "--env", "openspiel", "--env-config", json.dumps(GAME["env_config"]), "--episode", "game",
             "--opponent", "random", "--max-turns", "5", "--model", str(smollm2_dir), "--output-dir", str(tmp_path),
             "--run-name", "g"]
    for key in ("train_size", "num_generations", "batch_size", "max_new_tokens", "lora_rank", "lora_alpha",
                "max_steps", "cpu_threads", "zero_reward_patience", "seed"):
        flags += ["--" + key.replace("_", "-"), str(GAME[key])]
    assert main([*flags, "--no-eval", "--no-save-final-model"]) == 0
    steps = [json.loads(line) for line in (tmp_path / "g" / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if "reward" in s]
    assert [s["step"] for s in steps] == [1, 2]
    for s in steps:
        rates = [s[f"episode/{o}_rate"] for o in ("win", "draw", "loss", "illegal", "max_turns")]
        assert sum(rates) == pytest.approx(1.0)
        assert s["reward"] == pytest.approx(s["episode/reward"])  # the GRPO reward is the episode reward
        assert s["episode/model_turns"] >= 1
    settings = json.loads((tmp_path / "g" / "settings.json").read_text())
    assert settings["episode"] == "game" and settings["opponent"] == "random" and settings["max_turns"] == 5


def test_distinct_rollout_seeds_vary_the_opponent_within_a_group_and_replay_exactly():
    from veritas_rl.backends.trl.episodes import GameRollout, rollout_config

    config = EpisodeConfig("tic_tac_toe", 0, 12345, opponent="random")
    assert rollout_config(config, 0, "distinct") == config == rollout_config(config, 3, "shared")
    seeds = [rollout_config(config, k, "distinct").seed for k in range(8)]
    assert len(set(seeds)) == 8 and seeds == [rollout_config(config, k, "distinct").seed for k in range(8)]
    assert all(rollout_config(config, k, "distinct").opponent == "random" for k in range(8))
    with pytest.raises(ValueError, match="rollout_seeds='nope'.*shared, distinct"):
        GameRollout("nope")
    with pytest.raises(ValueError, match="rollout_seeds"):
        build_settings(None, {**GAME, "rollout_seeds": "nope"})
    # the same scripted replies against the k-th seed's random opponent: different games, each reproducible
    replies = ["<answer>4</answer>", "<answer>0</answer>", "<answer>8</answer>", "<answer>2</answer>",
               "<answer>6</answer>"]
    games = []
    for k in range(8):
        episode = GameEpisode(rollout_config(config, k, "distinct"))
        episode.start()
        texts = []
        for reply in replies:
            if episode.done:
                break
            episode.step(reply)
            texts.append(reply)
        result = episode.result()
        assert replay_episode(rollout_config(config, k, "distinct"), texts).to_dict() == result.to_dict()
        games.append(tuple(m.action for m in result.moves))
    assert len(set(games)) > 1  # the opponent's moves differ between the rollouts of one game


@pytest.mark.slow
def test_game_rollout_plays_the_kth_copy_of_a_game_with_the_kth_seed(smollm2_dir, tmp_path, monkeypatch):
    from veritas_rl.backends.trl.runner import build_trainer
    from veritas_rl.models import load_causal_lm

    s = build_settings(None, {**GAME, "opponent": "random", "rollout_seeds": "distinct", "model": str(smollm2_dir),
                              "output_dir": str(tmp_path)})
    model, tok = load_causal_lm(str(smollm2_dir), "cpu")
    trainer, _ = build_trainer(s, make("openspiel", cases=["tic_tac_toe"]), model, tok, [], tmp_path, "fp32")
    assert trainer.rollout_func.rollout_seeds == "distinct"
    rows = list(trainer.train_dataset)[:2]
    prompts = [rows[0]["prompt"]] * 3 + [rows[1]["prompt"]] * 2  # TRL's repeats of each game
    monkeypatch.setattr(trainer, "_generate_single_turn", _scripted_generator(tok, ["<answer>99</answer>"] * 5))
    trainer.rollout_func(prompts, trainer)
    base = [config_from_prompt(r["prompt"]) for r in rows]
    from veritas_rl.backends.trl.episodes import rollout_config

    assert trainer.rollout_func.last_configs == [rollout_config(base[0], k, "distinct") for k in range(3)] + [
        rollout_config(base[1], k, "distinct") for k in range(2)]
    assert [r.outcome for r in trainer.rollout_func.last_results] == ["illegal"] * 5

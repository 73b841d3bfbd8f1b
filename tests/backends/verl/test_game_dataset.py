"""DynamicEnvDataset with data.custom_cls.config.episode=game, built by verl 0.9.1's own create_rl_dataset."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.verl_utils import build_verl_dataset, compose_ppo_config, plugin_overrides, verl_collate
from veritas_rl.backends.verl.episodes import AGENT_NAME, episode_config_from
from veritas_rl.backends.verl.plugins import parse_settings
from veritas_rl.games.episode import GameEpisode

GAME = [
    "+data.custom_cls.config.episode=game",
    "+data.custom_cls.config.opponent=mcts:3",
    "+data.custom_cls.config.max_turns=7",
    "+data.custom_cls.config.group_by=case",
    "+data.custom_cls.config.adapter_config.game_types=[tic_tac_toe,kuhn_poker]",
    "+data.custom_cls.config.adapter_config.num_tasks_per_case=10",
    "+data.custom_cls.config.val_size=4",
]


@pytest.fixture(scope="module")
def datasets(smollm2_tokenizer):
    cfg = compose_ppo_config(plugin_overrides(env="openspiel", extra=GAME))
    return build_verl_dataset(cfg, "train", smollm2_tokenizer), build_verl_dataset(cfg, "val", smollm2_tokenizer)


def test_every_item_is_one_game_for_the_game_agent_loop(datasets):
    train, val = datasets
    assert type(train).__name__ == "DynamicEnvDataset" and len(train) == 16 and len(val) == 4
    for item in [*(train[i] for i in range(len(train))), *(val[i] for i in range(len(val)))]:
        assert item["agent_name"] == AGENT_NAME
        config = episode_config_from(item["extra_info"])
        assert (config.opponent, config.max_turns, config.legal_move_bonus) == ("mcts:3", 7, 0.0)
        assert config.seed == item["extra_info"]["task_id"]
        assert item["data_source"] == f"openspiel/{config.case}"
        assert item["raw_prompt"] == GameEpisode(config).start()  # the model's first turn, opponent moves applied
    batch = verl_collate([train[0], train[1]])  # verl's collate keeps agent_name for the agent loop worker
    assert list(batch["agent_name"]) == [AGENT_NAME, AGENT_NAME]


def test_seats_are_balanced_within_each_case(datasets):
    train, val = datasets
    seats = Counter()
    for ds in (train, val):
        for i in range(len(ds)):
            config = episode_config_from(ds[i]["extra_info"])
            seats[config.case, config.seat] += 1
    assert seats == {("tic_tac_toe", 0): 5, ("tic_tac_toe", 1): 5, ("kuhn_poker", 0): 5, ("kuhn_poker", 1): 5}


def test_move_mode_items_are_unchanged(smollm2_tokenizer):
    cfg = compose_ppo_config(plugin_overrides(env="openspiel", extra=GAME[4:]))
    item = build_verl_dataset(cfg, "train", smollm2_tokenizer)[0]
    assert "agent_name" not in item and "episode" not in item["extra_info"]
    assert json.loads(item["reward_model"]["ground_truth"])  # the legal moves of one position


@pytest.mark.parametrize("raw, message", [
    ({"env": "openspiel", "episode": "games"}, r"episode='games' is not valid; choose from: move, game"),
    ({"env": "openspiel", "episode": "game", "opponent": "mcts"}, r"opponent='mcts' needs a simulation count"),
    ({"env": "openspiel", "episode": "game", "opponent": "alphazero"}, r"opponent='alphazero'.*random \| first_legal"),
    ({"env": "openspiel", "episode": "game", "opponent": "policy:/ckpt"}, r"not supported in verl.*random, first_legal, mcts:N"),
    ({"env": "openspiel", "episode": "game", "max_turns": 0}, r"max_turns=0 must be an integer >= 1"),
    ({"env": "openspiel", "episode": "game", "max_turns": "5"}, r"max_turns='5'"),
    ({"env": "openspiel", "episode": "game", "legal_move_bonus": -1}, r"legal_move_bonus=-1"),
    ({"env": "lgc-v2", "episode": "game"}, r"episode=game plays whole games of env 'openspiel'; env is 'lgc-v2'"),
    ({"env": "openspiel", "opponent": "random"}, r"opponent is read only with data.custom_cls.config.episode=game"),
    ({"env": "openspiel", "episodes": "game"}, r"unknown key.*'episodes'.*valid keys:.*episode"),
])
def test_bad_episode_settings_fail_at_start_naming_the_key(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_settings(raw)

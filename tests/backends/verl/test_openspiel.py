"""Every ``openspiel`` config key, and ``GAME_TYPES``, reach the env through verl's own config composition,
dataset creation (``create_rl_dataset`` -> ``OpenSpielDataset``) and reward function (``compute_score``)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.verl_utils import build_verl_dataset, compose_ppo_config, load_verl_reward_fn, plugin_overrides
from veritas_rl.envs import make
from veritas_rl.envs.openspiel import GAME_TYPES_ENV, OpenSpielConfig

PREFIX = "+data.custom_cls.config.adapter_config"

#: one override per config key (game_list/game_configs are exclusive with cases: see the next constant)
OVERRIDES = {
    "cases": f'{PREFIX}.cases=[tic_tac_toe,"hex(board_size=5)","breakthrough(rows=6,columns=6)",kuhn_poker]',
    "game_types": f'{PREFIX}.game_types=[tic_tac_toe,"hex(board_size=5)",kuhn_poker]',
    "num_tasks_per_case": f"{PREFIX}.num_tasks_per_case=7",
    "max_random_steps": f"{PREFIX}.max_random_steps=3",
    "seed": f"{PREFIX}.seed=9",
    "reward_mode": f"{PREFIX}.reward_mode=outcome",
    "opponent": f"{PREFIX}.opponent=mcts",
    "continuation": f"{PREFIX}.continuation=opponent",
    "mcts_simulations": f"{PREFIX}.mcts_simulations=12",
    "uct_c": f"{PREFIX}.uct_c=1.5",
    "num_playouts": f"{PREFIX}.num_playouts=3",
}
EXPECTED = {
    "cases": ("tic_tac_toe", "hex(board_size=5)", "breakthrough(rows=6,columns=6)", "kuhn_poker"),
    "game_types": ("tic_tac_toe", "hex(board_size=5)", "kuhn_poker"),
    "num_tasks_per_case": 7,
    "max_random_steps": 3,
    "seed": 9,
    "reward_mode": "outcome",
    "opponent": "mcts",
    "continuation": "opponent",
    "mcts_simulations": 12,
    "uct_c": 1.5,
    "num_playouts": 3,
}
GAME_LIST_OVERRIDES = {
    "game_list": f"{PREFIX}.game_list=[hex,tic_tac_toe]",
    "game_configs": f"{PREFIX}.game_configs={{hex:[{{board_size:5}},{{board_size:7}}]}}",
}


def _dataset(extra, tokenizer, split="train"):
    cfg = compose_ppo_config(plugin_overrides(dataset_class="OpenSpielDataset", extra=extra))
    return cfg, build_verl_dataset(cfg, split, tokenizer)


@pytest.fixture(scope="module")
def full(smollm2_tokenizer):
    return _dataset(list(OVERRIDES.values()) + ["+data.custom_cls.config.val_size=4"], smollm2_tokenizer)


def test_the_test_covers_every_config_key():
    keys = {f.name for f in dataclasses.fields(OpenSpielConfig)}
    assert keys == set(OVERRIDES) | set(GAME_LIST_OVERRIDES)


def test_every_key_reaches_the_env(full):
    cfg, ds = full
    assert ds.env_name == "openspiel"
    for key, value in EXPECTED.items():
        assert getattr(ds.env.config, key) == value, key
    assert ds.env.cases == EXPECTED["game_types"]  # the filter dropped breakthrough
    assert ds.num_env_tasks == 3 * 7 and len(ds) == 3 * 7 - 4
    # items are the tasks of an env built directly with the same config
    direct = make("openspiel", **{k: list(v) if isinstance(v, tuple) else v for k, v in EXPECTED.items()})
    for i in range(len(ds)):
        item = ds[i]
        task = direct.task(item["extra_info"]["task_id"])
        assert item["raw_prompt"] == task.prompt and item["reward_model"]["ground_truth"] == task.ground_truth
        assert json.loads(item["extra_info"]["task"])["extra"] == task.extra
        assert len(task.extra["history"]) <= 3 + 2 * (task.extra["case"] == "kuhn_poker")  # + 2 card deals


def test_outcome_reward_through_verls_reward_function(full):
    cfg, ds = full
    reward_fn = load_verl_reward_fn(cfg)
    direct = make("openspiel", **{k: list(v) if isinstance(v, tuple) else v for k, v in EXPECTED.items()})
    legal_only = make("openspiel", cases=list(EXPECTED["cases"]), game_types=[])
    seen_fraction = False
    for i in range(len(ds)):
        item = ds[i]
        task = direct.task(item["extra_info"]["task_id"])
        for action in list(json.loads(task.ground_truth))[:3]:
            completion = f"<answer>{action}</answer>"
            out = reward_fn(data_source=item["data_source"], solution_str=completion,
                            ground_truth=item["reward_model"]["ground_truth"], extra_info=item["extra_info"])
            expected = direct.score(task, completion)
            assert out["score"] == expected.value
            assert legal_only.score(task, completion).value == 1.0
            seen_fraction |= 0.0 < out["score"] < 1.0
        bad = reward_fn(data_source=item["data_source"], solution_str="<answer>nope</answer>",
                        ground_truth=item["reward_model"]["ground_truth"], extra_info=item["extra_info"])
        assert bad["score"] == 0.0 and "not a legal action" in bad["reason"]
    assert seen_fraction  # outcome (MCTS playouts), not legal-move, scoring reached the reward side


def test_game_list_and_game_configs_reach_the_env(smollm2_tokenizer, monkeypatch):
    monkeypatch.delenv(GAME_TYPES_ENV, raising=False)
    _, ds = _dataset(list(GAME_LIST_OVERRIDES.values()) + [f"{PREFIX}.num_tasks_per_case=5"], smollm2_tokenizer)
    assert ds.env.config.game_list == ("hex", "tic_tac_toe")
    assert ds.env.config.game_configs == {"hex": [{"board_size": 5}, {"board_size": 7}]}
    assert ds.env.cases == ("hex(board_size=5)", "hex(board_size=7)", "tic_tac_toe")
    assert {json.loads(ds[i]["extra_info"]["task"])["extra"]["case"] for i in range(len(ds))} <= set(ds.env.cases)


def test_game_types_environment_variable_and_precedence(smollm2_tokenizer, monkeypatch):
    monkeypatch.setenv(GAME_TYPES_ENV, "hex,kuhn_poker")
    _, ds = _dataset([f"{PREFIX}.num_tasks_per_case=4"], smollm2_tokenizer)
    assert ds.env.cases == ("hex(board_size=5)", "hex(board_size=7)", "hex(board_size=9)", "kuhn_poker")
    cases = {json.loads(ds[i]["extra_info"]["task"])["extra"]["case"] for i in range(len(ds))}
    assert cases <= set(ds.env.cases) and "kuhn_poker" in cases
    # an explicit adapter_config.game_types wins over the environment variable
    _, ds = _dataset([f"{PREFIX}.num_tasks_per_case=4", f"{PREFIX}.game_types=[connect_four]"], smollm2_tokenizer)
    assert ds.env.cases == ("connect_four",)
    # a GAME_TYPES value that matches no case fails when verl builds the dataset, naming the variable
    monkeypatch.setenv(GAME_TYPES_ENV, "no_such_game")
    with pytest.raises(ValueError, match=r"\$GAME_TYPES: 'no_such_game' match"):
        _dataset([], smollm2_tokenizer)


def test_bad_config_fails_at_dataset_creation(smollm2_tokenizer, monkeypatch):
    monkeypatch.delenv(GAME_TYPES_ENV, raising=False)
    with pytest.raises(ValueError, match=r"opponent='alpha' is not valid; choose from: random, mcts"):
        _dataset([f"{PREFIX}.opponent=alpha"], smollm2_tokenizer)
    with pytest.raises(ValueError, match=r"case 'hex\(size=5\)': OpenSpiel cannot load it: Unknown parameter"):
        _dataset([f'{PREFIX}.cases=["hex(size=5)"]'], smollm2_tokenizer)


def test_case_strings_cut_at_their_commas_are_rejoined(smollm2_tokenizer, monkeypatch):
    # train/scripts' vr_hydra_list splits GAME_TYPES on every comma: the env rejoins inside parentheses
    monkeypatch.delenv(GAME_TYPES_ENV, raising=False)
    _, ds = _dataset([f"{PREFIX}.game_types=['breakthrough(rows=6','columns=6)','hex']"], smollm2_tokenizer)
    assert ds.env.config.game_types == ("breakthrough(rows=6,columns=6)", "hex")
    assert ds.env.cases == ("hex(board_size=5)", "hex(board_size=7)", "hex(board_size=9)",
                            "breakthrough(rows=6,columns=6)")

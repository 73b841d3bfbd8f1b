"""DynamicEnvDataset through verl 0.9.1's own code: Hydra composition, create_rl_dataset, collate_fn."""

from __future__ import annotations

import json

import pytest

from tests.verl_utils import (
    DATASET_MANAGER,
    build_verl_dataset,
    compose_ppo_config,
    compose_ppo_config_cli,
    plugin_overrides,
    verl_collate,
)
from veritas_rl.envs import make
from veritas_rl.backends.verl.plugins import (
    DEFAULT_TRAIN_SIZE,
    DEFAULT_VAL_SIZE,
    DynamicEnvDataset,
    IndexPermutation,
    LGCV2DynamicDataset,
    OpenSpielDataset,
)

TYPE_STRIDE = 100_000_000  # lgc-v2: task_id = type_id * 100_000_000 + seed
GAME_OF_24, SUDOKU = 1, 7

LGC_OVERRIDES = plugin_overrides(
    env="lgc-v2",
    extra=[
        "+data.custom_cls.config.task_types=[game_of_24,sudoku]",
        "+data.custom_cls.config.adapter_config.game24_max_value=9",
        "+data.custom_cls.config.adapter_config.sudoku_max_empty=35",
        "+data.custom_cls.config.seed=7",
        "+data.custom_cls.config.train_size=1000",
        "+data.custom_cls.config.val_size=16",
    ],
)


def _comparable(item: dict) -> dict:
    """An item without its tensor, for equality checks."""
    return {k: v for k, v in item.items() if k != "dummy_tensor"}


@pytest.fixture(scope="module")
def lgc_cfg():
    return compose_ppo_config(LGC_OVERRIDES)


@pytest.fixture(scope="module")
def lgc_train(lgc_cfg, smollm2_tokenizer):
    return build_verl_dataset(lgc_cfg, "train", smollm2_tokenizer)


@pytest.fixture(scope="module")
def lgc_val(lgc_cfg, smollm2_tokenizer):
    return build_verl_dataset(lgc_cfg, "val", smollm2_tokenizer)


# -- the overrides reach the dataset ---------------------------------------------------------


def test_composed_config_holds_the_plugin_settings(lgc_cfg):
    from omegaconf import OmegaConf

    assert lgc_cfg.data.custom_cls.path == DATASET_MANAGER
    assert lgc_cfg.data.custom_cls.name == "DynamicEnvDataset"
    assert OmegaConf.to_container(lgc_cfg.data.custom_cls.config) == {
        "env": "lgc-v2",
        "task_types": ["game_of_24", "sudoku"],
        "adapter_config": {"game24_max_value": 9, "sudoku_max_empty": 35},
        "seed": 7,
        "train_size": 1000,
        "val_size": 16,
    }


def test_every_override_reaches_the_dataset(lgc_train, lgc_val):
    for ds, split, length in ((lgc_train, "train", 1000), (lgc_val, "val", 16)):
        assert type(ds) is DynamicEnvDataset
        assert ds.split_name == split and len(ds) == length
        assert ds.env_name == "lgc-v2"
        assert ds.settings.seed == 7
        # task_types and the adapter_config keys reached the env the dataset serves from
        assert ds.env.config.task_types == ("game_of_24", "sudoku")
        assert ds.env.config.game24_max_value == 9
        assert ds.env.config.sudoku_max_empty == 35
    types = {lgc_train.task_id(i) // TYPE_STRIDE for i in range(200)}
    assert types == {GAME_OF_24, SUDOKU}


def test_items_are_the_tasks_of_the_configured_env(lgc_val):
    reference = make("lgc-v2", task_types=["game_of_24", "sudoku"], game24_max_value=9, sudoku_max_empty=35)
    default = make("lgc-v2", task_types=["game_of_24", "sudoku"])
    differs = 0
    for i in range(len(lgc_val)):
        item = lgc_val[i]
        task = reference.task(item["extra_info"]["task_id"])
        assert item["raw_prompt"] == task.prompt
        assert item["reward_model"]["ground_truth"] == task.ground_truth
        assert json.loads(item["extra_info"]["task"]) == json.loads(json.dumps(task.to_dict()))
        differs += default.task(task.task_id).to_dict() != task.to_dict()
    # the difficulty knobs changed the tasks themselves, not only the env's config object
    assert differs > 0


def test_seed_changes_the_stream(lgc_cfg, smollm2_tokenizer):
    other = compose_ppo_config(LGC_OVERRIDES + ["++data.custom_cls.config.seed=8"])
    a = build_verl_dataset(lgc_cfg, "train", smollm2_tokenizer)
    b = build_verl_dataset(other, "train", smollm2_tokenizer)
    assert b.settings.seed == 8
    ids_a = [a.task_id(i) for i in range(50)]
    ids_b = [b.task_id(i) for i in range(50)]
    assert ids_a != ids_b


def test_main_ppo_cfg_job_builds_the_same_dataset(lgc_cfg, lgc_val, smollm2_tokenizer):
    from omegaconf import OmegaConf

    cli_cfg = compose_ppo_config_cli(LGC_OVERRIDES)
    assert OmegaConf.to_container(cli_cfg.data.custom_cls) == OmegaConf.to_container(lgc_cfg.data.custom_cls)
    assert list(cli_cfg.data.train_files) == ["train"] and list(cli_cfg.data.val_files) == ["val"]
    assert cli_cfg.reward.custom_reward_function.name == "compute_score"
    val = build_verl_dataset(cli_cfg, "val", smollm2_tokenizer)
    assert [_comparable(val[i]) for i in range(len(val))] == [_comparable(lgc_val[i]) for i in range(len(lgc_val))]


def test_task_types_as_a_comma_string_and_pkg_path(smollm2_tokenizer):
    cfg = compose_ppo_config(
        plugin_overrides(env="lgc_v2", pkg=True, extra=["+data.custom_cls.config.task_types=operation"])
    )
    assert cfg.data.custom_cls.path == "pkg://veritas_rl.backends.verl"
    ds = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    assert type(ds) is DynamicEnvDataset
    assert ds.env_name == "lgc-v2"  # alias resolved
    assert ds.env.config.task_types == ("operation",)
    assert {ds.task_id(i) // TYPE_STRIDE for i in range(20)} == {2}


def test_defaults(smollm2_tokenizer, caplog):
    cfg = compose_ppo_config(plugin_overrides())  # no data.custom_cls.config at all
    with caplog.at_level("WARNING", logger="veritas_rl.backends.verl.plugins"):
        train = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    val = build_verl_dataset(cfg, "val", smollm2_tokenizer)
    assert train.env_name == "lgc-v2" and train.settings.seed == 0
    assert len(train) == DEFAULT_TRAIN_SIZE and len(val) == DEFAULT_VAL_SIZE
    assert train[len(train) - 1]["extra_info"]["split"] == "train"
    # verl's default data.shuffle=True on a huge split: the dataset says what it costs
    assert any("data.shuffle=False" in r.getMessage() for r in caplog.records)
    caplog.clear()
    quiet = compose_ppo_config(plugin_overrides(extra=["data.shuffle=False"]))
    with caplog.at_level("WARNING", logger="veritas_rl.backends.verl.plugins"):
        build_verl_dataset(quiet, "train", smollm2_tokenizer)
    assert not any("data.shuffle" in r.getMessage() for r in caplog.records)


def test_convenience_classes(smollm2_tokenizer, monkeypatch):
    monkeypatch.delenv("GAME_TYPES", raising=False)
    cfg = compose_ppo_config(
        plugin_overrides(
            dataset_class="OpenSpielDataset",
            extra=[
                '+data.custom_cls.config.adapter_config.cases=[tic_tac_toe,"hex(board_size=5)"]',
                "+data.custom_cls.config.adapter_config.num_tasks_per_case=6",
                "+data.custom_cls.config.adapter_config.reward_mode=outcome",
            ],
        )
    )
    ds = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    assert type(ds) is OpenSpielDataset and ds.env_name == "openspiel"
    assert ds.num_env_tasks == 12
    assert ds.env.config.cases == ("tic_tac_toe", "hex(board_size=5)")
    assert ds.env.config.reward_mode == "outcome"
    assert ds[0]["data_source"] == "openspiel"
    lgc = build_verl_dataset(compose_ppo_config(plugin_overrides(dataset_class="LGCV2DynamicDataset")), "val",
                             smollm2_tokenizer)
    assert type(lgc) is LGCV2DynamicDataset and lgc.env_name == "lgc-v2"


def test_max_samples_is_honoured(smollm2_tokenizer):
    cfg = compose_ppo_config(LGC_OVERRIDES + ["data.train_max_samples=5", "data.val_max_samples=3"])
    train = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    val = build_verl_dataset(cfg, "val", smollm2_tokenizer)
    assert (len(train), len(val)) == (5, 3)
    with pytest.raises(IndexError):
        train[5]


def test_group_by_splits_data_source_per_task_type(smollm2_tokenizer):
    """verl reports validation metrics per data_source: group_by gives one group per lgc-v2 task type."""
    from veritas_rl.backends.verl.plugins import compute_score

    cfg = compose_ppo_config(LGC_OVERRIDES + ["+data.custom_cls.config.group_by=task_type"])
    val = build_verl_dataset(cfg, "val", smollm2_tokenizer)
    sources = {val[i]["data_source"] for i in range(len(val))}
    assert sources == {"lgc-v2/game_of_24", "lgc-v2/sudoku"}
    item = val[0]
    assert item["extra_info"]["env"] == "lgc-v2"
    assert compute_score(item["data_source"], "nothing", item["reward_model"]["ground_truth"],
                         item["extra_info"])["score"] == 0.0


# -- what verl's trainer and agent loop read ---------------------------------------------------


def test_item_has_what_rlhf_dataset_returns(lgc_val, smollm2_tokenizer, tmp_path):
    """Our item carries every key verl's own RLHFDataset returns for a parquet row of the same task."""
    import pandas as pd

    ours = lgc_val[0]
    row = {
        "data_source": ours["data_source"],
        "prompt": ours["raw_prompt"],
        "reward_model": ours["reward_model"],
        "extra_info": ours["extra_info"],
    }
    path = tmp_path / "one.parquet"
    pd.DataFrame([row]).to_parquet(path)
    cfg = compose_ppo_config([f"data.train_files=[{path}]", f"data.val_files=[{path}]"])
    theirs = build_verl_dataset(cfg, "train", smollm2_tokenizer)[0]
    assert set(theirs) - {"prompt"} <= set(ours)
    assert ours["raw_prompt"] == list(theirs["raw_prompt"])
    assert ours["index"] == theirs["index"] == ours["extra_info"]["index"]
    assert ours["dummy_tensor"].dtype == theirs["dummy_tensor"].dtype
    assert ours["dummy_tensor"].shape == theirs["dummy_tensor"].shape


def test_collate_and_tensordict(lgc_val):
    from verl.utils import tensordict_utils as tu

    batch = verl_collate([lgc_val[i] for i in range(4)])
    assert tuple(batch["dummy_tensor"].shape) == (4, 1)
    for key in ("raw_prompt", "data_source", "reward_model", "extra_info", "index", "tools_kwargs"):
        assert batch[key].dtype == object and batch[key].shape == (4,)
    assert list(batch["index"]) == [0, 1, 2, 3]
    assert all(ds == "lgc-v2" for ds in batch["data_source"])
    # what the v1 trainer does with a dataloader batch before handing it to the agent loop
    td = tu.get_tensordict(batch)
    assert td.batch_size[0] == 4


# -- determinism and the split -----------------------------------------------------------------


def test_train_and_val_are_disjoint(lgc_train, lgc_val):
    train_ids = [lgc_train.task_id(i) for i in range(len(lgc_train))]
    val_ids = [lgc_val.task_id(i) for i in range(len(lgc_val))]
    assert len(set(train_ids)) == len(train_ids) and len(set(val_ids)) == len(val_ids)
    assert not set(train_ids) & set(val_ids)


def test_small_env_split_covers_every_task_once(smollm2_tokenizer, monkeypatch):
    monkeypatch.delenv("GAME_TYPES", raising=False)
    extra = [
        "+data.custom_cls.config.adapter_config.cases=[tic_tac_toe]",
        "+data.custom_cls.config.adapter_config.num_tasks_per_case=40",
    ]
    cfg = compose_ppo_config(plugin_overrides(env="openspiel", extra=extra))
    train = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    val = build_verl_dataset(cfg, "val", smollm2_tokenizer)
    assert len(val) == 20 and len(train) == 20  # default val size capped at half the env
    ids = [val.task_id(i) for i in range(20)] + [train.task_id(i) for i in range(20)]
    assert sorted(ids) == sorted(train.env.task_id_at(i) for i in range(40))


def test_two_instances_give_the_same_items(lgc_cfg, lgc_train, smollm2_tokenizer):
    again = build_verl_dataset(lgc_cfg, "train", smollm2_tokenizer)
    for i in (0, 1, 17, 999):
        assert _comparable(again[i]) == _comparable(lgc_train[i])
    assert _comparable(lgc_train[3]) == _comparable(lgc_train[3])  # no hidden state between calls


def test_same_items_in_another_process(lgc_cfg, lgc_train):
    """Another interpreter (another hash seed, as on another Ray node) maps indices to the same tasks."""
    import os
    import subprocess
    import sys

    from omegaconf import OmegaConf

    data = json.dumps(OmegaConf.to_container(lgc_cfg.data.custom_cls, resolve=True))
    code = (
        "import json, sys; from veritas_rl.backends.verl.plugins import DynamicEnvDataset; "
        "ds = DynamicEnvDataset(['train'], None, None, {'custom_cls': json.loads(sys.argv[1])}); "
        "print(json.dumps([ds[i]['extra_info'] for i in (0, 5, 999)]))"
    )
    out = subprocess.run([sys.executable, "-c", code, data], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "99"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [lgc_train[i]["extra_info"] for i in (0, 5, 999)]


def test_pickled_dataset_gives_the_same_items(lgc_val):
    """Spawned dataloader workers receive a pickled copy; it rebuilds its env and serves the same items."""
    import pickle

    clone = pickle.loads(pickle.dumps(lgc_val))
    assert len(clone) == len(lgc_val)
    assert [_comparable(clone[i]) for i in range(4)] == [_comparable(lgc_val[i]) for i in range(4)]


def test_forked_dataloader_workers_see_the_same_stream(lgc_val):
    from torch.utils.data import DataLoader

    loader = DataLoader(lgc_val, batch_size=4, num_workers=2, collate_fn=verl_collate,
                        multiprocessing_context="fork")
    seen = []
    for batch in loader:
        for j, index in enumerate(batch["index"]):
            seen.append(int(index))
            assert batch["extra_info"][j] == lgc_val[int(index)]["extra_info"]
    assert sorted(seen) == list(range(len(lgc_val)))  # every item once: no duplicates across workers


def test_stateful_dataloader_resume_continues_the_stream(smollm2_tokenizer):
    """verl's sampler + StatefulDataLoader: a resumed loader yields what the uninterrupted one would."""
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.trainer.ppo.utils import create_rl_sampler

    cfg = compose_ppo_config(LGC_OVERRIDES + ["data.seed=3", "++data.custom_cls.config.train_size=64"])
    ds = build_verl_dataset(cfg, "train", smollm2_tokenizer)

    def loader():
        return StatefulDataLoader(ds, batch_size=8, drop_last=True, collate_fn=verl_collate,
                                  sampler=create_rl_sampler(cfg.data, ds), num_workers=0)

    full = [list(b["extra_info"]) for b in loader()]
    first = loader()
    it = iter(first)
    head = [list(next(it)["extra_info"]) for _ in range(3)]
    state = first.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    tail = [list(b["extra_info"]) for b in resumed]
    assert head + tail == full
    assert len(full) == 8


# -- bad configuration fails at construction ---------------------------------------------------


@pytest.mark.parametrize(
    "override, match",
    [
        ("+data.custom_cls.config.bogus=1", r"unknown key\(s\) in data.custom_cls.config: 'bogus'; valid keys: "
                                            r"adapter_config, curriculum, env, episode, group_by, legal_move_bonus, "
                                            r"max_turns, opponent, seed, task_types, train_size, val_size"),
        ("+data.custom_cls.config.env=nope", r"unknown env 'nope'.*lgc-v2"),
        ("+data.custom_cls.config.adapter_config.no_such_knob=3", r"'no_such_knob'.*valid keys"),
        ("+data.custom_cls.config.task_types=[sudoku,chess]", r"task_types.*'chess'.*choose from"),
        ("+data.custom_cls.config.train_size=many", r"train_size: expected an integer"),
        ("+data.custom_cls.config.val_size=0", r"val_size=0 must be >= 1"),
        ("+data.custom_cls.config.group_by=colour", r"group_by='colour' is not a field.*choose from: .*task_type"),
    ],
)
def test_bad_config_names_the_key(override, match, smollm2_tokenizer):
    cfg = compose_ppo_config(plugin_overrides(extra=[override]))
    with pytest.raises(ValueError, match=match):
        build_verl_dataset(cfg, "train", smollm2_tokenizer)


def test_task_types_conflict_is_an_error(smollm2_tokenizer):
    cfg = compose_ppo_config(plugin_overrides(extra=[
        "+data.custom_cls.config.task_types=[sudoku]",
        "+data.custom_cls.config.adapter_config.task_types=[operation]",
    ]))
    with pytest.raises(ValueError, match=r"task_types=\['sudoku'\] conflicts"):
        build_verl_dataset(cfg, "val", smollm2_tokenizer)


@pytest.mark.parametrize("files", ["data.train_files=[/data/gsm8k/train.parquet]", "data.train_files=[train,val]"])
def test_data_files_must_name_the_split(files, smollm2_tokenizer):
    cfg = compose_ppo_config(plugin_overrides(extra=[files]))
    with pytest.raises(ValueError, match=r"data.train_files=\[train\] and data.val_files=\[val\]"):
        build_verl_dataset(cfg, "train", smollm2_tokenizer)


def test_split_as_a_plain_string(lgc_cfg, smollm2_tokenizer):
    ds = DynamicEnvDataset("val", smollm2_tokenizer, None, lgc_cfg.data)
    assert ds.split_name == "val" and len(ds) == 16


def test_val_size_larger_than_the_env_is_an_error(smollm2_tokenizer, monkeypatch):
    monkeypatch.delenv("GAME_TYPES", raising=False)
    cfg = compose_ppo_config(plugin_overrides(env="openspiel", extra=[
        "+data.custom_cls.config.adapter_config.cases=[tic_tac_toe]",
        "+data.custom_cls.config.adapter_config.num_tasks_per_case=10",
        "+data.custom_cls.config.val_size=10",
    ]))
    with pytest.raises(ValueError, match=r"val_size=10 must be smaller than the 10 tasks"):
        build_verl_dataset(cfg, "val", smollm2_tokenizer)


# -- the index bijection -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000, 4099])
def test_index_permutation_is_a_bijection(n):
    perm = IndexPermutation(n, seed=5)
    assert sorted(perm(i) for i in range(n)) == list(range(n))


def test_index_permutation_on_a_huge_space():
    n = 8 * TYPE_STRIDE
    a, b, c = IndexPermutation(n, 0), IndexPermutation(n, 0), IndexPermutation(n, 1)
    first = [a(i) for i in range(5000)]
    assert first == [b(i) for i in range(5000)]  # same seed, same order
    assert first != [c(i) for i in range(5000)]
    assert len(set(first)) == 5000 and all(0 <= x < n for x in first)
    # spread over the whole space, not clustered near the start
    assert max(first) > 0.9 * n and min(first) < 0.1 * n
    with pytest.raises(IndexError):
        a(n)

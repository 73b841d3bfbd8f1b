"""Env tasks → parquet, proven loadable by verl 0.9.1's own dataset classes and scored by compute_score."""

from __future__ import annotations

import json

import pytest

from tests.envs import env_configs
from veritas_rl.data import generate
from veritas_rl.data.parquet import read_parquet_rows
from veritas_rl.envs import Task, make, names

#: envs whose tasks are cheap to build and score on CPU (those registered at collection time)
RL_ENVS = [n for n in ("lgc-v2", "math", "answer-tag", "reasoning-gym", "openspiel") if n in names()]
GARBAGE = "lorem ipsum dolor sit amet ### no answer here"


def _gen(args):
    assert generate.main([*map(str, args), "--no-progress"]) == 0


def _compose_ppo(train, val):
    from tests.verl_utils import PKG_PATH, compose_ppo_config

    return compose_ppo_config([
        f"data.train_files=[{train}]",
        f"data.val_files=[{val}]",
        "data.max_prompt_length=2048",
        f"reward.custom_reward_function.path={PKG_PATH}",
        "reward.custom_reward_function.name=compute_score",
    ])


@pytest.fixture(scope="module")
def lgc_rl(tmp_path_factory):
    out = tmp_path_factory.mktemp("lgc_rl")
    _gen(["--env", "lgc-v2", "--num-samples", 40, "--val-ratio", 0.1, "--seed", 5, "--output-dir", out])
    return out / "lgc-v2_rl_train.parquet", out / "lgc-v2_rl_val.parquet"


def test_rl_rows_have_verls_schema(lgc_rl):
    train, val = read_parquet_rows(lgc_rl[0]), read_parquet_rows(lgc_rl[1])
    assert (len(train), len(val)) == (36, 4)
    env = make("lgc-v2")
    for split, rows in (("train", train), ("val", val)):
        for index, row in enumerate(rows):
            info = row["extra_info"]
            task = env.task(info["task_id"])
            assert row["data_source"] == "lgc-v2" and row["ability"] == "logic"
            assert row["prompt"] == task.prompt
            assert row["reward_model"] == {"style": "rule", "ground_truth": task.ground_truth}
            assert (info["env"], info["env_config"], info["index"], info["split"]) == ("lgc-v2", "{}", index, split)
            assert Task.from_dict(json.loads(info["task"])) == task
    assert not {r["extra_info"]["task_id"] for r in train} & {r["extra_info"]["task_id"] for r in val}
    # the seeded pick interleaves task types: more than one type in 40 tasks
    assert len({json.loads(r["extra_info"]["task"])["extra"]["task_type"] for r in train}) > 3


def test_rl_parquet_through_verl_rlhf_dataset_and_compute_score(lgc_rl, smollm2_tokenizer):
    from tests.verl_utils import (
        build_verl_dataset,
        load_verl_reward_fn,
        load_verl_reward_manager,
        score_with_reward_manager,
        verl_collate,
    )
    from verl.utils.dataset.rl_dataset import RLHFDataset

    cfg = _compose_ppo(*lgc_rl)
    reward_fn = load_verl_reward_fn(cfg)
    env = make("lgc-v2")
    for split, path in zip(("train", "val"), lgc_rl):
        dataset = build_verl_dataset(cfg, split, smollm2_tokenizer)
        assert type(dataset) is RLHFDataset  # verl's own class: no custom_cls
        rows = read_parquet_rows(path)
        assert len(dataset) == len(rows)  # nothing filtered as over-long
        for k in range(len(dataset)):
            item = dataset[k]
            task = env.task(item["extra_info"]["task_id"])
            assert item["raw_prompt"] == task.prompt
            kwargs = dict(data_source=item["data_source"], ground_truth=item["reward_model"]["ground_truth"],
                          extra_info=item["extra_info"])
            good = reward_fn(solution_str=env.oracle(task), **kwargs)
            bad = reward_fn(solution_str=GARBAGE, **kwargs)
            assert good["score"] == 1.0, (task.task_id, good)
            assert bad["score"] == 0.0 and bad["reason"], (task.task_id, bad)
        batch = verl_collate([dataset[0], dataset[1]])
        assert list(batch["data_source"]) == ["lgc-v2", "lgc-v2"]
    # the reward loop's own manager on token ids (decode -> compute_score), items from the static file
    manager = load_verl_reward_manager(cfg, smollm2_tokenizer)
    for k in range(3):
        item = dataset[k]
        oracle = env.oracle(env.task(item["extra_info"]["task_id"]))
        assert score_with_reward_manager(manager, smollm2_tokenizer, item, oracle)["reward_score"] == 1.0
        assert score_with_reward_manager(manager, smollm2_tokenizer, item, GARBAGE)["reward_score"] == 0.0


@pytest.mark.parametrize("env_name", RL_ENVS)
def test_oracle_scores_one_through_compute_score(env_name, tmp_path, tmp_path_factory):
    from veritas_rl.backends.verl.plugins import compute_score

    config = env_configs.config_for(env_name, tmp_path_factory)
    _gen(["--env", env_name, "--config", json.dumps(config), "--num-samples", 6, "--val-ratio", 0,
          "--output-dir", tmp_path])
    rows = read_parquet_rows(tmp_path / f"{env_name}_rl_train.parquet")
    assert len(rows) == 6
    env = make(env_name, **config)
    for row in rows:
        task = Task.from_dict(json.loads(row["extra_info"]["task"]))
        oracle = env.oracle(task)
        args = (row["data_source"], oracle, row["reward_model"]["ground_truth"], row["extra_info"])
        assert compute_score(*args)["score"] == 1.0, (env_name, task.task_id)
        assert compute_score(row["data_source"], GARBAGE, *args[2:])["score"] == 0.0


def test_task_types_and_env_config_reach_the_scorer(tmp_path):
    from veritas_rl.backends.verl.plugins import compute_score

    _gen(["--env", "lgc_v2", "--task-types", "sudoku", "--config", '{"sudoku_min_empty": 40, "sudoku_max_empty": 40}',
          "--num-samples", 5, "--val-ratio", 0, "--output-dir", tmp_path, "--name", "sudoku"])
    rows = read_parquet_rows(tmp_path / "sudoku_train.parquet")
    config = json.loads(rows[0]["extra_info"]["env_config"])
    assert config == {"task_types": ["sudoku"], "sudoku_min_empty": 40, "sudoku_max_empty": 40}
    env = make("lgc-v2", **config)
    for row in rows:
        task = Task.from_dict(json.loads(row["extra_info"]["task"]))
        assert task.extra["task_type"] == "sudoku"
        grid = row["prompt"][0]["content"]
        assert sum(line.split().count("_") for line in grid.splitlines() if len(line.split()) == 9) == 40
        assert compute_score("lgc-v2", env.oracle(task), task.ground_truth, row["extra_info"])["score"] == 1.0


def test_task_id_selection(tmp_path):
    from veritas_rl.commands.envs import pick_task_ids

    env = make("lgc-v2", task_types=["operation", "boolean_expressions"])
    start = generate.select_task_ids(env, num_samples=4, start_task_id=10)
    assert start == [env.task_id_at(i) for i in range(10, 14)]
    assert generate.select_task_ids(env, num_samples=None, task_ids=[7, 3]) == [7, 3]
    picked = generate.select_task_ids(env, num_samples=25, seed=9)
    assert picked == pick_task_ids(env, 25, 9) and len(set(picked)) == 25
    assert generate.select_task_ids(env, num_samples=25, seed=10) != picked

    ids = ",".join(str(t) for t in start)
    _gen(["--env", "lgc-v2", "--task-types", "operation,boolean_expressions", "--task-ids", ids,
          "--val-ratio", 0, "--output-dir", tmp_path])
    rows = read_parquet_rows(tmp_path / "lgc-v2_rl_train.parquet")
    assert [r["extra_info"]["task_id"] for r in rows] == start


def test_split_is_deterministic_and_disjoint(tmp_path):
    def run(name, seed):
        _gen(["--env", "lgc-v2", "--task-types", "operation", "--num-samples", 30, "--val-ratio", 0.2,
              "--seed", seed, "--output-dir", tmp_path / name])
        return [read_parquet_rows(tmp_path / name / f"lgc-v2_rl_{s}.parquet") for s in ("train", "val")]

    a, b, c = run("a", 1), run("b", 1), run("c", 2)
    assert a == b
    assert (len(a[0]), len(a[1])) == (24, 6)
    train_ids = {r["extra_info"]["task_id"] for r in a[0]}
    val_ids = {r["extra_info"]["task_id"] for r in a[1]}
    assert not train_ids & val_ids
    assert {r["extra_info"]["task_id"] for r in c[1]} != val_ids


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "lgc-v2", "--config", '{"no_such_key": 1}', "--num-samples", 3], "'no_such_key'.*valid keys"),
        (["--env", "lgc-v2", "--task-types", "sudoku,chess", "--num-samples", 3], "'chess' is not valid; choose from"),
        (["--env", "nope", "--num-samples", 3], "unknown env 'nope'"),
        (["--env", "lgc-v2"], "--num-samples"),
        (["--env", "lgc-v2", "--num-samples", 3, "--teacher", "--base-url", "http://x/v1", "--model", "m"], "--format sft"),
    ],
)
def test_bad_arguments_fail_with_a_named_error(args, message, tmp_path, capsys):
    import re

    with pytest.raises(SystemExit) as exc:
        generate.main([*map(str, args), "--output-dir", str(tmp_path), "--no-progress"])
    assert exc.value.code == 2
    assert re.search(message, capsys.readouterr().err)


# -- SFT ----------------------------------------------------------------------------------------


def verl_sft_dataset(path, tokenizer, overrides=()):
    """verl 0.9.1's SFT dataset built as ``verl.trainer.sft_trainer.create_sft_dataset`` builds it.

    ``create_sft_dataset`` itself is not imported: ``verl.trainer.sft_trainer`` pulls in the rollout
    server stack (uvicorn) at import time. It is ``MultiTurnSFTDataset(parquet_files=..., tokenizer=...,
    config=cfg.data, processor=None, max_samples=...)`` when ``data.custom_cls.path`` is unset, which is
    what this does, with ``cfg`` composed from verl's own ``sft_trainer_engine.yaml``.
    """
    from hydra import compose, initialize_config_dir
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from tests.verl_utils import verl_config_dir

    with initialize_config_dir(config_dir=verl_config_dir(), version_base=None):
        cfg = compose(config_name="sft_trainer_engine", overrides=[f"data.train_files={path}", *overrides])
    assert cfg.data.custom_cls.path is None and cfg.data.messages_key == "messages"
    return MultiTurnSFTDataset(parquet_files=cfg.data.train_files, tokenizer=tokenizer, config=cfg.data,
                               processor=None, max_samples=cfg.data.get("train_max_samples", -1))


def assert_loss_on_assistant_turn_only(item, messages, tokenizer):
    """The loss mask is 1 exactly on the assistant content (+ its end-of-turn tokens), 0 everywhere else."""
    input_ids, mask = item["input_ids"].tolist(), item["loss_mask"].tolist()
    assert len(input_ids) == len(mask)
    head = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True)
    head = head["input_ids"] if hasattr(head, "keys") else head
    assert input_ids[: len(head)] == list(head)  # prompt + "<|im_start|>assistant\n"
    assert mask[: len(head)] == [0] * len(head)
    assert mask[len(head):] == [1] * (len(mask) - len(head))
    trained = tokenizer.decode(input_ids[len(head):])
    assert trained == messages[-1]["content"] + "<|im_end|>\n"


def test_sft_parquet_through_verl_multiturn_dataset(tmp_path, smollm2_tokenizer):
    _gen(["--env", "lgc-v2", "--format", "sft", "--task-types", "sudoku,game_of_24,operation", "--num-samples", 12,
          "--val-ratio", 0.25, "--output-dir", tmp_path])
    rows = read_parquet_rows(tmp_path / "lgc-v2_sft_train.parquet")
    assert len(rows) == 9 and len(read_parquet_rows(tmp_path / "lgc-v2_sft_val.parquet")) == 3
    env = make("lgc-v2", task_types=["sudoku", "game_of_24", "operation"])
    for row in rows:
        task = env.task(row["extra_info"]["task_id"])
        assert row["messages"] == [*task.prompt, {"role": "assistant", "content": env.oracle(task)}]
        assert row["extra_info"]["source"] == "oracle" and row["response"] == env.oracle(task)
        assert env.score(task, row["response"]).value == 1.0
    dataset = verl_sft_dataset(tmp_path / "lgc-v2_sft_train.parquet", smollm2_tokenizer)
    assert len(dataset) == len(rows)
    for k, row in enumerate(rows):
        assert_loss_on_assistant_turn_only(dataset[k], row["messages"], smollm2_tokenizer)


def test_swe_synth_sft_through_verl_multiturn_dataset(tmp_path, smollm2_tokenizer):
    from tests.data.test_swe_synth import trajectory
    from veritas_rl.data import swe_synth

    src = tmp_path / "swe.jsonl"
    src.write_text("".join(json.dumps(trajectory(i, steps=8)) + "\n" for i in range(6)), encoding="utf-8")
    assert swe_synth.main(["--input", str(src), "--output-dir", str(tmp_path), "--val-ratio", "0",
                           "--max-tokens", "600", "--tokenizer", str(smollm2_tokenizer.name_or_path), "--no-progress"]) == 0
    path = tmp_path / swe_synth.TRAIN_FILE
    rows = read_parquet_rows(path)
    assert len(rows) == 6 and all(r["turns_omitted"] > 0 for r in rows)
    # max_length 600 with truncation=error: verl raises if the converter let one example through too long
    dataset = verl_sft_dataset(path, smollm2_tokenizer, ["data.max_length=600"])
    for k, row in enumerate(rows):
        item = dataset[k]
        assert len(item["input_ids"]) <= 600
        assert_loss_on_assistant_turn_only(item, row["messages"], smollm2_tokenizer)


def test_rl_rows_match_the_dynamic_dataset(smollm2_tokenizer):
    """A static row holds the same ``extra_info``/``reward_model``/prompt as DynamicEnvDataset's item for that task."""
    from tests.verl_utils import build_verl_dataset, compose_ppo_config, plugin_overrides

    cfg = compose_ppo_config(plugin_overrides(env="lgc-v2", pkg=True, extra=["+data.custom_cls.config.task_types=[sudoku,operation]"]))
    dynamic = build_verl_dataset(cfg, "val", smollm2_tokenizer)
    env = make("lgc-v2", task_types=["sudoku", "operation"])
    config_json = json.dumps({"task_types": ["sudoku", "operation"]}, sort_keys=True)
    for k in range(3):
        item = dynamic[k]
        task = env.task(item["extra_info"]["task_id"])
        row = generate.rl_row(task, "lgc-v2", config_json, k, "val")
        assert row["extra_info"] == item["extra_info"]
        assert row["reward_model"] == item["reward_model"]
        assert (row["prompt"], row["data_source"]) == (item["raw_prompt"], item["data_source"])

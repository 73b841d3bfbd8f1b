"""swe-synth reaches verl: DynamicEnvDataset items -> verl's reward loader and reward manager -> real tests."""

from __future__ import annotations

import json

import pytest

from tests.envs.swe_fixture import build_swe_fixture
from tests.verl_utils import (
    build_verl_dataset,
    compose_ppo_config,
    load_verl_reward_fn,
    load_verl_reward_manager,
    plugin_overrides,
    score_with_reward_manager,
)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_swe_fixture(tmp_path_factory.getbasetemp() / "swe-fixture")


@pytest.fixture(scope="module")
def cfg(fx):
    adapter = [f"+data.custom_cls.config.adapter_config.{key}={json.dumps(value)}"
               for key, value in fx.config().items()]
    return compose_ppo_config(plugin_overrides(env="swebench", extra=[
        *adapter, "+data.custom_cls.config.val_size=1", "+data.custom_cls.config.seed=5"]))


@pytest.fixture(scope="module")
def items(cfg, smollm2_tokenizer):
    train = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    val = build_verl_dataset(cfg, "val", smollm2_tokenizer)
    assert (len(train), len(val)) == (1, 1)
    return [train[0], val[0]]


def test_dataset_serves_both_fixture_tasks(items, fx):
    assert sorted(item["extra_info"]["task_id"] for item in items) == [0, 1]  # train and val disjoint
    for item in items:
        assert item["data_source"] == "swe-synth"
        row = fx.rows[item["extra_info"]["task_id"]]
        assert row["problem_statement"] in item["raw_prompt"][0]["content"]
        env_config = json.loads(item["extra_info"]["env_config"])
        assert env_config["repos_dir"] == str(fx.repos_dir) and env_config["test_cmd"] == fx.config()["test_cmd"]


def test_compute_score_loaded_by_verl_runs_the_tests(cfg, items, fx):
    reward_fn = load_verl_reward_fn(cfg)
    for item in items:
        task = json.loads(item["extra_info"]["task"])
        kwargs = dict(data_source=item["data_source"], ground_truth=item["reward_model"]["ground_truth"],
                      extra_info=item["extra_info"])
        gold = reward_fn(solution_str=f"```diff\n{task['extra']['gold_patch']}```", **kwargs)
        assert {k: gold[k] for k in ("score", "acc", "reason", "kind")} == {"score": 1.0, "acc": 1.0, "reason": "",
                                                                         "kind": "correct"}
        wrong = reward_fn(solution_str="```diff\n" + fx.patches["breaks_p2p0" if task["task_id"] == 0 else "half1"]
                          + "```", **kwargs)
        assert wrong["score"] == 0.0 and wrong["acc"] == 0.0
        assert wrong["reason"] == ("1 PASS_TO_PASS test(s) broke" if task["task_id"] == 0
                                   else "1/2 FAIL_TO_PASS test(s) still fail")


def test_reward_manager_scores_a_tokenized_completion(cfg, items, fx, smollm2_tokenizer):
    manager = load_verl_reward_manager(cfg, smollm2_tokenizer)
    item = next(i for i in items if i["extra_info"]["task_id"] == 0)
    good = score_with_reward_manager(manager, smollm2_tokenizer, item,
                                     f"<think>clamp needs an upper bound</think>```diff\n{fx.patches['gold0']}```")
    assert good["reward_score"] == 1.0
    bad = score_with_reward_manager(manager, smollm2_tokenizer, item, f"```diff\n{fx.patches['misapplies0']}```")
    assert bad["reward_score"] == 0.0
    assert "patch does not apply" in bad["reward_extra_info"]["reason"]

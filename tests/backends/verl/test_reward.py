"""compute_score through verl 0.9.1's own reward loader and reward-loop manager."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.envs.env_configs import config_for as env_test_config
from tests.verl_utils import (
    REWARD_MANAGER,
    build_verl_dataset,
    compose_ppo_config,
    load_verl_reward_fn,
    load_verl_reward_manager,
    plugin_overrides,
    score_with_reward_manager,
)
from veritas_rl.envs import SCORE_KINDS, Task, base, make, names
from veritas_rl.envs.guard import get_guard, reset_guard
from veritas_rl.backends.verl.plugins import compute_lgc_v2_score, compute_score

KIND_KEYS = {f"kind/{k}" for k in SCORE_KINDS}
KEYS = {"score", "acc", "reason", "kind"} | KIND_KEYS


def _full(kind: str = "correct", reason: str = "") -> dict:
    """What compute_score returns for a score of ``kind`` (1.0 when correct)."""
    value = 1.0 if kind == "correct" else 0.0
    return {"score": value, "acc": value, "reason": reason, "kind": kind,
            **{f"kind/{k}": float(k == kind) for k in SCORE_KINDS}}


def _is_zero(out: dict) -> bool:
    """A zero score with a reason, its kind one of the zero classes and its indicator the only one set."""
    return (set(out) == KEYS and out["score"] == 0.0 and out["acc"] == 0.0 and bool(out["reason"])
            and out["kind"] not in ("correct", "partial")
            and [k for k in KIND_KEYS if out[k] == 1.0] == [f"kind/{out['kind']}"] and sum(out[k] for k in KIND_KEYS) == 1.0)
GARBAGE = {
    "empty": "",
    "whitespace": " \n\t",
    "unclosed-think": "<think>\\boxed{24} <answer>24</answer>",
    "random-text": "lorem ipsum 17 ### ??? ```\n```",
    "one-megabyte": "9 " * 500_000,
}
LGC_TYPES = [
    "dyck_language", "game_of_24", "operation", "cryptarithm", "dyck_language2",
    "boolean_expressions", "sudoku", "dyck_language_reasoning_errors",
]
# swe-synth runs real test suites per score: covered by tests/backends/verl/test_swe.py
ROUTED_ENVS = [n for n in names() if n != "swe-synth"]


def _oracle(item: dict) -> str:
    info = item["extra_info"]
    task = Task.from_dict(json.loads(info["task"]))
    oracle = make(info["env"], **json.loads(info["env_config"])).oracle(task)
    assert oracle is not None
    return oracle


def _call(fn, item: dict, completion) -> dict:
    return fn(
        data_source=item["data_source"],
        solution_str=completion,
        ground_truth=item["reward_model"]["ground_truth"],
        extra_info=dict(item["extra_info"]),
    )


@pytest.fixture(scope="module")
def lgc_cfg():
    return compose_ppo_config(plugin_overrides(env="lgc-v2", extra=["+data.custom_cls.config.val_size=16"]))


@pytest.fixture(scope="module")
def lgc_items(lgc_cfg, smollm2_tokenizer):
    """The first training item of every lgc-v2 task type (found by task id, then built)."""
    train = build_verl_dataset(lgc_cfg, "train", smollm2_tokenizer)
    first = {}
    i = 0
    while len(first) < len(LGC_TYPES) and i < 10_000:
        first.setdefault(train.task_id(i) // 100_000_000, i)
        i += 1
    assert len(first) == len(LGC_TYPES), sorted(first)
    return [train[first[k]] for k in sorted(first)]


@pytest.fixture(scope="module")
def reward_fn(lgc_cfg):
    return load_verl_reward_fn(lgc_cfg)


def test_verl_loader_returns_our_function(lgc_cfg, reward_fn):
    assert lgc_cfg.reward.custom_reward_function.path == REWARD_MANAGER
    # verl wraps the raw function in partial(_call_with_kwargs, raw_fn, reward_kwargs)
    assert reward_fn.args[0] is compute_score
    pkg = load_verl_reward_fn(compose_ppo_config(plugin_overrides(pkg=True)))
    assert pkg.args[0] is compute_score
    alias = load_verl_reward_fn(
        compose_ppo_config(plugin_overrides(reward_function="compute_lgc_v2_score"))
    )
    assert alias.args[0] is compute_lgc_v2_score


def test_oracle_scores_one_and_garbage_zero_for_every_lgc_type(reward_fn, lgc_items):
    for item in lgc_items:
        out = _call(reward_fn, item, _oracle(item))
        assert out == _full(), (item["extra_info"]["task_id"], out)
        thought = _call(reward_fn, item, "<think>hmm</think>" + _oracle(item))
        assert thought["score"] == 1.0
        for kind, text in GARBAGE.items():
            out = _call(reward_fn, item, text)
            assert _is_zero(out), (kind, out)
        assert _call(reward_fn, item, GARBAGE["one-megabyte"])["kind"] == "too_long"
        assert _call(reward_fn, item, GARBAGE["unclosed-think"])["kind"] == "no_answer"


def test_reward_kwargs_from_the_config_are_accepted(lgc_items):
    cfg = compose_ppo_config(plugin_overrides(extra=["+reward.custom_reward_function.reward_kwargs.tag=x"]))
    fn = load_verl_reward_fn(cfg)
    item = lgc_items[0]
    assert _call(fn, item, _oracle(item))["score"] == 1.0


def test_naive_reward_manager_scores_tokenized_completions(lgc_cfg, lgc_items, smollm2_tokenizer):
    """The reward loop's own manager: token ids -> decode -> compute_score -> reward_extra_info."""
    manager = load_verl_reward_manager(lgc_cfg, smollm2_tokenizer)
    assert type(manager).__name__ == "NaiveRewardManager"
    for item in lgc_items:
        good = score_with_reward_manager(manager, smollm2_tokenizer, item, _oracle(item))
        assert good["reward_score"] == 1.0, (item["extra_info"]["task_id"], good)
        assert good["reward_extra_info"] == _full()
        bad = score_with_reward_manager(manager, smollm2_tokenizer, item, "I give up.")
        assert bad["reward_score"] == 0.0
        assert _is_zero(bad["reward_extra_info"]), bad


def test_reward_extra_info_stacks_like_the_agent_loop(reward_fn, lgc_items):
    """The agent loop builds np.array([info[key] for info in infos]) per key of the first sample."""
    import numpy as np

    infos = [_call(reward_fn, item, text) for item in lgc_items for text in (_oracle(item), "", "nope")]
    keys = list(infos[0])
    stacked = {key: np.array([info[key] for info in infos]) for key in keys}
    assert stacked["score"].dtype.kind == "f" and stacked["acc"].dtype.kind == "f"
    assert stacked["score"].tolist() == [1.0, 0.0, 0.0] * len(lgc_items)


@pytest.mark.parametrize("env_name", ROUTED_ENVS)
def test_every_env_through_the_verl_dataset_and_reward(env_name, smollm2_tokenizer, tmp_path_factory, monkeypatch):
    from omegaconf import OmegaConf, open_dict

    monkeypatch.delenv("GAME_TYPES", raising=False)
    cfg = compose_ppo_config(plugin_overrides())
    with open_dict(cfg):
        cfg.data.custom_cls.config = OmegaConf.create(
            {"env": env_name, "adapter_config": env_test_config(env_name, tmp_path_factory), "val_size": 2}
        )
    fn = load_verl_reward_fn(cfg)
    for split in ("val", "train"):
        item = build_verl_dataset(cfg, split, smollm2_tokenizer)[0]
        assert item["data_source"] == env_name == item["extra_info"]["env"]
        assert _call(fn, item, _oracle(item)) == _full()
        for kind in ("empty", "random-text"):
            out = _call(fn, item, GARBAGE[kind])
            assert _is_zero(out), (kind, out)


# -- routing -----------------------------------------------------------------------------------


def test_routes_by_task_id_and_by_data_source(lgc_items):
    item = lgc_items[1]
    task = json.loads(item["extra_info"]["task"])
    oracle = _oracle(item)
    by_id = {"env": "lgc-v2", "env_config": item["extra_info"]["env_config"], "task_id": task["task_id"]}
    assert compute_score("whatever", oracle, item["reward_model"]["ground_truth"], by_id)["score"] == 1.0
    # env_config as a dict (a parquet struct) and the task as a dict are accepted too
    as_dicts = {"env": "lgc_v2", "env_config": json.loads(item["extra_info"]["env_config"]), "task": task}
    assert compute_score("whatever", oracle, item["reward_model"]["ground_truth"], as_dicts)["score"] == 1.0
    # no env in extra_info: data_source names it (the default config rebuilds the same task id)
    assert compute_score("lgc-v2", oracle, "", {"task_id": task["task_id"]})["score"] == 1.0
    assert compute_score("logic_v2/sudoku", "nope", "", {"task_id": task["task_id"]})["score"] == 0.0


def test_missing_routing_is_a_clear_error():
    with pytest.raises(ValueError, match=r"cannot route.*data_source='openai/gsm8k'.*known: .*lgc-v2"):
        compute_score("openai/gsm8k", "42", "42", {"index": 3})
    with pytest.raises(ValueError, match=r"cannot route"):
        compute_score(None, "42", "42", None)


@pytest.mark.parametrize("env_name", [n for n in ("math", "answer-tag") if n in names()])
def test_ground_truth_alone_for_question_answer_envs(env_name):
    """Static parquet made elsewhere: data_source names the env, reward_model.ground_truth is the answer."""
    env = make(env_name)
    task = env.task(env.task_id_at(0))
    oracle = env.oracle(task)
    assert compute_score(env_name, oracle, task.ground_truth, {"index": 0})["score"] == 1.0
    assert compute_score(env_name, oracle, task.ground_truth + "1", None)["score"] == 0.0
    if task.ground_truth.isdigit():  # a numeric parquet column arrives as a number
        assert compute_score(env_name, oracle, int(task.ground_truth), None)["score"] == 1.0


def test_one_route_per_config_whatever_its_form(lgc_items):
    """JSON or dict config, name or alias: one route (one env in the scoring worker); another config: another."""
    item = lgc_items[0]
    config_json = item["extra_info"]["env_config"]
    guard = get_guard()
    first = guard.route("lgc-v2", config_json)
    for _ in range(3):
        compute_score(item["data_source"], "x", "", dict(item["extra_info"]))
    assert guard.route("lgc_v2", json.loads(config_json)) == first
    assert guard.route("lgc-v2", config_json) is guard.route("lgc-v2", config_json)
    assert guard.route("lgc-v2", {"task_types": ["sudoku"]}).key != first.key


def test_picklable_for_ray(reward_fn, lgc_items):
    item = lgc_items[2]
    for fn in (compute_score, reward_fn):
        clone = pickle.loads(pickle.dumps(fn))
        assert _call(clone, item, _oracle(item))["score"] == 1.0


def test_concurrent_calls_from_threads(reward_fn, lgc_items):
    """verl's naive manager runs compute_score in a thread pool."""
    jobs = [(item, text) for item in lgc_items for text in (_oracle(item), "no")] * 4
    expected = [_call(reward_fn, item, text) for item, text in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda job: _call(reward_fn, *job), jobs))
    assert got == expected


def test_non_string_completion_scores_zero(lgc_items):
    item = lgc_items[0]
    for bad in (None, 3, ["a"]):
        out = _call(compute_score, item, bad)
        assert _is_zero(out) and out["kind"] == "error", out


def test_static_parquet_through_rlhf_dataset(lgc_items, smollm2_tokenizer, tmp_path):
    """Rows with our extra_info, read back by verl's own RLHFDataset, still route and score."""
    import pandas as pd

    rows = [
        {
            "data_source": item["data_source"],
            "prompt": item["raw_prompt"],
            "reward_model": item["reward_model"],
            "extra_info": item["extra_info"],
        }
        for item in lgc_items
    ]
    path = tmp_path / "static.parquet"
    pd.DataFrame(rows).to_parquet(path)
    cfg = compose_ppo_config([
        f"data.train_files=[{path}]", f"data.val_files=[{path}]",
        f"reward.custom_reward_function.path={REWARD_MANAGER}",
    ])
    ds = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    fn = load_verl_reward_fn(cfg)
    assert len(ds) == len(lgc_items)
    for i, item in enumerate(lgc_items):
        row = ds[i]
        assert _call(fn, row, _oracle(item))["score"] == 1.0
        assert _call(fn, row, "wrong")["score"] == 0.0


# -- reason classes in verl's metrics ------------------------------------------------------------


def test_kind_rates_become_verl_validation_metrics(lgc_cfg, lgc_items, smollm2_tokenizer):
    """The manager's reward_extra_info, stacked like the reward loop, through verl's own validation metrics:
    each ``kind/<name>`` mean is that class's rate per data source; the ``kind`` string is skipped."""
    import numpy as np
    from verl.trainer.ppo.metric_utils import process_validation_metrics

    manager = load_verl_reward_manager(lgc_cfg, smollm2_tokenizer)
    texts = lambda item: [_oracle(item), "", "I give up.", "<think>never closed"]  # noqa: E731
    infos = [score_with_reward_manager(manager, smollm2_tokenizer, item, t)["reward_extra_info"]
             for item in lgc_items for t in texts(item)]
    stacked = {key: np.array([info[key] for info in infos]) for key in infos[0]}  # RewardLoopManager does this
    assert stacked["kind"].dtype.kind == "U" and stacked["kind/correct"].dtype.kind == "f"
    kinds = stacked["kind"].tolist()
    n = len(infos)
    sources = ["lgc-v2"] * n
    uids = [f"u{i // 4}" for i in range(n)]  # 4 responses per prompt, as with rollout.n=4
    metrics = process_validation_metrics(sources, uids, {k: v.tolist() for k, v in stacked.items()})["lgc-v2"]
    assert "kind" not in metrics and "reason" not in metrics  # strings: skipped by verl, kept in the dumps
    for kind in SCORE_KINDS:
        rate = kinds.count(kind) / n
        assert metrics[f"kind/{kind}"]["mean@4"] == pytest.approx(rate), kind
    assert metrics["kind/correct"]["mean@4"] == pytest.approx(0.25)
    assert metrics["kind/no_answer"]["mean@4"] >= 0.25  # the empty and the unclosed-think completions


@pytest.fixture()
def stuck_env(monkeypatch):
    """The test-only ``guard-test`` env (tests/envs/test_guard.py) and a fresh guard with a 1 s budget."""
    from tests.envs.test_guard import NAME, GuardTestConfig, GuardTestEnv

    base.register_env(NAME, GuardTestEnv, GuardTestConfig)
    monkeypatch.setenv("VERITAS_SCORE_TIMEOUT_S", "1")
    reset_guard()
    yield NAME
    reset_guard()
    base._REGISTRY.pop(NAME, None)
    base._ALIASES.pop(NAME, None)


def test_a_stuck_score_times_out_inside_verls_reward_manager(stuck_env, lgc_cfg, smollm2_tokenizer):
    """verl's naive manager runs compute_score in its executor thread: the guard still cuts it at 1 s."""
    import time

    manager = load_verl_reward_manager(lgc_cfg, smollm2_tokenizer)
    item = {"data_source": stuck_env, "raw_prompt": [{"role": "user", "content": "say 42"}],
            "reward_model": {"style": "rule", "ground_truth": "42"},
            "extra_info": {"env": stuck_env, "env_config": "{}", "task_id": 0}}
    assert score_with_reward_manager(manager, smollm2_tokenizer, item, "42")["reward_score"] == 1.0
    start = time.monotonic()
    out = score_with_reward_manager(manager, smollm2_tokenizer, item, "bigint")
    assert time.monotonic() - start < 4.0
    assert out["reward_score"] == 0.0
    assert out["reward_extra_info"] == _full("timeout", "timeout after 1s")
    assert score_with_reward_manager(manager, smollm2_tokenizer, item, "42")["reward_score"] == 1.0


# -- wiring errors: ValueError naming the key ----------------------------------------------------


def _wiring_cases(item):
    task = json.loads(item["extra_info"]["task"])
    other = make("answer-tag").task(0).to_dict()
    return [
        (["not", "a", "dict"], r"extra_info must be a mapping \(a dict\), got list"),
        ({"env": 3}, r"extra_info\['env'\] must be an env name"),
        ({"env": "lgc-v2", "env_config": "task_types=sudoku"}, r"extra_info\['env_config'\] is not valid JSON"),
        ({"env": "lgc-v2", "env_config": "[1, 2]"}, r"extra_info\['env_config'\] must be a JSON object"),
        ({"env": "lgc-v2", "env_config": 7}, r"extra_info\['env_config'\] must be a mapping or its JSON"),
        ({"env": "lgc-v2", "env_config": {"colour": 1}}, r"unknown config key\(s\) 'colour' for env 'lgc-v2'"),
        ({"env": "lgc-v2", "task": {"env": "lgc-v2", "task_id": 1}}, r"missing key\(s\) 'prompt', 'ground_truth'"),
        ({"env": "lgc-v2", "task": "{oops"}, r"serialised task is not valid JSON"),
        ({"env": "lgc-v2", "task": ["a"]}, r"extra_info\['task'\] must be a serialised task"),
        ({"env": "lgc-v2", "task_id": "abc"}, r"extra_info\['task_id'\] must be an integer, got str: 'abc'"),
        ({"env": "lgc-v2", "task_id": 1.5}, r"extra_info\['task_id'\] must be an integer"),
        ({"env": "answer-tag", "task_extra": "{oops"}, r"extra_info\['task_extra'\] is not valid JSON"),
        ({"env": "lgc-v2", "task": {**task, "env": "answer-tag"}},
         r"belongs to env 'answer-tag', but the request routes it to env 'lgc-v2'"),
        ({"env": "lgc-v2", "task": json.dumps(other)},
         r"belongs to env 'answer-tag', but the request routes it to env 'lgc-v2'"),
    ]


def test_wiring_errors_raise_value_error(lgc_items):
    item = lgc_items[0]
    for extra_info, match in _wiring_cases(item):
        with pytest.raises(ValueError, match=match):
            compute_score("lgc-v2", _oracle(item), "", extra_info)


def test_wiring_errors_raise_value_error_inline_too(lgc_items, monkeypatch):
    monkeypatch.setenv("VERITAS_SCORE_ISOLATION", "inline")
    reset_guard()
    try:
        assert get_guard().settings.isolation == "inline"
        item = lgc_items[0]
        for extra_info, match in _wiring_cases(item):
            with pytest.raises(ValueError, match=match):
                compute_score("lgc-v2", _oracle(item), "", extra_info)
        assert _call(compute_score, item, _oracle(item)) == _full()
        assert get_guard().worker_pids() == []
    finally:
        reset_guard()

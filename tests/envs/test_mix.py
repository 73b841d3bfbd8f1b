"""The ``mix`` env: the weight schedule over windows, determinism, namespaced ids, delegated scoring, and
the paths that use it unchanged (verl's create_rl_dataset, the TRL reward adapter, `veritas sample/score`)."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from collections import Counter

import pytest

from veritas_rl.envs import make
from veritas_rl.envs.mix import ID_STRIDE, integer_weights, load_mixture, smooth_schedule, weight_of

MIX = [{"env": "lgc-v2", "config": {"task_types": ["boolean_expressions", "sudoku"]}, "weight": 3},
       {"env": "answer-tag", "weight": 2},
       {"env": "openspiel", "config": {"reward_mode": "legal", "game_types": ["tic_tac_toe"],
                                       "num_tasks_per_case": 120}, "weight": 1, "name": "ttt"}]


def _counts(components: list[int], k: int) -> list[int]:
    c = Counter(components)
    return [c[i] for i in range(k)]


def _check_balance(seq: list[int], weights: list[int]) -> None:
    """Prefixes: floor/ceil of n*p; every window anywhere: floor-1 .. ceil+1 (floor/ceil with 2 components)."""
    k, total = len(weights), sum(weights)
    slack = 0 if k == 2 else 1
    for n in range(1, len(seq) + 1):
        for c, got in enumerate(_counts(seq[:n], k)):
            ideal = n * weights[c] / total
            assert math.floor(ideal) <= got <= math.ceil(ideal), (weights, n, c, got, ideal)
    for size in range(1, min(len(seq), 2 * total) + 1):
        for start in range(0, len(seq) - size + 1):
            for c, got in enumerate(_counts(seq[start:start + size], k)):
                ideal = size * weights[c] / total
                assert math.floor(ideal) - slack <= got <= math.ceil(ideal) + slack, (weights, start, size, c, got)


@pytest.mark.parametrize("weights", [[1, 1], [7, 3], [1, 9], [3, 2, 1], [5, 5, 1, 2], [11, 7, 4, 2, 8]])
def test_schedule_holds_the_weights_in_every_window(weights):
    period = smooth_schedule(weights, list(range(len(weights))))
    assert _counts(period, len(weights)) == weights  # exact counts per period
    _check_balance(period * 3, weights)


def test_schedule_balance_on_random_weights():
    rng = random.Random(5)
    for _ in range(25):
        weights = [rng.randint(1, 9) for _ in range(rng.randint(2, 4))]
        _check_balance(smooth_schedule(weights, list(range(len(weights)))) * 2, weights)


def test_weights_are_read_as_written():
    assert integer_weights([weight_of({"weight": w}, 0) for w in (0.7, 0.3)]) == [7, 3]
    assert integer_weights([weight_of({"weight": w}, 0) for w in (2, 4, 6)]) == [1, 2, 3]
    for bad in (0, -1, "x", True, None, float("inf")):
        with pytest.raises(ValueError, match=r"components\[0\]\.weight must be a number > 0"):
            weight_of({"weight": bad}, 0)


def test_dense_indices_follow_the_schedule_and_namespace_ids():
    env = make("mix", components=MIX)
    assert env.labels == ["lgc-v2", "answer-tag", "ttt"] and env.weights == [3, 2, 1]
    n = 600
    ids = [env.task_id_at(i) for i in range(n)]
    comps = [i // ID_STRIDE for i in ids]
    _check_balance(comps[:60], [3, 2, 1])
    assert _counts(comps, 3) == [300, 200, 100]
    # component c's k-th item is its own dense index k: its ids are its own task_id_at(0..)
    for c, inner_env in enumerate(env.components):
        mine = [i % ID_STRIDE for i in ids if i // ID_STRIDE == c]
        assert mine == [inner_env.task_id_at(k) for k in range(len(mine))]
    assert len(set(ids)) == n
    with pytest.raises(IndexError):
        env.task_id_at(env.num_tasks)


def test_num_tasks_is_the_first_index_a_component_cannot_serve():
    env = make("mix", components=MIX)
    counts = [0, 0, 0]
    for i in range(env.num_tasks):
        counts[env.component_at(i)[0]] += 1
    assert counts[2] == 120  # openspiel served every one of its tasks ...
    assert env.component_at(env.num_tasks) == (2, 120)  # ... and the next item would be its 121st


def test_task_extra_and_delegated_scoring():
    env = make("mix", components=MIX)
    for i in range(12):
        task = env.task(env.task_id_at(i))
        c = task.task_id // ID_STRIDE
        inner_env = env.components[c]
        inner = inner_env.task(task.task_id % ID_STRIDE)
        assert task.env == "mix" and task.extra["env"] == env.labels[c] and task.extra["component"] == c
        assert task.prompt == inner.prompt and task.ground_truth == inner.ground_truth
        assert task.extra["inner_extra"] == inner.extra
        oracle = env.oracle(task)
        assert oracle == inner_env.oracle(inner)
        for text in (oracle, "garbage", "", None, "<think>never closed " + str(oracle)):
            assert env.score(task, text).info == inner_env.score(inner, text).info


def test_malformed_tasks_and_ids_are_wiring_errors():
    env = make("mix", components=MIX)
    task = env.task(env.task_id_at(0))
    with pytest.raises(ValueError, match="component 7 is not one of the 3 components"):
        env.task(7 * ID_STRIDE)
    bad = type(task)(task.env, task.task_id, task.prompt, task.ground_truth, {"component": 1, "inner_env": "lgc-v2",
                                                                             "inner_task_id": 0})
    with pytest.raises(ValueError, match="extra.inner_env='lgc-v2', but components\\[1\\] is 'answer-tag'"):
        env.score(bad, "x")
    with pytest.raises(ValueError, match="lacks component"):
        env.score(type(task)(task.env, 0, task.prompt, task.ground_truth, {}), "x")


@pytest.mark.parametrize("components, message", [
    ([], "non-empty list"),
    ([{"env": "math", "wieght": 2}], r"unknown key\(s\) 'wieght'; valid keys: env, config, weight, name"),
    ([{"env": "math"}, {"env": "gsm8k"}], "both named 'math'"),
    ([{"env": "swe-synth"}], "cannot be scored as part of a mix"),
    ([{"env": "mix"}], "cannot contain a mix"),
    ([{"env": "lgc-v2", "config": {"task_types": ["nope"]}}], r"components\[0\] \(lgc-v2\): task_types: 'nope'"),
    ([{"env": "nope"}], "unknown env 'nope'"),
    ([{"env": "math", "weight": 1}, {"env": "answer-tag", "weight": 0.00001}], "schedule period of 100001"),
])
def test_bad_mixtures_fail_at_start_naming_the_key(components, message):
    with pytest.raises(ValueError, match=message):
        make("mix", components=components)


def test_seed_breaks_ties_only():
    a = make("mix", components=[{"env": "math"}, {"env": "answer-tag"}], seed=0)
    orders = {tuple(make("mix", components=[{"env": "math"}, {"env": "answer-tag"}], seed=s).schedule) for s in range(8)}
    assert orders == {(0, 1), (1, 0)}
    assert a.schedule == make("mix", components=[{"env": "math"}, {"env": "answer-tag"}], seed=0).schedule


def test_same_schedule_and_tasks_in_another_process():
    code = ("import json,sys; from veritas_rl.envs import make; e = make('mix', **json.loads(sys.argv[1])); "
            "print(json.dumps([e.task(e.task_id_at(i)).to_dict() for i in range(40)]))")
    config = {"components": MIX, "seed": 3}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(config)], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONHASHSEED": "77"})
    env = make("mix", **config)
    assert json.loads(out.stdout) == [json.loads(json.dumps(env.task(env.task_id_at(i)).to_dict())) for i in range(40)]


def test_load_mixture_from_json_and_yaml(tmp_path):
    assert load_mixture(json.dumps(MIX)) == {"components": MIX}
    path = tmp_path / "m.yaml"
    path.write_text("components:\n  - {env: math, weight: 2}\n  - {env: answer-tag}\nseed: 4\n")
    assert load_mixture(str(path)) == {"components": [{"env": "math", "weight": 2}, {"env": "answer-tag"}], "seed": 4}
    recipe = tmp_path / "r.yaml"
    recipe.write_text("env: mix\nmixture:\n  - {env: math}\n")
    assert load_mixture(str(recipe)) == {"components": [{"env": "math"}]}
    for bad, message in (("[{", "not valid JSON"), ("nofile.yaml", "neither JSON"), ('{"comps": []}', "'components'")):
        with pytest.raises(ValueError, match=message):
            load_mixture(bad)


# -- the paths that use it unchanged ---------------------------------------------------------


def test_verl_create_rl_dataset_serves_the_schedule_and_groups_by_env(smollm2_tokenizer):
    from tests.verl_utils import build_verl_dataset, compose_ppo_config, plugin_overrides
    from veritas_rl.backends.verl.mixture import hydra_value
    from veritas_rl.backends.verl.plugins import compute_score

    mixture = {"components": MIX}
    cfg = compose_ppo_config(plugin_overrides(env="mix", extra=[
        f"+data.custom_cls.config.adapter_config={hydra_value(mixture)}",
        "+data.custom_cls.config.group_by=env", "+data.custom_cls.config.val_size=12",
        "+data.custom_cls.config.train_size=120"]))
    train = build_verl_dataset(cfg, "train", smollm2_tokenizer)
    val = build_verl_dataset(cfg, "val", smollm2_tokenizer)
    env = make("mix", **mixture)
    label = {name: c for c, name in enumerate(env.labels)}
    train_comps = [label[train[i]["data_source"].split("/", 1)[1]] for i in range(len(train))]
    val_comps = [label[val[i]["data_source"].split("/", 1)[1]] for i in range(len(val))]
    assert train_comps == [env.component_at(12 + i)[0] for i in range(120)]  # schedule order, not permuted
    assert _counts(val_comps, 3) == [6, 4, 2]
    for size in (6, 12, 30):  # every batch-sized window of the train split holds the weights (+-1)
        for start in range(0, 120 - size + 1):
            for c, got in enumerate(_counts(train_comps[start:start + size], 3)):
                ideal = size * env.weights[c] / env.period
                assert math.floor(ideal) - 1 <= got <= math.ceil(ideal) + 1
    assert {val[i]["extra_info"]["task_id"] for i in range(12)}.isdisjoint(
        {train[i]["extra_info"]["task_id"] for i in range(120)})
    for item in (train[0], train[1], train[5]):
        task = env.task(item["extra_info"]["task_id"])
        right = compute_score(item["data_source"], env.oracle(task), item["reward_model"]["ground_truth"],
                              item["extra_info"])
        wrong = compute_score(item["data_source"], "no idea", item["reward_model"]["ground_truth"], item["extra_info"])
        assert right["score"] == 1.0 and wrong["score"] == 0.0


def test_trl_reward_adapter_scores_mix_rows():
    from veritas_rl.backends.trl import data
    from veritas_rl.backends.trl.reward import EnvReward

    env = make("mix", components=MIX)
    train_idx, eval_idx = data.split_indices(env, 24, 6)
    rows = data.grpo_rows(env, data.tasks_at(env, train_idx))
    tasks = data.tasks_at(env, train_idx)
    reward = EnvReward(env.name, {"components": MIX})
    columns = {k: [r[k] for r in rows] for k in ("task", "env", "env_config", "task_id")}
    completions = [[{"role": "assistant", "content": env.oracle(t)}] for t in tasks]
    assert reward(prompts=[r["prompt"] for r in rows], completions=completions, **columns) == [1.0] * len(rows)
    assert set(reward(prompts=None, completions=["nope"] * len(rows), **columns)) == {0.0}
    from veritas_rl.eval.greedy import group_keys

    assert group_keys(data.tasks_at(env, eval_idx)) == ["env"]


def test_cli_sample_and_score(tmp_path):
    from veritas_rl.cli import main

    config = json.dumps({"components": MIX})
    tasks, comps = tmp_path / "tasks.jsonl", tmp_path / "comps.jsonl"
    out = subprocess.run([sys.executable, "-m", "veritas_rl.cli", "sample", "mix", "--config", config, "--n", "6",
                          "--with-oracle"], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 6 and all(r["env"] == "mix" for r in rows)
    tasks.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "oracle"}) + "\n" for r in rows))
    comps.write_text("".join(json.dumps({"completion": r["oracle"] if i % 2 else "no"}) + "\n" for i, r in enumerate(rows)))
    out = subprocess.run([sys.executable, "-m", "veritas_rl.cli", "score", "mix", "--config", config, "--tasks",
                          str(tasks), "--completions", str(comps)], capture_output=True, text=True, check=True)
    scores = [json.loads(line)["score"] for line in out.stdout.splitlines()]
    assert scores == [0.0, 1.0] * 3
    with pytest.raises(SystemExit) as stop:
        main(["sample", "mix", "--config", '{"components": [{"env": "lgc"}]}'])
    assert stop.value.code == 2


@pytest.mark.slow
def test_one_trl_step_on_a_mixture_reports_held_out_accuracy_per_component(smollm2_dir, tmp_path):
    from veritas_rl.backends.trl.runner import run
    from veritas_rl.backends.trl.settings import build_settings

    mixture = {"components": [{"env": "math", "weight": 1}, {"env": "answer-tag", "weight": 1}]}
    result = run(build_settings(None, {
        "env": "mix", "env_config": mixture, "model": str(smollm2_dir), "train_size": 4, "eval_size": 4,
        "eval_batch_size": 4, "num_generations": 2, "batch_size": 2, "max_new_tokens": 4, "lora_rank": 4,
        "max_steps": 1, "save_steps": 1, "zero_reward_patience": 0, "save_final_model": False, "cpu_threads": 1,
        "output_dir": str(tmp_path), "run_name": "mix"}))
    assert result.steps == 1
    for report in (result.before, result.after):
        groups = report["groups"]["env"]
        assert set(groups) == {"math", "answer-tag"} and sum(g["n"] for g in groups.values()) == 4

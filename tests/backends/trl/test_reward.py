"""The TRL reward adapter is a thin layer over env.score and agrees with verl's compute_score."""

from __future__ import annotations

import json
import pickle

import pytest

from veritas_rl.envs import make
from veritas_rl.backends.trl.reward import EnvReward, completion_text, task_row
from veritas_rl.backends.verl.plugins import compute_score

CASES = [
    ("answer-tag", {}),
    ("lgc-v2", {"task_types": ["boolean_expressions", "operation"]}),
    ("openspiel", {"reward_mode": "legal", "game_types": ["tic_tac_toe"]}),
]


def _completions(env, task):
    oracle = env.oracle(task)
    return [oracle, "<think>hmm</think>" + oracle, "no idea", "", "<answer>definitely wrong 123</answer>",
            "<think>never closed " + oracle]


@pytest.mark.parametrize("name,config", CASES)
def test_trl_reward_equals_verl_compute_score_and_env_score(name, config):
    env = make(name, **config)
    reward = EnvReward()
    for index in range(3):
        task = env.task(env.task_id_at(index))
        row = task_row(env, task)
        texts = _completions(env, task)
        # TRL's conversational completions: one assistant message each
        completions = [[{"role": "assistant", "content": t}] for t in texts]
        n = len(texts)
        got = reward(prompts=[row["prompt"]] * n, completions=completions, task=[row["task"]] * n,
                     env=[row["env"]] * n, env_config=[row["env_config"]] * n, task_id=[row["task_id"]] * n)
        extra = {"env": name, "env_config": config, "task": task.to_dict()}
        verl = [compute_score(name, t, task.ground_truth, extra)["score"] for t in texts]
        direct = [env.score(task, t).value for t in texts]
        assert got == verl == direct
        assert got[0] == 1.0 and got[1] == 1.0  # the oracle, also behind a closed think block
        assert got[2] == got[3] == got[5] == 0.0


def test_rows_without_task_column_rebuild_the_task_from_its_id():
    env = make("answer-tag")
    task = env.task(env.task_id_at(5))
    reward = EnvReward("answer-tag", {})
    assert reward(completions=[env.oracle(task), "<answer>-1</answer>"], task_id=[task.task_id] * 2) == [1.0, 0.0]


def test_counts_success_metric_and_pickle():
    env = make("answer-tag")
    tasks = [env.task(env.task_id_at(i)) for i in range(4)]
    rows = [task_row(env, t) for t in tasks]
    logged = []
    reward = EnvReward()
    texts = [env.oracle(tasks[0]), "<answer>nope</answer>", env.oracle(tasks[2]), "x"]
    values = reward(completions=texts, task=[r["task"] for r in rows], env=[r["env"] for r in rows],
                    env_config=[r["env_config"] for r in rows], log_metric=lambda k, v: logged.append((k, v)))
    assert values == [1.0, 0.0, 1.0, 0.0]
    assert logged == [("success_rate", 0.5)]
    assert reward.take_counts() == (4, 2) and reward.take_counts() == (0, 0)
    clone = pickle.loads(pickle.dumps(reward))  # Ray / multiprocessing ship reward functions by pickle
    assert clone(completions=texts[:1], task=[rows[0]["task"]], env=["answer-tag"], env_config=["{}"]) == [1.0]
    assert json.loads(rows[0]["task"])["task_id"] == tasks[0].task_id


def test_completion_text_forms():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]}]) == "bc"
    bad = [{"role": "assistant", "content": 3}]
    assert completion_text(bad) is bad  # left for env.score to reject with a reason
    env = make("answer-tag")
    task = env.task(0)
    row = task_row(env, task)
    assert EnvReward()(completions=[bad, None], task=[row["task"]] * 2, env=["answer-tag"] * 2,
                       env_config=["{}"] * 2) == [0.0, 0.0]

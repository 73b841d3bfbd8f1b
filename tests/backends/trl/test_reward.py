"""The TRL reward adapter is a thin layer over env.score and agrees with verl's compute_score."""

from __future__ import annotations

import json
import pickle

import pytest

from veritas_rl.envs import SCORE_KINDS, base, make
from veritas_rl.envs.guard import reset_guard
from veritas_rl.backends.trl.callbacks import kind_summary
from veritas_rl.backends.trl.reward import EnvReward, completion_text, kind_shares, task_row
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
    logged, extra = [], []
    reward = EnvReward()
    texts = [env.oracle(tasks[0]), "<answer>nope</answer>", env.oracle(tasks[2]), "x"]
    values = reward(completions=texts, task=[r["task"] for r in rows], env=[r["env"] for r in rows],
                    env_config=[r["env_config"] for r in rows], log_metric=lambda k, v: logged.append((k, v)),
                    log_extra=lambda k, v: extra.append((k, v)))
    assert values == [1.0, 0.0, 1.0, 0.0]
    kinds = [s.kind for s in reward.last_scores]
    assert kinds[0] == kinds[2] == "correct" and "correct" not in (kinds[1], kinds[3])
    metrics = dict(logged)
    assert logged[0] == ("success_rate", 0.5) and len(logged) == 1 + len(SCORE_KINDS)
    assert {k: metrics[f"kind/{k}"] for k in SCORE_KINDS} == {k: kinds.count(k) / 4 for k in SCORE_KINDS}
    assert extra == [("kind", kinds)]
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


def test_kind_shares_and_the_console_summary():
    from veritas_rl.envs import Score

    scores = [Score(1.0), Score.zero("x", kind="timeout"), Score.zero("y", kind="wrong"), Score.zero("z", kind="wrong")]
    shares = kind_shares(scores)
    assert list(shares) == list(SCORE_KINDS) and sum(shares.values()) == 1.0
    assert shares["wrong"] == 0.5 and shares["timeout"] == 0.25 and shares["hedge"] == 0.0
    logs = {"reward": 0.25, **{f"kind/{k}": v for k, v in shares.items()}}
    assert kind_summary(logs) == "wrong 0.50 timeout 0.25"
    assert kind_summary({"loss": 1.0}) == ""


def _rows(env, n=2):
    return [task_row(env, env.task(env.task_id_at(i))) for i in range(n)]


@pytest.mark.parametrize(
    "column,value,match",
    [
        ("env_config", "task_types=sudoku", r"the `env_config` column is not valid JSON"),
        ("env_config", "[1]", r"the `env_config` column must be a JSON object"),
        ("env_config", 5, r"the `env_config` column must be a mapping or its JSON"),
        ("task", ["a"], r"the `task` column must hold a serialised Task"),
        ("task", '{"env": "answer-tag", "task_id": 1}', r"missing key\(s\) 'prompt', 'ground_truth'"),
        ("task", "{oops", r"serialised task is not valid JSON"),
        ("env", 3, r"env must be a registered env name"),
        ("env", "lgc-v2", r"belongs to env 'answer-tag', but the request routes it to env 'lgc-v2'"),
    ],
)
def test_wiring_errors_in_rows_raise_value_error(column, value, match):
    env = make("answer-tag")
    rows = _rows(env)
    columns = {k: [r[k] for r in rows] for k in ("task", "env", "env_config")}
    columns[column] = [value] * len(rows)
    if value == "lgc-v2":  # the row's task is an answer-tag task: routed to lgc-v2 (default config) it must fail
        columns["env_config"] = ["{}"] * len(rows)
    with pytest.raises(ValueError, match=match):
        EnvReward()(completions=["<answer>1</answer>"] * len(rows), **columns)


def test_bad_task_id_column_raises_value_error():
    with pytest.raises(ValueError, match=r"the `task_id` column must be an integer, got str: 'abc'"):
        EnvReward("answer-tag", {})(completions=["x"], task_id=["abc"])
    with pytest.raises(ValueError, match=r"unknown config key\(s\) 'colour'"):
        EnvReward("answer-tag", {"colour": 1})(completions=["x"], task_id=[0])


def test_a_stuck_score_times_out_and_is_logged_as_a_rate(monkeypatch):
    from tests.envs.test_guard import NAME, GuardTestConfig, GuardTestEnv

    base.register_env(NAME, GuardTestEnv, GuardTestConfig)
    monkeypatch.setenv("VERITAS_SCORE_TIMEOUT_S", "1")
    reset_guard()
    try:
        logged = []
        texts = ["42", "bigint", "41", "42"]
        values = EnvReward(NAME, {})(completions=texts, task_id=[0, 1, 2, 3],
                                     log_metric=lambda k, v: logged.append((k, v)))
        assert values == [1.0, 0.0, 0.0, 1.0]
        metrics = dict(logged)
        assert metrics["kind/timeout"] == 0.25 and metrics["kind/wrong"] == 0.25 and metrics["kind/correct"] == 0.5
    finally:
        reset_guard()
        base._REGISTRY.pop(NAME, None)
        base._ALIASES.pop(NAME, None)


def test_console_line_shows_the_gradient_norm_and_appends_metrics(tmp_path, caplog):
    import json
    import logging

    from transformers import TrainerState, TrainingArguments

    from veritas_rl.backends.trl.callbacks import ConsoleProgress

    state = TrainerState(max_steps=30, global_step=12, is_world_process_zero=True)
    bar = ConsoleProgress(tmp_path / "metrics.jsonl")
    bar._t0, bar._tokens0 = 0.0, None
    logs = {"reward": 0.4375, "success_rate": 0.41, "grad_norm": 0.5213, "kind/wrong": 0.5, "kind/correct": 0.5}
    with caplog.at_level(logging.INFO, logger="veritas_rl.backends.trl"):
        bar.on_log(TrainingArguments(output_dir=str(tmp_path), report_to=[]), state, None, logs=logs)
    line = caplog.records[-1].getMessage()
    assert line.startswith("step 12/30 | reward 0.438 | success 0.41 | KL - | wrong 0.50 | grad 0.521 | ")
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"step": 12, **logs}
    # a non-finite norm (the first sign of a blown-up update) is printed as it is, not hidden
    with caplog.at_level(logging.INFO, logger="veritas_rl.backends.trl"):
        bar.on_log(TrainingArguments(output_dir=str(tmp_path), report_to=[]), state, None,
                   logs={"reward": 0.0, "grad_norm": float("nan")})
    assert "| grad nan |" in caplog.records[-1].getMessage()

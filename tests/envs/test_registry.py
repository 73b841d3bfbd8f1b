"""Registry-wide contract: every registered env, its oracle, garbage, determinism and config errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.envs.env_configs import config_for
from veritas_rl.envs import Score, Task, make, names, resolve_name
from veritas_rl.envs.base import MAX_COMPLETION_CHARS, split_thinking

ENV_NAMES = names()
GARBAGE = {
    "empty": "",
    "whitespace": "  \n\t ",
    "unclosed-think": "<think>the answer is 24, \\boxed{24} <answer>24</answer>",
    "random-text": "lorem ipsum dolor sit amet, qwzx 17 ### ??? ```diff\n--- nothing",
    "one-megabyte": "9 " * 500_000,
}


@pytest.fixture(scope="module", params=ENV_NAMES)
def env(request, tmp_path_factory):
    return make(request.param, **config_for(request.param, tmp_path_factory))


def _tasks(env, n=4):
    return [env.task(env.task_id_at(i * 7919 % env.num_tasks)) for i in range(min(n, env.num_tasks))]


def test_expected_envs_registered():
    for name in ("lgc-v2", "reasoning-gym", "math", "answer-tag", "openspiel", "swe-synth"):
        assert name in ENV_NAMES, f"{name} not registered: {ENV_NAMES}"


def test_aliases_resolve():
    assert resolve_name("lgc_v2") == "lgc-v2"
    assert resolve_name("gsm8k") == "math"
    assert resolve_name("open_spiel") == "openspiel"
    assert resolve_name("swebench") == "swe-synth"


def test_unknown_env_names_choices():
    with pytest.raises(ValueError, match=r"unknown env 'nope'.*lgc-v2"):
        make("nope")


@pytest.mark.parametrize("name", ENV_NAMES)
def test_unknown_config_key_names_key_and_choices(name):
    with pytest.raises(ValueError, match=r"unknown config key.*'no_such_key'.*valid keys"):
        make(name, no_such_key=1)


def test_oracle_scores_one(env):
    for task in _tasks(env):
        oracle = env.oracle(task)
        assert oracle is not None, f"{env.name}: no oracle for task {task.task_id}"
        score = env.score(task, oracle)
        assert isinstance(score, Score)
        assert score.value == 1.0, (env.name, task.task_id, score.info)
        # the same answer behind a closed think block still scores 1.0
        assert env.score(task, "<think>let me see</think>" + oracle).value == 1.0


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_garbage_scores_zero_with_reason(env, kind):
    for task in _tasks(env, 2):
        score = env.score(task, GARBAGE[kind])
        assert score.value == 0.0, (env.name, kind, score.info)
        assert score.info.get("reason"), (env.name, kind, score.info)


def test_non_string_completion_scores_zero(env):
    task = _tasks(env, 1)[0]
    for bad in (None, 42, ["list"]):
        assert env.score(task, bad).value == 0.0


def test_task_is_json_round_trip(env):
    for task in _tasks(env):
        data = json.loads(json.dumps(task.to_dict()))
        assert Task.from_dict(data) == task
        assert task.env == env.name
        assert task.prompt and all({"role", "content"} <= set(m) for m in task.prompt)


def test_same_id_same_task_in_another_process(env, tmp_path_factory):
    tasks = _tasks(env, 3)
    config = config_for(env.name, tmp_path_factory)
    code = (
        "import json,sys; from veritas_rl.envs import make; "
        f"env = make({env.name!r}, **json.loads(sys.argv[1])); "
        "print(json.dumps([env.task(int(t)).to_dict() for t in sys.argv[2:]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config), *[str(t.task_id) for t in tasks]],
        capture_output=True, text=True, check=True, env={**__import__("os").environ, "PYTHONHASHSEED": "123"},
    )
    assert json.loads(out.stdout) == [json.loads(json.dumps(t.to_dict())) for t in tasks]


def test_split_thinking():
    assert split_thinking("a</think>b</think> c") == (" c", "ok")
    assert split_thinking("<think> never closed")[0] is None
    assert split_thinking("plain") == ("plain", "ok")


def test_overlong_completion_is_rejected_before_parsing(env):
    task = _tasks(env, 1)[0]
    oracle = env.oracle(task) or ""
    score = env.score(task, oracle + " " * (MAX_COMPLETION_CHARS + 1))
    assert score.value == 0.0 and "longer than" in score.info["reason"]


def test_cached_env_follows_the_environment_variables_its_config_reads(monkeypatch):
    from veritas_rl.envs import make_cached

    monkeypatch.setenv("GAME_TYPES", "tic_tac_toe")
    first = make_cached("openspiel", {"num_tasks_per_case": 3})
    assert first.cases == ("tic_tac_toe",)
    assert make_cached("openspiel", {"num_tasks_per_case": 3}) is first  # same config, same process: reused
    monkeypatch.setenv("GAME_TYPES", "no_such_game")
    with pytest.raises(ValueError, match=r"\$GAME_TYPES: 'no_such_game'"):
        make_cached("openspiel", {"num_tasks_per_case": 3})

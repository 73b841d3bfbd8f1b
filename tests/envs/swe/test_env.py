"""swe-synth end to end on the real git fixture: rewards, result cache, prompt, configuration."""

from __future__ import annotations

import pickle

import pytest

from tests.envs.swe_fixture import fenced
from veritas_rl.envs import make


def test_gold_patch_scores_one_with_the_default_test_command(fx):
    env = make("swebench", **fx.config(test_cmd=None))
    task = env.task(0)
    score = env.score(task, env.oracle(task))
    assert score.value == 1.0, score.info
    assert score.info["f2p_passed"] == ["tests/test_calc.py::test_clamp_above"]
    assert score.info["p2p_broken"] == []


def test_patch_that_does_not_apply_scores_zero_without_running_tests(env, fx):
    runs = env.test_runs
    score = env.score(env.task(0), fenced(fx.patches["misapplies0"]))
    assert score.value == 0.0
    assert "patch does not apply" in score.info["reason"] and "calc/__init__.py" in score.info["reason"]
    assert env.test_runs == runs


def test_identical_patches_are_scored_once(fx, tmp_path):
    env = make("swe-synth", **fx.config(result_cache_dir=str(tmp_path / "results")))
    task = env.task(1)
    first = env.score(task, env.oracle(task))
    assert (env.test_runs, env.cache_hits) == (1, 0)
    # same diff, different surrounding text: still a cache hit
    again = env.score(task, "<think>hmm</think>I would change parse_bool.\n" + env.oracle(task))
    assert (env.test_runs, env.cache_hits) == (1, 1)
    assert again.value == first.value == 1.0
    # a new env (another worker) reads the on-disk cache
    other = make("swe-synth", **fx.config(result_cache_dir=str(tmp_path / "results")))
    assert other.score(other.task(1), other.oracle(other.task(1))).value == 1.0
    assert (other.test_runs, other.cache_hits) == (0, 1)
    assert len(list((tmp_path / "results").rglob("*.json"))) == 1


def test_concurrent_identical_patches_run_the_tests_once(fx):
    from concurrent.futures import ThreadPoolExecutor

    env = make("swe-synth", **fx.config())
    task = env.task(0)
    with ThreadPoolExecutor(4) as pool:  # as verl's reward loop scores a GRPO group
        scores = list(pool.map(lambda _: env.score(task, env.oracle(task)), range(4)))
    assert [s.value for s in scores] == [1.0] * 4
    assert (env.test_runs, env.cache_hits) == (1, 3)
    clone = pickle.loads(pickle.dumps(env))  # Ray ships envs between processes; the results travel along
    assert clone.score(task, env.oracle(task)).value == 1.0 and clone.test_runs == 1


def test_prompt_has_the_issue_and_code_context_within_budget(fx):
    task = make("swe-synth", **fx.config()).task(0)
    content = task.prompt[0]["content"]
    assert "clamp(11, 0, 10) returns 11" in content and "```diff" in content
    assert "[start of calc/__init__.py]" in content and "def clamp(x, lo, hi):" in content
    assert "if x > hi" not in content  # the code is shown at base_commit, not fixed
    small = make("swe-synth", **fx.config(code_context_chars=120)).task(0).prompt[0]["content"]
    context = small.split("<code>\n", 1)[1].split("</code>", 1)[0]
    assert "(truncated)" in context and len(context) <= 120 + len("\n... (truncated)\n")
    bare = make("swe-synth", **fx.config(include_code_context=False)).task(0).prompt[0]["content"]
    assert "<code>" not in bare and "clamp(11, 0, 10) returns 11" in bare


@pytest.mark.parametrize(
    "override, message",
    [
        ({"backend": "podman"}, r"backend='podman' is not valid; choose from: local, docker"),
        ({"reward_mode": "dense"}, r"reward_mode='dense' is not valid; choose from: binary, partial"),
        ({"task_id_range": [5, 2]}, r"task_id_range"),
        ({"cache_dir": None}, r"use_cache_only=True needs cache_dir"),
        ({"repos_dir": "/nonexistent/repos"}, r"repos_dir='/nonexistent/repos' is not a directory"),
        ({"test_timeout_s": 0}, r"test_timeout_s"),
    ],
)
def test_bad_config_fails_at_construction(fx, override, message):
    with pytest.raises(ValueError, match=message):
        make("swe-synth", **fx.config(**override))


def test_local_backend_without_the_clone_says_how_to_clone(fx, tmp_path):
    env = make("swe-synth", **fx.config(repos_dir=str(tmp_path)))
    with pytest.raises(ValueError, match=r"git clone https://github.com/veritas-fixtures/calc"):
        env.score(env.task(0), env.oracle(env.task(0)))

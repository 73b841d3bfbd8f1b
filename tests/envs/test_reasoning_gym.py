"""reasoning-gym: any dataset by name, its own score_answer on the last <answer> tag, config errors."""

from __future__ import annotations

import pytest

from veritas_rl.envs import make


@pytest.fixture(scope="module")
def env():
    return make("reasoning-gym")


def test_default_dataset_tasks_and_scoring(env):
    import reasoning_gym

    reference = reasoning_gym.create_dataset("chain_sum", seed=0, size=100)
    for i in (0, 3, 42):
        task = env.task(i)
        item = reference[i]
        assert task.prompt[0]["content"].startswith(item["question"])
        assert "<answer>" in task.prompt[0]["content"]
        assert task.ground_truth == item["answer"]
        assert task.extra == {"dataset": "chain_sum", "index": i}
        assert env.score(task, env.oracle(task)).value == 1.0
        assert env.score(task, f"sum it up... <answer> {item['answer']} </answer>").value == 1.0
        wrong = env.score(task, f"<answer>{int(item['answer']) + 1}</answer>")
        assert wrong.value == 0.0 and wrong.info["reason"] == "reasoning-gym scored the answer 0"


def test_answer_tags_different_answers_are_a_hedge_the_same_answer_is_not(env):
    task = env.task(7)
    gold = task.ground_truth
    for completion in (f"<answer>{gold}</answer> hmm, no: <answer>-1</answer>", f"<answer>-1</answer> no: <answer>{gold}</answer>"):
        score = env.score(task, completion)
        assert (score.value, score.kind) == (0.0, "hedge")
    # compared by value: 156 and 156.0 are one answer; the prompt's format example is not an answer
    assert env.score(task, f"<answer>{gold}</answer> so <answer>{gold}.0</answer>").value == 1.0
    assert env.score(task, f"format: <answer>your answer</answer>. <answer>{gold}</answer>").value == 1.0
    missing = env.score(task, f"{gold}")
    assert (missing.info["reason"], missing.kind) == ("no <answer>...</answer> tag", "no_answer")
    empty = env.score(task, "<answer>  </answer>")
    assert (empty.info["reason"], empty.kind) == ("empty <answer> tag", "no_answer")


def test_other_dataset_with_its_own_verifier_accepts_alternatives():
    env = make("rg", dataset="puzzle24", size=50, seed=3, binary=False)  # partial credit kept (opt-in)
    task = env.task(4)
    assert env.score(task, env.oracle(task)).value == 1.0
    # a different expression that also makes 24 with the same numbers: puzzle24's scorer accepts it
    import itertools

    from veritas_rl.envs.lgc_v2.game_of_24 import solve_24

    numbers = [int(n) for n in task.prompt[0]["content"].split("using ")[1].split(".")[0].split(", ")]
    other = solve_24(tuple(numbers))
    assert other is not None and other.replace(" ", "") != task.ground_truth.replace(" ", "")
    assert env.score(task, f"<answer>{other}</answer>").value == 1.0
    # the task's four numbers, not 24: reasoning-gym's 0.01 for a well-formed attempt
    a, b, c, d = numbers
    partial = env.score(task, f"<answer>{a}+{b}+{c}+{d}</answer>")
    assert 0.0 < partial.value < 1.0 and partial.info["reason"] == "partial credit from reasoning-gym"
    strict = make("rg", dataset="puzzle24", size=50, seed=3)  # the default: binary
    assert strict.score(task, f"<answer>{a}+{b}+{c}+{d}</answer>").value == 0.0
    # numbers the task does not give are illegal, whatever they make
    other_numbers = env.score(task, "<answer>1+1+1+1</answer>")
    assert (other_numbers.value, other_numbers.kind) == (0.0, "illegal") or sorted(numbers) == [1, 1, 1, 1]
    assert list(itertools.islice((strict.task_id_at(i) for i in range(3)), 3)) == [0, 1, 2]




def test_dataset_config_and_seed_take_effect():
    a = make("rg", dataset="basic_arithmetic", dataset_config={"min_terms": 2, "max_terms": 2, "operators": ["+"]})
    for i in range(10):
        question = a.task(i).prompt[0]["content"].split("\n")[0]
        assert question.count("+") == 1 and "*" not in question
    assert make("rg", seed=1).task(0) != make("rg", seed=2).task(0)
    assert make("rg", size=7).num_tasks == 7
    with pytest.raises(ValueError, match="outside"):
        make("rg", size=7).task(7)


def test_unparseable_answer_scores_zero_with_reason():
    env = make("rg", dataset="cryptarithm", size=5)
    task = env.task(0)
    assert env.score(task, env.oracle(task)).value == 1.0
    # cryptarithm's scorer gets a mapping it cannot parse: 0.0 with a reason, not an exception
    score = env.score(task, "<answer>A=1=2,B</answer>")
    assert score.value == 0.0 and score.info["reason"] and score.kind == "wrong"


def test_task_from_another_config_is_refused():
    a, b = make("rg", seed=1), make("rg", seed=2)
    task = a.task(0)
    assert a.task(0).ground_truth != b.task(0).ground_truth
    with pytest.raises(ValueError, match="not made by this env's config"):
        b.score(task, "<answer>1</answer>")


@pytest.mark.parametrize(
    "config, match",
    [
        ({"dataset": "nope"}, r"dataset='nope' is not a reasoning-gym dataset; choose from: .*chain_sum"),
        ({"dataset_config": {"colour": 1}}, r"unknown option\(s\) \['colour'\] for 'chain_sum'; valid: min_terms"),
        ({"dataset_config": {"min_terms": 0}}, r"rejected by reasoning-gym 'chain_sum': min_terms must be positive"),
        ({"dataset_config": {"seed": 3}}, r"set 'seed' with the env's own `seed` key"),
        ({"size": 0}, r"size=0"),
        ({"dataset_config": [1]}, r"dataset_config"),
        ({"size": True}, r"'?size'?.*True"),
        ({"seed": True}, r"'?seed'?.*True"),
        ({"seed": 1.5}, r"'?seed'?.*1\.5"),
        ({"binary": 2}, r"'?binary'?.*2"),
        # reasoning-gym's typed options: a bool is not an int, a string not a number, a list holds strings
        ({"dataset_config": {"min_terms": True}}, r"dataset_config.min_terms=True for 'chain_sum': expected an integer"),
        ({"dataset_config": {"min_terms": 2.5}}, r"dataset_config.min_terms=2.5 .*expected an integer"),
        (
            {"dataset": "basic_arithmetic", "dataset_config": {"operators": "+"}},
            r"dataset_config.operators='\+' for 'basic_arithmetic': expected a list",
        ),
        (
            {"dataset": "basic_arithmetic", "dataset_config": {"allow_parentheses": "no"}},
            r"dataset_config.allow_parentheses='no' .*expected a boolean",
        ),
        ({"dataset": "binary_matrix", "dataset_config": {"p_zero": "0.5"}}, r"dataset_config.p_zero='0.5' .*expected a number"),
    ],
)
def test_config_errors(config, match):
    with pytest.raises(ValueError, match=match):
        make("reasoning-gym", **config)


def test_config_class_refuses_booleans_and_fractional_numbers_directly():
    from veritas_rl.envs.reasoning_gym import ReasoningGymConfig

    for bad in ({"size": True}, {"seed": False}, {"size": 1.5}, {"seed": 1.5}, {"binary": 1}):
        key, value = next(iter(bad.items()))
        with pytest.raises(ValueError, match=rf"^{key}={value!r}; expected"):
            ReasoningGymConfig(**bad)
    # a float option where reasoning-gym's field is a float: an int is a number
    assert make("rg", dataset="binary_matrix", size=3, dataset_config={"p_zero": 1}).num_tasks == 3


def test_copying_the_prompt_scores_zero(env):
    for i in range(10):
        task = env.task(i)
        for completion in (task.prompt[0]["content"], f"<answer>{env.entry(i)['question']}</answer>"):
            score = env.score(task, completion)
            assert (score.value, score.kind) == (0.0, "no_answer")

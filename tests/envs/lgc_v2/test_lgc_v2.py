"""lgc-v2, the package face: id scheme, the task table, every type's oracle and garbage, config errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import time

import pytest

from tests.envs.lgc_v2.helpers import ALL_TYPES, task_of
from veritas_rl.envs import make
from veritas_rl.envs.base import Task, build_config
from veritas_rl.envs.lgc_v2 import (
    SEEDS_PER_TYPE,
    TASK_TABLE,
    TASK_TYPES,
    LgcV2Config,
    TaskType,
    make_task_id,
    split_task_id,
)

# -- id scheme and the task table ----------------------------------------------------------------


def test_task_id_scheme(env):
    assert make_task_id("dyck_language", 5) == 5
    assert make_task_id("game_of_24", 5) == 100_000_005
    assert make_task_id("sudoku", 123) == 7 * SEEDS_PER_TYPE + 123
    assert split_task_id(8 * SEEDS_PER_TYPE + 42) == ("dyck_language_reasoning_errors", 42)
    with pytest.raises(ValueError, match="type id 5"):
        split_task_id(5 * SEEDS_PER_TYPE)
    task = env.task(6 * SEEDS_PER_TYPE + 9)
    assert task.extra["task_type"] == "boolean_expressions" and task.extra["seed"] == 9
    assert task.task_id == 6 * SEEDS_PER_TYPE + 9


def test_interleaving_follows_type_ids_whatever_the_listing_order():
    env = make("lgc-v2", task_types=["sudoku", "dyck_language", "game_of_24"])
    assert env.num_tasks == 3 * SEEDS_PER_TYPE
    ids = [env.task_id_at(i) for i in range(7)]
    assert ids == [0, 100_000_000, 700_000_000, 1, 100_000_001, 700_000_001, 2]
    again = make("lgc-v2", task_types=["game_of_24", "sudoku", "dyck_language"])
    assert [again.task_id_at(i) for i in range(7)] == ids
    with pytest.raises(IndexError):
        env.task_id_at(env.num_tasks)


def test_default_serves_all_types_and_rejects_unconfigured_type():
    env = make("lgc-v2")
    assert {split_task_id(env.task_id_at(i))[0] for i in range(len(TASK_TYPES))} == set(TASK_TYPES)
    only = make("lgc-v2", task_types="sudoku")  # a bare string, as from a CLI, is one type
    assert only.types == ("sudoku",)
    assert make("lgc-v2", task_types="sudoku, game_of_24").types == ("game_of_24", "sudoku")
    with pytest.raises(ValueError, match="not in task_types"):
        only.task(make_task_id("game_of_24", 1))


def test_knobs_change_the_tasks():
    small = make("lgc-v2", task_types=["sudoku"], sudoku_min_empty=5, sudoku_max_empty=5)
    big = make("lgc-v2", task_types=["sudoku"], sudoku_min_empty=60, sudoku_max_empty=60)
    assert small.task(700_000_003).extra["puzzle"].count(".") == 5
    assert big.task(700_000_003).extra["puzzle"].count(".") == 60
    short = make("lgc-v2", task_types=["dyck_language"], dyck_min_length=4, dyck_max_length=4, dyck_num_types=1)
    seq = short.task(17).extra["sequence"]
    assert len(seq) == 4 and set(seq) <= set("()")
    g = make("lgc-v2", task_types=["game_of_24"], game24_min_value=5, game24_max_value=9)
    for seed in range(20):
        assert all(5 <= n <= 9 for n in g.task(make_task_id("game_of_24", seed)).extra["numbers"])


def test_the_table_lists_each_type_once_under_its_id():
    assert list(TASK_TYPES) == [t.name for t in TASK_TABLE.values()]
    assert sorted(TASK_TABLE) == [0, 1, 2, 3, 4, 6, 7, 8]  # 5 is unused
    assert len(set(TASK_TYPES)) == len(TASK_TABLE)
    for type_id, task_type in TASK_TABLE.items():
        assert isinstance(task_type, TaskType)
        assert TASK_TYPES[task_type.name] == type_id
        for seed in (0, 7, SEEDS_PER_TYPE - 1):
            assert split_task_id(make_task_id(task_type.name, seed)) == (task_type.name, seed)


def test_scoring_falls_back_to_the_task_id_and_refuses_foreign_tasks(env):
    task = task_of(env, "operation", 3)
    bare = Task.from_dict({**task.to_dict(), "extra": {k: v for k, v in task.extra.items() if k != "task_type"}})
    score = env.score(bare, env.oracle(task))
    assert score.value == 1.0 and score.info["task_type"] == "operation"
    foreign = dataclasses.replace(task, task_id=5 * SEEDS_PER_TYPE, extra={"task_type": "chess"})
    assert env.oracle(foreign) is None
    with pytest.raises(ValueError, match="not an lgc-v2 task"):
        env.score(foreign, "\\boxed{1}")


#: sha256 (first 16 hex digits) of the JSON of the tasks of seeds 0, 1, 12_345 and 99_999_999 of each type
#: (default config), as the single-module lgc_v2.py made them before the package split. Datasets and
#: checkpoints refer to tasks by id, so changing a task is a deliberate act: update these with a note.
#: (cryptarithm's come from reasoning-gym, pinned in pyproject.toml.)
PINNED_TASKS = {
    "dyck_language": "bd6f946ef53254d9",
    "game_of_24": "a5edfb85a0978d34",
    "operation": "8d4833b531576203",
    "cryptarithm": "ae9a25ed5e5173c0",
    "dyck_language2": "6543fb4230bd8891",
    "boolean_expressions": "6551ca651ed63c99",
    "sudoku": "385b7d6b434597ce",
    "dyck_language_reasoning_errors": "2c95f6ef11fcdd02",
}


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_tasks_are_the_pinned_ones(env, task_type):
    tasks = [task_of(env, task_type, seed).to_dict() for seed in (0, 1, 12_345, 99_999_999)]
    digest = hashlib.sha256(json.dumps(tasks, sort_keys=True).encode()).hexdigest()[:16]
    assert digest == PINNED_TASKS[task_type]


def test_env_pickles_and_serves_the_same_tasks(env):
    again = pickle.loads(pickle.dumps(env))
    for task_type in ALL_TYPES:
        assert again.task(make_task_id(task_type, 11)) == task_of(env, task_type, 11)


# -- oracle and garbage for every type ----------------------------------------------------------


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_oracle_scores_one_and_garbage_zero(env, task_type):
    for seed in range(25):
        task = task_of(env, task_type, seed)
        assert task.extra["task_type"] == task_type
        oracle = env.oracle(task)
        score = env.score(task, oracle)
        assert score.value == 1.0, (task_type, seed, oracle, score.info)
        for bad in ("", "I don't know", "\\boxed{}", "Answer:", "```\n```", "\\boxed{" * 1000, "<think>" + oracle):
            s = env.score(task, bad)
            assert s.value == 0.0 and s.info["reason"], (task_type, bad[:20], s.info)


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_long_completion_scores_fast(env, task_type):
    task = task_of(env, task_type, 1)
    filler = ("( ) [ 9 \\boxed{ ``` Answer: " * 7000)[:190_000]
    start = time.perf_counter()
    for text in (filler, filler + env.oracle(task), "9 " * 95_000):
        env.score(task, text)
    assert time.perf_counter() - start < 0.5
    assert env.score(task, filler + "\n" + env.oracle(task)).value == 1.0


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_each_type_prompt_states_its_format(env, task_type):
    text = task_of(env, task_type, 2).prompt[0]["content"]
    marker = {"dyck_language": "Answer:", "sudoku": "```"}.get(task_type, "\\boxed{")
    assert marker in text


@pytest.mark.parametrize("task_type", ALL_TYPES)
def test_prompt_has_no_example_a_parrot_could_copy_for_reward(env, task_type):
    """Format instructions carry no concrete answer: copying the prompt's last slot never scores."""
    for seed in range(30):
        task = task_of(env, task_type, seed)
        text = task.prompt[0]["content"]
        assert env.score(task, text).value == 0.0, (task_type, seed)
        assert env.score(task, text.splitlines()[-1]).value == 0.0, (task_type, seed)


# -- config errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, match",
    [
        ({"task_types": ["nope"]}, r"task_types: 'nope' is not valid; choose from: dyck_language, game_of_24"),
        ({"task_types": []}, r"task_types is empty; choose from"),
        ({"task_types": ["sudoku", "sudoku"]}, r"twice"),
        ({"dyck_num_types": 5}, r"dyck_num_types=5 is not valid; expected an integer in \[1, 4\]"),
        ({"dyck_min_length": 10, "dyck_max_length": 5}, r"dyck_min_length=10 is greater than dyck_max_length=5"),
        ({"sudoku_max_empty": 90}, r"sudoku_max_empty=90"),
        ({"cryptarithm_min_words": 1}, r"cryptarithm_min_words=1"),
        ({"game24_min_value": 1, "game24_max_value": 2}, r"game24_min_value=1, game24_max_value=2: no solvable"),
        ({"operation_max_ops": "many"}, r"config key 'operation_max_ops': expected an integer"),
        ({"difficulty": 3}, r"unknown config key\(s\) 'difficulty'.*valid keys: .*task_types"),
    ],
)
def test_config_errors(config, match):
    with pytest.raises(ValueError, match=match):
        make("lgc-v2", **config)


# -- config values through build_config (base._coerce): no silent truncation or truthiness ----------


@pytest.mark.parametrize(
    "config, match",
    [
        ({"dyck_max_length": 12.7}, r"config key 'dyck_max_length': expected an integer, got 12\.7 \(not a whole"),
        ({"sudoku_max_empty": "40.5"}, r"config key 'sudoku_max_empty': expected an integer, got '40\.5'"),
        ({"dyck_max_length": True}, r"config key 'dyck_max_length': expected an integer, got the boolean True"),
        ({"operation_max_ops": False}, r"config key 'operation_max_ops': expected an integer, got the boolean False"),
        ({"game24_max_value": float("inf")}, r"config key 'game24_max_value': expected an integer, got inf"),
        ({"sudoku_unique": 2}, r"config key 'sudoku_unique': expected a boolean \(true/false.*got 2"),
        ({"sudoku_unique": "maybe"}, r"config key 'sudoku_unique': expected a boolean.*got 'maybe'"),
        ({"cryptarithm_allow_leading_zero": 1.0}, r"'cryptarithm_allow_leading_zero': expected a boolean.*got 1\.0"),
        ({"cryptarithm_allow_leading_zero": -1}, r"'cryptarithm_allow_leading_zero': expected a boolean.*got -1"),
    ],
)
def test_config_values_that_would_change_meaning_are_refused(config, match):
    with pytest.raises(ValueError, match=match):
        make("lgc-v2", **config)


def test_whole_numbers_and_boolean_spellings_are_accepted():
    cfg = build_config(LgcV2Config, {"dyck_max_length": 12.0, "sudoku_max_empty": "40", "boolean_max_depth": 5})
    assert (cfg.dyck_max_length, cfg.sudoku_max_empty, cfg.boolean_max_depth) == (12, 40, 5)
    assert type(cfg.dyck_max_length) is int and type(cfg.sudoku_max_empty) is int
    assert make("lgc-v2", dyck_max_length=12.0).config == make("lgc-v2", dyck_max_length=12).config
    for spelling, flag in [(True, True), (False, False), ("true", True), ("False", False), ("1", True), ("0", False),
                           (" yes ", True), ("off", False), (1, True), (0, False)]:
        cfg = build_config(LgcV2Config, {"sudoku_unique": spelling, "cryptarithm_allow_leading_zero": spelling})
        assert cfg.sudoku_unique is flag and cfg.cryptarithm_allow_leading_zero is flag, spelling


def test_a_config_built_directly_refuses_a_non_boolean_flag():
    with pytest.raises(ValueError, match=r"sudoku_unique=2 is not valid; expected true or false"):
        LgcV2Config(sudoku_unique=2)
    with pytest.raises(ValueError, match=r"dyck_max_length=True is not valid; expected an integer"):
        LgcV2Config(dyck_max_length=True)


def test_a_float_key_refuses_a_boolean():
    @dataclasses.dataclass(frozen=True)
    class Knobs:
        temperature: float = 1.0
        sizes: tuple[int, ...] = (1,)

    assert build_config(Knobs, {"temperature": "0.5", "sizes": [2, 3.0, "4"]}) == Knobs(0.5, (2, 3, 4))
    with pytest.raises(ValueError, match=r"config key 'temperature': expected a number, got the boolean True"):
        build_config(Knobs, {"temperature": True})
    with pytest.raises(ValueError, match=r"config key 'sizes': expected an integer, got 2\.5"):
        build_config(Knobs, {"sizes": [1, 2.5]})


def test_aliases():
    for alias in ("lgc_v2", "logic-v2", "logic_v2"):
        assert make(alias, task_types=["sudoku"]).name == "lgc-v2"


def test_prompts_fit_the_default_prompt_budget(env, smollm2_tokenizer):
    """Every default-config prompt fits the launchers' default data.max_prompt_length (1024 tokens)."""
    longest = {}
    for task_type in ALL_TYPES:
        lengths = []
        for seed in range(0, 400, 50):
            task = task_of(env, task_type, seed)
            ids = smollm2_tokenizer.apply_chat_template(task.prompt, add_generation_prompt=True, tokenize=True)
            ids = ids["input_ids"] if hasattr(ids, "keys") else ids
            lengths.append(len(ids))
        longest[task_type] = max(lengths)
        assert 20 < max(lengths) <= 1024, (task_type, max(lengths))
    # the trace of the reasoning-errors task is the longest prompt, sudoku's grid next
    assert longest["dyck_language_reasoning_errors"] > longest["dyck_language"]


@pytest.mark.parametrize("task_type", ["boolean_expressions", "operation", "game_of_24", "cryptarithm",
                                       "dyck_language_reasoning_errors"])
def test_boxing_several_different_answers_is_a_hedge_that_scores_zero(task_type):
    # Seen on the GPU: GRPO taught SmolLM2 to answer "\boxed{True}\n\boxed{False}" to every boolean task.
    env = make("lgc-v2", task_types=[task_type])
    for i in range(5):
        task = env.task(env.task_id_at(i))
        oracle = env.oracle(task)
        assert env.score(task, oracle).value == 1.0
        decoy = "\\boxed{True}" if "\\boxed{False}" in oracle else "\\boxed{False}"
        for hedge in (f"{decoy}\n{oracle}", f"{oracle}\n{decoy}"):
            score = env.score(task, hedge)
            assert score.value == 0.0 and "several different" in score.info["reason"], (hedge, score.info)
        # repeating the same boxed answer is not a hedge
        assert env.score(task, f"{oracle} so {oracle}").value == 1.0

"""The curriculum core: promotion on a scripted score stream, replay share and priorities, retirement,
resume and timing independence of the schedule, and the validation of curriculum files."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from veritas_rl.curriculum import (
    Curriculum,
    Draw,
    FailureReplay,
    ReplaySettings,
    Schedule,
    build_schedule,
    ladder_names,
    load_curriculum,
    parse_curriculum,
    stage_configs,
)

SPACE = (10_000, lambda i: i)  # a stage's dense index space (task id = index)


def three_stages(**replay):
    return parse_curriculum({
        "curriculum": {"stages": [
            {"name": "a", "env_config": {}, "promote": {"threshold": 0.5, "window": 8, "min_steps": 3}},
            {"name": "b", "env_config": {}, "promote": {"threshold": 0.75, "window": 4}},
            {"name": "c", "env_config": {}},
        ]},
        "failure_replay": replay,
    })


def step(cur: Curriculum, slot0: int, outcomes: list[list[float]]):
    results = [(cur.plan(slot0 + i), scores) for i, scores in enumerate(outcomes)]
    return cur.apply(results)


def test_promotion_happens_exactly_when_the_rule_says():
    cur = Curriculum(three_stages(), [SPACE] * 3)
    # 2 draws per step x 2 completions = 4 window entries a step (no replay, no review)
    script = [  # (scores, expected stage after the step)
        ([[1, 1], [1, 1]], 0),  # window 4 < 8
        ([[0, 0], [0, 0]], 0),  # window 8, rate 0.5 >= 0.5 but 2 steps < min_steps 3
        ([[1, 0], [0, 1]], 0),  # rate over the last 8 = (0+0+0+0+1+0+0+1)/8 = 0.25
        ([[1, 1], [1, 1]], 1),  # last 8 = 2/4 + 4/4 -> 0.75 >= 0.5, 4 steps >= 3: promoted at step 4
        ([[1, 1], [0, 1]], 2),  # stage b: window 4 reset, 3/4 = 0.75 >= 0.75 (the boundary counts)
        ([[0, 0], [0, 0]], 2),  # the last stage never promotes
    ]
    slot = 0
    for n, (scores, expected) in enumerate(script, 1):
        events = step(cur, slot, scores)
        slot += 2
        assert cur.stage == expected, f"after step {n}"
        assert bool(events) == (n in (4, 5)), f"step {n}: {events}"
    assert [(p["step"], p["from"], p["to"]) for p in cur.promotions] == [(4, 0, 1), (5, 1, 2)]
    assert cur.promotions[0]["success_rate"] == 0.75
    assert cur.metrics()["curriculum/promotions"] == 2.0


def test_partial_scores_below_success_score_are_failures_and_only_fresh_draws_of_the_stage_count():
    cur = Curriculum(three_stages(), [SPACE] * 3)
    review = Draw(0, 0, 5, "review")
    replayed = Draw(1, 0, 6, "replay")
    cur.apply([(review, [1.0, 1.0]), (replayed, [1.0, 1.0])])
    assert list(cur.window) == []
    cur.apply([(cur.plan(2), [0.99, 1.0])])
    assert list(cur.window) == [0, 1]


def test_schedule_draws_lag_batches_behind_the_feedback():
    spec = three_stages()
    sched = Schedule(Curriculum(spec, [SPACE] * 3), batch_size=2, group_size=2, lag=2)
    assert sched.ready(5) and not sched.ready(6)  # batches 0..2 drawn from the initial state
    outcomes = [[[1, 1], [1, 1]], [[0, 0], [0, 0]], [[1, 0], [0, 1]], [[1, 1], [1, 1]]]
    for b, scores in enumerate(outcomes):
        for i, s in enumerate(scores):
            sched.report(2 * b + i, s)
    assert sched.applied == 4 and sched.curriculum.stage == 1  # promoted after batch 3 (step 4)
    # batch 5 was drawn after batch 2 was applied (stage 0); batch 6 after batch 3 (stage 1)
    assert {sched.draw(s).stage for s in (10, 11)} == {0}
    assert {sched.draw(s).stage for s in (12, 13)} == {1}


def test_replay_share_and_priorities_match_the_settings_over_10000_draws():
    spec = three_stages(enabled=True, fraction=0.3, priority_exponent=2.0, failure_threshold=0.9)
    cur = Curriculum(spec, [SPACE] * 3)
    scores = {101: 0.0, 102: 0.2, 103: 0.4, 104: 0.6}
    for task_id, score in scores.items():
        cur.replay.record(0, task_id, score)
    n = 10_000
    draws = [cur.plan(slot) for slot in range(n)]
    replayed = [d for d in draws if d.source == "replay"]
    share = len(replayed) / n
    # Binomial(10000, 0.3): sd = sqrt(0.3 * 0.7 / 10000) = 0.0046; 4.5 sd = 0.0206 (a false failure ~ 7e-6)
    assert abs(share - 0.3) < 4.5 * math.sqrt(0.3 * 0.7 / n), share
    weights = {t: (1 - s) ** 2 for t, s in scores.items()}  # priority (1 - score) ** exponent
    total = sum(weights.values())
    counts = Counter(d.task_id for d in replayed)
    m = len(replayed)
    for task_id, w in weights.items():
        p = w / total
        # per task: Binomial(m ~ 3000, p); 4.5 sd bounds (sd <= 0.0092), 4 tasks -> false failure < 3e-5
        assert abs(counts[task_id] / m - p) < 4.5 * math.sqrt(p * (1 - p) / m), (task_id, counts[task_id] / m, p)
    assert all(d.stage == 0 for d in replayed) and set(counts) == set(scores)
    # the draws are a pure function of (state, slot, seed): the same again, another seed differs
    assert [cur.plan(slot) for slot in range(200)] == draws[:200]


def test_a_task_leaves_the_buffer_after_its_successes_in_a_row():
    buf = FailureReplay(ReplaySettings(enabled=True, capacity=3, failure_threshold=0.5, retire_after=2))
    assert buf.record(0, 7, 0.0) == "added" and (0, 7) in buf
    assert buf.record(0, 7, 1.0) == "success" and (0, 7) in buf
    assert buf.record(0, 7, 0.25) == "refreshed"  # a failure resets the count
    assert buf.record(0, 7, 0.5) == "success" and (0, 7) in buf  # 0.5 is not below the threshold
    assert buf.record(0, 7, 1.0) == "retired" and (0, 7) not in buf
    assert buf.record(0, 8, 1.0) is None  # a success of a task never buffered changes nothing
    for t in (1, 2, 3, 4):
        buf.record(1, t, 0.0)
    assert list(buf.entries) == [(1, 2), (1, 3), (1, 4)] and buf.evicted == 1  # the oldest left at capacity


def test_buffer_entries_leave_through_the_curriculum_feedback():
    spec = three_stages(enabled=True, fraction=1.0, retire_after=1)
    cur = Curriculum(spec, [SPACE] * 3)
    first = cur.plan(0)
    cur.apply([(first, [0.0, 0.0])])
    assert len(cur.replay) == 1
    again = cur.plan(1)  # fraction 1.0: the buffered task comes back
    assert again.source == "replay" and (again.stage, again.task_id) == (first.stage, first.task_id)
    cur.apply([(again, [1.0, 0.0])])  # mean 0.5 >= failure_threshold 0.5: solved
    assert len(cur.replay) == 0


def _scores_for(draw: Draw) -> list[float]:
    """A fixed 'model': whether it solves a task depends on the task, the stage and the completion."""
    rng = random.Random(f"{draw.stage}:{draw.task_id}")
    p = (0.2, 0.6, 0.9)[draw.stage] if draw.source != "replay" else 0.5
    return [1.0 if rng.random() < p else 0.0 for _ in range(4)]


def _drive(sched: Schedule, batches: range, shuffle: int | None = None) -> list[Draw]:
    stream = []
    for b in batches:
        slots = list(range(b * sched.batch_size, (b + 1) * sched.batch_size))
        draws = [sched.draw(s) for s in slots]
        stream += draws
        reports = [(d.slot, [s]) for d in draws for s in _scores_for(d)]
        if shuffle is not None:  # scores arriving in any order (verl's async reward workers)
            random.Random(shuffle + b).shuffle(reports)
        for slot, score in reports:
            sched.report(slot, score)
    return stream


def _schedule() -> Schedule:
    spec = parse_curriculum({
        "curriculum": {"review_fraction": 0.2, "stages": [
            {"name": "a", "promote": {"threshold": 0.3, "window": 16, "min_steps": 2}},
            {"name": "b", "promote": {"threshold": 0.6, "window": 16, "min_steps": 2}},
            {"name": "c"}]},
        "failure_replay": {"enabled": True, "fraction": 0.3}})
    return Schedule(Curriculum(spec, [SPACE] * 3), batch_size=4, group_size=4, lag=2)


def test_resume_equals_an_uninterrupted_run_and_the_order_of_scores_does_not_matter():
    whole = _schedule()
    uninterrupted = _drive(whole, range(30))
    assert whole.curriculum.stage == 2 and len(whole.curriculum.promotions) == 2  # the stream moved through stages
    assert any(d.source == "replay" for d in uninterrupted) and any(d.source == "review" for d in uninterrupted)

    first = _schedule()
    head = _drive(first, range(12))
    state = first.state_dict()
    resumed = _schedule()
    resumed.load_state_dict(state)
    tail = _drive(resumed, range(12, 30))
    assert head + tail == uninterrupted
    assert resumed.curriculum.state_dict() == whole.curriculum.state_dict()

    shuffled = _schedule()
    assert _drive(shuffled, range(30), shuffle=7) == uninterrupted


def test_resume_refuses_a_state_of_other_settings():
    state = _schedule().state_dict()
    other = Schedule(Curriculum(three_stages(), [SPACE] * 3), batch_size=4, group_size=4, lag=2)
    with pytest.raises(ValueError, match="another curriculum file"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size=4 but this run has batch_size=2"):
        Schedule(_schedule().curriculum, batch_size=2, group_size=4, lag=2).load_state_dict(state)


# -- the file ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc, message", [
    ({"curriculum": {"stages": []}}, r"curriculum.stages must be a non-empty list"),
    ({"curriculm": {}}, r"unknown key\(s\) 'curriculm'; valid keys: curriculum, failure_replay"),
    ({"curriculum": {"stages": [{"name": "a", "env_config": {}}, {"name": "b"}]}},
     r"stages\[0\] \('a'\) needs promote"),
    ({"curriculum": {"stages": [{"name": "a", "promote": {"treshold": 0.5}}, {"name": "b"}]}},
     r"stages\[0\].promote: unknown key\(s\) 'treshold'; valid keys: threshold, window, min_steps"),
    ({"curriculum": {"stages": [{"name": "a", "promote": {"threshold": 1.5}}, {"name": "b"}]}},
     r"threshold=1.5 must be in \(0.0, 1.0\]"),
    ({"failure_replay": {"fraction": -0.1}}, r"failure_replay.fraction=-0.1 must be in \[0.0, 1.0\]"),
    ({"failure_replay": {"capacity": 0}}, r"failure_replay.capacity=0 must be >= 1"),
    ({"failure_replay": {"enabled": "maybe"}}, r"failure_replay.enabled='maybe' is not a boolean"),
])
def test_bad_files_fail_naming_the_key(doc, message):
    with pytest.raises(ValueError, match=message):
        parse_curriculum(doc)


def test_defaults_and_overrides():
    spec = load_curriculum(None, failure_replay=True, replay_overrides={"fraction": 0.5, "capacity": None})
    assert spec.replay == ReplaySettings(enabled=True, capacity=1000, fraction=0.5, priority_exponent=1.0,
                                         failure_threshold=0.5, retire_after=1)
    assert [s.name for s in spec.stages] == ["all"]
    with pytest.raises(ValueError, match="neither a file nor a shipped ladder; ladders: lgc-v2"):
        load_curriculum("no-such-ladder.yaml")


def test_a_bad_stage_config_names_the_stage_and_the_env_keys():
    spec = parse_curriculum({"curriculum": {"stages": [
        {"name": "easy", "env_config": {"operation_max_opz": 1}, "promote": {"threshold": 0.5}}, {"name": "x"}]}})
    with pytest.raises(ValueError, match=r"stages\[0\] \('easy'\) env_config: unknown config key\(s\) "
                                         r"'operation_max_opz' for env 'lgc-v2'; valid keys: .*operation_max_ops"):
        stage_configs(spec, "lgc-v2", {})
    spec = parse_curriculum({"curriculum": {"env": "openspiel", "stages": [{"name": "x"}]}})
    with pytest.raises(ValueError, match="curriculum.env='openspiel' but the run trains on env 'lgc-v2'"):
        stage_configs(spec, "lgc-v2", {})


LADDER_ENVS = {"lgc-v2": "lgc-v2", "openspiel": "openspiel", "reasoning-gym": "reasoning-gym",
               "reasoning-gym-basic-arithmetic": "reasoning-gym"}


@pytest.mark.parametrize("name", sorted(LADDER_ENVS))
def test_shipped_ladders_are_valid_with_todays_env_keys_and_get_harder(name):
    assert set(ladder_names()) == set(LADDER_ENVS)
    env = LADDER_ENVS[name]
    spec = load_curriculum(name)
    assert spec.replay.enabled and len(spec.stages) >= 3 and spec.stages[-1].promote is None
    sched, configs = build_schedule(spec, env, {}, offset=16, batch_size=2, group_size=2)
    from veritas_rl.envs import make_cached

    for stage, config in enumerate(configs):  # a task of each stage builds and its oracle scores 1.0
        stage_env = make_cached(env, config)
        task = stage_env.task(stage_env.task_id_at(16))
        oracle = stage_env.oracle(task) if env != "openspiel" else None  # outcome playouts vs MCTS take minutes
        if oracle is not None:
            assert stage_env.score(task, oracle).value == 1.0, (name, stage)
    if name == "openspiel":
        assert [s.promote.threshold for s in spec.stages[:2]] == [0.6, 0.5]
        assert [c["opponent"] for c in configs] == ["random", "random", "mcts"]
        assert len(make_cached(env, configs[0]).config.game_types) < len(make_cached(env, configs[1]).config.game_types)
    if name == "lgc-v2":
        assert configs[0]["operation_max_ops"] < 2 < configs[2]["operation_max_ops"] and configs[1] == {}

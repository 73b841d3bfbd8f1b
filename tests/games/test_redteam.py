"""Red-team checks of the move parser and the game-episode reward, cross-checked against pyspiel itself."""

from __future__ import annotations

import json
import random

import pytest

from veritas_rl.envs import make
from veritas_rl.envs.openspiel import DEFAULT_CASES_BOARD_SIZES
from veritas_rl.games import spiel
from veritas_rl.games.episode import MAX_SHAPING, EpisodeConfig, GameEpisode, play_episode
from veritas_rl.games.moves import parse_completion
from veritas_rl.games.play import play_game


def scripted(actions):
    it = iter(actions)
    return lambda messages: f"<answer>{next(it)}</answer>"


# -- max_turns: an unfinished game never pays more than a loss ---------------------------------


def test_a_game_stopped_by_max_turns_pays_no_more_than_a_loss():
    # Before: OpenSpiel's unfinished returns (0 for board games) paid 0.5, a draw, so stalling (or filling the
    # response budget, which verl scores as a max_turns stop) beat losing. Tic-tac-toe against first_legal:
    # x plays 0, 2, 5, 6 and loses on move 4; the same opening cut after two turns must not pay more.
    loss = play_episode(EpisodeConfig("tic_tac_toe", 0, 0, "first_legal"), scripted([0, 2, 5, 6]))
    cut = play_episode(EpisodeConfig("tic_tac_toe", 0, 0, "first_legal", max_turns=2), scripted([0, 2]))
    assert (loss.outcome, loss.reward) == ("loss", 0.0)
    assert (cut.outcome, cut.returns) == ("max_turns", [0.0, 0.0])  # the record keeps OpenSpiel's returns
    assert cut.reward == cut.normalised_return == 0.0 <= loss.reward
    # the same for every default board game (Kuhn poker's loss of the ante, -1, pays 0.25: a stop pays 0)
    for case in ("connect_four", "hex(board_size=5)", "go(board_size=5)", "chess", "kuhn_poker", "gin_rummy"):
        episode = GameEpisode(EpisodeConfig(case, 0, 1, "random", max_turns=1))
        episode.start()
        legal = episode.turn().legal
        out = episode.step(f"<answer>{min(legal)}</answer>")
        if out.info["outcome"] == "max_turns":
            result = episode.result()
            assert result.normalised_return == 0.0 and result.reward == 0.0, case


def _lowest_ids_to_the_end(config):
    """Play an episode with the lowest legal id every turn until it stops; its result."""
    episode = GameEpisode(config)
    episode.start()
    while not episode.done:
        episode.step(f"<answer>{min(episode.turn().legal)}</answer>")
    return episode.result()


def test_the_eval_cap_max_moves_pays_the_minimum_too_and_keeps_the_unfinished_returns():
    result = _lowest_ids_to_the_end(EpisodeConfig("chess", 0, 0, "random", max_moves=4))
    assert (result.outcome, result.returns, result.reward) == ("max_turns", [0.0, 0.0], 0.0)
    game = play_game("chess", lambda turn: f"<answer>{min(turn.legal)}</answer>", "random", seed=0, max_moves=4)
    assert game.truncated and game.returns == [0.0, 0.0]  # eval reports are unchanged


def test_games_that_pay_as_they_go_keep_what_was_collected_at_a_stop():
    # 2048 (RewardModel.REWARDS): the returns of an unfinished game are the points already scored
    result = _lowest_ids_to_the_end(EpisodeConfig("2048", 0, 3, "random", max_turns=30))
    game = spiel.load_game("2048")
    assert result.outcome == "max_turns" and result.returns[0] > 0
    assert result.normalised_return == pytest.approx(spiel.normalise_return(game, result.returns[0]))
    assert result.normalised_return > 0


# -- legal_move_bonus: a longer game never out-pays a better result ----------------------------


def test_legal_move_bonus_cannot_make_a_long_loss_pay_more_than_a_short_win():
    # Before: reward = normalised return + bonus * legal moves, unbounded; with bonus 2 a four-move loss
    # paid 8.0 and a three-move win 7.0. The shaping is capped at MAX_SHAPING = 0.5 in all.
    def reward(actions, bonus):
        return play_episode(EpisodeConfig("tic_tac_toe", 0, 0, "first_legal", legal_move_bonus=bonus),
                            scripted(actions))

    loss, draw, win = reward([0, 2, 5, 6], 2.0), reward([1, 3, 4, 6, 8], 2.0), reward([0, 3, 6], 2.0)
    assert (loss.outcome, draw.outcome, win.outcome) == ("loss", "draw", "win")
    assert (loss.reward, draw.reward, win.reward) == (MAX_SHAPING, 0.5 + MAX_SHAPING, 1.0 + MAX_SHAPING)
    assert loss.reward < draw.reward < win.reward
    small = reward([0, 3, 6], 0.05)
    assert small.reward == pytest.approx(1.0 + 3 * 0.05)  # below the cap, the bonus is unchanged


@pytest.mark.parametrize("bonus", [0.01, 0.04, 0.3])
def test_with_any_bonus_loss_pays_less_than_draw_and_draw_less_than_win(bonus):
    rng = random.Random(int(bonus * 100))
    by_outcome: dict[str, list[float]] = {}
    for seed in range(30):
        for case in ("connect_four", "tic_tac_toe"):
            config = EpisodeConfig(case, seed % 2, seed, "random", legal_move_bonus=bonus)

            def policy(messages):
                text = messages[-1]["content"].split("Legal actions (id: action):\n", 1)[1].split("\n\n", 1)[0]
                return f"<answer>{rng.choice([line.split(':', 1)[0] for line in text.splitlines()])}</answer>"

            result = play_episode(config, policy)
            by_outcome.setdefault(result.outcome, []).append(result.reward)
    assert {"win", "loss"} <= set(by_outcome)
    worst = {o: min(v) for o, v in by_outcome.items()}
    best = {o: max(v) for o, v in by_outcome.items()}
    assert best["loss"] < worst["win"]
    if "draw" in by_outcome:
        assert best["loss"] < worst["draw"] and best["draw"] < worst["win"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"uct_c": 0}, "uct_c=0 must be a finite number > 0"),
        ({"uct_c": float("nan")}, "uct_c=nan must be a finite number > 0"),
        ({"max_moves": True}, "max_moves=True must be None or an integer >= 0"),
    ],
)
def test_more_bad_configs_name_the_key(kwargs, message):
    with pytest.raises(ValueError) as err:
        EpisodeConfig("tic_tac_toe", 0, 0, **kwargs)
    assert message in str(err.value)


# -- the parser: the prompt's own list line is one answer --------------------------------------


@pytest.mark.parametrize(
    ("slot", "value", "kind"),
    [
        ("2: x(0,2)", 1.0, "correct"),  # a line copied from "Legal actions (id: action)"
        ("2:x(0,2)", 1.0, "correct"),
        (" 2 :  x(0,2) ", 1.0, "correct"),
        ("5: x(0,2)", 0.0, "no_answer"),  # an id and another action's string name nothing
        ("2: x(1,2)", 0.0, "no_answer"),
        ("0: x(0,0)", 0.0, "no_answer"),  # an occupied cell's line
        ("02: x(0,2)", 0.0, "no_answer"),
        ("2: x(0,2) now", 0.0, "no_answer"),
        ("2: X(0,2)", 0.0, "no_answer"),
        ("2: x(0,2)\n5: x(1,2)", 0.0, "no_answer"),  # two lines of the list
    ],
)
def test_a_line_of_the_legal_action_list_names_its_action(slot, value, kind):
    env = make("openspiel", cases=["tic_tac_toe"], game_types=[])
    task = env.task_from_history("tic_tac_toe", [0, 3, 1, 4])
    score = env.score(task, f"<answer>{slot}</answer>")
    assert (score.value, score.kind) == (value, kind), score.info
    # a list line and another answer are two answers; with its own id or string, one
    assert env.score(task, f"<answer>{slot}</answer><answer>5</answer>").value == 0.0
    if value:
        assert env.score(task, f"<answer>{slot}</answer> <answer>2</answer>").value == 1.0


def test_a_list_line_that_is_also_another_actions_string_is_ambiguous():
    legal = spiel.LegalMap({3: "foo", 7: "3: foo"}, {"foo": (3,), "3: foo": (7,)})
    assert spiel.parse_move("<answer>3: foo</answer>", legal).kind == "hedge"
    assert spiel.parse_action("<answer>7: 3: foo</answer>", legal) == (7, "ok")


# -- cross-check against pyspiel ----------------------------------------------------------------

CROSS_CASES = [*DEFAULT_CASES_BOARD_SIZES, "backgammon", "mancala", "kuhn_poker(players=3)", "phantom_ttt", "2048"]


@pytest.mark.parametrize("case", CROSS_CASES)
def test_legality_verdicts_agree_with_pyspiel(case):
    """Every legal id and string scores 1 naming that action; every other id, the game's other strings,
    look-alikes and several moves at once score 0 — the env and the episode parser alike."""
    env = make("openspiel", cases=[case], game_types=[], num_tasks_per_case=3, max_random_steps=30)
    game = spiel.load_game(case)
    rng = random.Random(0)
    vocabulary: set[str] = set()
    for _ in range(4):  # action strings anywhere in random games, any player's
        state = game.new_initial_state()
        for _ in range(200):
            if state.is_terminal():
                break
            if state.is_chance_node():
                state.apply_action(spiel.sample_chance(state, rng))
                continue
            names = spiel.legal_actions_map(state)
            vocabulary |= set(names.values())
            state.apply_action(rng.choice(list(names)))
    for task_id in range(env.num_tasks):
        task = env.task(task_id)
        state = spiel.state_from_history(case, task.extra["history"])
        player = state.current_player()
        truth = {a: state.action_to_string(player, a) for a in state.legal_actions()}
        assert {int(k): v for k, v in json.loads(task.ground_truth).items()} == truth
        legal = spiel.legal_map_from_state(state)

        def named(string):  # the action an exact string names, or None
            ids = [a for a, s in truth.items() if s == string]
            if len(ids) != 1:
                return None
            digit = string.isdigit() and not string.startswith("0") and int(string) in truth and int(string) != ids[0]
            return None if digit else ids[0]

        def check(reply, expect):
            score = env.score(task, reply)
            assert (score.value == 1.0, score.info.get("action")) == (expect is not None, expect), (reply, score)
            assert score.value in (0.0, 1.0) and (score.value or score.info["reason"])
            assert parse_completion(reply, legal, case).action == expect, reply

        ids = list(truth)
        for a, s in truth.items():
            check(f"<answer>{a}</answer>", a)
            check(f"<answer>{s}</answer>", named(s))
            check(f"<answer>{a}: {s}</answer>", a)
            check(f"<think>{ids}</think><answer>\n{a} </answer>", a)
            for variant in {s.upper(), s.lower(), " ".join(s), f"0{a}", f"+{a}", f"{a}.", f"`{a}`", "\u200b" + s}:
                if variant != s and variant != str(a):
                    check(f"<answer>{variant}</answer>", named(variant))
        fullwidth = str(ids[0]).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        check(f"<answer>{fullwidth}</answer>", None)
        for a in range(game.num_distinct_actions()):
            if a not in truth:
                check(f"<answer>{a}</answer>", named(str(a)))
        for s in vocabulary - set(truth.values()):
            check(f"<answer>{s}</answer>", named(s))
        if len(ids) > 1:
            for reply in ("<answer>" + " or ".join(map(str, ids)) + "</answer>",
                          "".join(f"<answer>{a}</answer>" for a in ids),
                          "".join(f"<answer>{truth[a]}</answer>" for a in ids),
                          "<answer>" + "\n".join(f"{a}: {truth[a]}" for a in ids) + "</answer>",
                          f"<answer>{ids[0]}</answer><ANSWER>{ids[1]}</ANSWER>",
                          f"<answer>{ids[0]}<answer>{ids[1]}</answer>"):
                check(reply, None)
        prompt = task.prompt[0]["content"]
        check(prompt, None)
        check(f"<think>{prompt}</think>{prompt}<answer>ID</answer>", None)

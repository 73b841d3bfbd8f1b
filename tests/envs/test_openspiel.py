"""The ``openspiel`` env with real OpenSpiel games: positions, prompts, strict parsing, rewards, config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from veritas_rl.envs import Task, make
from veritas_rl.envs.openspiel import DEFAULT_CASES_BOARD_SIZES, GAME_TYPES_ENV, OpenSpielConfig, build_cases
from veritas_rl.games import spiel

CHANCE_CASES = ["kuhn_poker", "leduc_poker", "liars_dice", "backgammon"]


def rebuilt(task: Task):
    return spiel.state_from_history(task.extra["case"], task.extra["history"])


# -- cases and configuration -----------------------------------------------------------------


def test_default_cases_and_task_layout(monkeypatch):
    monkeypatch.delenv(GAME_TYPES_ENV, raising=False)
    env = make("openspiel")
    assert env.cases == DEFAULT_CASES_BOARD_SIZES
    assert env.config.reward_mode == "legal"  # the default: the contract's oracle must score 1.0
    assert env.num_tasks == len(DEFAULT_CASES_BOARD_SIZES) * 100
    # several board sizes per board game
    assert sum(c.startswith("hex(") for c in env.cases) >= 2 and sum(c.startswith("go(") for c in env.cases) >= 2
    # dense indices interleave cases; task ids decode to (case, index)
    first = [env.locate(env.task_id_at(i)) for i in range(len(env.cases))]
    assert [c for c, _ in first] == list(env.cases) and {i for _, i in first} == {0}
    assert env.locate(env.task_id_at(len(env.cases) + 2)) == (env.cases[2], 1)
    assert env.locate(3 * 100 + 7) == (env.cases[3], 7)
    assert sorted(env.task_id_at(i) for i in range(env.num_tasks)) == list(range(env.num_tasks))
    with pytest.raises(IndexError):
        env.task(env.num_tasks)


def test_game_list_and_game_configs_build_one_case_per_parameter_set():
    env = make(
        "openspiel",
        game_list=["hex", "tic_tac_toe", "breakthrough"],
        game_configs={"hex": [{"board_size": 5}, "board_size=7"], "breakthrough": {"rows": 6, "columns": 6}},
        num_tasks_per_case=3,
    )
    assert env.cases == ("hex(board_size=5)", "hex(board_size=7)", "tic_tac_toe", "breakthrough(rows=6,columns=6)")
    assert env.num_tasks == 12
    assert "board_size=7" in env.task(4).prompt[0]["content"]


def test_cases_from_a_comma_string_keep_parameter_lists():
    env = make("openspiel", cases="breakthrough(rows=6,columns=6), tic_tac_toe")
    assert env.cases == ("breakthrough(rows=6,columns=6)", "tic_tac_toe")


def test_game_types_filter_env_var_and_precedence(monkeypatch):
    cases = ["tic_tac_toe", "hex(board_size=5)", "hex(board_size=7)", "kuhn_poker"]
    monkeypatch.delenv(GAME_TYPES_ENV, raising=False)
    assert make("openspiel", cases=cases).cases == tuple(cases)
    # short name or full case string
    assert make("openspiel", cases=cases, game_types=["hex"]).cases == ("hex(board_size=5)", "hex(board_size=7)")
    assert make("openspiel", cases=cases, game_types="hex(board_size=7),kuhn_poker").cases == (
        "hex(board_size=7)",
        "kuhn_poker",
    )
    # the environment variable applies when the config leaves game_types unset ...
    monkeypatch.setenv(GAME_TYPES_ENV, "kuhn_poker, tic_tac_toe")
    assert make("openspiel", cases=cases).cases == ("tic_tac_toe", "kuhn_poker")
    # ... and an explicit config value wins over it (an explicit empty list = all cases)
    assert make("openspiel", cases=cases, game_types=["hex"]).cases == ("hex(board_size=5)", "hex(board_size=7)")
    assert make("openspiel", cases=cases, game_types=[]).cases == tuple(cases)
    monkeypatch.setenv(GAME_TYPES_ENV, "")
    assert make("openspiel", cases=cases).cases == tuple(cases)
    # build_cases takes the environment explicitly too
    cfg = OpenSpielConfig(cases=tuple(cases))
    assert build_cases(cfg, {GAME_TYPES_ENV: "hex(board_size=5)"}) == ("hex(board_size=5)",)
    with pytest.raises(ValueError, match=r"\$GAME_TYPES: 'chess' match.*none of the cases.*tic_tac_toe"):
        build_cases(cfg, {GAME_TYPES_ENV: "chess"})


def test_filtering_never_changes_a_cases_positions(monkeypatch):
    monkeypatch.delenv(GAME_TYPES_ENV, raising=False)
    full = make("openspiel", num_tasks_per_case=5)
    only = make("openspiel", num_tasks_per_case=5, game_types=["kuhn_poker"])
    k = full.cases.index("kuhn_poker")
    for i in range(5):
        assert only.task(i).extra["history"] == full.task(k * 5 + i).extra["history"]
        assert only.task(i).prompt == full.task(k * 5 + i).prompt


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        ({"cases": ["no_such_game"]}, r"case 'no_such_game': OpenSpiel cannot load it: Unknown game 'no_such_game'"),
        ({"cases": ["hex(foo=3)"]}, r"case 'hex\(foo=3\)': OpenSpiel cannot load it: Unknown parameter 'foo'"),
        ({"cases": ["hex(board_size=x)"]}, r"case 'hex\(board_size=x\)'.*Wrong type for parameter board_size"),
        ({"reward_mode": "win"}, r"reward_mode='win' is not valid; choose from: legal, outcome"),
        ({"opponent": "alphazero"}, r"opponent='alphazero' is not valid; choose from: random, mcts"),
        ({"continuation": "greedy"}, r"continuation='greedy' is not valid; choose from: random, opponent"),
        ({"num_playouts": 0}, r"num_playouts=0 must be >= 1"),
        ({"num_tasks_per_case": 0}, r"num_tasks_per_case=0 must be >= 1"),
        ({"max_random_steps": -1}, r"max_random_steps=-1 must be >= 0"),
        ({"mcts_simulations": "lots"}, r"config key 'mcts_simulations': expected an integer"),
        ({"uct_c": 0}, r"uct_c=0.0 must be > 0"),
        ({"cases": ["tic_tac_toe"], "game_list": ["hex"]}, r"either cases or game_list"),
        ({"game_list": ["hex"], "game_configs": {"go": [{"board_size": 9}]}}, r"game_configs names game\(s\) 'go'"),
        ({"cases": ["tic_tac_toe"], "game_types": ["chess"]}, r"game_types: 'chess' match.*choose from: tic_tac_toe"),
        ({"cases": ["2048"], "opponent": "mcts"}, r"case '2048': opponent='mcts' needs a game with terminal rewards"),
        ({"cases": ["2048"], "opponent": "random"}, None),  # valid: random playouts need no terminal rewards
    ],
)
def test_config_errors_name_the_key(config, pattern):
    if pattern is None:
        make("openspiel", **config)
        return
    with pytest.raises(ValueError, match=pattern):
        make("openspiel", **config)


# -- positions ---------------------------------------------------------------------------------


def test_same_id_same_task_and_json_round_trip():
    a = make("openspiel", num_tasks_per_case=4, game_types=[])
    b = make("openspiel", num_tasks_per_case=4, game_types=[])
    for task_id in range(0, a.num_tasks, 3):
        ta, tb = a.task(task_id), b.task(task_id)
        assert ta == tb
        assert Task.from_dict(json.loads(json.dumps(ta.to_dict()))) == ta


def test_tasks_are_identical_in_another_process_with_another_hash_seed():
    cases = ["goofspiel(num_cards=8)", "leduc_poker", "go(board_size=5)", "backgammon"]
    env = make("openspiel", cases=cases, num_tasks_per_case=3, seed=11, game_types=[])
    code = (
        "import json,sys; from veritas_rl.envs import make; "
        "env = make('openspiel', **json.loads(sys.argv[1])); "
        "print(json.dumps([env.task(i).to_dict() for i in range(env.num_tasks)]))"
    )
    config = {"cases": cases, "num_tasks_per_case": 3, "seed": 11, "game_types": []}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "987"},
    )
    assert json.loads(out.stdout) == [env.task(i).to_dict() for i in range(env.num_tasks)]
    # and the seed matters
    other = make("openspiel", cases=cases, num_tasks_per_case=3, seed=12, game_types=[])
    assert [other.task(i).extra["history"] for i in range(12)] != [env.task(i).extra["history"] for i in range(12)]


def test_no_terminal_or_chance_position_is_ever_served():
    # 60 random moves end most tic-tac-toe/kuhn games: the env must re-roll, deterministically
    env = make("openspiel", cases=["tic_tac_toe", "kuhn_poker", "connect_four"], max_random_steps=60,
               num_tasks_per_case=30, game_types=[])
    for task_id in range(env.num_tasks):
        task = env.task(task_id)
        state = rebuilt(task)
        assert not state.is_terminal() and not state.is_chance_node()
        assert state.current_player() == task.extra["player"]
        assert json.loads(task.ground_truth) == {str(a): state.action_to_string(a) for a in state.legal_actions()}
    assert env.task(5) == env.task(5)
    # positions differ across indices (max_random_steps > 0 by default)
    default = make("openspiel", cases=["connect_four"], game_types=[])
    assert default.config.max_random_steps > 0
    assert len({json.dumps(default.task(i).extra["history"]) for i in range(20)}) >= 10


@pytest.mark.parametrize("case", CHANCE_CASES)
def test_chance_outcomes_are_part_of_history_but_never_the_models_move(case):
    env = make("openspiel", cases=[case], num_tasks_per_case=6, game_types=[])
    import pyspiel

    game = spiel.load_game(case)
    for i in range(6):
        task = env.task(i)
        state = game.new_initial_state()
        chance_steps = 0
        for action in task.extra["history"]:
            if state.is_chance_node():
                assert action in dict(state.chance_outcomes())
                chance_steps += 1
            state.apply_action(action)
        assert chance_steps >= 1  # cards dealt / dice rolled
        assert state.current_player() not in (pyspiel.PlayerId.CHANCE, pyspiel.PlayerId.TERMINAL)
        legal = json.loads(task.ground_truth)
        assert set(map(int, legal)) == set(state.legal_actions())


def test_chance_is_sampled_with_its_probabilities():
    import random

    state = spiel.load_game("backgammon").new_initial_state()  # first roll: doubles excluded, 30 outcomes
    probs = dict(state.chance_outcomes())
    rng = random.Random(0)
    n = 30_000
    counts = Counter(spiel.sample_chance(state, rng) for _ in range(n))
    assert set(counts) == set(probs)
    for action, p in probs.items():
        assert abs(counts[action] / n - p) < 0.01
    # kuhn poker deals: each of the 3 cards with probability 1/3
    kuhn = spiel.load_game("kuhn_poker").new_initial_state()
    counts = Counter(spiel.sample_chance(kuhn, rng) for _ in range(9000))
    assert all(abs(c / 9000 - 1 / 3) < 0.02 for c in counts.values()) and len(counts) == 3


def test_simultaneous_games_are_played_turn_based_without_leaking_the_pending_bid():
    case = "goofspiel(num_cards=4,points_order=descending)"
    env = make("openspiel", cases=[case], game_types=[], reward_mode="outcome", opponent="mcts",
               mcts_simulations=20, num_playouts=2)
    game = spiel.load_game(case)
    assert game.get_type().dynamics.name == "SEQUENTIAL"
    # player 0 bids 1 (action 0) or 4 (action 3): player 1's prompt must be the same either way
    low, high = env.task_from_history(case, [0]), env.task_from_history(case, [3])
    assert low.extra["player"] == high.extra["player"] == 1
    assert low.prompt == high.prompt
    assert "imperfect-information" in low.prompt[0]["content"]
    # ... and outcome scoring plays it to the end: bidding 4 against a bid of 1 takes the 4-point card
    assert env.score(high, "<answer>3</answer>").value <= env.score(low, "<answer>3</answer>").value
    for task in (low, high):
        score = env.score(task, "<answer>3</answer>")
        assert 0.0 <= score.value <= 1.0 and score.info["action_str"] == "[P1]Bid: 4"


# -- prompt and parsing -------------------------------------------------------------------------


def test_prompt_shows_the_movers_view_rules_legal_actions_and_slot():
    env = make("openspiel", cases=["tic_tac_toe", "leduc_poker"], game_types=[])
    ttt = env.task_from_history("tic_tac_toe", [4])
    text = ttt.prompt[0]["content"]
    assert "Tic Tac Toe" in text and "three marks in a row" in text.lower()
    assert "...\n.x.\n..." in text  # observation string
    assert "0: o(0,0)" in text and "4: " not in text  # legal actions with ids only
    # the format is described abstractly: no concrete answer, no think tag an echo could split at
    assert "<answer>ID</answer>" in text and "</think>" not in text and "<think>" not in text
    assert spiel.answer_blocks(text) == ["ID"]
    # imperfect information: the information state of the mover, not the opponent's private card
    leduc = env.task(env.task_id_at(1))
    state = rebuilt(leduc)
    mover = leduc.extra["player"]
    assert state.information_state_string(mover) in leduc.prompt[0]["content"]
    assert state.information_state_string(1 - mover) not in leduc.prompt[0]["content"]


@pytest.fixture(scope="module")
def ttt_env():
    return make("openspiel", cases=["tic_tac_toe"], game_types=[])


@pytest.mark.parametrize(
    ("completion", "value", "reason", "kind"),
    [
        ("<answer>2</answer>", 1.0, None, "correct"),
        ("<answer> x(0,2) </answer>", 1.0, None, "correct"),
        ("<think>block first? no, win</think>\n<answer>x(0,2)</answer>", 1.0, None, "correct"),
        # one answer by value: the id and the string of the same action, or a repeat, are one answer
        ("<answer>2</answer> i.e. <answer>x(0,2)</answer>", 1.0, None, "correct"),
        ("<answer>2</answer><answer>2</answer>", 1.0, None, "correct"),
        ("<answer></answer><answer>2</answer>", 1.0, None, "correct"),  # an empty block names nothing
        ("I choose 2", 0.0, "no <answer>", "no_answer"),
        ("<answer></answer>", 0.0, "empty <answer>", "no_answer"),
        ("<answer>   </answer>", 0.0, "empty <answer>", "no_answer"),
        ("<answer>ID</answer>", 0.0, "format placeholder", "no_answer"),
        ("<answer>your answer</answer>", 0.0, "not a legal action", "no_answer"),
        ("<answer>2</answer><answer>5</answer>", 0.0, "hedge: 2 different answers", "hedge"),
        ("<answer>5</answer><answer>x(0,2)</answer>", 0.0, "hedge: 2 different answers", "hedge"),
        ("<answer>2</answer><answer>0</answer>", 0.0, "hedge", "hedge"),  # gold + an illegal id
        ("<answer>ID</answer> <answer>2</answer>", 0.0, "hedge", "hedge"),  # the placeholder is not ignored
        ("<answer>0</answer>", 0.0, "action id 0 is not legal", "illegal"),  # occupied cell
        ("<answer>9</answer>", 0.0, "action id 9 is not legal", "illegal"),
        ("<answer>x(0,0)</answer>", 0.0, "not a legal action here", "illegal"),  # occupied, by its string
        ("<answer>02</answer>", 0.0, "not a legal action", "no_answer"),
        ("<answer>-2</answer>", 0.0, "not a legal action", "no_answer"),
        ("<answer>X(0,2)</answer>", 0.0, "not a legal action", "no_answer"),
        ("<answer>x(0,2</answer>", 0.0, "not a legal action", "no_answer"),  # prefix
        ("<answer>(0,2)</answer>", 0.0, "not a legal action", "no_answer"),  # substring
        ("<answer>play x(0,2) now</answer>", 0.0, "not a legal action", "no_answer"),  # chatter around a legal string
        ("<answer>2 or 5</answer>", 0.0, "not a legal action", "no_answer"),
        ("<answer>x</answer>", 0.0, "not a legal action", "no_answer"),
        ("<answer>2", 0.0, "no <answer>", "no_answer"),
        ("<answer><answer>2</answer>", 0.0, "not a legal action", "no_answer"),  # same blocks as (.*?)
        ("<think><answer>2</answer>", 0.0, "unclosed <think>", "no_answer"),
    ],
)
def test_strict_parsing(ttt_env, completion, value, reason, kind):
    task = ttt_env.task_from_history("tic_tac_toe", [0, 3, 1, 4])  # x: 0,1  o: 3,4  -> x to move
    score = ttt_env.score(task, completion)
    assert score.value == value, score.info
    assert score.kind == kind, score.info
    if reason:
        assert reason in score.info["reason"]


@pytest.mark.parametrize("reward_mode", ["legal", "outcome"])
def test_an_echo_of_the_prompt_scores_zero_on_every_task(reward_mode):
    # issue 14: the prompt once held `</think>` and `<answer>FIRST_LEGAL_ID</answer>`; echoing it paid
    env = make("openspiel", game_types=[], num_tasks_per_case=3, reward_mode=reward_mode, num_playouts=1)
    for i in range(len(env.cases) * 3):
        task = env.task(env.task_id_at(i))
        prompt = task.prompt[0]["content"]
        for echo in (prompt, f"<think>{prompt}</think>{prompt}", prompt + "\n<answer>ID</answer>"):
            score = env.score(task, echo)
            assert (score.value, score.kind) == (0.0, "no_answer"), (task.extra["case"], score.info)


def test_hedges_score_zero_in_outcome_mode_too():
    env = make("openspiel", cases=["tic_tac_toe"], game_types=[], reward_mode="outcome", num_playouts=2)
    task = env.task_from_history("tic_tac_toe", [0, 3, 1, 4])
    for a, b in [("2", "5"), ("5", "2"), ("x(0,2)", "8"), ("2", "ID")]:
        score = env.score(task, f"<answer>{a}</answer>\n<answer>{b}</answer>")
        assert (score.value, score.kind) == (0.0, "hedge"), score.info
    assert env.score(task, "<answer>2</answer> (that is <answer>x(0,2)</answer>)").value == 1.0  # win at once


@pytest.mark.parametrize(
    "flood",
    ["<answer>" * 25_000, "<answer>2" * 22_000, "</answer>" * 22_000, "<answer></answer>" * 11_000, "<" * 200_000],
)
def test_tag_floods_are_parsed_in_linear_time(ttt_env, flood):
    import time

    task = ttt_env.task_from_history("tic_tac_toe", [0, 3, 1, 4])
    assert len(flood) <= 200_000
    start = time.perf_counter()
    score = ttt_env.score(task, flood)
    elapsed = time.perf_counter() - start
    assert score.value == 0.0 and score.kind == "no_answer", score.info
    assert elapsed < 0.05, f"{elapsed:.3f} s for {len(flood)} chars"  # the old regex: 79 s for the first


def test_answer_blocks_match_the_non_greedy_regex():
    import random
    import re

    rx = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
    rng = random.Random(5)
    pieces = ["<answer>", "</answer>", "2", " ", "x(0,2)", "<", ">", "answer", "\n"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert spiel.answer_blocks(text) == rx.findall(text), text


def test_a_text_naming_two_legal_actions_is_ambiguous():
    # action strings that are digits naming another action's id (e.g. a game printing board cells)
    legal = spiel.LegalMap({3: "5", 5: "e5"}, {"5": (3,), "e5": (5,)})
    assert spiel.parse_action("<answer>5</answer>", legal) == (None, "ambiguous: '5' names actions [3, 5]")
    assert spiel.parse_move("<answer>5</answer>", legal).kind == "hedge"
    assert spiel.parse_action("<answer>3</answer>", legal) == (3, "ok")
    assert spiel.parse_action("<answer>e5</answer>", legal) == (5, "ok")


# -- rewards ------------------------------------------------------------------------------------


@pytest.mark.parametrize("opponent", ["random", "mcts"])
def test_outcome_winning_move_beats_losing_move(opponent):
    env = make("openspiel", cases=["tic_tac_toe"], game_types=[], reward_mode="outcome", opponent=opponent,
               num_playouts=6, mcts_simulations=50, continuation="opponent")
    task = env.task_from_history("tic_tac_toe", [0, 3, 1, 4])  # x to move; 2 wins now; o threatens 5
    win = env.score(task, "<answer>2</answer>")
    block = env.score(task, "<answer>5</answer>")
    lose = env.score(task, "<answer>8</answer>")  # neither wins nor blocks: o can win at 5
    assert win.value == 1.0 and win.info["mean_return"] == 1.0
    assert win.value > block.value and win.value > lose.value
    if opponent == "mcts":
        assert lose.value == 0.0 and "minimum utility" in lose.info["reason"]  # MCTS takes the win at 5
    # deterministic: the same completion scores the same
    assert env.score(task, "<answer>8</answer>") == lose
    assert env.oracle(task) == "<answer>2</answer>"
    assert env.best_action(task) == (2, 1.0)
    # illegal is 0 under outcome too
    assert env.score(task, "<answer>4</answer>").value == 0.0


def test_legal_mode_oracle_and_every_legal_move_score_one():
    env = make("openspiel", cases=["chess", "liars_dice"], num_tasks_per_case=3, game_types=[])
    for task_id in range(env.num_tasks):
        task = env.task(task_id)
        assert env.score(task, env.oracle(task)).value == 1.0
        for action_id, action_str in json.loads(task.ground_truth).items():
            assert env.score(task, f"<answer>{action_id}</answer>").value == 1.0
            assert env.score(task, f"<answer>{action_str}</answer>").value == 1.0


def test_utilities_are_normalised_with_the_games_own_range():
    # Kuhn poker returns lie in [-2, 2]: P0 holds the Jack, P1 the Queen, P0 bets; P1 to act
    env = make("openspiel", cases=["kuhn_poker"], game_types=[], reward_mode="outcome", num_playouts=3)
    game = spiel.load_game("kuhn_poker")
    assert (game.min_utility(), game.max_utility()) == (-2.0, 2.0)
    task = env.task_from_history("kuhn_poker", [0, 1, 1])
    fold = env.score(task, "<answer>Pass</answer>")  # lose the ante: -1 -> (-1 + 2) / 4
    call = env.score(task, "<answer>Bet</answer>")  # Queen beats Jack for 2 chips: 2 -> 1.0
    assert (fold.info["mean_return"], fold.value) == (-1.0, 0.25)
    assert (call.info["mean_return"], call.value) == (2.0, 1.0)
    # Leduc poker: [-13, 13]; P0 raises, P1 folds and loses its ante of 1 -> 12/26
    leduc = make("openspiel", cases=["leduc_poker"], game_types=[], reward_mode="outcome", num_playouts=2)
    assert spiel.load_game("leduc_poker").min_utility() == -13.0
    task = leduc.task_from_history("leduc_poker", [0, 3, 2])
    state = rebuilt(task)
    fold_id = next(a for a in state.legal_actions() if state.action_to_string(a) == "Fold")
    fold = leduc.score(task, f"<answer>{fold_id}</answer>")
    assert fold.info["mean_return"] == -1.0 and fold.value == pytest.approx(12 / 26)


def test_outcome_playouts_are_seeded_and_averaged():
    cases = ["connect_four"]
    a = make("openspiel", cases=cases, game_types=[], reward_mode="outcome", num_playouts=16, seed=1)
    b = make("openspiel", cases=cases, game_types=[], reward_mode="outcome", num_playouts=16, seed=2)
    task = a.task(0)
    move = f"<answer>{next(iter(json.loads(task.ground_truth)))}</answer>"
    assert a.score(task, move) == a.score(task, move)
    values = {a.score(task, move).value, b.score(task, move).value}
    # 16 random playouts of connect four from an early position: a fraction, not a single game's result
    assert all(0.0 < v < 1.0 for v in values)
    assert all((v * 16 * 2) == int(v * 16 * 2) for v in values)  # mean of 16 returns in {-1, 0, 1}


def test_mcts_opponent_does_not_see_hidden_cards_where_the_game_allows_resampling():
    import random

    import numpy as np
    from open_spiel.python.algorithms import mcts

    # Kuhn poker: P0 holds the Queen, P1 the King, P0 passed; P1 (the mover) bets.
    env = make("openspiel", cases=["kuhn_poker"], game_types=[], reward_mode="outcome", opponent="mcts",
               num_playouts=4)
    task = env.task_from_history("kuhn_poker", [1, 2, 0])
    game = spiel.load_game("kuhn_poker")
    assert spiel.MCTSBot(game, random.Random(0), 10, 2.0).kind == "ismcts"
    # A fair P0 with the Queen facing a bet calls (calling: 0 in expectation over J/K, folding: -1) ...
    bet = env.score(task, "<answer>Bet</answer>")
    assert bet.info["mean_return"] == 2.0 and bet.value == 1.0
    # ... whereas MCTS on the true state sees the King and folds, which would pay the bet only 1
    after_bet = spiel.state_from_history("kuhn_poker", [1, 2, 0, 1])
    rs = np.random.RandomState(0)
    seer = mcts.MCTSBot(game, 2.0, 100, mcts.RandomRolloutEvaluator(1, rs), random_state=rs)
    assert after_bet.action_to_string(seer.step(after_bet)) == "Pass"
    # games without ResampleFromInfostate fall back to (clairvoyant) MCTS on the true state
    assert spiel.MCTSBot(spiel.load_game("liars_dice"), random.Random(0), 10, 2.0).kind == "mcts-clairvoyant"
    assert spiel.MCTSBot(spiel.load_game("tic_tac_toe"), random.Random(0), 10, 2.0).kind == "mcts"


def test_outcome_scores_are_identical_in_another_process():
    cases = ["kuhn_poker", "connect_four"]  # IS-MCTS (seeded resampling) and plain MCTS
    config = {"cases": cases, "game_types": [], "reward_mode": "outcome", "opponent": "mcts",
              "mcts_simulations": 20, "num_playouts": 2, "num_tasks_per_case": 2, "seed": 4}
    env = make("openspiel", **config)
    rows = []
    for task_id in range(env.num_tasks):
        task = env.task(task_id)
        for action in list(json.loads(task.ground_truth))[:2]:
            rows.append((task.to_dict(), f"<answer>{action}</answer>"))
    code = (
        "import json,sys; from veritas_rl.envs import Task, make; "
        "env = make('openspiel', **json.loads(sys.argv[1])); rows = json.loads(sys.argv[2]); "
        "print(json.dumps([env.score(Task.from_dict(t), c).value for t, c in rows]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config), json.dumps(rows)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "31"},
    )
    here = [env.score(Task.from_dict(t), c).value for t, c in rows]
    assert json.loads(out.stdout) == here
    assert len(set(here)) > 1


def test_scoring_wrong_answers_on_chess_positions_does_not_crash_the_process():
    # OpenSpiel's action_to_string on a chess action that is not legal at the node segfaulted the reward
    # process (exit 139); run in a child so a crash fails this test instead of killing the suite
    import subprocess
    import sys

    code = (
        "from veritas_rl.envs import make\n"
        "e = make('openspiel', reward_mode='legal', game_types=['chess'])\n"
        "kinds = set()\n"
        "for i in range(12):\n"
        "    t = e.task(e.task_id_at(i))\n"
        "    for c in ['<answer>e4</answer>', '<answer>Qxh7</answer>', '<answer>9999</answer>', 'garbage']:\n"
        "        s = e.score(t, c)\n"
        "        assert (s.value == 0.0) == (s.kind != 'correct')\n"
        "        kinds.add(s.kind)\n"
        "print(sorted(kinds))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "no_answer" in out.stdout

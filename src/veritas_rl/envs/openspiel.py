"""OpenSpiel move tasks: a position reached by a seeded random rollout, one move to choose.

A *case* is one OpenSpiel load string (``hex(board_size=5)``, ``kuhn_poker``, ...). Task ``task_id``
is position ``index`` of case ``cases[case_idx]`` with ``case_idx, index = divmod(task_id,
num_tasks_per_case)``; the position depends only on ``(seed, case, index, max_random_steps)`` —
not on which other cases are enabled — so filtering cases never changes a case's positions.

Rewards (``reward_mode``):

* ``legal`` (default) — 1.0 for a legal move, else 0.0. The default because it is cheap and has a
  known 1.0 answer (the registry-wide contract requires the oracle to score 1.0).
* ``outcome`` — the move is applied, the other seats are played by ``opponent`` (``random`` or
  ``mcts``), the mover's own later turns by ``continuation`` (``random`` or the opponent's policy),
  chance by its probabilities, ``num_playouts`` times with seeded randomness; the mover's mean
  return is mapped to [0, 1] with the game's own ``min_utility()`` / ``max_utility()``.

The task carries the full ``state.history()`` (chance outcomes included) in ``extra``, so scoring
rebuilds the position exactly without re-running the rollout; ``ground_truth`` is the JSON of the
legal actions ``{"<id>": "<action string>"}``.

Which cases are served: ``cases`` (explicit list), or ``game_list`` + ``game_configs`` (one case per
game and parameter set), else :data:`DEFAULT_CASES_BOARD_SIZES`; then filtered by ``game_types``
(short names like ``hex`` or full case strings). When ``game_types`` is not given (``None``) the
``GAME_TYPES`` environment variable (comma-separated; empty or unset = all) is the filter: **an
explicit config value wins over the environment variable**.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from veritas_rl.envs.base import Env, Score, Task, check_choice, register_env, seeded_rng

log = logging.getLogger(__name__)

GAME_TYPES_ENV = "GAME_TYPES"
REWARD_MODES = ("legal", "outcome")
OPPONENTS = ("random", "mcts")
CONTINUATIONS = ("random", "opponent")

#: default cases: several board sizes per board game, plus imperfect-information and chance games
DEFAULT_CASES_BOARD_SIZES: tuple[str, ...] = (
    "tic_tac_toe",
    "connect_four",
    "hex(board_size=5)",
    "hex(board_size=7)",
    "hex(board_size=9)",
    "go(board_size=5)",
    "go(board_size=7)",
    "go(board_size=9)",
    "breakthrough(rows=6,columns=6)",
    "breakthrough(rows=8,columns=8)",
    "dots_and_boxes(num_rows=2,num_cols=2)",
    "dots_and_boxes(num_rows=3,num_cols=3)",
    "clobber(rows=5,columns=5)",
    "clobber(rows=6,columns=6)",
    "othello",
    "checkers",
    "chess",
    "kuhn_poker",
    "leduc_poker",
    "liars_dice",
    "goofspiel(num_cards=8)",
    "gin_rummy",
)

#: attempts at a non-terminal position before falling back to the last decision node seen
MAX_REROLLS = 64


@dataclass(frozen=True)
class OpenSpielConfig:
    #: read when ``game_types`` is None; part of the env cache key (see ``make_cached``)
    ENVIRONMENT_VARIABLES: ClassVar[tuple[str, ...]] = (GAME_TYPES_ENV,)

    cases: tuple[str, ...] = field(
        default=(), metadata={"help": "OpenSpiel load strings; empty = game_list/game_configs or the defaults"}
    )
    game_list: tuple[str, ...] = field(default=(), metadata={"help": "games to build cases from with game_configs"})
    game_configs: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "game -> list of parameter sets (dicts or 'k=v,k=v' strings); one case each"},
    )
    game_types: tuple[str, ...] | None = field(
        default=None,
        metadata={"help": "filter: short names or case strings; None = $GAME_TYPES (empty = all)"},
    )
    num_tasks_per_case: int = field(default=100, metadata={"help": "positions per case"})
    max_random_steps: int = field(
        default=16, metadata={"help": "a position is reached by 0..max_random_steps random player moves"}
    )
    seed: int = field(default=0, metadata={"help": "seed of positions and of outcome playouts"})
    reward_mode: str = field(default="legal", metadata={"help": "legal | outcome"})
    opponent: str = field(default="random", metadata={"help": "random | mcts (plays the other seats)"})
    continuation: str = field(
        default="random", metadata={"help": "random | opponent: who plays the mover's later turns in outcome playouts"}
    )
    mcts_simulations: int = field(default=100, metadata={"help": "MCTS simulations per move"})
    uct_c: float = field(default=2.0, metadata={"help": "UCT exploration constant of MCTS"})
    num_playouts: int = field(default=8, metadata={"help": "playouts averaged by reward_mode=outcome"})

    def __post_init__(self):
        from veritas_rl.games.spiel import split_cases

        object.__setattr__(self, "cases", split_cases(self.cases))
        object.__setattr__(self, "game_list", split_cases(self.game_list))
        if self.game_types is not None:
            object.__setattr__(self, "game_types", split_cases(self.game_types))
        object.__setattr__(self, "game_configs", _plain(self.game_configs or {}))
        check_choice("reward_mode", self.reward_mode, REWARD_MODES)
        check_choice("opponent", self.opponent, OPPONENTS)
        check_choice("continuation", self.continuation, CONTINUATIONS)
        for key in ("num_tasks_per_case", "max_random_steps", "mcts_simulations", "num_playouts"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key}={value!r} must be an integer")
            minimum = 0 if key == "max_random_steps" else 1
            if value < minimum:
                raise ValueError(f"{key}={value!r} must be >= {minimum}")
        if not self.uct_c > 0:
            raise ValueError(f"uct_c={self.uct_c!r} must be > 0")
        if self.cases and self.game_list:
            raise ValueError("give either cases or game_list (+ game_configs), not both")
        if not isinstance(self.game_configs, dict):
            raise ValueError(f"game_configs must be a mapping game -> parameter sets, got {self.game_configs!r}")
        stray = sorted(set(self.game_configs) - set(self.game_list))
        if stray:
            raise ValueError(
                f"game_configs names game(s) {', '.join(map(repr, stray))} missing from game_list "
                f"{list(self.game_list)!r}"
            )


def _plain(value: Any) -> Any:
    """OmegaConf / mapping / sequence values as plain dicts, lists and scalars."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and not isinstance(value, (str, bytes))):
        return [_plain(v) for v in value]
    return value


def _param_string(params: Any, game: str) -> str:
    if isinstance(params, str):
        return params.strip().strip("()")
    if isinstance(params, Mapping):
        parts = []
        for k, v in params.items():
            v = str(v).lower() if isinstance(v, bool) else v
            parts.append(f"{k}={v}")
        return ",".join(parts)
    raise ValueError(f"game_configs[{game!r}]: a parameter set must be a dict or 'k=v,...' string, got {params!r}")


def build_cases(config: OpenSpielConfig, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The cases ``config`` serves, after the ``game_types`` / ``$GAME_TYPES`` filter."""
    from veritas_rl.games.spiel import game_short_name, normalise_case, split_cases

    if config.cases:
        cases = list(config.cases)
    elif config.game_list:
        cases = []
        for game in config.game_list:
            sets = config.game_configs.get(game)
            if sets is None or sets == [] or sets == {}:
                cases.append(game)
                continue
            if isinstance(sets, (str, Mapping)):
                sets = [sets]
            for params in sets:
                text = _param_string(params, game)
                cases.append(normalise_case(f"{game}({text})" if text else game))
    else:
        cases = list(DEFAULT_CASES_BOARD_SIZES)
    cases = list(dict.fromkeys(cases))  # drop duplicates, keep order

    if config.game_types is not None:
        wanted, source = config.game_types, "game_types"
    else:
        environ = os.environ if environ is None else environ
        wanted, source = split_cases(environ.get(GAME_TYPES_ENV, "")), f"${GAME_TYPES_ENV}"
    if wanted:
        unmatched = [w for w in wanted if not any(w in (c, game_short_name(c)) for c in cases)]
        if unmatched:
            raise ValueError(
                f"{source}: {', '.join(map(repr, unmatched))} match(es) none of the cases; "
                f"choose from: {', '.join(cases)}"
            )
        cases = [c for c in cases if c in wanted or game_short_name(c) in wanted]
    return tuple(cases)


class OpenSpielEnv(Env):
    """OpenSpiel games: choose a move in a position (legal-move or playout-outcome reward)."""

    def __init__(self, config: OpenSpielConfig):
        super().__init__(config)
        from veritas_rl.games.spiel import load_game

        self.cases = build_cases(config)
        for case in self.cases:
            game = load_game(case)  # unknown games / bad parameters fail here, naming the case
            if config.opponent == "mcts":
                import pyspiel

                if game.get_type().reward_model != pyspiel.GameType.RewardModel.TERMINAL:
                    raise ValueError(f"case {case!r}: opponent='mcts' needs a game with terminal rewards")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "cases": list(self.cases)}

    # -- tasks -------------------------------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        return len(self.cases) * self.config.num_tasks_per_case

    def task_id_at(self, index: int) -> int:
        """Interleave cases: dense index ``i`` is position ``i // C`` of case ``i % C``."""
        if not 0 <= index < self.num_tasks:
            raise IndexError(f"index {index} outside [0, {self.num_tasks})")
        case_idx, pos = index % len(self.cases), index // len(self.cases)
        return case_idx * self.config.num_tasks_per_case + pos

    def locate(self, task_id: int) -> tuple[str, int]:
        """``task_id`` -> ``(case, index)``."""
        if not 0 <= task_id < self.num_tasks:
            raise IndexError(f"task_id {task_id} outside [0, {self.num_tasks})")
        case_idx, index = divmod(task_id, self.config.num_tasks_per_case)
        return self.cases[case_idx], index

    def position(self, case: str, index: int):
        """The state of position ``index`` of ``case``: a decision node, never terminal."""
        from veritas_rl.games.spiel import load_game, resolve_chance, sample_chance

        game = load_game(case)
        fallback = None
        for attempt in range(MAX_REROLLS):
            rng = seeded_rng("openspiel-position", self.config.seed, case, index, attempt)
            steps = rng.randint(0, self.config.max_random_steps)
            state = game.new_initial_state()
            resolve_chance(state, rng)
            moves = 0
            while not state.is_terminal() and moves < steps:
                fallback = state.clone()
                state.apply_action(rng.choice(state.legal_actions()))
                moves += 1
                while state.is_chance_node():
                    state.apply_action(sample_chance(state, rng))
            if not state.is_terminal():
                return state
        if fallback is None:
            raise ValueError(f"case {case!r}: no decision position found (the game ends before any move)")
        return fallback

    def task(self, task_id: int) -> Task:
        case, index = self.locate(task_id)
        return self.task_from_state(case, self.position(case, index), task_id=task_id, index=index)

    def task_from_history(self, case: str, history: list[int], *, task_id: int = -1) -> Task:
        """A task for a constructed position (tests, curated positions): ``case`` after ``history``."""
        from veritas_rl.games.spiel import load_game, normalise_case, resolve_chance, state_from_history

        case = normalise_case(case)
        load_game(case)
        state = state_from_history(case, history)
        resolve_chance(state, seeded_rng("openspiel-history", self.config.seed, case, tuple(history)))
        if state.is_terminal():
            raise ValueError(f"case {case!r}: history {history} ends the game; no move to choose")
        return self.task_from_state(case, state, task_id=task_id, index=-1)

    def task_from_state(self, case: str, state, *, task_id: int, index: int) -> Task:
        from veritas_rl.games.spiel import legal_actions_map, render_prompt

        player = state.current_player()
        legal = legal_actions_map(state, player)
        return Task(
            env=self.name,
            task_id=task_id,
            prompt=render_prompt(case, state, legal),
            ground_truth=json.dumps({str(a): s for a, s in legal.items()}),
            extra={
                "case": case,
                "index": index,
                "player": player,
                "history": [int(a) for a in state.history()],
                "move_number": state.move_number(),
            },
        )

    # -- scoring -----------------------------------------------------------------------------
    def _score(self, task: Task, answer: str) -> Score:
        from veritas_rl.games.spiel import legal_map_from_json, parse_move

        legal = legal_map_from_json(task.ground_truth)
        action, why, kind = parse_move(answer, legal, task.extra.get("case"))
        if action is None:
            return Score.zero(why, kind=kind)
        info = {"action": action, "action_str": legal.by_id[action]}
        if self.config.reward_mode == "legal":
            return Score(1.0, info)
        value, mean_return = self.outcome_value(task, action)
        info.update(mean_return=mean_return, num_playouts=self.config.num_playouts)
        if value == 0.0:
            info["reason"] = "legal move, but the mover got the game's minimum utility in every playout"
        return Score(value, info)

    def outcome_value(self, task: Task, action: int) -> tuple[float, float]:
        """``(normalised value in [0, 1], mean raw return)`` of ``action`` in ``task``'s position."""
        from veritas_rl.games.spiel import load_game, make_bot, normalise_return, playout, state_from_history

        cfg = self.config
        case = task.extra["case"]
        history = [int(a) for a in task.extra["history"]]
        game = load_game(case)
        mover = int(task.extra["player"])
        base = state_from_history(case, history)
        base.apply_action(int(action))
        total = 0.0
        for i in range(cfg.num_playouts):
            rng = seeded_rng("openspiel-outcome", cfg.seed, case, tuple(history), int(action), i)
            opponent = make_bot(cfg.opponent, game, rng, mcts_simulations=cfg.mcts_simulations, uct_c=cfg.uct_c)
            mine = opponent if cfg.continuation == "opponent" else make_bot("random", game, rng)
            returns = playout(base.clone(), rng, lambda p: mine if p == mover else opponent)
            total += returns[mover]
        mean = total / cfg.num_playouts
        return normalise_return(game, mean), mean

    def best_action(self, task: Task) -> tuple[int, float]:
        """The legal action with the highest ``outcome`` value and that value (one playout set per move)."""
        from veritas_rl.games.spiel import legal_map_from_json

        legal = legal_map_from_json(task.ground_truth)
        values = {a: self.outcome_value(task, a)[0] for a in legal.by_id}
        best = max(values, key=lambda a: (values[a], -a))
        return best, values[best]

    def oracle(self, task: Task) -> str | None:
        """``legal``: the first legal move. ``outcome``: the best move if it scores 1.0, else ``None``."""
        from veritas_rl.games.spiel import answer, legal_map_from_json

        if self.config.reward_mode == "legal":
            return answer(next(iter(legal_map_from_json(task.ground_truth).by_id)))
        best, value = self.best_action(task)
        return answer(best) if value == 1.0 else None

    def audit_cases(self, task: Task) -> dict[str, list[str]]:
        """Extra cases for ``veritas audit``: the string form of the gold move, and hedges between two moves."""
        from veritas_rl.games.spiel import legal_map_from_json

        legal = legal_map_from_json(task.ground_truth)
        ids = list(legal.by_id)
        cases: dict[str, list[str]] = {"gold": [], "hedge": []}
        if self.config.reward_mode == "legal":
            a = ids[0]
            s = legal.by_id[a]
            if legal.by_string[s] == (a,):  # the string names this action only
                cases["gold"] += [f"<answer>{s}</answer>", f"<answer>{a}</answer> (<answer>{s}</answer>)"]
        for b in ids[1:2]:  # outcome mode: one of two legal moves may win, never both as one answer
            a = ids[0]
            for x, y in [(a, b), (b, a), (legal.by_id[a], b), (a, legal.by_id[b])]:
                cases["hedge"].append(f"<answer>{x}</answer>\n<answer>{y}</answer>")
        return cases


register_env("openspiel", OpenSpielEnv, OpenSpielConfig, aliases=("open_spiel",))

__all__ = [
    "DEFAULT_CASES_BOARD_SIZES",
    "GAME_TYPES_ENV",
    "OpenSpielConfig",
    "OpenSpielEnv",
    "build_cases",
]

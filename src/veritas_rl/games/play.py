"""Full games: a policy (prompt -> action text) against an opponent bot, move after move.

:func:`play_game` is the multi-turn API used by ``veritas eval-games`` and available to multi-turn
training loops::

    result = play_game("tic_tac_toe", my_policy, opponent="mcts", seed=3, seat=1)
    result.outcome          # "win" | "draw" | "loss" | "illegal"
    result.returns          # raw returns per seat (OpenSpiel's own scale)
    result.trajectory       # every move: who, which action, and for the policy its prompt and text

A *policy* is any callable ``policy(turn: Turn) -> str`` returning a completion; the completion is
parsed with the same strict ``<answer>…</answer>`` parser as the ``openspiel`` env. An invalid
completion ends the game at once: ``illegal_move`` is set and the policy's seat gets the game's
minimum utility (every other seat the maximum).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from veritas_rl.envs.base import MAX_COMPLETION_CHARS, seeded_rng, split_thinking
from veritas_rl.games import spiel

OUTCOMES = ("win", "draw", "loss", "illegal")


@dataclass(frozen=True)
class Turn:
    """What a policy sees when it must move."""

    case: str
    player: int
    messages: list[dict[str, str]]  # the chat prompt (same format as the env's tasks)
    legal: dict[int, str]  # {action id: action string}
    state: Any  # a clone of the pyspiel state (for bots that search); do not trust it to be live
    history: list[int]  # state.history(), chance outcomes included


@dataclass(frozen=True)
class Move:
    player: int  # -1 for chance
    action: int | None  # None when the policy's answer was invalid
    action_str: str
    by: str  # "policy" | "opponent" | "chance"
    completion: str | None = None  # the policy's raw text
    prompt: list[dict[str, str]] | None = None  # the policy's prompt

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None or k == "action"}


@dataclass
class GameResult:
    case: str
    seat: int
    seed: int
    returns: list[float]
    trajectory: list[Move] = field(default_factory=list)
    illegal_move: bool = False
    illegal_reason: str | None = None
    truncated: bool = False  # stopped by max_moves before the end

    @property
    def outcome(self) -> str:
        """``win`` / ``draw`` / ``loss`` for the policy's seat, or ``illegal``."""
        if self.illegal_move:
            return "illegal"
        mine = self.returns[self.seat]
        others = [r for p, r in enumerate(self.returns) if p != self.seat]
        if not others:
            return "draw"
        if all(r < mine for r in others):
            return "win"
        if any(r > mine for r in others):
            return "loss"
        return "draw"

    def policy_samples(self) -> list[dict[str, Any]]:
        """The policy's turns as ``{"prompt", "completion", "action", "legal"}`` rows (for multi-turn training).

        Every turn's prompt is the full current position, so each row stands alone (no chat history).
        ``legal`` is ``False`` only for the final, invalid answer of an ``illegal`` game.
        """
        return [
            {"prompt": m.prompt, "completion": m.completion, "action": m.action, "legal": m.action is not None}
            for m in self.trajectory
            if m.by == "policy" and m.prompt is not None
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "seat": self.seat,
            "seed": self.seed,
            "outcome": self.outcome,
            "returns": self.returns,
            "illegal_move": self.illegal_move,
            "illegal_reason": self.illegal_reason,
            "truncated": self.truncated,
            "trajectory": [m.to_dict() for m in self.trajectory],
        }


Policy = Callable[[Turn], str]


class BotPolicy:
    """A bot (``random`` | ``mcts``) as a policy: answers ``<answer>id</answer>``."""

    def __init__(self, bot):
        self.bot = bot

    def __call__(self, turn: Turn) -> str:
        return spiel.answer(self.bot.step(turn.state))


def play_game(
    case: str,
    policy: Policy,
    opponent: str | Any = "random",
    seed: int = 0,
    seat: int = 0,
    *,
    mcts_simulations: int = 100,
    uct_c: float = 2.0,
    max_moves: int | None = None,
    keep_prompts: bool = True,
) -> GameResult:
    """Play one game of ``case``: ``policy`` at ``seat``, ``opponent`` at every other seat.

    ``opponent`` is ``"random"``, ``"mcts"`` or an object with ``step(state) -> action``. Chance
    nodes are sampled with their probabilities from an RNG seeded by ``(seed, case, seat)``; the
    opponent has its own seeded RNG. ``max_moves`` caps the number of player moves (the game is then
    ``truncated`` and its returns are OpenSpiel's returns of the unfinished state).
    """
    case = spiel.normalise_case(case)
    game = spiel.load_game(case)
    if not 0 <= seat < game.num_players():
        raise ValueError(f"seat={seat} is not valid for {case!r}; choose from 0..{game.num_players() - 1}")
    chance_rng = seeded_rng("play-chance", seed, case, seat)
    if isinstance(opponent, str):
        opponent = spiel.make_bot(
            opponent, game, seeded_rng("play-opponent", seed, case, seat), mcts_simulations=mcts_simulations, uct_c=uct_c
        )
    state = game.new_initial_state()
    result = GameResult(case=case, seat=seat, seed=seed, returns=[0.0] * game.num_players())
    moves = 0
    while not state.is_terminal():
        if state.is_chance_node():
            action = spiel.sample_chance(state, chance_rng)
            result.trajectory.append(Move(-1, action, state.action_to_string(-1, action), "chance"))
            state.apply_action(action)
            continue
        if max_moves is not None and moves >= max_moves:
            result.truncated = True
            break
        player = state.current_player()
        if player == seat:
            legal = spiel.legal_map_from_state(state)
            messages = spiel.render_prompt(case, state, legal.by_id)
            turn = Turn(case, player, messages, dict(legal.by_id), state.clone(), list(state.history()))
            completion = policy(turn)
            action, why = _parse_completion(completion, legal, case)
            prompt = messages if keep_prompts else None
            if action is None:
                result.trajectory.append(Move(player, None, "", "policy", completion, prompt))
                result.illegal_move, result.illegal_reason = True, why
                lo, hi = game.min_utility(), game.max_utility()
                result.returns = [lo if p == seat else hi for p in range(game.num_players())]
                return result
            result.trajectory.append(Move(player, action, legal.by_id[action], "policy", completion, prompt))
        else:
            action = int(opponent.step(state))
            result.trajectory.append(Move(player, action, state.action_to_string(player, action), "opponent"))
        state.apply_action(action)
        moves += 1
    result.returns = [float(r) for r in state.returns()]
    return result


def _parse_completion(completion: Any, legal: spiel.LegalMap, case: str) -> tuple[int | None, str]:
    """The env's own path: the same size bound, think split and :func:`spiel.parse_move` as ``Env.score``."""
    if not isinstance(completion, str):
        return None, f"completion is {type(completion).__name__}, not str"
    if len(completion) > MAX_COMPLETION_CHARS:
        return None, f"completion longer than {MAX_COMPLETION_CHARS} characters"
    text, why = split_thinking(completion)
    if text is None:
        return None, why
    return spiel.parse_action(text, legal, case)


def random_policy(seed: int) -> Policy:
    """A uniformly random legal-move policy (picklable-free convenience for tests and baselines)."""
    return BotPolicy(spiel.RandomBot(random.Random(seed)))

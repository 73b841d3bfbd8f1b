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

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from veritas_rl.games import spiel
from veritas_rl.games.episode import EpisodeConfig, GameEpisode, outcome_of
from veritas_rl.games.moves import Move, Turn
from veritas_rl.games.opponents import parse_rung

OUTCOMES = ("win", "draw", "loss", "illegal")
__all__ = ["OUTCOMES", "BotPolicy", "GameResult", "Move", "Policy", "Turn", "play_game", "random_policy"]


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
        return "illegal" if self.illegal_move else outcome_of(self.returns, self.seat)

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
    """A bot (any ladder rung's, see :mod:`.opponents`) as a policy: answers ``<answer>id</answer>``."""

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
    conversation: bool = False,
) -> GameResult:
    """Play one game of ``case``: ``policy`` at ``seat``, ``opponent`` at every other seat.

    A thin user of the episode core (:class:`~veritas_rl.games.episode.GameEpisode`): the policy
    gets each turn as a stand-alone :class:`Turn` (the env's single-position prompt). ``opponent`` is
    a ladder rung (``random``, ``first_legal``, ``mcts:N``, ``policy:PATH``; a bare ``mcts`` means
    ``mcts:<mcts_simulations>``) or an object with ``step(state) -> action``. Chance nodes are sampled
    with their probabilities from an RNG seeded by ``(seed, case, seat)``; the opponent has its own
    seeded RNG. ``max_moves`` caps the number of player moves (the game is then ``truncated`` and its
    returns are OpenSpiel's returns of the unfinished state). ``conversation=True`` gives the policy the
    whole game so far as ``Turn.messages`` (the first prompt, its replies, the observations: the shape
    ``--episode game`` trains on) instead of a fresh single-position prompt per turn.
    """
    case = spiel.normalise_case(case)
    bot, rung = opponent, "random"  # a prebuilt bot plays; the config's rung is then only a label
    if isinstance(opponent, str):
        rung = parse_rung(opponent, mcts_default=mcts_simulations).name
        bot = None
    config = EpisodeConfig(case, seat, seed, rung, max_turns=10**9, max_moves=max_moves, uct_c=uct_c)
    episode = GameEpisode(config, bot, keep_prompts=keep_prompts)
    messages = episode.start()
    while not episode.done:
        turn = episode.turn()
        if conversation:
            turn = dataclasses.replace(turn, messages=list(messages))
        completion = policy(turn)
        out = episode.step(completion)
        if conversation and not out.done:
            text = completion if isinstance(completion, str) else ""
            messages += [{"role": "assistant", "content": text}, {"role": "user", "content": out.observation}]
    done = episode.result()
    return GameResult(
        case=case,
        seat=seat,
        seed=seed,
        returns=done.returns,
        trajectory=done.moves,
        illegal_move=done.outcome == "illegal",
        illegal_reason=done.reason,
        truncated=done.outcome == "max_turns",
    )


def random_policy(seed: int) -> Policy:
    """A uniformly random legal-move policy (picklable-free convenience for tests and baselines)."""
    return BotPolicy(spiel.RandomBot(random.Random(seed)))

"""The opponent ladder: rung names, and the bot each one builds.

A *rung* is a string naming an opponent:

* ``random`` — a uniformly random legal move (seeded);
* ``first_legal`` — the legal action with the smallest id (deterministic, weak, a sanity rung);
* ``mcts:N`` — Monte-Carlo tree search with ``N`` simulations per move and a random-rollout evaluator
  (:class:`~veritas_rl.games.spiel.MCTSBot`: OpenSpiel's ``MCTSBot``, or its information-set
  ``ISMCTSBot`` where the game can resample hidden information from the bot's information state);
* ``policy:PATH`` (also ``hf:PATH``) — a frozen checkpoint played greedily (self-play against an
  earlier self). ``PATH`` is anything :func:`veritas_rl.models.resolve_checkpoint` takes: an HF dir,
  a TRL run dir or its ``checkpoint-N``, a LoRA adapter dir, ``embedded:NAME``. Its prompt is the
  env's single-position prompt for its own seat; when its answer is not a legal move the bot plays a
  seeded random legal move instead (a frozen opponent that breaks the rules must not end the game in
  the learner's favour), and counts it in ``fallbacks``.

:data:`LADDER` is the rating ladder of ``veritas eval-games --ladder``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from veritas_rl.games import spiel
from veritas_rl.games.moves import Turn, parse_completion

RUNG_FORMS = "random | first_legal | mcts:N | policy:PATH"
#: the rating ladder (``veritas eval-games --ladder``); the MCTS rungs are the Elo anchors
LADDER = ("random", "mcts:10", "mcts:100", "mcts:1000")
#: bare ``mcts`` without a count is refused: the count is the rung's strength
MAX_SIMULATIONS = 1_000_000


@dataclass(frozen=True)
class Rung:
    kind: str  # "random" | "first_legal" | "mcts" | "policy"
    simulations: int | None = None  # mcts
    path: str | None = None  # policy

    @property
    def name(self) -> str:
        if self.kind == "mcts":
            return f"mcts:{self.simulations}"
        if self.kind == "policy":
            return f"policy:{self.path}"
        return self.kind


def parse_rung(text: Any, *, mcts_default: int | None = None, key: str = "opponent") -> Rung:
    """``"mcts:10"`` -> ``Rung("mcts", 10)``; a bad name raises ``ValueError`` naming ``key`` and the valid forms.

    ``mcts_default`` lets a bare ``mcts`` mean ``mcts:<mcts_default>`` (``veritas eval-games
    --mcts-simulations``); without it a bare ``mcts`` is refused.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{key}={text!r} is not a rung; valid forms: {RUNG_FORMS}")
    name = text.strip()
    if name in ("random", "first_legal"):
        return Rung(name)
    if name == "mcts":
        if mcts_default is None:
            raise ValueError(f"{key}='mcts' needs a simulation count, e.g. mcts:100; valid forms: {RUNG_FORMS}")
        return Rung("mcts", int(mcts_default))
    head, sep, tail = name.partition(":")
    if sep and head == "mcts":
        if not (tail.isdigit() and tail.isascii() and 1 <= int(tail) <= MAX_SIMULATIONS):
            raise ValueError(f"{key}={name!r}: N in mcts:N must be an integer in 1..{MAX_SIMULATIONS}")
        return Rung("mcts", int(tail))
    if sep and head in ("policy", "hf"):
        if not tail.strip():
            raise ValueError(f"{key}={name!r}: policy:PATH needs a checkpoint path (or embedded:NAME)")
        return Rung("policy", path=tail.strip())
    raise ValueError(f"{key}={name!r} is not a rung; valid forms: {RUNG_FORMS}")


class FirstLegalBot:
    """The legal action with the smallest id."""

    def step(self, state) -> int:
        return min(state.legal_actions())


class PolicyBot:
    """A text policy (``Turn -> completion``) as a bot; an invalid answer falls back to a seeded random legal move."""

    def __init__(self, policy, case: str, rng: random.Random):
        self.policy, self.case, self.rng = policy, case, rng
        self.fallbacks = 0

    def step(self, state) -> int:
        legal = spiel.legal_map_from_state(state)
        messages = spiel.render_prompt(self.case, state, legal.by_id)
        turn = Turn(self.case, state.current_player(), messages, dict(legal.by_id), state.clone(),
                    list(state.history()))
        parsed = parse_completion(self.policy(turn), legal, self.case)
        if parsed.action is None:
            self.fallbacks += 1
            return self.rng.choice(sorted(legal.by_id))
        return parsed.action


_POLICIES: dict[tuple[str, int, int | None], Any] = {}


def load_policy(path: str, *, max_new_tokens: int = 32, threads: int | None = None):
    """The greedy HF policy of a checkpoint, loaded once per process (a ladder plays it many times)."""
    key = (path, max_new_tokens, threads)
    if key not in _POLICIES:
        from veritas_rl.eval.hf_policy import HFPolicy

        _POLICIES[key] = HFPolicy(path, max_new_tokens=max_new_tokens, threads=threads)
    return _POLICIES[key]


def make_opponent(
    rung: Rung | str,
    case: str,
    rng: random.Random,
    *,
    uct_c: float = 2.0,
    max_new_tokens: int = 32,
    threads: int | None = None,
):
    """The bot of ``rung`` for ``case`` with its own seeded randomness (``step(state) -> action``)."""
    rung = parse_rung(rung) if isinstance(rung, str) else rung
    game = spiel.load_game(case)
    if rung.kind == "random":
        return spiel.RandomBot(rng)
    if rung.kind == "first_legal":
        return FirstLegalBot()
    if rung.kind == "mcts":
        return spiel.MCTSBot(game, rng, int(rung.simulations or 1), uct_c)
    if rung.kind == "policy":
        return PolicyBot(load_policy(str(rung.path), max_new_tokens=max_new_tokens, threads=threads), case, rng)
    raise ValueError(f"opponent={rung.kind!r} is not a rung; valid forms: {RUNG_FORMS}")

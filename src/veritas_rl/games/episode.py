"""One whole game as one RL episode: the core both backends and ``veritas eval-games`` play through.

Given a case, a seed and the model's seat, :class:`GameEpisode` renders the position for the model's
turn (the ``openspiel`` env's prompt), parses the model's move with the env's strict parser, applies
it, lets the opponent move (chance nodes sampled with their probabilities; imperfect-information
games shown from the model's information state), and repeats until the game ends, an invalid move
ends it, or ``max_turns`` model turns have been played::

    episode = GameEpisode(EpisodeConfig("tic_tac_toe", seat=0, seed=3, opponent="mcts:10"))
    messages = episode.start()                     # [{"role": "user", "content": <the env's prompt>}]
    while not episode.done:
        completion = my_model(messages)
        out = episode.step(completion)             # StepOutcome(done, observation, info)
        messages += [{"role": "assistant", "content": completion}]
        if not out.done:
            messages += [{"role": "user", "content": out.observation}]
    episode.result().reward                        # in [0, 1] (+ shaping)

Rules:

* **Conversation**: the first user message is the env's single-position prompt (rules, state, legal
  actions, answer format). Each later user message (``StepOutcome.observation``) names what happened
  since the model's move — the opponent's moves and chance outcomes for perfect-information games;
  for imperfect-information games nothing beyond what the model's information state shows — then
  the new state from the model's point of view and its legal actions.
* **Invalid move** (illegal, no answer, a hedge, garbage, a non-string, more than
  ``MAX_COMPLETION_CHARS``): the episode ends at once, outcome ``illegal``; the model's seat gets the
  game's minimum utility and every other seat the maximum. Never an exception.
* **max_turns**: when the model would have to play turn ``max_turns + 1`` (or ``max_moves`` player moves
  were made) the episode stops, outcome ``max_turns``; ``EpisodeResult.returns`` are OpenSpiel's returns
  of the unfinished state. An unfinished game pays what a loss pays at worst: the game's minimum
  utility for the model's seat in games with terminal rewards (their unfinished returns are 0, i.e. a
  draw's 0.5, which a losing model could collect by stalling or by spending the response budget), the
  rewards collected so far in games that pay as they go (``2048``).
* **Reward**: ``(return - min_utility) / (max_utility - min_utility)`` of the model's seat, plus
  ``legal_move_bonus`` per legal move the model made (shaping, default 0; documented in
  docs/training.md), the shaping capped at :data:`MAX_SHAPING` in all: with it a longer game never
  out-pays a better result of a win/draw/loss game (loss 0..0.5, draw above 0.5..1.0, win above 1.0).
  ``EpisodeResult.normalised_return`` keeps the unshaped part.
* **Determinism**: chance and the opponent draw from RNGs seeded by ``(seed, case, seat)`` (the
  seeds :func:`veritas_rl.games.play.play_game` has always used, so ``eval-games`` and training
  play the same games); an episode is a pure function of the config and the model's texts
  (:func:`replay_episode`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from veritas_rl.envs.base import seeded_rng
from veritas_rl.games import spiel
from veritas_rl.games.moves import Move, Turn, parse_completion
from veritas_rl.games.opponents import RUNG_FORMS, Rung, make_opponent, parse_rung

OUTCOMES = ("win", "draw", "loss", "illegal", "max_turns")
#: the most ``legal_move_bonus`` shaping one episode can earn: a loss (normalised 0) stays at or below 0.5,
#: under any draw (0.5 + at least one bonus), and a draw (at most 1.0) under any win (1.0 + a bonus)
MAX_SHAPING = 0.5


@dataclass(frozen=True)
class EpisodeConfig:
    case: str  # an OpenSpiel load string (spiel.normalise_case is applied)
    seat: int  # the model's player id
    seed: int  # chance + opponent RNG
    opponent: str = "random"  # a ladder rung: random | first_legal | mcts:N | policy:PATH
    max_turns: int = 50  # model turns
    legal_move_bonus: float = 0.0  # reward shaping per legal model move
    max_moves: int | None = None  # cap on all player moves (eval's --max-moves); None: no cap
    uct_c: float = 2.0  # MCTS exploration constant of mcts:N opponents

    def __post_init__(self):
        if not isinstance(self.case, str) or not self.case.strip():
            raise ValueError(f"case={self.case!r} must be an OpenSpiel load string such as 'tic_tac_toe'")
        object.__setattr__(self, "case", spiel.normalise_case(self.case))
        for key in ("seat", "seed"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{key}={value!r} must be an integer")
        if self.seat < 0:
            raise ValueError(f"seat={self.seat} must be >= 0")
        if not isinstance(self.max_turns, int) or isinstance(self.max_turns, bool) or self.max_turns < 1:
            raise ValueError(f"max_turns={self.max_turns!r} must be an integer >= 1")
        if self.max_moves is not None and (
            not isinstance(self.max_moves, int) or isinstance(self.max_moves, bool) or self.max_moves < 0
        ):
            raise ValueError(f"max_moves={self.max_moves!r} must be None or an integer >= 0")
        c = self.uct_c
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c <= 0:
            raise ValueError(f"uct_c={c!r} must be a finite number > 0")
        bonus = self.legal_move_bonus
        if isinstance(bonus, bool) or not isinstance(bonus, (int, float)) or not math.isfinite(bonus) or bonus < 0:
            raise ValueError(f"legal_move_bonus={bonus!r} must be a finite number >= 0")
        parse_rung(self.opponent)  # names the valid forms when bad
        object.__setattr__(self, "opponent", parse_rung(self.opponent).name)

    @property
    def rung(self) -> Rung:
        return parse_rung(self.opponent)


@dataclass(frozen=True)
class StepOutcome:
    done: bool
    observation: str | None  # the next user message for the model; None when done
    info: dict  # {"legal", "action", "reason", "kind"} (+ "outcome", "reward" when done)


@dataclass
class EpisodeResult:
    case: str
    seat: int
    seed: int
    opponent: str
    outcome: str  # "win" | "draw" | "loss" | "illegal" | "max_turns"
    reward: float  # normalised_return + min(legal_move_bonus * legal_moves, MAX_SHAPING)
    returns: list[float]  # OpenSpiel's (the unfinished state's for max_turns; min/max utility for illegal)
    model_turns: int
    legal_moves: int
    moves: list[Move] = field(default_factory=list)  # every move, chance included
    reason: str | None = None  # why the last model move was invalid (outcome "illegal")
    normalised_return: float = 0.0  # the model seat's return in [0, 1]; an unfinished game: see max_turns

    def completions(self) -> list[str | None]:
        return [m.completion for m in self.moves if m.by == "policy"]

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "moves"}
        out["moves"] = [m.to_dict() for m in self.moves]
        return out


def unfinished_return(game, value: float) -> float:
    """What the model's seat is paid for a game stopped unfinished (``max_turns``), given OpenSpiel's return.

    Games with terminal rewards return 0 before the end (a draw's value): paying that would let a losing
    model stall, or fill the response budget, for half a win. So the stop pays the minimum utility, no
    more than any finished game. Games that pay as they go (``RewardModel.REWARDS``, e.g. ``2048``) keep the
    rewards collected so far.
    """
    import pyspiel

    if game.get_type().reward_model == pyspiel.GameType.RewardModel.TERMINAL:
        return game.min_utility()
    return value


def outcome_of(returns: Sequence[float], seat: int) -> str:
    """``win`` / ``draw`` / ``loss`` of ``seat`` from the returns of a finished game."""
    mine = returns[seat]
    others = [r for p, r in enumerate(returns) if p != seat]
    if not others:
        return "draw"
    if all(r < mine for r in others):
        return "win"
    if any(r > mine for r in others):
        return "loss"
    return "draw"


class GameEpisode:
    """One game, stepped by the model's completions. See the module docstring for the rules."""

    def __init__(self, config: EpisodeConfig, opponent=None, *, keep_prompts: bool = False):
        self.config = config
        self.case = config.case
        self.game = spiel.load_game(self.case)
        n = self.game.num_players()
        if not 0 <= config.seat < n:
            raise ValueError(f"seat={config.seat} is not valid for {self.case!r}; choose from 0..{n - 1}")
        self.keep_prompts = keep_prompts
        self._chance_rng = seeded_rng("play-chance", config.seed, self.case, config.seat)
        if opponent is None:
            opponent = make_opponent(
                config.rung, self.case, seeded_rng("play-opponent", config.seed, self.case, config.seat),
                uct_c=config.uct_c,
            )
        self.opponent = opponent
        self.imperfect = spiel.is_imperfect(self.game)
        self.state = self.game.new_initial_state()
        self.moves: list[Move] = []
        self._since_model: list[Move] = []
        self._model_turns = self._legal_moves = self._player_moves = 0
        self._legal: spiel.LegalMap | None = None
        self._prompt: list[dict[str, str]] | None = None
        self._started = self._done = False
        self._outcome: str | None = None
        self._reason: str | None = None
        self._returns: list[float] | None = None

    # -- the model's side --------------------------------------------------------------------

    def start(self) -> list[dict[str, str]]:
        """The chat messages of the model's first turn (moves before it already applied); ``[]`` if none."""
        if self._started:
            raise RuntimeError("GameEpisode.start() was already called")
        self._started = True
        self._advance()
        return [] if self._done else list(self.prompt())

    @property
    def done(self) -> bool:
        return self._done

    def prompt(self) -> list[dict[str, str]]:
        """The env's single-position prompt for the model's current turn (stands alone, no history)."""
        self._require_turn()
        if self._prompt is None:
            self._prompt = spiel.render_prompt(self.case, self.state, self._legal.by_id)
        return self._prompt

    def turn(self) -> Turn:
        """The model's current turn as a :class:`Turn` (for bots and stateless policies)."""
        self._require_turn()
        return Turn(self.case, self.config.seat, self.prompt(), dict(self._legal.by_id), self.state.clone(),
                    list(self.state.history()))

    def step(self, completion: Any) -> StepOutcome:
        """Parse ``completion`` with the env's strict parser, apply it, let the others (and chance) move."""
        self._require_turn()
        legal, seat = self._legal, self.config.seat
        parsed = parse_completion(completion, legal, self.case)
        prompt = self.prompt() if self.keep_prompts else None
        text = completion if isinstance(completion, str) else None
        self._model_turns += 1
        info: dict[str, Any] = {"legal": parsed.action is not None, "action": parsed.action, "reason": parsed.why,
                                "kind": parsed.kind}
        if parsed.action is None:
            self.moves.append(Move(seat, None, "", "policy", text, prompt))
            lo, hi = self.game.min_utility(), self.game.max_utility()
            self._finish([lo if p == seat else hi for p in range(self.game.num_players())], "illegal", parsed.why)
        else:
            self.moves.append(Move(seat, parsed.action, legal.by_id[parsed.action], "policy", text, prompt))
            self.state.apply_action(parsed.action)
            self._legal_moves += 1
            self._player_moves += 1
            self._since_model = []
            self._advance()
        if self._done:
            result = self.result()
            info.update(outcome=result.outcome, reward=result.reward)
            return StepOutcome(True, None, info)
        return StepOutcome(False, self.observation(), info)

    def observation(self) -> str:
        """The user message of the model's current turn after its first: what happened, the state, the legal actions."""
        self._require_turn()
        seat = self.config.seat
        said: list[str] = []
        others = [m for m in self._since_model if m.by == "opponent"]
        if self.imperfect:
            if others:
                said.append("The other players have moved (you see what your information state shows).")
        else:
            for m in self._since_model:
                who = "Chance" if m.by == "chance" else f"Player {m.player}"
                said.append(f"{who} played {m.action}: {m.action_str}.")
        if not others and self._model_turns:
            said.append(f"You (player {seat}) move again.")
        actions = "\n".join(f"{a}: {s}" for a, s in self._legal.by_id.items())
        head = "\n".join(said) + "\n\n" if said else ""
        return (
            head + f"State from your point of view:\n{spiel.state_text(self.game, self.state, seat).rstrip()}\n\n"
            f"Legal actions (id: action):\n{actions}\n\n"
            f"Your move. End your reply with {spiel.ANSWER_OPEN}{spiel.ANSWER_PLACEHOLDER}{spiel.ANSWER_CLOSE}, "
            f"where {spiel.ANSWER_PLACEHOLDER} is one of the legal action ids above or its exact action string."
        )

    def result(self) -> EpisodeResult:
        if not self._done:
            raise RuntimeError("the episode is not over: step() until done")
        game, seat = self.game, self.config.seat
        returns = list(self._returns or [])
        outcome = self._outcome or outcome_of(returns, seat)
        norm = spiel.normalise_return(game, unfinished_return(game, returns[seat]) if outcome == "max_turns"
                                      else returns[seat])
        shaping = min(self.config.legal_move_bonus * self._legal_moves, MAX_SHAPING)
        return EpisodeResult(
            case=self.case, seat=seat, seed=self.config.seed, opponent=self.config.opponent, outcome=outcome,
            reward=norm + shaping, returns=returns,
            model_turns=self._model_turns, legal_moves=self._legal_moves, moves=list(self.moves),
            reason=self._reason, normalised_return=norm,
        )

    # -- the game's side ---------------------------------------------------------------------

    def _require_turn(self) -> None:
        if not self._started:
            raise RuntimeError("call GameEpisode.start() first")
        if self._done:
            raise RuntimeError("the episode is over")

    def _log(self, move: Move) -> None:
        self.moves.append(move)
        self._since_model.append(move)

    def _finish(self, returns: list[float], outcome: str | None, reason: str | None = None) -> None:
        self._returns = [float(r) for r in returns]
        self._outcome, self._reason, self._done = outcome, reason, True
        self._legal = self._prompt = None

    def _advance(self) -> None:
        """Apply chance and opponent moves until it is the model's turn or the episode ends."""
        state, seat, cap = self.state, self.config.seat, self.config.max_moves
        self._legal = self._prompt = None
        while not state.is_terminal():
            if state.is_chance_node():
                action = spiel.sample_chance(state, self._chance_rng)
                self._log(Move(-1, action, state.action_to_string(-1, action), "chance"))
                state.apply_action(action)
                continue
            if cap is not None and self._player_moves >= cap:
                return self._finish(list(state.returns()), "max_turns")
            player = state.current_player()
            if player == seat:
                if self._model_turns >= self.config.max_turns:
                    return self._finish(list(state.returns()), "max_turns")
                self._legal = spiel.legal_map_from_state(state)
                return None
            action = int(self.opponent.step(state))
            self._log(Move(player, action, state.action_to_string(player, action), "opponent"))
            state.apply_action(action)
            self._player_moves += 1
        return self._finish(list(state.returns()), None)


Policy = Callable[[list[dict[str, str]]], str]


def play_episode(config: EpisodeConfig, policy: Policy, opponent=None) -> EpisodeResult:
    """Play one episode: ``policy(messages) -> completion`` sees the whole conversation so far."""
    episode = GameEpisode(config, opponent)
    messages = episode.start()
    while not episode.done:
        completion = policy(list(messages))
        out = episode.step(completion)
        messages.append({"role": "assistant", "content": completion if isinstance(completion, str) else ""})
        if not out.done:
            messages.append({"role": "user", "content": out.observation})
    return episode.result()


def replay_episode(config: EpisodeConfig, completions: Sequence[str], opponent=None) -> EpisodeResult:
    """The episode the model's ``completions`` make (pure: the same texts give the same game).

    Raises ``ValueError`` when the texts run out before the game ends, or some are left over.
    """
    episode = GameEpisode(config, opponent)
    episode.start()
    texts = list(completions)
    used = 0
    while not episode.done:
        if used == len(texts):
            raise ValueError(f"replay_episode: the game needs more than the {len(texts)} completions given")
        episode.step(texts[used])
        used += 1
    if used != len(texts):
        raise ValueError(f"replay_episode: the game ended after {used} of the {len(texts)} completions given")
    return episode.result()


__all__ = ["EpisodeConfig", "EpisodeResult", "GameEpisode", "MAX_SHAPING", "OUTCOMES", "RUNG_FORMS",
           "StepOutcome", "outcome_of", "play_episode", "replay_episode", "unfinished_return"]

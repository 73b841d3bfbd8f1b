"""OpenSpiel plumbing shared by the ``openspiel`` env, full games and evaluation.

Everything here is deterministic given its ``random.Random`` argument: chance nodes are sampled with
their own probabilities, bots are seeded, and nothing touches a module-level RNG. ``pyspiel`` is
imported lazily so that importing this module (and listing envs) stays fast.

* :func:`load_game` — one cached ``pyspiel.Game`` per case string; simultaneous-move games are
  converted to turn-based ones (the later mover never sees the earlier mover's pending choice).
* :func:`state_from_history` — rebuild a state from ``state.history()`` (what tasks carry).
* :func:`render_prompt` / :func:`parse_move` — the prompt a model sees (it names the answer format
  abstractly, never a concrete answer) and the strict, linear-time parser of its ``<answer>…</answer>``
  slot (one answer by value; hedges, illegal moves and non-answers each with their reason class).
* :func:`make_bot` — ``random`` and ``mcts`` opponents (OpenSpiel's ``MCTSBot``, or its
  ``ISMCTSBot`` for hidden information, with a random-rollout evaluator); :func:`playout` plays a
  state to the end.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping, NamedTuple, Sequence

OPPONENTS = ("random", "mcts")

#: short rules reminders by game short name (the part of a case before ``(``)
RULES: dict[str, str] = {
    "tic_tac_toe": "Players alternately mark an empty cell of a 3x3 grid (x moves first). Three marks in a row, "
    "column or diagonal win; a full board without a line is a draw.",
    "connect_four": "Players alternately drop a piece into one of the 7 columns of a 6-row grid. Four pieces in a "
    "line (horizontal, vertical or diagonal) win; a full grid is a draw.",
    "hex": "Players alternately place a stone on an empty cell of a rhombic board. Each player tries to connect "
    "their own pair of opposite board edges with an unbroken chain of their stones; there are no draws.",
    "go": "Players alternately place a stone on an empty point or pass. Groups without liberties are captured. "
    "When both players pass, the player with more area (White adds komi) wins.",
    "breakthrough": "Pieces move one square straight or diagonally forward and capture diagonally forward. The "
    "first player to reach the opponent's home row, or to capture all opposing pieces, wins.",
    "dots_and_boxes": "Players alternately draw one line between two adjacent dots. Completing the fourth side of a "
    "box scores it and gives another move. The player with more boxes at the end wins.",
    "clobber": "A move takes one of your stones onto an orthogonally adjacent opposing stone, removing it. The "
    "player who cannot move loses.",
    "othello": "Place a disc so that it brackets a straight line of opposing discs, which flip to your colour. You "
    "pass only when you have no such move. The player with more discs at the end wins.",
    "chess": "Standard chess rules; moves are written in standard algebraic notation.",
    "checkers": "Standard checkers (draughts) on an 8x8 board: diagonal moves, captures are mandatory, pieces "
    "reaching the far row become kings.",
    "kuhn_poker": "Three cards: 0 = Jack, 1 = Queen, 2 = King. Each player antes 1 chip and holds one private "
    "card. Players may Pass or Bet 1 chip; a bet must be called or folded. The higher card wins at showdown. The state shows your card, then the actions so far (p = pass, b = bet).",
    "leduc_poker": "Six cards (Jack, Queen, King in two suits). Each player holds one private card; a public card "
    "is dealt after the first betting round. A pair with the public card beats any high card. Fold, call or raise.",
    "liars_dice": "Each player rolls dice the others cannot see. Players bid ever higher on how many dice across "
    "all players show a face, or call 'Liar'. After a call, the bid is checked and the wrong party loses. A bid "
    "reads quantity-face ('2-5': at least two dice show 5); the state shows your dice, then the bids so far.",
    "goofspiel": "Each round a prize card is revealed and both players bid one card from their hand at the same "
    "time (the other player's pending bid is hidden). The higher bid takes the prize; ties discard it. Most prize "
    "points wins.",
    "gin_rummy": "Build melds (sets and runs) from a 10-card hand: draw from the stock or the discard pile, then "
    "discard. Knock when your unmatched cards total 10 or less; gin with none.",
    "backgammon": "Standard backgammon: move checkers by the dice rolls towards your home board and bear them off "
    "first.",
    "oware": "Sow the seeds of one of your pits counter-clockwise; capture when the last seed makes a count of 2 "
    "or 3 in an opponent pit. Most seeds captured wins.",
}

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
#: the placeholder of the prompt's format description (never an action: scored as no answer)
ANSWER_PLACEHOLDER = "ID"
_INT_RE = re.compile(r"0|[1-9][0-9]*")  # no signs, no leading zeros
#: a line of the prompt's legal-action list, ``ID: action string`` (one line, the id without leading zeros)
_LISTED_RE = re.compile(r"(0|[1-9][0-9]{0,17})[ \t]*:[ \t]*([^\n]+)")

_GAMES: dict[str, Any] = {}


def game_short_name(case: str) -> str:
    """``hex(board_size=5)`` -> ``hex``."""
    return case.split("(", 1)[0].strip()


def normalise_case(case: str) -> str:
    return re.sub(r"\s+", "", str(case))


def split_cases(items: Sequence[str] | str) -> tuple[str, ...]:
    """Split comma-separated case lists without breaking parameter lists: ``a(x=1,y=2),b`` -> 2 cases.

    Also rejoins items that a naive ``split(",")`` already cut inside parentheses.
    """
    if isinstance(items, str):
        items = [items]
    out: list[str] = []
    buf = ""
    for item in items:
        for piece in str(item).split(","):
            buf = f"{buf},{piece}" if buf else piece
            if buf.count("(") <= buf.count(")"):
                if buf.strip():
                    out.append(normalise_case(buf))
                buf = ""
    if buf.strip():
        out.append(normalise_case(buf))  # unbalanced: let OpenSpiel name the problem
    return tuple(out)


def load_game(case: str):
    """The ``pyspiel.Game`` for ``case`` (cached per process). Bad cases raise ``ValueError``.

    Simultaneous-move games are loaded as turn-based games (``pyspiel.load_game_as_turn_based``): the
    players choose one after the other and a player's information state never shows the pending
    choices of the others, so the game stays the same game.
    """
    game = _GAMES.get(case)
    if game is not None:
        return game
    import pyspiel

    try:
        game = pyspiel.load_game(case)
    except (pyspiel.SpielError, RuntimeError, ValueError) as err:
        said = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"case {case!r}: OpenSpiel cannot load it: {said}") from None
    gtype = game.get_type()
    if gtype.dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS:
        game = pyspiel.load_game_as_turn_based(case)
        gtype = game.get_type()
    if gtype.dynamics != pyspiel.GameType.Dynamics.SEQUENTIAL:
        raise ValueError(f"case {case!r}: dynamics {gtype.dynamics} is not supported (sequential or simultaneous only)")
    if game.num_players() < 1:
        raise ValueError(f"case {case!r}: a game without players is not supported")
    if not game.max_utility() > game.min_utility():
        raise ValueError(
            f"case {case!r}: OpenSpiel reports min_utility={game.min_utility()} and max_utility={game.max_utility()}; "
            "outcomes cannot be normalised to [0, 1]"
        )
    imperfect = gtype.information != pyspiel.GameType.Information.PERFECT_INFORMATION
    if imperfect and not (gtype.provides_information_state_string or gtype.provides_observation_string):
        raise ValueError(
            f"case {case!r}: an imperfect-information game without information-state or observation strings "
            "cannot be shown to a player without leaking hidden information"
        )
    _GAMES[case] = game
    return game


def is_imperfect(game) -> bool:
    import pyspiel

    return game.get_type().information != pyspiel.GameType.Information.PERFECT_INFORMATION


def sample_chance(state, rng: random.Random) -> int:
    """One chance outcome of ``state``, drawn with its probability."""
    actions, probs = zip(*state.chance_outcomes())
    return rng.choices(actions, weights=probs)[0]


def resolve_chance(state, rng: random.Random) -> None:
    while state.is_chance_node():
        state.apply_action(sample_chance(state, rng))


def state_from_history(case: str, history: Sequence[int]):
    """Rebuild the state reached by ``history`` (``state.history()``, chance outcomes included)."""
    state = load_game(case).new_initial_state()
    for action in history:
        state.apply_action(int(action))
    return state


def legal_actions_map(state, player: int | None = None) -> dict[int, str]:
    """``{action id: action string}`` of the player to move."""
    player = state.current_player() if player is None else player
    return {int(a): state.action_to_string(player, a) for a in state.legal_actions(player)}


def state_text(game, state, player: int) -> str:
    """The state as ``player`` sees it: information state for imperfect information, else observation."""
    gtype = game.get_type()
    if is_imperfect(game):
        if gtype.provides_information_state_string:
            return state.information_state_string(player)
        return state.observation_string(player)
    if gtype.provides_observation_string:
        return state.observation_string(player)
    return str(state)


def render_prompt(case: str, state, legal: Mapping[int, str] | None = None) -> list[dict[str, str]]:
    """The chat prompt for the player to move in ``state`` (a decision node of ``case``)."""
    game = load_game(case)
    player = state.current_player()
    legal = legal_actions_map(state, player) if legal is None else legal
    gtype = game.get_type()
    name = gtype.long_name
    rules = RULES.get(game_short_name(case), f"{name}, played by OpenSpiel's standard rules.")
    hidden = (
        f"This is an imperfect-information game: you see only what player {player} knows.\n" if is_imperfect(game) else ""
    )
    actions = "\n".join(f"{a}: {s}" for a, s in legal.items())
    # No concrete answer and no think tag in the prompt: an echo of it must not name a legal move.
    content = (
        f"You are playing {name} (OpenSpiel case `{case}`) as player {player} "
        f"(players are numbered 0 to {game.num_players() - 1}).\n"
        f"Rules: {rules}\n{hidden}\n"
        f"State from your point of view:\n{state_text(game, state, player).rstrip()}\n\n"
        f"Legal actions (id: action):\n{actions}\n\n"
        "Choose exactly one legal action. You may reason first; reasoning inside think tags is ignored. "
        f"End your reply with {ANSWER_OPEN}{ANSWER_PLACEHOLDER}{ANSWER_CLOSE}, where {ANSWER_PLACEHOLDER} is one "
        "of the legal action ids above or its exact action string. Give one answer only: several different "
        "answers score zero."
    )
    return [{"role": "user", "content": content}]


def answer(action: int) -> str:
    """The canonical completion choosing ``action``."""
    return f"<answer>{action}</answer>"


@dataclass(frozen=True)
class LegalMap:
    """Legal actions of a task in the two ways an answer may name them."""

    by_id: dict[int, str]
    by_string: dict[str, tuple[int, ...]]


@lru_cache(maxsize=65536)
def legal_map_from_json(ground_truth: str) -> LegalMap:
    """Parse a task's ``ground_truth`` (``{"<id>": "<action string>"}``) once per distinct string."""
    raw = json.loads(ground_truth)
    by_id = {int(k): str(v) for k, v in raw.items()}
    by_string: dict[str, list[int]] = {}
    for a, s in by_id.items():
        by_string.setdefault(s, []).append(a)
    return LegalMap(by_id, {s: tuple(ids) for s, ids in by_string.items()})


def legal_map_from_state(state) -> LegalMap:
    by_id = legal_actions_map(state)
    by_string: dict[str, list[int]] = {}
    for a, s in by_id.items():
        by_string.setdefault(s, []).append(a)
    return LegalMap(by_id, {s: tuple(ids) for s, ids in by_string.items()})


class Parsed(NamedTuple):
    """What :func:`parse_move` found: the action (or ``None``), why, and the reason class (``Score`` kinds)."""

    action: int | None
    why: str
    kind: str


def answer_blocks(text: str) -> list[str]:
    """The contents of every closed ``<answer>…</answer>`` block of ``text``, in order.

    Linear time (``str.find`` scans that only move forward): an opener without a closer ends the
    scan, so a flood of ``<answer>`` tags costs one pass, not one pass per tag. Same blocks as the
    non-greedy ``<answer>(.*?)</answer>``: a block runs from an opener to the first closer after it.
    """
    blocks: list[str] = []
    at = 0
    while True:
        start = text.find(ANSWER_OPEN, at)
        if start < 0:
            return blocks
        start += len(ANSWER_OPEN)
        end = text.find(ANSWER_CLOSE, start)
        if end < 0:
            return blocks
        blocks.append(text[start:end])
        at = end + len(ANSWER_CLOSE)


def _resolve_slot(slot: str, legal: LegalMap, case: str | None) -> Parsed:
    """One non-empty, stripped slot -> the legal action it names, or why not."""
    candidates = set(legal.by_string.get(slot, ()))
    as_id = int(slot) if _INT_RE.fullmatch(slot) and len(slot) <= 18 else None
    if as_id is not None and as_id in legal.by_id:
        candidates.add(as_id)
    listed = _LISTED_RE.fullmatch(slot)  # "4: x(1,1)", copied from the list: one action only if both agree
    if listed is not None and legal.by_id.get(int(listed[1])) == listed[2].rstrip():
        candidates.add(int(listed[1]))
    if len(candidates) == 1:
        return Parsed(candidates.pop(), "ok", "correct")
    if len(candidates) > 1:
        return Parsed(None, f"ambiguous: {slot!r} names actions {sorted(candidates)}", "hedge")
    if slot == ANSWER_PLACEHOLDER:
        return Parsed(None, f"{slot!r} is the prompt's format placeholder, not an action", "no_answer")
    if as_id is not None:
        return Parsed(None, f"action id {as_id} is not legal here", "illegal")
    if _INT_RE.fullmatch(slot) or (case is not None and slot in action_vocabulary(case)):
        return Parsed(None, f"{slot[:80]!r} is not a legal action here", "illegal")
    return Parsed(None, f"{slot[:80]!r} is not a legal action id or action string", "no_answer")


def parse_move(text: str, legal: LegalMap, case: str | None = None) -> Parsed:
    """The one legal action the ``<answer>…</answer>`` blocks of ``text`` name, or why there is none.

    A slot holds an action id (digits, no sign, no leading zero), an exact action string, or a line of the
    prompt's list naming both of one action (``4: x(1,1)``), surrounding whitespace ignored; no substring,
    prefix or case-insensitive matching, and an id next to another action's string names nothing. Answers
    are compared by value: blocks naming the same action (its id and its string, say) are one answer; two
    or more different answers are a ``hedge``, as is a slot naming two actions (an id that is also
    another action's string). Empty blocks carry no answer. Kinds: ``no_answer`` (no block, only empty
    blocks, the format placeholder, text that is no action), ``illegal`` (an action id, or with
    ``case`` an action string of the game, that is not legal here), ``hedge``, else ``correct``.
    """
    from veritas_rl.envs.answers import tag_markup_problem  # here: the envs package imports this module

    problem = tag_markup_problem(text)
    if problem is not None:
        return Parsed(None, *problem)
    blocks = answer_blocks(text)
    if not blocks:
        return Parsed(None, "no <answer>...</answer> block", "no_answer")
    if len(blocks) == 1:  # the common case, kept cheap (legal scoring runs at >100k scores/s)
        slot = blocks[0].strip()
        return _resolve_slot(slot, legal, case) if slot else Parsed(None, "empty <answer> block", "no_answer")
    slots = [slot for slot in (b.strip() for b in blocks) if slot]
    if not slots:
        return Parsed(None, "empty <answer> block", "no_answer")
    resolved: dict[Any, Parsed] = {}
    for slot in dict.fromkeys(slots):  # distinct slots, in order
        parsed = _resolve_slot(slot, legal, case)
        if parsed.kind == "hedge":
            return parsed
        resolved.setdefault(parsed.action if parsed.action is not None else ("text", slot), parsed)
    if len(resolved) > 1:
        named = ", ".join(repr(k[1] if isinstance(k, tuple) else k)[:40] for k in list(resolved)[:4])
        return Parsed(None, f"hedge: {len(resolved)} different answers in {len(slots)} <answer> blocks ({named})", "hedge")
    return next(iter(resolved.values()))


def parse_action(text: str, legal: LegalMap, case: str | None = None) -> tuple[int | None, str]:
    """``(action, "ok")`` or ``(None, why)``: :func:`parse_move` without the reason class."""
    parsed = parse_move(text, legal, case)
    return parsed.action, parsed.why


@lru_cache(maxsize=256)
def action_vocabulary(case: str) -> frozenset[str]:
    """Every action string of ``case`` as OpenSpiel prints it at the first decision node, for each player.

    Only used to tell an illegal move (a real action of the game, not legal here) from text that is no
    action at all: the strings of the actions legal at that first node (for board games such as
    tic-tac-toe and connect four, every action). Games whose action strings depend on the position
    (chess's SAN) are covered only for that first position; anything else is classed ``no_answer``
    (the value is 0 either way).
    """
    import pyspiel

    game = load_game(case)
    state = game.new_initial_state()
    resolve_chance(state, random.Random(0))
    words: set[str] = set()
    if state.is_terminal():
        return frozenset()
    # only actions legal at that node: OpenSpiel's action_to_string is undefined for others, and for
    # chess it dereferences past its move table (a segfault in the reward process, seen on a wrong answer)
    for player in range(game.num_players()):
        for action in state.legal_actions(player):
            try:
                words.add(state.action_to_string(player, action))
            except (pyspiel.SpielError, RuntimeError):
                continue
    return frozenset(words)


# -- opponents -------------------------------------------------------------------------------


class RandomBot:
    """Uniformly random legal moves from a seeded ``random.Random``."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def step(self, state) -> int:
        return self.rng.choice(state.legal_actions())


class MCTSBot:
    """Seeded Monte-Carlo tree search with a random-rollout evaluator (OpenSpiel's implementations).

    * Perfect information: OpenSpiel's ``MCTSBot`` (UCT, MCTS-Solver).
    * Imperfect information, when the game implements ``ResampleFromInfostate`` (``kuhn_poker``,
      ``leduc_poker``, ``gin_rummy``, ...): OpenSpiel's ``ISMCTSBot`` — information-set MCTS that
      searches worlds resampled from the bot's own information state, so it does not see hidden cards.
    * Imperfect information without resampling (``liars_dice``, turn-based ``goofspiel``, ...): the
      plain ``MCTSBot`` on the true state — a clairvoyant opponent, stronger than a fair one.

    ``kind`` says which one was built (``mcts``, ``ismcts`` or ``mcts-clairvoyant``).
    """

    def __init__(self, game, rng: random.Random, simulations: int, uct_c: float):
        import numpy as np
        from open_spiel.python.algorithms import mcts

        rs = np.random.RandomState(rng.getrandbits(32))
        evaluator = mcts.RandomRolloutEvaluator(n_rollouts=1, random_state=rs)
        if not is_imperfect(game):
            self.kind = "mcts"
        elif supports_resampling(game):
            import pyspiel
            from open_spiel.python.algorithms import ismcts

            self.kind = "ismcts"
            self.bot = ismcts.ISMCTSBot(game, evaluator, uct_c, simulations, random_state=rs)
            sampler = pyspiel.UniformProbabilitySampler(rng.getrandbits(31), 0.0, 1.0)  # seeded worlds
            self.bot.set_resampler(lambda state, player: state.resample_from_infostate(player, sampler))
            return
        else:
            self.kind = "mcts-clairvoyant"
        self.bot = mcts.MCTSBot(game, uct_c, simulations, evaluator, solve=True, random_state=rs)

    def step(self, state) -> int:
        return int(self.bot.step(state))


_RESAMPLING: dict[str, bool] = {}


def supports_resampling(game) -> bool:
    """Whether ``game``'s states implement ``ResampleFromInfostate`` (probed once per game)."""
    key = str(game)
    known = _RESAMPLING.get(key)
    if known is not None:
        return known
    import pyspiel

    state = game.new_initial_state()
    resolve_chance(state, random.Random(0))
    ok = True
    if not state.is_terminal():
        try:
            state.resample_from_infostate(state.current_player(), pyspiel.UniformProbabilitySampler(0, 0.0, 1.0))
        except pyspiel.SpielError:
            ok = False
    _RESAMPLING[key] = ok
    return ok


def make_bot(kind: str, game, rng: random.Random, *, mcts_simulations: int = 100, uct_c: float = 2.0):
    """An opponent of ``kind`` (``random`` | ``mcts``) with its own seeded randomness."""
    if kind == "random":
        return RandomBot(rng)
    if kind == "mcts":
        return MCTSBot(game, rng, mcts_simulations, uct_c)
    raise ValueError(f"opponent={kind!r} is not valid; choose from: {', '.join(OPPONENTS)}")


def playout(state, rng: random.Random, policy_for: Callable[[int], Any]) -> list[float]:
    """Play ``state`` (modified in place) to the end; ``policy_for(player)`` gives that seat's bot."""
    while not state.is_terminal():
        if state.is_chance_node():
            state.apply_action(sample_chance(state, rng))
        else:
            state.apply_action(policy_for(state.current_player()).step(state))
    return list(state.returns())


def normalise_return(game, value: float) -> float:
    """Map a return to [0, 1] with the game's own ``min_utility()`` / ``max_utility()``."""
    lo, hi = game.min_utility(), game.max_utility()
    return min(1.0, max(0.0, (value - lo) / (hi - lo)))

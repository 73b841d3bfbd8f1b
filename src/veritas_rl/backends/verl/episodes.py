"""Whole games as verl episodes: the dataset settings, the items, and the reward of one game.

``data.custom_cls.config.episode=game`` (env ``openspiel``) turns each :class:`DynamicEnvDataset` item
into one game for the agent loop :class:`~veritas_rl.backends.verl.game_loop.GameAgentLoop`
(``agent_name`` :data:`AGENT_NAME`, registered by the YAML :data:`AGENT_LOOP_CONFIG` that
``actor_rollout_ref.rollout.agent.agent_loop_config_path`` names). Item ``i`` is the game of its env
task: the task's case, seat ``index % num_players`` (seat-balanced within a case), seed ``task_id``;
its ``raw_prompt`` is the model's first turn (:meth:`GameEpisode.start`) and ``extra_info["episode"]``
the :class:`EpisodeConfig` as JSON.

The reward is :func:`score_episode`: ``compute_score`` replays the game from the model's texts
(``extra_info["game_completions"]``, which verl 0.9.1's reward loop merges into ``extra_info`` from the
agent loop's ``extra_fields``) with :func:`replay_episode`, so a game's reward is a pure function of
(case, seed, seat, texts), computed in the reward workers like every other env's score. A game the
response budget cut short (``extra_info["game_truncated"]``) is scored as a ``max_turns`` stop after
the moves it has. The loop's own outcome travels too and must agree with the replay.

Nothing here imports torch or verl.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Mapping

from veritas_rl.envs.base import Score
from veritas_rl.jsonio import parse_json_object

__all__ = [
    "AGENT_LOOP_CONFIG",
    "AGENT_NAME",
    "EPISODE_MODES",
    "GAME_KEYS",
    "EpisodeSettings",
    "episode_config_from",
    "game_item",
    "parse_episode_settings",
    "score_episode",
]

EPISODE_MODES = ("move", "game")
#: the verl agent loop name of whole-game episodes (the YAML registers it)
AGENT_NAME = "veritas_game"
#: the agent-loop YAML shipped with the package (``actor_rollout_ref.rollout.agent.agent_loop_config_path``)
AGENT_LOOP_CONFIG = Path(__file__).with_name("agent_loops.yaml")
#: the env whose tasks can be played as whole games
GAME_ENV = "openspiel"
#: outcome indicators (0/1) of every game result: verl averages them per data source = the rates
OUTCOME_KEYS = tuple(f"game/{o}" for o in ("win", "draw", "loss", "illegal", "max_turns"))
#: every game key compute_score adds to the env keys (:func:`veritas_rl.backends.verl.reward.reward_dict`)
GAME_KEYS = (*OUTCOME_KEYS, "game/model_turns", "game/legal_moves", "game/normalised_return", "game/truncated")
#: the extra_fields the agent loop writes (and compute_score reads from extra_info)
COMPLETIONS_KEY, TRUNCATED_KEY, LOOP_OUTCOME_KEY = "game_completions", "game_truncated", "game_outcome"


@dataclasses.dataclass(frozen=True)
class EpisodeSettings:
    """The episode keys of ``data.custom_cls.config``."""

    episode: str = "move"
    opponent: str = "random"
    max_turns: int = 50
    legal_move_bonus: float = 0.0


#: keys only read with episode=game
GAME_ONLY_KEYS = ("opponent", "max_turns", "legal_move_bonus")


def parse_episode_settings(values: Mapping[str, Any], env: str) -> EpisodeSettings:
    """Validate the episode keys of ``data.custom_cls.config`` (already plain Python) for env ``env``."""
    from veritas_rl.games.opponents import RUNG_FORMS, parse_rung

    key = "data.custom_cls.config"
    episode = values.get("episode")
    episode = "move" if episode is None else episode
    if episode not in EPISODE_MODES:
        raise ValueError(f"{key}.episode={episode!r} is not valid; choose from: {', '.join(EPISODE_MODES)}")
    if episode == "move":
        given = [k for k in GAME_ONLY_KEYS if values.get(k) is not None]
        if given:
            raise ValueError(f"{key}.{given[0]} is read only with {key}.episode=game (episode is 'move')")
        return EpisodeSettings()
    if env != GAME_ENV:
        raise ValueError(f"{key}.episode=game plays whole games of env {GAME_ENV!r}; env is {env!r}")
    opponent = values.get("opponent")
    opponent = "random" if opponent is None else opponent
    rung = parse_rung(opponent, key=f"{key}.opponent")
    if rung.kind == "policy":
        raise ValueError(
            f"{key}.opponent={opponent!r}: a policy:PATH opponent is not supported in verl (every agent-loop and "
            f"reward worker would load the checkpoint on CPU); choose from: random, first_legal, mcts:N "
            f"(the TRL backend plays policy opponents; forms: {RUNG_FORMS})"
        )
    max_turns = values.get("max_turns")
    max_turns = 50 if max_turns is None else max_turns
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ValueError(f"{key}.max_turns={max_turns!r} must be an integer >= 1 (model turns per game)")
    bonus = values.get("legal_move_bonus")
    bonus = 0.0 if bonus is None else bonus
    if isinstance(bonus, bool) or not isinstance(bonus, (int, float)) or not math.isfinite(bonus) or bonus < 0:
        raise ValueError(f"{key}.legal_move_bonus={bonus!r} must be a finite number >= 0")
    return EpisodeSettings("game", rung.name, max_turns, float(bonus))


def _episode_config(task, settings: EpisodeSettings):
    from veritas_rl.games.episode import EpisodeConfig
    from veritas_rl.games.spiel import load_game

    case = task.extra["case"]
    seat = int(task.extra["index"]) % load_game(case).num_players()
    return EpisodeConfig(case, seat=seat, seed=int(task.task_id), opponent=settings.opponent,
                         max_turns=settings.max_turns, legal_move_bonus=settings.legal_move_bonus)


def config_json(config) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def game_item(item: dict[str, Any], task, settings: EpisodeSettings) -> dict[str, Any]:
    """``item`` (a move-mode dataset item of ``task``) as one game: first-turn prompt, agent name, episode config."""
    from veritas_rl.games.episode import GameEpisode

    config = _episode_config(task, settings)
    messages = GameEpisode(config).start()
    if not messages:
        raise ValueError(f"case {config.case!r}: the game ends before the model's first turn (seat {config.seat})")
    item["raw_prompt"] = [dict(m) for m in messages]
    item["agent_name"] = AGENT_NAME
    item["extra_info"]["episode"] = config_json(config)
    return item


def episode_config_from(extra_info: Any):
    """The :class:`EpisodeConfig` of a game item's ``extra_info``; a malformed one raises ``ValueError``."""
    from veritas_rl.games.episode import EpisodeConfig

    raw = extra_info.get("episode") if isinstance(extra_info, Mapping) else None
    if isinstance(raw, str):
        raw = parse_json_object("extra_info['episode']", raw)
    if not isinstance(raw, Mapping):
        raise ValueError(f"extra_info['episode'] must be an episode config (a dict or its JSON), got {raw!r:.120}")
    valid = {f.name for f in dataclasses.fields(EpisodeConfig)}
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise ValueError(f"extra_info['episode'] has unknown key(s) {unknown}; valid keys: {', '.join(sorted(valid))}")
    return EpisodeConfig(**dict(raw))


def _completions(extra_info: Mapping[str, Any]) -> list[Any]:
    texts = extra_info.get(COMPLETIONS_KEY)
    if texts is None:
        raise ValueError(
            f"extra_info has an 'episode' but no {COMPLETIONS_KEY!r}: the game was not played by the "
            f"{AGENT_NAME!r} agent loop (set actor_rollout_ref.rollout.agent.agent_loop_config_path={AGENT_LOOP_CONFIG})"
        )
    if hasattr(texts, "tolist"):  # a numpy array after verl's batching
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)):
        raise ValueError(f"extra_info[{COMPLETIONS_KEY!r}] must be a list of texts, got {type(texts).__name__}")
    return list(texts)  # the texts themselves are model output: any value, parsed by the episode's strict parser


def replay(extra_info: Mapping[str, Any]):
    """The game of ``extra_info`` replayed from the model's texts: ``(EpisodeResult, kind of the last move)``."""
    from veritas_rl.games.episode import GameEpisode

    config = episode_config_from(extra_info)
    texts = _completions(extra_info)
    if bool(extra_info.get(TRUNCATED_KEY)) and texts:
        # the response budget stopped the game after these moves: score it as a max_turns stop there
        config = dataclasses.replace(config, max_turns=min(config.max_turns, len(texts)))
    episode = GameEpisode(config)
    episode.start()
    kind = "correct"
    for used, text in enumerate(texts):
        if episode.done:
            raise ValueError(f"{COMPLETIONS_KEY}: the game ended after {used} of the {len(texts)} completions")
        kind = episode.step(text).info["kind"]
    if not episode.done:
        raise ValueError(
            f"{COMPLETIONS_KEY}: the game needs more than the {len(texts)} completions given and "
            f"{TRUNCATED_KEY} is not set"
        )
    return episode.result(), kind


def score_episode(extra_info: Mapping[str, Any]) -> tuple[Score, dict[str, float]]:
    """The game's :class:`Score` and the keys ``compute_score`` adds, from a replay.

    The score's value is the unshaped normalised return (so ``acc`` is 1 for a win with the game's
    maximum utility); the keys hold ``score`` = the episode reward (normalised return plus
    ``legal_move_bonus`` per legal move, which may exceed 1) and the ``game/*`` keys. Kinds: an
    ``illegal`` game has the reason class of its last move (``no_answer``, ``illegal``, ``hedge``,
    ``too_long``); otherwise ``correct`` / ``partial`` / ``wrong`` by value.
    """
    result, last_kind = replay(extra_info)
    loop_outcome = extra_info.get(LOOP_OUTCOME_KEY)
    if loop_outcome is not None and loop_outcome != result.outcome:
        raise ValueError(
            f"the agent loop ended its game as {loop_outcome!r} but the replay of its texts gives "
            f"{result.outcome!r} (case {result.case!r}, seat {result.seat}, seed {result.seed}): a bookkeeping bug"
        )
    value = min(1.0, max(0.0, float(result.normalised_return)))
    info: dict[str, Any] = {"outcome": result.outcome, "model_turns": result.model_turns}
    if result.outcome == "illegal":
        info.update(reason=f"move {result.model_turns}: {result.reason}", kind=last_kind)
    elif value == 0.0:
        info["reason"] = f"game {result.outcome}: the model's seat got the game's minimum utility"
    elif value < 1.0:
        info["reason"] = f"game {result.outcome}: normalised return {result.normalised_return:.3f}"
    keys = {k: 1.0 if k == f"game/{result.outcome}" else 0.0 for k in OUTCOME_KEYS}
    keys.update({
        "score": float(result.reward),
        "game/model_turns": float(result.model_turns),
        "game/legal_moves": float(result.legal_moves),
        "game/normalised_return": float(result.normalised_return),
        "game/truncated": 1.0 if extra_info.get(TRUNCATED_KEY) else 0.0,
    })
    return Score(value, info), keys

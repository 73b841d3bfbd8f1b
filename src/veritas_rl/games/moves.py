"""What one move of a game is: the policy's view of its turn (:class:`Turn`), one logged move (:class:`Move`),
and the env's own path from a completion to an action (:func:`parse_completion`).

Shared by the episode core (:mod:`.episode`), the opponents (:mod:`.opponents`) and :func:`.play.play_game`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veritas_rl.envs.base import MAX_COMPLETION_CHARS, split_thinking
from veritas_rl.games import spiel


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


def parse_completion(completion: Any, legal: spiel.LegalMap, case: str) -> spiel.Parsed:
    """The env's own path: the same size bound, think split and :func:`spiel.parse_move` as ``Env.score``.

    Never raises on model output: a non-string, an oversized text or an unclosed ``<think>`` is a
    ``no_answer`` with its reason.
    """
    if not isinstance(completion, str):
        return spiel.Parsed(None, f"completion is {type(completion).__name__}, not str", "no_answer")
    if len(completion) > MAX_COMPLETION_CHARS:
        return spiel.Parsed(None, f"completion longer than {MAX_COMPLETION_CHARS} characters", "too_long")
    text, why = split_thinking(completion)
    if text is None:
        return spiel.Parsed(None, why, "no_answer")
    return spiel.parse_move(text, legal, case)

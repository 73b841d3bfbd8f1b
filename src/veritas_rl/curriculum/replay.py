"""The failure-replay buffer: the most recent failed tasks, drawn with a priority that grows as the score falls.

A task is keyed by ``(stage, task_id)``: the stage's env config and the id rebuild it (tasks are a pure
function of both), so nothing else is stored. A draw whose mean score is below ``failure_threshold``
enters the buffer (or refreshes its entry: newest score, successes reset, moved to the newest end); at
``capacity`` the oldest entry leaves. A buffered task that scores at or above the threshold
``retire_after`` times in a row leaves the buffer.

Priority of an entry: ``max(1 - score, 1e-3) ** priority_exponent`` (exponent 0 = uniform).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

from veritas_rl.curriculum.schema import ReplaySettings

MIN_PRIORITY_BASE = 1e-3

Key = tuple[int, int]  # (stage, task_id)


class FailureReplay:
    def __init__(self, settings: ReplaySettings):
        self.settings = settings
        #: key -> [score, successes in a row]; oldest first
        self.entries: OrderedDict[Key, list[float]] = OrderedDict()
        self.added = 0
        self.retired = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: Key) -> bool:
        return key in self.entries

    def priority(self, score: float) -> float:
        return max(1.0 - float(score), MIN_PRIORITY_BASE) ** self.settings.priority_exponent

    def record(self, stage: int, task_id: int, score: float) -> str | None:
        """Feed one scored draw; returns ``"added"``, ``"refreshed"``, ``"success"``, ``"retired"`` or None."""
        key = (int(stage), int(task_id))
        if score < self.settings.failure_threshold:
            if key in self.entries:
                self.entries[key] = [float(score), 0]
                self.entries.move_to_end(key)
                return "refreshed"
            self.entries[key] = [float(score), 0]
            self.added += 1
            while len(self.entries) > self.settings.capacity:
                self.entries.popitem(last=False)
                self.evicted += 1
            return "added"
        entry = self.entries.get(key)
        if entry is None:
            return None
        entry[1] += 1
        if entry[1] >= self.settings.retire_after:
            del self.entries[key]
            self.retired += 1
            return "retired"
        return "success"

    def sample(self, rng: random.Random) -> Key:
        """One key, with probability proportional to its priority (the buffer must not be empty)."""
        if not self.entries:
            raise IndexError("sample from an empty failure-replay buffer")
        keys = list(self.entries)
        weights = [self.priority(self.entries[k][0]) for k in keys]
        return rng.choices(keys, weights=weights, k=1)[0]

    def state_dict(self) -> dict[str, Any]:
        return {
            "entries": [[k[0], k[1], v[0], v[1]] for k, v in self.entries.items()],
            "added": self.added,
            "retired": self.retired,
            "evicted": self.evicted,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.entries = OrderedDict(((int(s), int(t)), [float(score), int(n)]) for s, t, score, n in state["entries"])
        self.added = int(state.get("added", 0))
        self.retired = int(state.get("retired", 0))
        self.evicted = int(state.get("evicted", 0))

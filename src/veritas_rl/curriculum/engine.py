"""Stage/promotion logic and the draw schedule, shared by the TRL and verl adapters.

:class:`Curriculum` holds the state (current stage, its window of outcomes, steps in the stage, the
failure-replay buffer). :meth:`Curriculum.plan` turns a *slot* (the n-th task of the training stream)
into a :class:`Draw` without changing the state: a pure function of ``(state, slot, seed)``.
:meth:`Curriculum.apply` feeds one step's scored draws (in slot order) and promotes at the step's end.

:class:`Schedule` makes the stream reproducible when draws run ahead of the scores (prefetching
dataloaders, verl's dataloader workers): slots are grouped into batches of ``batch_size``; the draws of
batch ``b`` are made from the state after batches ``0 .. b-lag-1`` were applied, and a batch's feedback
is applied only when all its slots have ``group_size`` scores, in slot order. The stream is then the same
whatever the timing, given the same scores, and a resumed run replays the log of applied batches to
reach the exact state of the uninterrupted run.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from veritas_rl.curriculum.replay import FailureReplay
from veritas_rl.curriculum.schema import CurriculumSpec
from veritas_rl.envs.base import seeded_rng

log = logging.getLogger(__name__)

SOURCES = ("fresh", "review", "replay")
STATE_VERSION = 1


@dataclass(frozen=True)
class Draw:
    slot: int
    stage: int
    task_id: int
    source: str  # fresh | review | replay

    def to_list(self) -> list:
        return [self.slot, self.stage, self.task_id, self.source]

    @classmethod
    def from_list(cls, row: Sequence) -> "Draw":
        return cls(int(row[0]), int(row[1]), int(row[2]), str(row[3]))


class Curriculum:
    """The state machine. ``stage_spaces[i] = (num_tasks, task_id_at)`` of stage ``i``'s env; fresh tasks are
    drawn from dense indices ``[offset, num_tasks)`` (the first ``offset`` are the held-out set)."""

    def __init__(self, spec: CurriculumSpec, stage_spaces: Sequence[tuple[int, Callable[[int], int]]],
                 offset: int = 0):
        if len(stage_spaces) != len(spec.stages):
            raise ValueError(f"{len(spec.stages)} stages but {len(stage_spaces)} task spaces")
        self.spec = spec
        self.spaces = list(stage_spaces)
        self.offset = int(offset)
        self.replay = FailureReplay(spec.replay)
        self.stage = 0
        self.step = 0  # steps (batches) applied
        self.steps_in_stage = 0
        self.window: deque[int] = deque(maxlen=self._window_size())
        self.promotions: list[dict[str, Any]] = []
        self.last_replay_share = 0.0
        self.last_success_rate: float | None = None

    def _window_size(self) -> int:
        rule = self.spec.stages[self.stage].promote
        return rule.window if rule is not None else 1

    @property
    def final(self) -> bool:
        return self.stage == len(self.spec.stages) - 1

    def window_rate(self) -> float | None:
        return sum(self.window) / len(self.window) if self.window else None

    # -- draws -----------------------------------------------------------------------------------

    def plan(self, slot: int) -> Draw:
        """The draw for ``slot`` given the current state (the state is not changed)."""
        rng = seeded_rng("veritas-rl/curriculum", self.spec.seed, int(slot))
        replay = self.spec.replay
        u_replay, u_review = rng.random(), rng.random()
        if replay.enabled and len(self.replay) and u_replay < replay.fraction:
            stage, task_id = self.replay.sample(rng)
            return Draw(int(slot), stage, task_id, "replay")
        stage, source = self.stage, "fresh"
        if self.stage > 0 and u_review < self.spec.review_fraction:
            stage, source = rng.randrange(self.stage), "review"
        num_tasks, task_id_at = self.spaces[stage]
        lo = self.offset if num_tasks > self.offset else 0
        return Draw(int(slot), stage, int(task_id_at(lo + rng.randrange(num_tasks - lo))), source)

    # -- feedback --------------------------------------------------------------------------------

    def apply(self, results: Sequence[tuple[Draw, Sequence[float]]]) -> list[dict[str, Any]]:
        """Feed one step: ``(draw, completion scores)`` in slot order. Returns the promotion events."""
        success = self.spec.success_score
        replayed = 0
        for draw, scores in results:
            if not scores:
                continue
            replayed += draw.source == "replay"
            if draw.source == "fresh" and draw.stage == self.stage:
                self.window.extend(1 if s >= success else 0 for s in sorted(scores))
            if self.spec.replay.enabled:
                self.replay.record(draw.stage, draw.task_id, sum(scores) / len(scores))
        self.last_replay_share = replayed / len(results) if results else 0.0
        self.step += 1
        self.steps_in_stage += 1
        self.last_success_rate = self.window_rate()
        events = []
        rule = self.spec.stages[self.stage].promote
        if (not self.final and rule is not None and self.steps_in_stage >= rule.min_steps
                and len(self.window) >= rule.window and self.window_rate() >= rule.threshold):
            event = {"step": self.step, "from": self.stage, "to": self.stage + 1,
                     "from_name": self.spec.stages[self.stage].name, "to_name": self.spec.stages[self.stage + 1].name,
                     "success_rate": round(self.window_rate(), 4), "window": len(self.window)}
            self.stage += 1
            self.steps_in_stage = 0
            self.window = deque(maxlen=self._window_size())
            self.promotions.append(event)
            events.append(event)
            log.info("curriculum: step %d: stage %d %r -> %d %r (success %.2f over the last %d samples)",
                     event["step"], event["from"], event["from_name"], event["to"], event["to_name"],
                     event["success_rate"], event["window"])
        return events

    def metrics(self) -> dict[str, float]:
        """What the adapters log every step (``curriculum/...``)."""
        rate = self.window_rate()
        return {
            "curriculum/stage": float(self.stage),
            "curriculum/promotions": float(len(self.promotions)),
            "curriculum/buffer_size": float(len(self.replay)),
            "curriculum/replay_share": float(self.last_replay_share),
            "curriculum/stage_success_rate": float(rate) if rate is not None else 0.0,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "step": self.step, "steps_in_stage": self.steps_in_stage,
            "window": list(self.window), "promotions": [dict(p) for p in self.promotions],
            "last_replay_share": self.last_replay_share, "replay": self.replay.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage = int(state["stage"])
        if not 0 <= self.stage < len(self.spec.stages):
            raise ValueError(f"curriculum state: stage {self.stage} outside the {len(self.spec.stages)} stages")
        self.step = int(state["step"])
        self.steps_in_stage = int(state["steps_in_stage"])
        self.window = deque((int(x) for x in state["window"]), maxlen=self._window_size())
        self.promotions = [dict(p) for p in state["promotions"]]
        self.last_replay_share = float(state.get("last_replay_share", 0.0))
        self.replay.load_state_dict(state["replay"])


class NotReady(RuntimeError):
    """The draws of a slot's batch wait for feedback that has not arrived."""


class Schedule:
    """Batches of draws made ``lag`` batches ahead of the applied feedback (see the module docstring)."""

    #: draws of batches this far behind the applied ones are forgotten
    KEEP_BATCHES = 8

    def __init__(self, curriculum: Curriculum, batch_size: int, group_size: int, lag: int = 2):
        for key, value, lo in (("batch_size", batch_size, 1), ("group_size", group_size, 1), ("lag", lag, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"curriculum {key}={value!r} must be an integer >= {lo}")
        self.curriculum = curriculum
        self.batch_size, self.group_size, self.lag = batch_size, group_size, lag
        self._initial = curriculum.state_dict()
        self._reset()

    def _reset(self) -> None:
        self.curriculum.load_state_dict(self._initial)
        self.applied = 0  # batches whose feedback is applied
        self.drawn = 0  # batches whose draws are made
        self.draws: dict[int, Draw] = {}
        self.scores: dict[int, dict[int, list[float]]] = {}  # batch -> slot -> scores
        self.log: list[list[list]] = []  # per applied batch: [slot, stage, task_id, source, scores]
        self.events: list[dict[str, Any]] = []
        self.dropped = 0
        self.forced = 0
        self._fill()

    def _fill(self) -> None:
        while self.drawn <= self.applied + self.lag:
            b = self.drawn
            for slot in range(b * self.batch_size, (b + 1) * self.batch_size):
                self.draws[slot] = self.curriculum.plan(slot)
            self.drawn += 1
        horizon = (self.applied - self.KEEP_BATCHES) * self.batch_size
        for slot in [s for s in self.draws if s < horizon]:
            del self.draws[slot]

    def force(self, slot: int) -> None:
        """Draw up to ``slot``'s batch now, from the current state (feedback is late: no longer reproducible)."""
        while not self.ready(slot):
            for s in range(self.drawn * self.batch_size, (self.drawn + 1) * self.batch_size):
                self.draws[s] = self.curriculum.plan(s)
            self.drawn += 1
        self.forced += 1

    def batch_of(self, slot: int) -> int:
        return int(slot) // self.batch_size

    def ready(self, slot: int) -> bool:
        return self.batch_of(slot) < self.drawn

    def draw(self, slot: int) -> Draw:
        slot = int(slot)
        if slot < 0:
            raise IndexError(f"slot {slot} < 0")
        if not self.ready(slot):
            raise NotReady(f"slot {slot} (batch {self.batch_of(slot)}) needs the feedback of batch "
                           f"{self.batch_of(slot) - self.lag - 1}; {self.applied} batch(es) applied so far")
        if slot not in self.draws:
            raise KeyError(f"slot {slot} is {self.KEEP_BATCHES}+ batches behind the feedback; its draw is forgotten")
        return self.draws[slot]

    def report(self, slot: int, scores: Sequence[float]) -> list[dict[str, Any]]:
        """Add scores of ``slot``; applies every batch that became complete. Returns promotion events."""
        slot, b = int(slot), self.batch_of(slot)
        if b < self.applied or b >= self.drawn:
            self.dropped += len(scores)
            log.warning("curriculum: scores for slot %d of batch %d ignored (%d batches applied, %d drawn)",
                        slot, b, self.applied, self.drawn)
            return []
        have = self.scores.setdefault(b, {}).setdefault(slot, [])
        room = self.group_size - len(have)
        if len(scores) > room:
            self.dropped += len(scores) - room
            log.warning("curriculum: slot %d got %d scores, more than group_size=%d; extra ones ignored",
                        slot, len(have) + len(scores), self.group_size)
        have.extend(float(s) for s in list(scores)[:max(room, 0)])
        events: list[dict[str, Any]] = []
        while self._complete(self.applied):
            events += self._apply(self.applied)
        return events

    def _complete(self, b: int) -> bool:
        got = self.scores.get(b)
        return (got is not None and len(got) == self.batch_size
                and all(len(v) == self.group_size for v in got.values()))

    def _apply(self, b: int) -> list[dict[str, Any]]:
        got = self.scores.pop(b)
        results = [(self.draws[slot], got[slot]) for slot in sorted(got)]
        events = self.curriculum.apply(results)
        self.log.append([[*d.to_list(), list(s)] for d, s in results])
        self.events += events
        self.applied += 1
        self._fill()
        return events

    def metrics(self) -> dict[str, float]:
        return self.curriculum.metrics()

    # -- state -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: the applied batches (replayed on load) and partial scores."""
        return {
            "version": STATE_VERSION,
            "batch_size": self.batch_size, "group_size": self.group_size, "lag": self.lag,
            "spec": self.curriculum.spec.to_dict(),
            "log": self.log,
            "partial": {str(b): {str(s): v for s, v in slots.items()} for b, slots in self.scores.items()},
            "curriculum": self.curriculum.state_dict(),  # for readers; load replays the log
        }

    def load_state_dict(self, state: dict[str, Any], *, batches: int | None = None) -> None:
        """Replay ``state``'s log (its first ``batches`` batches when given: a checkpoint older than the log)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"curriculum state version {state.get('version')!r}; expected {STATE_VERSION}")
        for key in ("batch_size", "group_size", "lag"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(f"curriculum state was saved with {key}={state[key]} but this run has "
                                 f"{key}={getattr(self, key)}: resume with the same settings")
        if state["spec"] != self.curriculum.spec.to_dict():
            raise ValueError("curriculum state was saved with another curriculum file or replay settings; resume "
                             "with the same ones (or start a new run)")
        self._reset()
        log_rows = state["log"] if batches is None else state["log"][:batches]
        for b, rows in enumerate(log_rows):
            for row in rows:
                draw = Draw.from_list(row[:4])
                if self.draws.get(draw.slot) != draw:
                    raise ValueError(f"curriculum state: batch {b} slot {draw.slot} was {draw} but replaying the "
                                     f"log draws {self.draws.get(draw.slot)}; the state does not fit this run")
                self.scores.setdefault(b, {})[draw.slot] = [float(x) for x in row[4]]
            self._apply(b)
        if batches is None:
            for b, slots in state.get("partial", {}).items():
                for slot, values in slots.items():
                    self.scores.setdefault(int(b), {})[int(slot)] = [float(x) for x in values]

"""``reasoning-gym``: any reasoning-gym dataset by name, scored by that dataset's own ``score_answer``.

The answer slot is the text inside the last ``<answer>...</answer>`` pair (reasoning-gym's own
convention); the prompt says so. Task ``i`` is item ``i`` of one dataset instance built once per
config (reasoning-gym items are a pure function of ``(dataset config, seed, index)``).
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from veritas_rl.envs.answers import last_tag, looks_expensive
from veritas_rl.envs.base import Env, Score, Task, register_env

DEFAULT_DATASET = "chain_sum"
ANSWER_INSTRUCTION = (
    "\n\nThink it through, then give only your final answer inside <answer></answer> tags, "
    "for example <answer>your answer</answer>."
)
#: answers longer than this (inside the tags) are not handed to the dataset's scorer
MAX_ANSWER_CHARS = 20_000
#: items kept in memory for scoring (scoring needs the item; regenerating it costs one ``dataset[i]``)
ENTRY_CACHE_SIZE = 4096


def rg_dataset_names() -> list[str]:
    """Names of every reasoning-gym dataset (imports reasoning-gym)."""
    import reasoning_gym  # noqa: F401  (registers the datasets)
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def build_rg_dataset(name: str, options: dict[str, Any], *, seed: int, size: int, key: str = "dataset"):
    """One reasoning-gym dataset instance; unknown names/options become ``ValueError`` naming the key."""
    import reasoning_gym  # noqa: F401
    from reasoning_gym.factory import DATASETS

    if name not in DATASETS:
        raise ValueError(f"{key}={name!r} is not a reasoning-gym dataset; choose from: {', '.join(sorted(DATASETS))}")
    dataset_cls, config_cls = DATASETS[name]
    valid = [f.name for f in dataclasses.fields(config_cls) if f.name not in ("seed", "size")]
    for bad in ("seed", "size"):
        if bad in options:
            raise ValueError(f"{key}_config: set {bad!r} with the env's own `{bad}` key, not inside the dataset config")
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"{key}_config: unknown option(s) {unknown} for {name!r}; valid: {', '.join(valid)}")
    try:
        config = config_cls(**options, seed=seed, size=size)
        return dataset_cls(config=config)
    except (AssertionError, TypeError, ValueError) as err:  # reasoning-gym validates with assert
        raise ValueError(f"{key}_config={options!r} rejected by reasoning-gym {name!r}: {err}") from None


def answer_to_text(answer: Any) -> str | None:
    if answer is None:
        return None
    return answer if isinstance(answer, str) else json.dumps(answer, default=str)


@dataclass(frozen=True)
class ReasoningGymConfig:
    dataset: str = DEFAULT_DATASET  # any name in reasoning_gym.factory.DATASETS
    dataset_config: dict[str, Any] = field(default_factory=dict)  # the dataset's own options (not seed/size)
    seed: int = 0
    size: int = 100_000  # number of tasks (some datasets pre-generate all items at construction)
    binary: bool = False  # True: any score below 1.0 counts as 0.0

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset={self.dataset!r}; expected a reasoning-gym dataset name")
        if not isinstance(self.dataset_config, dict):
            raise ValueError(f"dataset_config={self.dataset_config!r}; expected a mapping of dataset options")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size={self.size!r}; expected a positive integer")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}; expected a non-negative integer")


class ReasoningGymEnv(Env):
    """Any reasoning-gym dataset, scored by its own score_answer on the last <answer> tag."""

    def __init__(self, config: ReasoningGymConfig):
        super().__init__(config)
        self.dataset = build_rg_dataset(
            config.dataset, dict(config.dataset_config), seed=config.seed, size=config.size
        )
        self._entries: OrderedDict[int, dict[str, Any]] = OrderedDict()

    @property
    def num_tasks(self) -> int:
        return self.config.size

    def task_id_at(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self.num_tasks:
            raise IndexError(f"index {index} outside [0, {self.num_tasks})")
        return index

    def entry(self, task_id: int) -> dict[str, Any]:
        """The reasoning-gym item behind ``task_id`` (kept in a small LRU cache: scoring needs it again)."""
        task_id = int(task_id)
        if not 0 <= task_id < self.num_tasks:
            raise ValueError(f"task_id={task_id} outside [0, {self.num_tasks}) (size={self.config.size})")
        # pop + re-insert (each step atomic under the GIL): safe when reward threads share the env
        item = self._entries.pop(task_id, None)
        if item is None:
            item = self.dataset[task_id]
        self._entries[task_id] = item
        while len(self._entries) > ENTRY_CACHE_SIZE:
            try:
                self._entries.popitem(last=False)
            except KeyError:
                break
        return item

    def task(self, task_id: int) -> Task:
        item = self.entry(task_id)
        gold = answer_to_text(item.get("answer"))
        return Task(
            env=self.name,
            task_id=int(task_id),
            prompt=[{"role": "user", "content": str(item["question"]) + ANSWER_INSTRUCTION}],
            ground_truth=gold if gold is not None else "",
            extra={"dataset": self.config.dataset, "index": int(task_id)},
        )

    def _matching_entry(self, task: Task) -> dict[str, Any]:
        item = self.entry(task.task_id)
        if (answer_to_text(item.get("answer")) or "") != task.ground_truth:
            raise ValueError(
                f"task {task.task_id} was not made by this env's config (dataset={self.config.dataset!r}, "
                f"seed={self.config.seed}): its ground truth differs from the regenerated item"
            )
        return item

    def _score(self, task: Task, answer: str) -> Score:
        item = self._matching_entry(task)
        slot = last_tag(answer, "answer")
        if slot is None:
            return Score.zero("no <answer>...</answer> tag")
        slot = slot.strip()
        if not slot:
            return Score.zero("empty <answer> tag")
        if len(slot) > MAX_ANSWER_CHARS:
            return Score.zero(f"answer longer than {MAX_ANSWER_CHARS} characters")
        if looks_expensive(slot):  # several scorers hand the answer to sympy, with no time limit
            return Score.zero("answer too expensive to evaluate (huge exponent or factorial)", answer=slot[:200])
        try:
            value = float(self.dataset.score_answer(slot, item))
        except Exception as err:  # noqa: BLE001 — reasoning-gym's scorer failing on model output is data
            return Score.zero(f"reasoning-gym scorer raised {type(err).__name__} on the answer", answer=slot[:200])
        value = min(max(value, 0.0), 1.0)
        if self.config.binary and value < 1.0:
            value = 0.0
        if value == 0.0:
            return Score.zero("reasoning-gym scored the answer 0", answer=slot[:200])
        info: dict[str, Any] = {"reason": "correct" if value == 1.0 else "partial credit from reasoning-gym"}
        if value < 1.0:
            info["answer"] = slot[:200]
        return Score(value, info)

    def oracle(self, task: Task) -> str | None:
        gold = answer_to_text(self._matching_entry(task).get("answer"))
        return None if gold is None else f"<answer>{gold}</answer>"


register_env("reasoning-gym", ReasoningGymEnv, ReasoningGymConfig, aliases=("reasoning_gym", "rg"))

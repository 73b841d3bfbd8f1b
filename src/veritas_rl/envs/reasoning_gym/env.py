"""The ``reasoning-gym`` env: config, tasks, and the one scoring core (see the package docstring)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from veritas_rl.envs.answers import all_tags, tag_markup_problem
from veritas_rl.envs.base import Env, Score, Task, register_env
from veritas_rl.envs.reasoning_gym.datasets import answer_to_text, build_rg_dataset
from veritas_rl.envs.reasoning_gym.guards import GUARDS, RESTATEMENT_CHECKS, exact_target
from veritas_rl.envs.reasoning_gym.shapes import (
    FORMAT_EXAMPLES,
    NULL_ANSWERS,
    Shape,
    embeds_gold,
    infer_shape,
    json_numbers_mismatch,
    normalize,
    parse_number,
    same_number_as_gold,
    unwrap,
)

DEFAULT_DATASET = "chain_sum"
ANSWER_INSTRUCTION = (
    "\n\nThink it through, then give only your final answer inside <answer></answer> tags, "
    "for example <answer>your answer</answer>."
)
#: answers longer than this (inside the tags) are not handed to the dataset's scorer
MAX_ANSWER_CHARS = 20_000
#: a completion with more <answer> tags than this is a hedge whatever they hold
MAX_ANSWER_TAGS = 64
#: items kept in memory for scoring (scoring needs the item; regenerating it costs one ``dataset[i]``)
ENTRY_CACHE_SIZE = 4096
#: datasets whose own scorer cannot tell a right answer from a wrong one of the right shape:
#: ``game_of_life_halting`` compares ``bool(answer) == bool(gold)`` (any non-empty text scores 1.0)
OWN_EXACT_MATCH = frozenset({"game_of_life_halting"})
#: shapes compared by value (``0.50`` for 0.5 holds the gold's text and is the same number): the
#: gold-with-more-around-it rule does not apply to them
_VALUE_SHAPES = frozenset({"number", "complex", "numbers"})


def half_unit(gold: str) -> Fraction:
    """Half a unit in the last decimal place the gold is written to (``0.3125`` -> 0.00005); 0 for integers
    and for scientific notation (compared exactly)."""
    text = gold.strip().rstrip(".")
    whole, dot, frac = text.partition(".")
    if dot and frac.isascii() and frac.isdigit() and whole.lstrip("-").isascii() and whole.lstrip("-").isdigit():
        return Fraction(1, 2 * 10 ** len(frac))
    return Fraction(0)


def answer_slots(text: str, tag: str = "answer") -> list[str] | None:
    """Contents of every closed ``<tag>...</tag>`` pair, stripped, in order (:func:`answers.all_tags`: linear,
    the innermost opener before each close; at most ``MAX_ANSWER_TAGS + 1``); ``None`` when there is none."""
    return [slot.strip() for slot in all_tags(text, tag, MAX_ANSWER_TAGS)] or None


def is_prompt_echo(slot: str, question: str, gold: str | None) -> bool:
    """The question (or most of it) handed back as the answer."""
    s, q = normalize(slot), normalize(question)
    if gold is not None and s == normalize(gold):
        return False
    if len(q) >= 20 and q in s:
        return True
    return len(s) >= 40 and 2 * len(s) >= len(q) and s in q


@dataclass(frozen=True)
class ReasoningGymConfig:
    dataset: str = DEFAULT_DATASET  # any name in reasoning_gym.factory.DATASETS
    dataset_config: dict[str, Any] = field(default_factory=dict)  # the dataset's own options (not seed/size)
    seed: int = 0
    size: int = 100_000  # number of tasks (some datasets pre-generate all items at construction)
    binary: bool = True  # any score below 1.0 counts as 0.0; False keeps reasoning-gym's partial credit

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset={self.dataset!r}; expected a reasoning-gym dataset name")
        if not isinstance(self.dataset_config, dict):
            raise ValueError(f"dataset_config={self.dataset_config!r}; expected a mapping of dataset options")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size={self.size!r}; expected a positive integer")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}; expected a non-negative integer")
        if not isinstance(self.binary, bool):
            raise ValueError(f"binary={self.binary!r}; expected true or false")


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

    def shape(self, item: dict[str, Any]) -> Shape:
        """The answer shape of ``item`` (what an answer must look like for the scorer's credit to count)."""
        return infer_shape(answer_to_text(item.get("answer")), self.config.dataset, item)

    def _score(self, task: Task, answer: str) -> Score:
        item = self._matching_entry(task)
        problem = tag_markup_problem(answer, "answer")
        if problem is not None:
            return Score.zero(problem[0], kind=problem[1])
        slots = answer_slots(answer)
        if slots is None:
            return Score.zero("no <answer>...</answer> tag", kind="no_answer")
        gold = answer_to_text(item.get("answer"))
        if len(slots[-1]) > MAX_ANSWER_CHARS:
            return Score.zero(f"answer longer than {MAX_ANSWER_CHARS} characters", kind="too_long")
        # ``$42$``, ``\boxed{42}``, ``**42**``, ``42.``: the answer inside its markup
        slots = [unwrap(s, gold) if len(s) <= MAX_ANSWER_CHARS else s for s in slots]
        slot = slots[-1]
        if not slot:
            return Score.zero("empty <answer> tag", kind="no_answer")
        if normalize(slot) in FORMAT_EXAMPLES:
            return Score.zero("the prompt's format example, not an answer", kind="no_answer")
        if normalize(slot) in NULL_ANSWERS and (gold is None or normalize(slot) != normalize(gold)):
            return Score.zero("an answer that says there is none", kind="no_answer", answer=slot[:200])
        if is_prompt_echo(slot, str(item["question"]), gold):
            return Score.zero("the question copied as the answer", kind="no_answer")
        shape = self.shape(item)
        short = slot[:200]

        # hedges: several different final answers, compared by value
        finals = [s for s in slots if s and len(s) <= MAX_ANSWER_CHARS and normalize(s) not in FORMAT_EXAMPLES]
        if len(slots) > MAX_ANSWER_TAGS or len({shape.value(s) for s in finals}) > 1:
            return Score.zero("several <answer> tags with different answers (a hedge scores 0)", kind="hedge")
        if len(shape.alternatives(slot)) > 1:
            return Score.zero("one answer slot holds several different answers (a hedge scores 0)", kind="hedge", answer=short)

        is_gold = gold is not None and slot == gold.strip()
        text = slot
        guard = GUARDS.get(self.config.dataset)
        guarded_value = None
        if is_gold:
            text = gold  # the dataset's own string, as the dataset wrote it
        elif guard is not None:
            guarded = guard(slot, item)
            if guarded.text is None:
                kind = guarded.kind
                if guarded.shape_decides and not shape.conforms(slot):
                    kind = "no_answer"
                return Score.zero(guarded.reason, kind=kind, answer=short)
            text, guarded_value = guarded.text, guarded.value
        elif not shape.conforms(slot):
            return Score.zero(f"not an answer of the task's shape ({shape.kind})", kind="no_answer", answer=short)
        elif shape.kind == "number" and gold is not None and same_number_as_gold(slot, gold):
            text = gold  # 6.0, +6, 78,000 for 6, 6, 78000: the gold's number in another notation
        elif shape.kind == "choice" and gold is not None and normalize(slot) == normalize(gold):
            text = gold  # true for True, YES for Yes: the same word of a closed vocabulary (scorers compare case)
        restatement = RESTATEMENT_CHECKS.get(self.config.dataset)
        why = restatement(slot, item) if restatement is not None and not is_gold else None
        if why is not None:
            return Score.zero(why, kind="no_answer", answer=short)

        try:
            value = float(self.dataset.score_answer(text, item))
        except Exception as err:  # noqa: BLE001 — reasoning-gym's scorer failing on model output is data
            return Score.zero(f"reasoning-gym scorer raised {type(err).__name__} on the answer", answer=short)
        if value != value:  # NaN
            value = 0.0
        value = min(max(value, 0.0), 1.0)
        target = exact_target(item, self.config.dataset)
        if value == 1.0 and target is not None and guarded_value is not None and guarded_value != target:
            value = 0.0  # puzzle24's scorer truncates with int(): 49/2 would count as 24
            reason = f"the expression is {Fraction(guarded_value)}, not {target}"
            return Score.zero(reason, answer=short)
        padded = shape.kind not in _VALUE_SHAPES and gold is not None and not is_gold and embeds_gold(slot, gold)
        if value > 0.0 and padded:
            # scorers that compare the gold's length of the answer (spell_backward, word_sorting, letter_jumble)
            # or its first word (time_intervals) ignore what follows: the gold and then another answer
            return Score.zero("the answer with more words around it (a hedge or padding scores 0)",
                              kind="hedge", answer=short)
        if value == 1.0 and shape.kind == "json" and gold is not None and not is_gold:
            why = json_numbers_mismatch(slot, gold)
            if why is not None:
                return Score.zero(f"{why} (reasoning-gym's scorer gave 1.0)", answer=short)
        if self.config.dataset in OWN_EXACT_MATCH:
            value = 1.0 if gold is not None and normalize(slot) == normalize(gold) else 0.0
        if value > 0.0 and shape.kind == "number" and gold is not None and not is_gold:
            # reasoning-gym's number scorers read a prefix (coin_flip: "0" for 0.3125), skip a sign
            # (gsm_symbolic: -28080 for 28080) or give a similarity to a wrong number: a number-shaped answer
            # earns credit only when it is the gold's number, to the precision the gold is written in
            got, want = parse_number(slot), parse_number(gold)
            if got is not None and want is not None and abs(Fraction(got) - Fraction(want)) > half_unit(gold):
                return Score.zero(f"a different number than the answer (reasoning-gym's scorer gave {value:.3g})",
                                  answer=short)
        if self.config.binary and value < 1.0:
            value = 0.0
        if value == 0.0:
            return Score.zero("reasoning-gym scored the answer 0", answer=short)
        info: dict[str, Any] = {"reason": "correct" if value == 1.0 else "partial credit from reasoning-gym"}
        if value < 1.0:
            info["answer"] = short
        return Score(value, info)

    def oracle(self, task: Task) -> str | None:
        gold = answer_to_text(self._matching_entry(task).get("answer"))
        return None if gold is None else f"<answer>{gold}</answer>"


register_env("reasoning-gym", ReasoningGymEnv, ReasoningGymConfig, aliases=("reasoning_gym", "rg"))

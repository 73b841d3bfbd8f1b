r"""``math`` (alias ``gsm8k``): word problems with a numeric or symbolic answer.

Questions come from, in order of precedence:

* ``data_files``: local parquet / jsonl files with ``question_key`` / ``answer_key`` columns;
* ``dataset_name``: a Hugging Face dataset through ``datasets.load_dataset`` (``openai/gsm8k``,
  ``subset="main"``, ``split="test"``) — needs the hub or a local HF cache;
* otherwise (offline default) the reasoning-gym dataset ``rg_dataset`` (``gsm_symbolic``).

Gold answers in GSM8K style (``... #### 72``) keep the part after ``####``.

The answer is extracted from the completion in this order: the last ``\boxed{}`` (nested braces),
"the answer is", "final answer", ``####``, and finally the last number in the text. Numbers compare
exactly after normalisation (thousands commas, ``$``, trailing ``.0``, ``%``); anything symbolic goes
through math-verify (inputs are length-capped and time-limited).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from veritas_rl.envs.answers import (
    CONFLICTING_BOXED,
    NUMBER_RE,
    after_last_marker,
    boxed_answer,
    format_number,
    last_boxed,
    last_number,
    looks_expensive,
    parse_number,
)
from veritas_rl.envs.base import Env, Score, Task, register_env

log = logging.getLogger(__name__)

MATH_INSTRUCTION = "\n\nSolve the problem step by step, then give the final answer in \\boxed{}."
#: slots longer than this are not handed to math-verify (its parser is slow on long input)
MATH_VERIFY_MAX_CHARS = 300
MATH_VERIFY_TIMEOUT_S = 2


# =============================================================================================
# question/answer sources shared by ``math`` and ``answer-tag``
# =============================================================================================


@dataclass(frozen=True)
class QASourceConfig:
    """Where question/answer pairs come from (see the module docstring for the precedence)."""

    data_files: tuple[str, ...] = ()  # local .parquet / .jsonl / .json files
    dataset_name: str = ""  # Hugging Face dataset id, e.g. "openai/gsm8k"
    subset: str = "main"  # the HF dataset's config name ("" for none)
    split: str = "test"
    question_key: str = "question"
    answer_key: str = "answer"
    rg_dataset: str = "gsm_symbolic"  # offline default: a reasoning-gym dataset
    rg_config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0  # reasoning-gym seed
    size: int = 10_000  # number of reasoning-gym tasks
    max_tasks: int = 0  # keep only the first N rows of a file/HF dataset (0: all)

    def __post_init__(self):
        files = self.data_files
        if isinstance(files, str):
            files = (files,)
        object.__setattr__(self, "data_files", tuple(str(f) for f in files))
        if self.data_files and self.dataset_name:
            raise ValueError("data_files and dataset_name are both set; choose one source")
        for f in self.data_files:
            if Path(f).suffix.lower() not in (".parquet", ".jsonl", ".json"):
                raise ValueError(f"data_files: {f!r} is not valid; choose files ending in .parquet, .jsonl or .json")
        for key in ("question_key", "answer_key"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ValueError(f"{key}={getattr(self, key)!r}; expected a column name")
        if not isinstance(self.rg_config, dict):
            raise ValueError(f"rg_config={self.rg_config!r}; expected a mapping of dataset options")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size={self.size!r}; expected a positive integer")
        if not isinstance(self.max_tasks, int) or self.max_tasks < 0:
            raise ValueError(f"max_tasks={self.max_tasks!r}; expected 0 (all) or a positive integer")

    @property
    def source(self) -> str:
        return "files" if self.data_files else "hf" if self.dataset_name else "reasoning-gym"


def load_rows(config: QASourceConfig) -> list[dict[str, str]]:
    """Rows ``{"question", "answer"}`` of a local file set or a Hugging Face dataset."""
    qk, ak = config.question_key, config.answer_key
    if config.data_files:
        import pandas as pd

        frames = []
        for f in config.data_files:
            path = Path(f)
            if not path.is_file():
                raise ValueError(f"data_files: {f!r} does not exist")
            if path.suffix.lower() == ".parquet":
                frames.append(pd.read_parquet(path))
            else:
                frames.append(pd.read_json(path, lines=path.suffix.lower() == ".jsonl", dtype=False))
        table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        columns = list(table.columns)
        records = table.to_dict("records")
    else:
        import datasets

        try:
            ds = datasets.load_dataset(config.dataset_name, config.subset or None, split=config.split)
        except Exception as err:  # noqa: BLE001 — the hub/cache is the user's configuration: say which key
            raise ValueError(
                f"dataset_name={config.dataset_name!r} (subset={config.subset!r}, split={config.split!r}) "
                f"could not be loaded: {type(err).__name__}: {err}"
            ) from err
        columns = list(ds.column_names)
        records = ds
    for key, name in (("question_key", qk), ("answer_key", ak)):
        if name not in columns:
            raise ValueError(f"{key}={name!r} is not a column; choose from: {', '.join(map(str, columns))}")
    rows = []
    for rec in records:
        rows.append({"question": str(rec[qk]), "answer": str(rec[ak])})
        if config.max_tasks and len(rows) >= config.max_tasks:
            break
    if not rows:
        raise ValueError(f"the {config.source} source has no rows ({config.data_files or config.dataset_name})")
    return rows


class QASource:
    """Question/answer pair ``i`` of the configured source (rows loaded once per env)."""

    def __init__(self, config: QASourceConfig):
        self.config = config
        self.rows: list[dict[str, str]] | None = None
        self.rg = None
        if config.source == "reasoning-gym":
            from veritas_rl.envs.reasoning_gym_env import build_rg_dataset

            self.rg = build_rg_dataset(
                config.rg_dataset, dict(config.rg_config), seed=config.seed, size=config.size, key="rg_dataset"
            )
        else:
            self.rows = load_rows(config)
            log.info("loaded %d question/answer rows from %s", len(self.rows), config.source)

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else self.config.size

    def pair(self, index: int) -> tuple[str, str]:
        index = int(index)
        if not 0 <= index < len(self):
            raise ValueError(f"task_id={index} outside [0, {len(self)})")
        if self.rows is not None:
            row = self.rows[index]
            return row["question"], row["answer"]
        item = self.rg[index]
        return str(item["question"]), str(item["answer"])


def gold_answer(raw: str) -> str:
    r"""The final answer inside a dataset's answer field: after ``####`` (GSM8K), in ``\boxed{}``, or all of it."""
    text = str(raw)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    else:
        boxed = last_boxed(text)
        if boxed is not None:
            text = boxed
    return text.strip()


# =============================================================================================
# answer extraction and comparison
# =============================================================================================

_MARKERS = (("the answer is", "the answer is"), ("final answer", "final answer"), ("####", "####"))
_NUMBER_START = frozenset("-+$\\.0123456789")


def extract_answer(text: str) -> tuple[str | None, str]:
    r"""``(answer text, how)``: ``\boxed{}``, "the answer is", "final answer", ``####``, last number — in that order."""
    boxed, why = boxed_answer(text)
    if boxed is not None:
        return boxed.strip(), "boxed"
    if why == CONFLICTING_BOXED:
        return None, why
    for marker, how in _MARKERS:
        slot = after_last_marker(text, marker)
        if slot is not None:
            slot = _trim_slot(slot)
            if marker == "####" and slot[:1] not in _NUMBER_START:
                continue  # a Markdown heading ("#### Step 2"), not GSM8K's answer line
            if slot:
                return slot, how
    number = last_number(text)
    if number is not None:
        return format_number(number), "last number"
    return None, "none"


def _trim_slot(slot: str) -> str:
    s = slot.strip()
    for lead in (":", "is ", ":", "="):
        if s.lower().startswith(lead):
            s = s[len(lead) :].strip()
    s = s.strip("*").strip()  # **Final answer:** 42
    s = _strip_math_delimiters(s)
    # a sentence after the answer ("42. That is all") ends the slot
    cut = s.find(". ")
    if cut > 0:
        s = s[:cut]
    return s.rstrip(".").strip()


def _strip_math_delimiters(text: str) -> str:
    r"""``$42$``, ``\(42\)``, ``\[42\]`` -> ``42``."""
    s = text.strip()
    for left, right in (("\\(", "\\)"), ("\\[", "\\]"), ("$$", "$$"), ("$", "$")):
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            s = s[len(left) : len(s) - len(right)].strip()
    return s.strip("$").strip()


def normalize_numeric(text: str) -> Fraction | None:
    r"""A number from an answer slot: ``$1,234.50``, ``72.0``, ``50%``, ``\$18``, ``18 dollars``, ``\frac{1}{2}``."""
    s = _strip_math_delimiters(text).replace("\\$", "$").replace("\\%", "%").replace("\\,", "").replace("{,}", ",")
    s = s.replace("\\!", "").replace("\\text{", "").replace("\\mathrm{", "")
    frac = _latex_frac(s)
    if frac is not None:
        return frac
    value = parse_number(s.strip("{}"))
    if value is not None:
        return value
    # "18 dollars", "x = 5": the slot holds one number and words
    if len(s) <= 80:
        words = s.replace("=", " ").split()
        numeric = [w for w in words if parse_number(w) is not None]
        if len(numeric) == 1:
            return parse_number(numeric[0])
    return None


def _latex_frac(s: str) -> Fraction | None:
    for head in ("\\dfrac{", "\\tfrac{", "\\frac{"):
        if s.startswith(head) or s.startswith("-" + head):
            sign = -1 if s.startswith("-") else 1
            body = s[len(head) + (sign < 0) :]
            num, sep, rest = body.partition("}{")
            if not sep or not rest.endswith("}"):
                return None
            n, d = parse_number(num), parse_number(rest[:-1])
            if n is None or d is None or d == 0:
                return None
            return sign * n / d
    return None


def math_verify_equal(gold: str, answer: str) -> tuple[bool, str]:
    """math-verify equivalence of two short LaTeX/plain answers; ``(equal, note)``. Never raises."""
    if len(answer) > MATH_VERIFY_MAX_CHARS or len(gold) > MATH_VERIFY_MAX_CHARS:
        return False, f"answer longer than {MATH_VERIFY_MAX_CHARS} characters for symbolic comparison"
    if looks_expensive(answer) or looks_expensive(gold):
        return False, "answer too expensive to evaluate symbolically (huge exponent or factorial)"
    from math_verify import parse, verify

    timeout = MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        g = parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout)
        p = parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout)
        if not g or not p:
            return False, "math-verify could not parse the answer"
        return bool(verify(g, p, timeout_seconds=timeout)), "math-verify"
    except Exception as err:  # noqa: BLE001 — math-verify failing (or timing out) on model output is data
        return False, f"math-verify failed: {type(err).__name__}"


def _plain(text: str) -> str:
    return " ".join(text.replace("$", "").split()).rstrip(".").lower()


def compare_math(gold: str, answer: str, *, use_math_verify: bool = True) -> Score:
    """Score an extracted ``answer`` against ``gold`` (both strings)."""
    gold_num = normalize_numeric(gold)
    got_num = normalize_numeric(answer)
    if gold_num is not None and got_num is not None:
        if gold_num == got_num:
            return Score(1.0, {"reason": "correct", "match": "numeric"})
        return Score.zero("wrong number", answer=answer[:100], expected=gold)
    if gold_num is not None and answer and len(answer) <= 200 and not any(c in answer for c in "\\^{}()/*+=√"):
        # a plain slot in words: it must name exactly one number (a hedge like "18 or 19" is wrong)
        values = {v for v in (parse_number(m) for m in NUMBER_RE.findall(answer)) if v is not None}
        if not values:
            return Score.zero("no number in the answer", answer=answer[:100], expected=gold)
        if len(values) > 1:
            return Score.zero("several different numbers in the answer", answer=answer[:100], expected=gold)
        if values.pop() == gold_num:
            return Score(1.0, {"reason": "correct", "match": "numeric"})
        return Score.zero("wrong number", answer=answer[:100], expected=gold)
    if _plain(gold) == _plain(answer):
        return Score(1.0, {"reason": "correct", "match": "exact"})
    if not use_math_verify:
        return Score.zero("answer differs from the gold answer", answer=answer[:100], expected=gold)
    ok, note = math_verify_equal(gold, answer)
    if ok:
        return Score(1.0, {"reason": "correct", "match": "math-verify"})
    return Score.zero(f"not equivalent ({note})", answer=answer[:100], expected=gold)


# =============================================================================================
# the environment
# =============================================================================================


@dataclass(frozen=True)
class MathConfig(QASourceConfig):
    use_math_verify: bool = True  # symbolic answers through math-verify (else exact text after normalisation)


class QAEnv(Env):
    """Base of the question/answer envs: task ``i`` is row ``i`` of a :class:`QASource` plus ``instruction``."""

    #: appended to every question: how to state the answer
    instruction: str = ""

    def __init__(self, config: QASourceConfig):
        super().__init__(config)
        self.source = QASource(config)

    @property
    def num_tasks(self) -> int:
        return len(self.source)

    def task_id_at(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self.num_tasks:
            raise IndexError(f"index {index} outside [0, {self.num_tasks})")
        return index

    def task(self, task_id: int) -> Task:
        question, raw = self.source.pair(task_id)
        return Task(
            env=self.name,
            task_id=int(task_id),
            prompt=[{"role": "user", "content": question + self.instruction}],
            ground_truth=gold_answer(raw),
            extra={"source": self.config.source, "index": int(task_id)},
        )


class MathEnv(QAEnv):
    """Math word problems (GSM8K or a local file; offline reasoning-gym gsm_symbolic), boxed/numeric answers."""

    instruction = MATH_INSTRUCTION

    def _score(self, task: Task, answer: str) -> Score:
        slot, how = extract_answer(answer)
        if slot is None:
            if how == CONFLICTING_BOXED:
                return Score.zero(how)
            return Score.zero("no answer found (no \\boxed{}, 'the answer is', 'final answer', '####' or number)")
        if not slot:
            return Score.zero(f"empty answer in {how}")
        score = compare_math(task.ground_truth, slot, use_math_verify=self.config.use_math_verify)
        score.info["extracted_by"] = how
        return score

    def oracle(self, task: Task) -> str | None:
        return f"Working through the problem step by step.\nThe final answer is \\boxed{{{task.ground_truth}}}."


register_env("math", MathEnv, MathConfig, aliases=("gsm8k",))

"""SWE-synth trajectories → SFT parquet for verl 0.9.1's SFT trainer (and TRL).

Input rows have the shape of the Hugging Face dataset ``swesynth/SWE-Synth_Moatless-SFT-Trajectories``:
``instance_id``, ``messages`` (a list of chat dicts, with OpenAI-style ``tool_calls`` on assistant
turns and ``tool`` turns carrying their results), ``model_patch`` (the final diff) and ``run_name``.

Each kept row becomes one example: ``prompt`` is the trajectory rendered as text (tool calls kept
as text), ``response`` is the patch, and ``messages`` is ``[user: prompt, assistant: response]`` —
what verl 0.9.1's ``MultiTurnSFTDataset`` reads (``data.messages_key=messages``), so that the loss
falls on the patch only.

Limits keep what matters. A trajectory that is too long loses its *oldest* turns (the most recent
ones are kept, after an ``[... N earlier turns omitted ...]`` marker; ``--keep-first-turns`` pins the
system prompt / issue statement). A patch is never cut: an example whose patch alone does not fit
is dropped and counted, and so is an empty patch. The run ends with one summary line: rows in,
kept, dropped by reason.

    python data_processing/convert_swe_synth_sft.py --dataset swesynth/SWE-Synth_Moatless-SFT-Trajectories \\
        --max-tokens 16384 --tokenizer Qwen/Qwen2.5-Coder-7B-Instruct
    python data_processing/convert_swe_synth_sft.py --input trajectories.jsonl --max-chars-prompt 60000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

log = logging.getLogger(__name__)

DEFAULT_DATASET = "swesynth/SWE-Synth_Moatless-SFT-Trajectories"
DATA_SOURCE = "swe-synth-sft"
TRAIN_FILE = "swe_synth_sft_train.parquet"
VAL_FILE = "swe_synth_sft_val.parquet"
TURN_SEPARATOR = "\n\n"
OMITTED = "[... {n} earlier turns omitted ...]"

#: drop reasons, in summary order
DROP_REASONS = ("empty_patch", "no_messages", "patch_too_long", "prompt_budget_exhausted")


# -- rendering -------------------------------------------------------------------------------


def _text(content: Any) -> str:
    """Message content as text: a string, OpenAI content parts (``[{"type": "text", "text": ...}]``) or None."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text") if part.get("text") is not None else part.get("content") or ""))
            else:
                parts.append(str(part))
        return "".join(parts)
    if isinstance(content, dict):
        return json.dumps(content, ensure_ascii=False, sort_keys=True)
    return str(content)


def _tool_call_text(call: Any) -> str:
    if not isinstance(call, dict):
        return f"[tool call] {call}"
    fn = call.get("function") if isinstance(call.get("function"), dict) else call
    name = fn.get("name") or "?"
    args = fn.get("arguments")
    if not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False, sort_keys=True) if args is not None else ""
    return f"[tool call] {name}({args})"


def render_turn(message: Any) -> str:
    """One chat message as a text block: a ``### role`` header, the content, its tool calls as text."""
    if not isinstance(message, dict):
        return f"### unknown\n{_text(message)}"
    role = str(message.get("role") or "unknown")
    name = message.get("name")
    header = f"### {role} ({name})" if role in ("tool", "function") and name else f"### {role}"
    lines = [header]
    body = _text(message.get("content"))
    if body:
        lines.append(body)
    for call in message.get("tool_calls") or []:
        lines.append(_tool_call_text(call))
    if isinstance(message.get("function_call"), dict):  # the older OpenAI field
        lines.append(_tool_call_text(message["function_call"]))
    return "\n".join(lines)


def join_turns(pinned: Sequence[str], kept: Sequence[str], omitted: int) -> str:
    blocks = list(pinned)
    if omitted:
        blocks.append(OMITTED.format(n=omitted))
    blocks.extend(kept)
    return TURN_SEPARATOR.join(blocks)


# -- limits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Length limits: characters of prompt / response, and/or tokens of the whole templated example."""

    max_chars_prompt: int | None = None
    max_chars_response: int | None = None
    max_tokens: int | None = None
    keep_first_turns: int = 0

    def __post_init__(self):
        for key in ("max_chars_prompt", "max_chars_response", "max_tokens"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ValueError(f"--{key.replace('_', '-')}={value!r}; expected a positive integer")
        if self.keep_first_turns < 0:
            raise ValueError(f"--keep-first-turns={self.keep_first_turns!r}; expected >= 0")


class TokenCounter:
    """Counts the tokens of ``[user: prompt, assistant: response]`` through the tokenizer's chat template."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        # Template overhead (role headers, special tokens), measured once on empty contents.
        self.overhead = self.example_tokens("", "")
        self.separator = self.text_tokens(TURN_SEPARATOR)
        self.marker = self.text_tokens(OMITTED.format(n=999)) + self.separator

    def text_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def texts_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts of several texts in one batched call."""
        if not texts:
            return []
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def example_tokens(self, prompt: str, response: str) -> int:
        ids = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=True
        )
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)


#: ``fits(prompt, kept)``: ``kept`` is the number of whole recent turns in ``prompt`` (-1: the last one is cut)
Fits = Callable[[str, int], bool]


def fit_prompt(turns: Sequence[str], keep_first: int, fits: Fits) -> tuple[str, int] | None:
    """The longest tail of ``turns`` (after the ``keep_first`` pinned ones) whose rendering ``fits``.

    Returns ``(prompt, omitted_turns)``; when not even the last turn fits whole, the last turn keeps
    its own tail (most recent text) behind the omitted-turns marker. ``None`` when nothing of the
    trajectory fits (not even the pinned turns, or not one character after them).
    """
    pinned = list(turns[:keep_first])
    rest = list(turns[keep_first:])
    full = join_turns(pinned, rest, 0)
    if fits(full, len(rest)):
        return full, 0
    # Binary search on how many of the most recent turns fit (fits() is monotone in that count).
    lo, hi = 0, len(rest)  # lo turns always fit (checked below), hi never does
    if not fits(join_turns(pinned, [], len(rest)), 0):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(join_turns(pinned, rest[-mid:], len(rest) - mid), mid):
            lo = mid
        else:
            hi = mid
    if lo > 0:
        return join_turns(pinned, rest[-lo:], len(rest) - lo), len(rest) - lo
    # Not one whole turn fits: keep the tail of the last turn, as much as fits.
    last = rest[-1] if rest else ""
    lo, hi = 0, len(last)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(join_turns(pinned, [last[-mid:]], len(rest) - 1), -1):
            lo = mid
        else:
            hi = mid
    if lo == 0:  # only the marker would be left: nothing of the trajectory
        return None
    return join_turns(pinned, [last[-lo:]], len(rest) - 1), len(rest) - 1


def _token_fit(turns: list[str], patch: str, limits: Limits, counter: TokenCounter,
               chars_ok: Callable[[str], bool]) -> tuple[str, int] | str:
    """:func:`fit_prompt` under a token limit: ``(prompt, omitted)`` or a drop reason.

    Candidates are sized from per-turn token counts (one batched tokenizer call, then sums), and the
    chosen prompt is checked once with the exact chat-template count (two tokenizer passes per row in
    all); an estimate that was short tightens the budget by the difference and the fit is redone
    (rare: a few tokens at turn boundaries).
    """
    assert limits.max_tokens is not None
    k = limits.keep_first_turns
    *sizes, patch_size = counter.texts_tokens([*turns, patch])  # one batched call
    budget = limits.max_tokens - counter.overhead - patch_size
    if budget <= 0:
        return "patch_too_long"
    pinned = sum(sizes[:k]) + counter.separator * max(0, min(k, len(turns)) - 1)
    suffix = [0]  # suffix[n]: tokens of the last n unpinned turns with their separators
    for size in reversed(sizes[k:]):
        suffix.append(suffix[-1] + size + counter.separator)

    def estimate(prompt: str, kept: int) -> int:
        if kept < 0:
            return counter.text_tokens(prompt)
        omitted = len(turns) - k - kept
        return pinned + suffix[kept] + (counter.marker if omitted else 0) + (counter.separator if k else 0)

    for _ in range(4):
        fitted = fit_prompt(turns, k, lambda p, kept: chars_ok(p) and estimate(p, kept) <= budget)
        if fitted is None:
            return "prompt_budget_exhausted"
        exact = counter.example_tokens(fitted[0], patch)
        if exact <= limits.max_tokens:
            return fitted
        budget -= exact - limits.max_tokens
    return "prompt_budget_exhausted"


# -- conversion ------------------------------------------------------------------------------


@dataclass
class Summary:
    rows_in: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: Counter = field(default_factory=Counter)
    train: int = 0
    val: int = 0

    def line(self) -> str:
        reasons = ", ".join(f"{r}={self.dropped.get(r, 0)}" for r in DROP_REASONS)
        return (
            f"rows in: {self.rows_in}, kept: {self.kept} (train {self.train}, val {self.val}; "
            f"{self.truncated} truncated), dropped: {sum(self.dropped.values())} ({reasons})"
        )


def convert_row(row: dict[str, Any], limits: Limits, counter: TokenCounter | None = None) -> tuple[dict | None, str]:
    """One SWE-synth row → ``(example, "ok" | "truncated")`` or ``(None, drop_reason)``."""
    patch = row.get("model_patch")
    patch = patch if isinstance(patch, str) else ""
    if not patch.strip():
        return None, "empty_patch"
    messages = row.get("messages")
    if isinstance(messages, str):  # some exports store the list as a JSON string
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError:
            messages = None
    if not isinstance(messages, (list, tuple)) or not messages:
        return None, "no_messages"
    if limits.max_chars_response is not None and len(patch) > limits.max_chars_response:
        return None, "patch_too_long"

    def chars_ok(prompt: str) -> bool:
        return limits.max_chars_prompt is None or len(prompt) <= limits.max_chars_prompt

    turns = [render_turn(m) for m in messages]
    full = join_turns(turns[: limits.keep_first_turns], turns[limits.keep_first_turns :], 0)
    if limits.max_tokens is not None and counter is not None:
        fitted = _token_fit(turns, patch, limits, counter, chars_ok)
        if isinstance(fitted, str):
            return None, fitted
    else:
        fitted = fit_prompt(turns, limits.keep_first_turns, lambda p, kept: chars_ok(p))
        if fitted is None:
            return None, "prompt_budget_exhausted"
    prompt, omitted = fitted
    example = {
        "data_source": DATA_SOURCE,
        "instance_id": str(row.get("instance_id") or ""),
        "run_name": str(row.get("run_name") or ""),
        "prompt": prompt,
        "response": patch,
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": patch}],
        "num_turns": len(turns),
        "turns_omitted": omitted,
    }
    return example, ("ok" if prompt == full else "truncated")


_WORKER: dict[str, Any] = {}


def _init_worker(limits: Limits, counter: TokenCounter | None) -> None:
    _WORKER["args"] = (limits, counter)


def _convert_in_worker(row: dict[str, Any]) -> tuple[dict | None, str]:
    return convert_row(row, *_WORKER["args"])


def _converted(rows: Iterable[dict[str, Any]], limits: Limits, counter: TokenCounter | None,
               num_proc: int) -> Iterator[tuple[dict | None, str]]:
    """``convert_row`` over ``rows`` in input order, in ``num_proc`` processes when > 1."""
    if num_proc <= 1:
        for row in rows:
            yield convert_row(row, limits, counter)
        return
    import multiprocessing

    # The pool ends (terminated) when the consumer stops early (--max-samples) or finishes.
    with multiprocessing.get_context().Pool(num_proc, initializer=_init_worker, initargs=(limits, counter)) as pool:
        yield from pool.imap(_convert_in_worker, rows, chunksize=8)


def convert(
    rows: Iterable[dict[str, Any]],
    limits: Limits,
    *,
    counter: TokenCounter | None = None,
    max_samples: int | None = None,
    progress: bool = False,
    num_proc: int = 1,
) -> tuple[list[dict[str, Any]], Summary]:
    """Convert rows in order until ``max_samples`` examples are kept; returns the examples and counts.

    ``num_proc > 1`` converts in worker processes (worth it with ``--max-tokens``, where tokenizing
    dominates); the result is the same as with one process.
    """
    from tqdm.auto import tqdm

    if limits.max_tokens is not None and counter is None:
        raise ValueError("--max-tokens needs --tokenizer")
    summary = Summary()
    kept: list[dict[str, Any]] = []
    results = _converted(rows, limits, counter, num_proc)
    bar = tqdm(results, desc="swe-synth", unit="row", disable=not progress)
    try:
        for example, status in bar:
            summary.rows_in += 1
            if example is None:
                summary.dropped[status] += 1
                continue
            summary.kept += 1
            summary.truncated += status == "truncated"
            kept.append(example)
            if max_samples is not None and len(kept) >= max_samples:
                break
    finally:
        bar.close()
        results.close()
    return kept, summary


def split_examples(
    examples: list[dict[str, Any]], val_ratio: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train/val by ``instance_id`` (all runs of one instance on one side), chosen by ``seed``."""
    from veritas_rl.data.parquet import split_groups

    val_ids = split_groups((e["instance_id"] for e in examples), val_ratio, seed)
    train = [e for e in examples if e["instance_id"] not in val_ids]
    val = [e for e in examples if e["instance_id"] in val_ids]
    for split, part in (("train", train), ("val", val)):
        for index, example in enumerate(part):
            example["extra_info"] = {"split": split, "index": index}
    return train, val


# -- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convert_swe_synth_sft.py",
        description="Convert SWE-synth trajectories (instance_id, messages, model_patch, run_name) into SFT "
        f"parquet ({TRAIN_FILE}, {VAL_FILE}) with prompt, response and a messages column for verl 0.9.1's "
        "SFT trainer. Long trajectories keep their most recent turns; patches are never cut (an example "
        "whose patch does not fit is dropped and counted).",
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, help=f"Hugging Face dataset name (default when no --input: {DEFAULT_DATASET})")
    src.add_argument("--input", default=None, help="local .parquet, .jsonl or .json file instead of a hub dataset")
    parser.add_argument("--split", default="train", help="dataset split to read with --dataset (default: train)")
    parser.add_argument("--output-dir", default="train/parquet", help="where the parquet files go (default: train/parquet)")
    parser.add_argument("--val-ratio", type=float, default=0.1, help="share of instance ids held out for validation (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default: 0)")
    parser.add_argument("--max-samples", type=int, default=None, help="stop after this many kept examples")
    parser.add_argument("--max-chars-prompt", type=int, default=None, help="prompt length limit in characters (oldest turns go first)")
    parser.add_argument("--max-chars-response", type=int, default=None, help="patch length limit in characters (longer: dropped, never cut)")
    parser.add_argument("--max-tokens", type=int, default=None, help="limit on the tokens of the whole templated example (needs --tokenizer)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer name or path for --max-tokens (e.g. the model you will fine-tune)")
    parser.add_argument("--keep-first-turns", type=int, default=0, help="always keep the first N messages (system prompt, issue) when truncating (default: 0)")
    parser.add_argument("--num-proc", type=int, default=1, help="worker processes (helps with --max-tokens; default: 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def load_rows(args: argparse.Namespace) -> Iterable[dict[str, Any]]:
    if args.input:
        from veritas_rl.data.parquet import iter_records

        return iter_records(args.input)
    import datasets

    name = args.dataset or DEFAULT_DATASET
    log.info("loading %s split %s with datasets", name, args.split)
    return datasets.load_dataset(name, split=args.split)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        summary = run(args)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    log.info("%s", summary.line())
    return 0


def run(args: argparse.Namespace) -> Summary:
    from veritas_rl.data.parquet import write_parquet

    if args.max_samples is not None and args.max_samples <= 0:
        raise ValueError(f"--max-samples={args.max_samples}; expected a positive integer")
    if args.max_tokens is not None and not args.tokenizer:
        raise ValueError("--max-tokens needs --tokenizer (name or path of the model's tokenizer)")
    if not 0.0 <= args.val_ratio < 1.0:
        raise ValueError(f"--val-ratio={args.val_ratio}; expected a number in [0, 1)")
    if args.num_proc < 1:
        raise ValueError(f"--num-proc={args.num_proc}; expected >= 1")
    limits = Limits(args.max_chars_prompt, args.max_chars_response, args.max_tokens, args.keep_first_turns)
    counter = None
    if args.tokenizer:
        if args.num_proc > 1:  # the Rust tokenizer's own thread pool does not survive fork
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers import AutoTokenizer

        counter = TokenCounter(AutoTokenizer.from_pretrained(args.tokenizer))
    examples, summary = convert(load_rows(args), limits, counter=counter, max_samples=args.max_samples,
                                progress=not args.no_progress, num_proc=args.num_proc)
    train, val = split_examples(examples, args.val_ratio, args.seed)
    summary.train, summary.val = len(train), len(val)
    out = Path(args.output_dir)
    if not train:
        raise ValueError(f"no example kept ({summary.line()}); nothing written")
    write_parquet(train, out / TRAIN_FILE)
    log.info("wrote %d rows to %s", len(train), out / TRAIN_FILE)
    if val:
        write_parquet(val, out / VAL_FILE)
        log.info("wrote %d rows to %s", len(val), out / VAL_FILE)
    elif (out / VAL_FILE).exists():
        (out / VAL_FILE).unlink()  # a stale val file from an earlier run would not match this train file
    return summary

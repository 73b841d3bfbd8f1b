"""Make SFT parquet files fit verl 0.9.1's SFT trainer, which reads one chat ``messages`` column.

verl 0.9.1 dropped the old ``data.prompt_key`` / ``data.response_key`` of its SFT trainer: its
``MultiTurnSFTDataset`` trains on ``data.messages_key`` (a list of ``{"role", "content"}`` dicts).
For each input file this tool keeps files that already have the messages column and writes, for files
with prompt/response columns instead, a copy with a ``messages`` column built from them (a string
prompt becomes one user turn, a list of chat messages is kept as is; the response becomes the
assistant turn). It prints the paths to train on, one per line::

    python -m veritas_rl.backends.verl.sft_data --out-dir RUN/data train.parquet val.parquet

``--check`` validates the columns and prints the paths without writing anything (``DRY_RUN=1``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)


def _columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ValueError(f"SFT data file {str(path)!r} does not exist")
    try:
        return list(pq.read_schema(path).names)
    except Exception as err:  # pyarrow raises ArrowInvalid & co. for a file that is not parquet
        raise ValueError(f"SFT data file {str(path)!r} is not a readable parquet file: {err}") from None


def to_messages(prompt: Any, response: Any) -> list[dict[str, str]]:
    """One chat from a prompt (a string or a list of chat messages) and a response string."""
    if isinstance(prompt, str):
        turns = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, (list, tuple)) and all(isinstance(m, dict) and "role" in m for m in prompt):
        turns = [{"role": str(m["role"]), "content": str(m.get("content") or "")} for m in prompt]
    else:
        raise ValueError(f"prompt of type {type(prompt).__name__} is neither a string nor a list of chat messages")
    if not isinstance(response, str):
        raise ValueError(f"response of type {type(response).__name__} is not a string")
    return [*turns, {"role": "assistant", "content": response}]


def target_path(path: Path, out_dir: Path) -> Path:
    return out_dir / f"{path.stem}.messages.parquet"


def prepare(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    prompt_key: str = "prompt",
    response_key: str = "response",
    messages_key: str = "messages",
    check_only: bool = False,
) -> list[Path]:
    """The files to train on: inputs that have ``messages_key``, or converted copies in ``out_dir``."""
    out_dir = Path(out_dir)
    result = []
    for raw in paths:
        path = Path(raw)
        columns = _columns(path)
        if messages_key in columns:
            result.append(path)
            continue
        missing = [key for key in (prompt_key, response_key) if key not in columns]
        if missing:
            raise ValueError(
                f"{str(path)!r} has neither a {messages_key!r} column nor the prompt/response columns "
                f"(SFT_PROMPT_KEY={prompt_key!r}, SFT_RESPONSE_KEY={response_key!r}); its columns: {', '.join(columns)}"
            )
        target = target_path(path, out_dir)
        result.append(target)
        if check_only:
            continue
        import pandas as pd

        frame = pd.read_parquet(path)
        rows = []
        for index, (prompt, response) in enumerate(zip(frame[prompt_key], frame[response_key])):
            if hasattr(prompt, "tolist"):  # numpy arrays of dicts from parquet list columns
                prompt = prompt.tolist()
            try:
                rows.append(to_messages(prompt, response))
            except ValueError as err:
                raise ValueError(f"{str(path)!r} row {index}: {err}") from None
        frame[messages_key] = rows
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(target)
        log.info("%s: %d rows, %r + %r -> %r column in %s", path, len(frame), prompt_key, response_key, messages_key, target)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m veritas_rl.backends.verl.sft_data",
        description="Map prompt/response parquet columns to the chat `messages` column verl 0.9.1's SFT trainer "
        "reads; prints the files to train on, one per line.",
    )
    parser.add_argument("files", nargs="+", help="input parquet files")
    parser.add_argument("--out-dir", required=True, help="where converted copies go")
    parser.add_argument("--prompt-key", default="prompt", help="prompt column (default: prompt)")
    parser.add_argument("--response-key", default="response", help="response column (default: response)")
    parser.add_argument("--messages-key", default="messages", help="messages column (default: messages)")
    parser.add_argument("--check", action="store_true", help="check columns and print paths; write nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[sft_data] %(message)s", stream=sys.stderr)
    try:
        paths = prepare(
            args.files,
            args.out_dir,
            prompt_key=args.prompt_key,
            response_key=args.response_key,
            messages_key=args.messages_key,
            check_only=args.check,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

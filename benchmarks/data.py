#!/usr/bin/env python
"""Throughput of the data tools: rows/s of the SWE-synth converter and of the env → parquet generator.

    python benchmarks/data.py                      # 10,000 rows each (1,000 for the token-limit case)
    python benchmarks/data.py --rows 2000 --only converter

Each case runs the tool's real ``main`` end to end (read, convert/generate, split, write parquet) on
rows it makes first: SWE-synth trajectories in the dataset's shape (a jsonl in a temporary
directory) and lgc-v2 tasks, after one small warm-up run per tool (imports, per-process
caches). Prints a markdown table (rows, seconds, rows/s) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

log = logging.getLogger("benchmarks.data")


def swe_synth_row(i: int, steps: int) -> dict:
    """A SWE-synth-shaped trajectory of ``steps`` tool calls (~1 KB of tool output each)."""
    messages = [
        {"role": "system", "content": "You are an autonomous software engineer. Use the tools to fix the issue."},
        {"role": "user", "content": f"Issue {i}: `Model.save()` drops the `updated_at` field when ... " * 4},
    ]
    for k in range(steps):
        call = f"call_{i}_{k}"
        messages.append({"role": "assistant", "content": f"Let me look at module {k}.", "tool_calls": [
            {"id": call, "type": "function",
             "function": {"name": "view_code", "arguments": json.dumps({"file_path": f"src/pkg/mod_{k}.py"})}}]})
        source = "".join(f"{n:4d}     def method_{n}(self, value):\n             return value + {n}\n" for n in range(12))
        messages.append({"role": "tool", "tool_call_id": call, "name": "view_code", "content": source})
    messages.append({"role": "assistant", "content": "The fix is in place."})
    patch = (f"diff --git a/src/pkg/mod_{i % 7}.py b/src/pkg/mod_{i % 7}.py\n--- a/src/pkg/mod_{i % 7}.py\n"
             f"+++ b/src/pkg/mod_{i % 7}.py\n@@ -10,3 +10,4 @@\n     def save(self):\n+        self.touch()\n"
             "         return super().save()\n")
    return {"instance_id": f"org__repo-{i}", "messages": messages, "model_patch": patch, "run_name": "bench"}


def timed(label: str, rows: int, fn) -> dict:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    result = {"case": label, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}
    log.info("%s: %d rows in %.2f s = %.0f rows/s", label, rows, seconds, rows / seconds)
    return result


def bench_converter(rows: int, work: Path, tokenizer: str | None, token_rows: int) -> list[dict]:
    from veritas_rl.data import swe_synth

    src = work / "swe_synth.jsonl"
    with src.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            fh.write(json.dumps(swe_synth_row(i, steps=8 + i % 8)) + "\n")
    log.info("fixture: %d trajectories, %.1f MB", rows, src.stat().st_size / 1e6)
    warm = work / "warm.jsonl"
    warm.write_text("".join(json.dumps(swe_synth_row(i, steps=4)) + "\n" for i in range(20)), encoding="utf-8")
    swe_synth.main(["--input", str(warm), "--no-progress", "--output-dir", str(work / "warm")])  # imports, caches
    base = ["--input", str(src), "--no-progress", "--val-ratio", "0.1"]
    results = [
        timed("convert_swe_synth_sft (no limits)", rows,
              lambda: swe_synth.main([*base, "--output-dir", str(work / "c0")])),
        timed("convert_swe_synth_sft --max-chars-prompt 8000", rows,
              lambda: swe_synth.main([*base, "--output-dir", str(work / "c1"), "--max-chars-prompt", "8000"])),
    ]
    if tokenizer and token_rows:
        # tokenizing ~10 KB per trajectory dominates: a smaller slice of the same fixture
        head = work / "swe_synth_head.jsonl"
        with src.open(encoding="utf-8") as fh, head.open("w", encoding="utf-8") as out:
            for _, line in zip(range(token_rows), fh):
                out.write(line)
        for num_proc in (1, 2):
            results.append(timed(
                f"convert_swe_synth_sft --max-tokens 2048 --num-proc {num_proc} (SmolLM2 tokenizer)", token_rows,
                lambda: swe_synth.main(["--input", str(head), "--no-progress", "--val-ratio", "0.1", "--output-dir",
                                        str(work / f"c2-{num_proc}"), "--max-tokens", "2048", "--tokenizer", tokenizer,
                                        "--num-proc", str(num_proc)])))
    return results


def bench_generator(rows: int, work: Path) -> list[dict]:
    from veritas_rl.data import generate

    base = ["--num-samples", str(rows), "--no-progress", "--val-ratio", "0.1"]
    for fmt in ("rl", "sft"):  # imports and per-process caches (game-of-24 tables, ...) before timing
        generate.main(["--env", "lgc-v2", "--format", fmt, "--num-samples", "50", "--no-progress",
                       "--output-dir", str(work / "warm")])
    return [
        timed("generate_dataset --env lgc-v2 --format rl (all task types)", rows,
              lambda: generate.main(["--env", "lgc-v2", "--format", "rl", "--output-dir", str(work / "g0"), *base])),
        timed("generate_dataset --env lgc-v2 --format sft (oracle answers)", rows,
              lambda: generate.main(["--env", "lgc-v2", "--format", "sft", "--output-dir", str(work / "g1"), *base])),
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows per case (default: 10000)")
    parser.add_argument("--token-rows", type=int, default=1000, help="rows for the --max-tokens case (default: 1000; 0 skips)")
    parser.add_argument("--only", choices=("converter", "generator"), default=None, help="run one tool only")
    parser.add_argument("--tokenizer", default="embedded",
                        help="tokenizer for the --max-tokens case: a path, 'embedded' (SmolLM2) or 'none' to skip")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    tokenizer = None if args.tokenizer == "none" else args.tokenizer
    if tokenizer == "embedded":
        from veritas_rl.models import embedded_model_dir

        tokenizer = str(embedded_model_dir())
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        work = Path(tmp)
        if args.only in (None, "converter"):
            results += bench_converter(args.rows, work, tokenizer, args.token_rows)
        if args.only in (None, "generator"):
            results += bench_generator(args.rows, work)
    lines = ["| case | rows | seconds | rows/s |", "|---|---:|---:|---:|"]
    lines += [f"| `{r['case']}` | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} |" for r in results]
    log.info("results:\n%s", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

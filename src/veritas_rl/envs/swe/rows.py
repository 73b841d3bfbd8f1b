"""Rows of the swe-synth env: SWE-bench rows from a ``cache_dir`` of ``task_{id}.json`` files or the
Hugging Face hub (through ``datasets``), and the ``download`` tool that fills such a cache::

    python -m veritas_rl.envs.swe download --cache-dir data/swe_lite --start 0 --stop 300
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_DATASET = "princeton-nlp/SWE-bench_Lite"
KNOWN_DATASETS = ("princeton-nlp/SWE-bench_Lite", "princeton-nlp/SWE-bench_Verified")

REQUIRED_KEYS = ("instance_id", "repo", "base_commit", "problem_statement", "patch", "test_patch",
                 "FAIL_TO_PASS", "PASS_TO_PASS")


#: (dataset, split) -> why loading it from the hub failed; later constructions fail at once with it
_HUB_FAILURES: dict[tuple[str, str], str] = {}


class SweDataError(ValueError):
    """The selected rows cannot be loaded (offline without a cache, missing files, bad rows)."""


def cache_path(cache_dir: str | os.PathLike, task_id: int) -> Path:
    return Path(cache_dir) / f"task_{int(task_id)}.json"


def _check_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    missing = [k for k in REQUIRED_KEYS if k not in row]
    if missing:
        raise SweDataError(f"{where}: not a SWE-bench row, missing {', '.join(missing)}")
    return row


def _download_hint(config: Any, ids: list[int]) -> str:
    lo, hi = min(ids), max(ids) + 1
    target = config.cache_dir or "DIR"
    return (
        f"download the rows once where the hub is reachable: python -m veritas_rl.envs.swe download "
        f"--dataset {config.dataset_name} --split {config.split} --cache-dir {target} --start {lo} --stop {hi} "
        f"(or put SWE-bench rows as JSON files task_<row index>.json into {target}), then set "
        f"cache_dir={target} (and use_cache_only=true to never touch the hub)"
    )


def load_hub_rows(dataset_name: str, split: str, ids: list[int] | None) -> tuple[dict[int, dict[str, Any]], int]:
    """Rows ``ids`` (all when ``None``) of ``dataset_name[split]`` through ``datasets``; also the split size."""
    import datasets

    ds = datasets.load_dataset(dataset_name, split=split)
    size = len(ds)
    wanted = range(size) if ids is None else [i for i in ids if i < size]
    return {i: dict(ds[i]) for i in wanted}, size


def load_rows(config: Any) -> dict[int, dict[str, Any]]:
    """The selected rows, from ``cache_dir`` first and the hub for the rest (written back to the cache)."""
    ids = list(config.selected_ids)
    rows: dict[int, dict[str, Any]] = {}
    if config.cache_dir:
        for task_id in ids:
            path = cache_path(config.cache_dir, task_id)
            if path.is_file():
                try:
                    rows[task_id] = _check_row(json.loads(path.read_text(encoding="utf-8")), str(path))
                except json.JSONDecodeError as err:
                    raise SweDataError(f"{path}: not valid JSON ({err})") from None
    missing = [t for t in ids if t not in rows]
    if not missing:
        return rows
    if config.use_cache_only:
        raise SweDataError(
            f"use_cache_only: {len(missing)} selected row(s) not in cache_dir={config.cache_dir!r} "
            f"(first missing: {cache_path(config.cache_dir, missing[0])}); " + _download_hint(config, missing)
        )
    source = (config.dataset_name, config.split)
    if source in _HUB_FAILURES:  # one hub attempt per process: a retry would wait as long again
        raise SweDataError(f"{_HUB_FAILURES[source]} (failed earlier in this process; not retried); "
                           + _download_hint(config, missing))
    try:
        hub_rows, size = load_hub_rows(config.dataset_name, config.split, missing)
    except Exception as err:  # network, auth, unknown dataset: all end the same way, with the cause chained
        _HUB_FAILURES[source] = (f"cannot load {config.dataset_name!r} split {config.split!r} from the Hugging "
                                 f"Face hub ({type(err).__name__}: {err})")
        raise SweDataError(f"{_HUB_FAILURES[source]}; " + _download_hint(config, missing)) from err
    beyond = [t for t in missing if t >= size]
    if config.task_ids is not None and beyond:
        raise SweDataError(f"task_ids {beyond} are beyond the {size} rows of {config.dataset_name}[{config.split}]")
    for task_id, row in hub_rows.items():
        rows[task_id] = _check_row(row, f"{config.dataset_name}[{config.split}][{task_id}]")
        if config.cache_dir:
            path = cache_path(config.cache_dir, task_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(row, default=_json_default), encoding="utf-8")
    return rows


def _json_default(value: Any) -> str:
    """Timestamps (``created_at`` loads as one from some dataset revisions) as ISO 8601."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _json_list(value: Any) -> list[str]:
    """FAIL_TO_PASS / PASS_TO_PASS arrive as JSON strings in the dataset and as lists elsewhere."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    return [str(v) for v in (value or [])]


# -- pre-download ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m veritas_rl.envs.swe",
        description="Tools of the swe-synth env. `download` writes SWE-bench rows as task_{id}.json files "
        "into a cache dir, for machines without the Hugging Face hub.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("download", help="save dataset rows into --cache-dir", description="Save rows "
                       "[start, stop) of a SWE-bench dataset split as task_{id}.json files.")
    p.add_argument("--dataset", default=DEFAULT_DATASET, help=f"HF dataset id (default {DEFAULT_DATASET})")
    p.add_argument("--split", default="test", help="split (default test)")
    p.add_argument("--cache-dir", required=True, help="output directory")
    p.add_argument("--start", type=int, default=0, help="first row index (default 0)")
    p.add_argument("--stop", type=int, default=None, help="one past the last row index (default: all rows)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        rows, size = load_hub_rows(args.dataset, args.split, None)
    except OSError as err:  # offline, unknown dataset: say so in one line
        log.error("cannot load %s[%s] from the Hugging Face hub: %s", args.dataset, args.split, err)
        return 1
    stop = size if args.stop is None else min(args.stop, size)
    out = Path(args.cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    for task_id in tqdm(range(args.start, stop), desc="rows", unit="row"):
        cache_path(out, task_id).write_text(json.dumps(rows[task_id], default=_json_default), encoding="utf-8")
    log.info("wrote %d rows of %s[%s] to %s", max(0, stop - args.start), args.dataset, args.split, out)
    return 0


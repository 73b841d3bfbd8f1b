"""Reading local tables, writing parquet, and the deterministic train/val split shared by the tools."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Hashable, Iterable, Iterator, Sequence

from veritas_rl.envs.base import seeded_rng
from veritas_rl.jsonio import read_jsonl

log = logging.getLogger(__name__)

#: file suffixes :func:`iter_records` understands
LOCAL_FORMATS = (".parquet", ".jsonl", ".json")


def iter_records(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Rows of a local ``.parquet``, ``.jsonl`` or ``.json`` (a list of objects) file, as plain dicts."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--input {str(path)!r} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=1024):
            yield from batch.to_pylist()
    elif suffix == ".jsonl":
        yield from read_jsonl(path)
    elif suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of objects")
        yield from rows
    else:
        raise ValueError(f"--input {str(path)!r}: unsupported format {suffix!r}; expected one of {', '.join(LOCAL_FORMATS)}")


def write_parquet(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write ``rows`` to ``path`` atomically (a temporary file renamed into place); returns the path.

    Nested values (lists of chat messages, ``reward_model``/``extra_info`` dicts) become parquet
    list/struct columns, which both ``datasets.load_dataset("parquet")`` (verl's ``RLHFDataset``) and
    ``pandas.read_parquet`` (verl's ``MultiTurnSFTDataset``) read back as lists and dicts.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(list(rows))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_parquet_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def split_groups(keys: Iterable[Hashable], val_ratio: float, seed: int) -> set[Hashable]:
    """The keys that go to validation: ``len(distinct keys) * val_ratio`` of them (rounded half up), chosen by ``seed``.

    Splitting by a key (an ``instance_id``, a ``task_id``) keeps every row of one key on one side, so
    train and val never share a problem. At least one key goes to validation when ``val_ratio > 0``
    and there are two keys or more; the choice depends only on the set of keys and the seed.
    """
    if not 0.0 <= val_ratio < 1.0:
        raise ValueError(f"val_ratio={val_ratio!r}; expected a number in [0, 1)")
    distinct = sorted(set(keys), key=repr)
    if val_ratio == 0.0 or len(distinct) < 2:
        return set()
    n_val = min(len(distinct) - 1, max(1, int(len(distinct) * val_ratio + 0.5)))
    return set(seeded_rng("val-split", seed).sample(distinct, n_val))

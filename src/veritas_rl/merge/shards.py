"""Where a base model's weights are: the safetensors shard files in index order.

Shared by the merge (:mod:`.core`) and its verification (:mod:`.verify`), which do not import each other
the other way round.
"""

from __future__ import annotations

import json
from pathlib import Path

from veritas_rl.merge.adapter import MergeError

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"


def base_shards(base_dir: Path) -> tuple[list[str], dict | None]:
    """Shard file names of the base (in index order) and its index (``None`` for a single file)."""
    index_path = base_dir / WEIGHTS_INDEX
    if index_path.is_file():
        index = json.loads(index_path.read_text(encoding="utf-8"))
        shards = list(dict.fromkeys(index["weight_map"].values()))
        return shards, index
    if (base_dir / WEIGHTS_NAME).is_file():
        return [WEIGHTS_NAME], None
    raise MergeError(
        f"{base_dir} has neither {WEIGHTS_NAME} nor {WEIGHTS_INDEX}; the merge streams safetensors only "
        "(re-save the base with save_pretrained(safe_serialization=True))"
    )

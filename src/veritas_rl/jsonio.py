"""JSON helpers shared by the CLI, the data tools and the trainer: one error wording everywhere."""

from __future__ import annotations

import json
import os
from typing import Any, Iterator


def parse_json_object(key: str, text: str) -> dict[str, Any]:
    """``text`` as a JSON object; a ``ValueError`` naming ``key`` (e.g. ``--config``) otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{key} is not valid JSON ({err}): {text!r:.200}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a JSON object, got {type(value).__name__}")
    return value


def load_yaml(text: str, source: str) -> Any:
    """``text`` parsed with ``yaml.safe_load`` (YAML or JSON); a ``ValueError`` naming ``source`` otherwise."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{source} is not valid YAML: {err}") from None


def read_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (blank lines skipped); bad lines raise naming ``path:line``."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not JSON ({err})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield row

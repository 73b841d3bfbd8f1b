"""How the registry-wide tests build each env: name -> callable(tmp_path_factory) -> config dict.

Envs that run offline with their defaults need no entry. An env that needs local data (a SWE fixture
repository, a parquet file) adds a builder here that creates it.
"""

from __future__ import annotations

from typing import Any, Callable

TEST_CONFIG_BUILDERS: dict[str, Callable[[Any], dict[str, Any]]] = {}


def test_config(name: str, tmp_path_factory) -> dict[str, Any]:
    builder = TEST_CONFIG_BUILDERS.get(name)
    return builder(tmp_path_factory) if builder else {}

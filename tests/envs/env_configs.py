"""How the registry-wide tests build each env: name -> callable(tmp_path_factory) -> config dict.

Envs that run offline with their defaults need no entry. An env that needs local data (a SWE fixture
repository, a parquet file) adds a builder here that creates it.
"""

from __future__ import annotations

from typing import Any, Callable

TEST_CONFIG_BUILDERS: dict[str, Callable[[Any], dict[str, Any]]] = {}


def _swe_synth_config(tmp_path_factory) -> dict[str, Any]:
    """The git fixture of tests/envs/swe_fixture.py (built once per session, under pytest's basetemp)."""
    from tests.envs.swe_fixture import build_swe_fixture

    return build_swe_fixture(tmp_path_factory.getbasetemp() / "swe-fixture").config()


TEST_CONFIG_BUILDERS["swe-synth"] = _swe_synth_config


def config_for(name: str, tmp_path_factory) -> dict[str, Any]:
    builder = TEST_CONFIG_BUILDERS.get(name)
    return builder(tmp_path_factory) if builder else {}

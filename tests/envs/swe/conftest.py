"""Fixtures of the swe-synth tests: the real git fixture of tests/envs/swe_fixture.py, built once per session."""

from __future__ import annotations

import pytest

from tests.envs.swe_fixture import build_swe_fixture
from veritas_rl.envs import make


@pytest.fixture(scope="session")
def fx(tmp_path_factory):
    return build_swe_fixture(tmp_path_factory.getbasetemp() / "swe-fixture")


@pytest.fixture(scope="module")
def env(fx):
    return make("swe-synth", **fx.config())

"""Fixtures of the lgc-v2 tests: the env with its default config (every task type)."""

from __future__ import annotations

import pytest

from veritas_rl.envs import make


@pytest.fixture(scope="module")
def env():
    return make("lgc-v2")

"""The docker backend (the swebench harness): what it says without a Docker engine."""

from __future__ import annotations

import pytest

from veritas_rl.envs import make


def test_docker_backend_needs_an_engine(fx):
    import docker

    try:
        docker.from_env(timeout=5).ping()
        pytest.skip("a Docker engine is running here: the docker backend is exercised by tests marked docker")
    except docker.errors.DockerException:
        pass
    with pytest.raises(ValueError, match=r"backend='docker' needs a running Docker engine"):
        make("swe-synth", **fx.config(backend="docker"))

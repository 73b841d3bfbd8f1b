"""The ``docker`` backend of swe-synth: the official swebench harness, one container per instance."""

from __future__ import annotations

from typing import Any

from veritas_rl.envs.base import Task


def docker_client():
    """A connected Docker SDK client; ``ValueError`` saying what to start when there is no engine."""
    try:
        import docker
    except ImportError as err:
        raise ImportError("backend='docker' needs the docker SDK: pip install 'veritas-rl[swe]'") from err
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as err:  # the SDK raises DockerException, requests' and urllib3's errors alike
        raise ValueError(f"backend='docker' needs a running Docker engine ({type(err).__name__}: {err}); "
                         "start Docker, or choose backend='local'") from err
    return client


def evaluate_docker(task: Task, patch: str, rows: Any, client: Any, run_id: str, timeout_s: float) -> dict[str, Any]:
    """The official harness (image per instance). Thin: needs rows with the harness columns."""
    from swebench.harness.constants import FAIL_TO_PASS, PASS_TO_PASS
    from swebench.harness.run_evaluation import run_instance
    from swebench.harness.utils import make_test_spec

    row = next((r for r in rows if r["instance_id"] == task.extra["instance_id"]), None)
    needed = ("image", "eval_script", "log_parser", "eval_type")
    if row is None or any(k not in row for k in needed):
        raise ValueError(f"backend='docker' needs rows with the swebench>=5 harness columns {needed}; "
                         f"{task.extra['instance_id']} lacks them (use a dataset that ships them, "
                         "or backend='local')")
    spec = make_test_spec(row)
    pred = {"instance_id": row["instance_id"], "model_patch": patch, "model_name_or_path": "veritas"}
    out = run_instance(spec, pred, client, run_id, timeout=int(timeout_s))
    if out is None:
        return {"error": "swebench harness: the patch did not apply, or the tests errored or timed out "
                         f"(logs under logs/run_evaluation/{run_id})"}
    report = out[1][row["instance_id"]]
    status = report.get("tests_status")
    if not report.get("patch_successfully_applied") or status is None:
        return {"error": "swebench harness: no test results (patch not applied or log unparseable)"}
    return {"f2p_passed": status[FAIL_TO_PASS]["success"], "f2p_failed": status[FAIL_TO_PASS]["failure"],
            "p2p_broken": status[PASS_TO_PASS]["failure"]}

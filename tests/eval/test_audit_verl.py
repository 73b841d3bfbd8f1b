"""``veritas audit --via verl``: the battery through verl 0.9.1's own reward loading, on worker threads."""

from __future__ import annotations

import pytest

from tests.envs.env_configs import config_for
from veritas_rl.cli import main
from veritas_rl.envs import make
from veritas_rl.eval.audit import run_audit


@pytest.mark.parametrize("name", ["math", "openspiel", "lgc-v2", "reasoning-gym", "answer-tag"])
def test_verl_reward_path_scores_the_battery_as_the_env_does(name, tmp_path_factory):
    env = make(name, **config_for(name, tmp_path_factory))
    direct = run_audit(env, 2, progress=False)
    through_verl = run_audit(env, 2, progress=False, via="verl")
    assert [(r.cls, r.label, r.task_id) for r in through_verl.results] == [
        (r.cls, r.label, r.task_id) for r in direct.results]
    assert [r.value for r in through_verl.results] == [r.value for r in direct.results]
    assert [r.kind for r in through_verl.results] == [r.kind for r in direct.results]
    assert not through_verl.sentinel_touched
    assert not [r for r in through_verl.results if r.error], "verl's reward call raised or hung"


def test_cli_via_verl_writes_the_report(tmp_path, capsys):
    rc = main(["audit", "math", "--n", "1", "--via", "verl", "--out-dir", str(tmp_path), "--no-progress"])
    assert rc == 0
    assert "### audit of `math`" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit-math.json", "audit-math.md"]


@pytest.mark.parametrize(("argv", "message"), [(["--n", "0"], "--n: 0 is too small"),
                                               (["--via", "ray"], "invalid choice: 'ray'"),
                                               (["--timeout-s", "-1"], "--timeout-s")])
def test_cli_refuses_bad_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "math", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err

"""openspiel-ppo-trainer.sh with EPISODE=game: whole games through verl's agent loop, against verl 0.9.1's schema (CPU)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.scripts.test_launchers import at, command_of, compose, overrides_of, run  # noqa: F401  (run: a fixture)

SCRIPT = "openspiel-ppo-trainer.sh"
GAME = {"EPISODE": "game", "GAME_TYPES": "tic_tac_toe"}


def test_help_lists_the_episode_variables(run):
    out = run(SCRIPT, "--help").stdout
    assert re.search(r"^  EPISODE .*move.*game.*\(default: move\)$", out, flags=re.M)
    assert re.search(r"^  OPPONENT .*random, first_legal or mcts:N", out, flags=re.M)
    assert re.search(r"^  MAX_TURNS .*model turns per game", out, flags=re.M)
    assert re.search(r"^  MAX_RESPONSE_LENGTH .*\(default: 512, or 4096 with EPISODE=game\)$", out, flags=re.M)


def test_default_is_move_mode_without_the_agent_loop(run):
    cfg = compose(SCRIPT, run(SCRIPT))
    assert "episode" not in at(cfg, "data.custom_cls.config")
    assert at(cfg, "actor_rollout_ref.rollout.agent.agent_loop_config_path") is None
    assert at(cfg, "data.max_response_length") == 512


def test_game_mode_wires_the_agent_loop_the_dataset_and_the_lengths(run):
    cfg = compose(SCRIPT, run(SCRIPT, env={**GAME, "OPPONENT": "mcts:10", "MAX_TURNS": "9"}))
    assert at(cfg, "data.custom_cls.config") == {
        "env": "openspiel", "group_by": "case", "adapter_config": {"game_types": ["tic_tac_toe"]},
        "episode": "game", "opponent": "mcts:10", "max_turns": 9,
    }
    path = at(cfg, "actor_rollout_ref.rollout.agent.agent_loop_config_path")
    loops = yaml.safe_load(open(path))  # the YAML verl's AgentLoopWorker loads: our loop under its agent_name
    assert loops == [{"name": "veritas_game", "_target_": "veritas_rl.backends.verl.game_loop.GameAgentLoop"}]
    assert at(cfg, "actor_rollout_ref.rollout.multi_turn.enable") is True
    assert at(cfg, "actor_rollout_ref.rollout.mode") == "async"
    assert at(cfg, "data.max_response_length") == 4096
    assert at(cfg, "reward.custom_reward_function.name") == "compute_score"  # the same reward path as move mode


def test_the_yaml_target_is_the_registered_loop():
    from omegaconf import OmegaConf

    from veritas_rl.backends.verl.episodes import AGENT_LOOP_CONFIG, AGENT_NAME
    from veritas_rl.backends.verl.game_loop import GameAgentLoop
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    entry = OmegaConf.load(AGENT_LOOP_CONFIG)[0]
    assert entry.name == AGENT_NAME
    assert _agent_loop_registry[AGENT_NAME]["_target_"] == entry._target_
    assert entry._target_ == f"{GameAgentLoop.__module__}.{GameAgentLoop.__qualname__}"


@pytest.mark.slow
def test_dry_run_1_validates_game_mode_end_to_end(run):
    proc = run(SCRIPT, env={**GAME, "OPPONENT": "first_legal"}, dry="1")
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["data"]["custom_cls"]["config"]["episode"] == "game"
    assert cfg["actor_rollout_ref"]["rollout"]["agent"]["agent_loop_config_path"].endswith("agent_loops.yaml")


@pytest.mark.parametrize(
    "env, names",
    [
        ({"EPISODE": "games"}, ["EPISODE=games", "move", "game"]),
        ({**GAME, "OPPONENT": "mcts"}, ["OPPONENT=mcts", "random", "first_legal", "mcts:N"]),
        ({**GAME, "OPPONENT": "policy:/ckpt"}, ["OPPONENT=policy:/ckpt", "TRL"]),
        ({**GAME, "MAX_TURNS": "0"}, ["MAX_TURNS=0", ">= 1"]),
        ({**GAME, "OPENSPIEL_REWARD_MODE": "legal"}, ["OPENSPIEL_REWARD_MODE=legal", "EPISODE=game"]),
        ({"OPPONENT": "random"}, ["OPPONENT=random", "EPISODE=game"]),
        ({"MAX_TURNS": "5"}, ["MAX_TURNS=5", "EPISODE=game"]),
    ],
)
def test_bad_episode_variables_fail_naming_them(run, env, names):
    proc = run(SCRIPT, env=env, check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    for name in names:
        assert name in proc.stderr, proc.stderr


def test_the_validator_refuses_bad_episode_keys_given_as_overrides(run):
    from veritas_rl.backends.verl.validate import validate

    overrides = overrides_of(command_of(run(SCRIPT, env=GAME)))
    with pytest.raises(ValueError, match=r"opponent='mcts:x'.*mcts:N"):
        validate("ppo", [*overrides, "+data.custom_cls.config.opponent=mcts:x"])
    with pytest.raises(ValueError, match=r"max_turns=-1"):
        validate("ppo", [*overrides, "+data.custom_cls.config.max_turns=-1"])

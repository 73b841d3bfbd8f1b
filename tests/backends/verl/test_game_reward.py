"""The reward of a whole game through compute_score and verl 0.9.1's own reward manager and validation metrics."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.verl_utils import compose_ppo_config, load_verl_reward_manager, plugin_overrides
from veritas_rl.backends.verl.episodes import AGENT_LOOP_CONFIG, config_json
from veritas_rl.backends.verl.reward import KIND_KEYS, compute_score
from veritas_rl.games.episode import EpisodeConfig, replay_episode

MOVE_KEYS = {"score", "acc", "reason", "kind", *KIND_KEYS}
GAME_KEYS = {"game/win", "game/draw", "game/loss", "game/illegal", "game/max_turns", "game/model_turns",
             "game/legal_moves", "game/normalised_return", "game/truncated"}
# tic-tac-toe as x (seat 0) against first_legal: x 4, o 0, x 2, o 1, x 6 wins on the 2-4-6 diagonal
WIN = ["<answer>4</answer>", "I take a corner. <answer>2</answer>", "<answer>x(2,0)</answer>"]


def _info(completions, *, seat=0, opponent="first_legal", truncated=False, outcome=None, **config):
    info = {
        "env": "openspiel", "env_config": "{}", "task_id": 0, "index": 0, "split": "train",
        "episode": config_json(EpisodeConfig("tic_tac_toe", seat=seat, seed=5, opponent=opponent, **config)),
        "game_completions": list(completions), "game_truncated": truncated,
    }
    if outcome is not None:
        info["game_outcome"] = outcome
    return info


def _score(info):
    return compute_score("openspiel/tic_tac_toe", "(the decoded trajectory; not what a game is scored on)", None, info)


def test_a_won_game_scores_one_with_the_move_keys_and_the_game_keys():
    out = _score(_info(WIN, outcome="win"))
    assert set(out) == MOVE_KEYS | GAME_KEYS
    assert out["score"] == 1.0 and out["acc"] == 1.0 and out["kind"] == "correct" and out["reason"] == ""
    assert out["game/win"] == 1.0 and out["game/loss"] == out["game/illegal"] == 0.0
    assert out["game/model_turns"] == 3.0 and out["game/legal_moves"] == 3.0
    assert out["score"] == replay_episode(EpisodeConfig("tic_tac_toe", 0, 5, "first_legal"), WIN).reward


def test_an_illegal_move_ends_the_game_at_the_minimum_utility_with_its_reason_class():
    out = _score(_info(["<answer>4</answer>", "<answer>4</answer>"]))  # the cell is taken
    assert out["score"] == 0.0 and out["game/illegal"] == 1.0 and out["kind"] == "illegal"
    assert out["reason"].startswith("move 2:") and out["game/legal_moves"] == 1.0
    hedge = _score(_info(["<answer>4</answer> or <answer>2</answer>"]))
    assert hedge["kind"] == "hedge" and hedge["game/illegal"] == 1.0


@pytest.mark.parametrize("text, kind", [
    (None, "no_answer"), (12, "no_answer"), ("<think>never closed", "no_answer"),
    ("x" * 2_000_000, "too_long"), ("<answer>" * 5_000, "no_answer"), ("\x00\ud800<answer>\x00</answer>", "no_answer"),
])
def test_hostile_texts_score_zero_with_a_reason_never_an_exception(text, kind):
    out = _score(_info([text]))
    assert out["score"] == 0.0 and out["kind"] == kind and out["reason"] and out["game/illegal"] == 1.0


def test_a_game_cut_by_the_response_budget_is_a_max_turns_stop_after_its_moves():
    out = _score(_info(WIN[:2], truncated=True, outcome="max_turns"))
    assert out["game/max_turns"] == 1.0 and out["game/truncated"] == 1.0 and out["game/model_turns"] == 2.0
    # OpenSpiel returns 0 (a draw's 0.5) for the unfinished game: stalling would pay half a win, so it pays a loss
    assert out["score"] == 0.0 and out["kind"] == "wrong"
    with pytest.raises(ValueError, match="needs more than the 2 completions.*game_truncated is not set"):
        _score(_info(WIN[:2]))


def test_legal_move_bonus_shapes_score_but_not_acc():
    out = _score(_info(["<answer>4</answer>", "<answer>4</answer>"], legal_move_bonus=0.1))
    assert out["score"] == pytest.approx(0.1) and out["acc"] == 0.0 and out["game/normalised_return"] == 0.0


def test_wiring_errors_raise_naming_the_key():
    with pytest.raises(ValueError, match="agent_loop_config_path=.*agent_loops.yaml"):
        _score({k: v for k, v in _info(WIN).items() if k != "game_completions"})
    with pytest.raises(ValueError, match="ended after 3 of the 4 completions"):
        _score(_info([*WIN, "<answer>0</answer>"]))
    with pytest.raises(ValueError, match="agent loop ended its game as 'loss'.*replay.*'win'"):
        _score(_info(WIN, outcome="loss"))
    with pytest.raises(ValueError, match=r"extra_info\['episode'\] is not valid JSON"):
        _score({**_info(WIN), "episode": "{"})
    with pytest.raises(ValueError, match="unknown key"):
        _score({**_info(WIN), "episode": '{"case": "tic_tac_toe", "seat": 0, "seed": 1, "colour": "red"}'})
    with pytest.raises(ValueError, match="opponent='mcts'"):
        _score({**_info(WIN), "episode": '{"case": "tic_tac_toe", "seat": 0, "seed": 1, "opponent": "mcts"}'})
    assert AGENT_LOOP_CONFIG.is_file()


def _reward_manager_result(manager, tokenizer, info):
    """verl's naive reward manager on the DataProto its streaming reward loop builds for a game trajectory."""
    from verl import DataProto

    ids = tokenizer("whatever the trajectory decodes to", add_special_tokens=False)["input_ids"]
    prompts, responses = torch.tensor([[1, 2, 3]]), torch.tensor([ids])
    input_ids = torch.cat([prompts, responses], dim=1)
    extra_fields = {k: info.pop(k) for k in ("game_completions", "game_truncated", "game_outcome") if k in info}
    data = DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "input_ids": input_ids,
                 "attention_mask": torch.ones_like(input_ids)},
        non_tensors={
            "data_source": np.array(["openspiel/tic_tac_toe"], dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": "{}"}], dtype=object),
            "extra_info": np.array([copy.deepcopy(info)], dtype=object),
            "tool_extra_fields": np.array([extra_fields], dtype=object),  # the agent loop's extra_fields
        },
    )
    return manager.loop.run_until_complete(manager.run_single(data))


def test_verl_reward_manager_gets_the_loop_fields_and_reports_every_key(smollm2_dir, smollm2_tokenizer):
    cfg = compose_ppo_config(plugin_overrides(env="openspiel", extra=[f"actor_rollout_ref.model.path={smollm2_dir}"]))
    manager = load_verl_reward_manager(cfg, smollm2_tokenizer)
    result = _reward_manager_result(manager, smollm2_tokenizer, _info(WIN, outcome="win"))
    assert result["reward_score"] == 1.0
    assert MOVE_KEYS | GAME_KEYS <= set(result["reward_extra_info"])
    assert result["reward_extra_info"]["game/win"] == 1.0


def test_per_case_outcome_rates_become_verl_validation_metrics():
    """verl's own validation-metric code over games of two cases (data_source = openspiel/<case> with group_by=case)."""
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    outs = [_score(_info(WIN)), _score(_info(["<answer>4</answer>", "<answer>4</answer>"])), _score(_info(["?"]))]
    infos = {key: [o[key] for o in outs] * 2 for key in outs[0]}
    sources = np.array(["openspiel/tic_tac_toe"] * 3 + ["openspiel/connect_four"] * 3, dtype=object)
    metrics = RayPPOTrainer._val_metrics_update(None, sources, [str(i) for i in range(6)], infos, [])
    assert metrics["val-aux/openspiel/tic_tac_toe/game/win/mean@1"] == pytest.approx(1 / 3)
    assert metrics["val-aux/openspiel/tic_tac_toe/game/illegal/mean@1"] == pytest.approx(2 / 3)
    assert metrics["val-aux/openspiel/connect_four/game/loss/mean@1"] == 0.0
    assert metrics["val-core/openspiel/tic_tac_toe/acc/mean@1"] == pytest.approx(1 / 3)

"""The verl adapter through verl 0.9.1's own dataset and sampler creation, a StatefulDataLoader with two
workers, real compute_score calls in another process (a Ray task; the server is a named Ray actor), and a
resume from a run dir with a verl checkpoint tracker."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from veritas_rl.backends.verl.curriculum import CurriculumServer, VerlCurriculumSettings, client
from veritas_rl.backends.verl.reward import compute_score

DATASET = "train/tools/dataset-manager.py"


def data_config(repo, curriculum, workers=2):
    return OmegaConf.create({
        "shuffle": False, "train_batch_size": 4, "gen_batch_size": None, "dataloader_num_workers": workers,
        "custom_cls": {"path": str(repo / DATASET), "name": "DynamicEnvDataset", "config": {
            "env": "lgc-v2", "task_types": ["operation"], "val_size": 8, "train_size": 64,
            **({"curriculum": curriculum} if curriculum is not None else {})}}})


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a shared cluster
    yield ray
    ray.shutdown()


def _score_items(items):
    """Runs in a Ray worker process: verl's reward call on each (data_source, ground truth, extra_info)."""
    return [compute_score(ds, "no answer here", gt, info) for ds, gt, info in items]


@pytest.mark.slow
def test_verl_dataset_sampler_workers_and_reward_across_processes(local_ray, smollm2_tokenizer):
    from pathlib import Path

    from torchdata.stateful_dataloader import StatefulDataLoader
    from torch.utils.data import SequentialSampler
    from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler
    from verl.utils.dataset.rl_dataset import collate_fn

    ray = local_ray
    repo = Path(__file__).resolve().parents[2]
    cfg = data_config(repo, {"file": "lgc-v2", "failure_replay": True, "group_size": 2, "name": "test-curriculum"})
    train = create_rl_dataset(["train"], cfg, smollm2_tokenizer, None, is_train=True)
    val = create_rl_dataset(["val"], cfg, smollm2_tokenizer, None, is_train=False)
    plain_val = create_rl_dataset(["val"], data_config(repo, None), smollm2_tokenizer, None, is_train=False)
    assert train.curriculum is not None and val.curriculum is None
    assert [val[i]["extra_info"] for i in range(8)] == [plain_val[i]["extra_info"] for i in range(8)]  # untouched
    assert ray.get_actor("test-curriculum") is not None  # the named actor holds the state
    sampler = create_rl_sampler(cfg, train)
    assert isinstance(sampler, SequentialSampler)
    loader = StatefulDataLoader(train, batch_size=4, num_workers=2, drop_last=True, collate_fn=collate_fn,
                                sampler=sampler)
    score = ray.remote(_score_items)
    seen, it = [], iter(loader)
    for _ in range(6):
        batch = next(it)
        infos = list(batch["extra_info"])
        assert [i["curriculum"]["slot"] for i in infos] == list(range(len(seen), len(seen) + 4))
        seen += infos
        items = [(ds, rm["ground_truth"], dict(info)) for ds, rm, info in
                 zip(batch["data_source"], batch["reward_model"], infos) for _ in range(2)]  # group_size 2
        results = ray.get(score.remote(items))
        assert [r["score"] for r in results] == [0.0] * 8
        assert all(r["curriculum/stage"] == 0.0 for r in results)  # the metrics verl logs per step
        last = results[-1]
    assert last["curriculum/buffer_size"] > 0 and last["curriculum/replay_share"] > 0
    stats = client(train.curriculum.server).call("stats")
    assert stats["applied"] == 6 and stats["forced"] == 0 and stats["dropped"] == 0
    assert stats["curriculum/buffer_size"] > 0  # every score was 0: failed tasks were buffered ...
    task_ids = [i["task_id"] for i in seen]
    assert set(task_ids[12:]) & set(task_ids[:12])  # ... and come back in later batches (fresh ones never repeat)
    easy = [i["env_config"] for i in seen]
    assert all('"operation_max_ops": 1' in c for c in easy)  # stage 0 of the lgc-v2 ladder


def _feed(server, batches, scores=lambda d: [0.0, 1.0 if d[2] % 2 else 0.0]):
    draws = []
    for b in batches:
        for slot in range(4 * b, 4 * b + 4):
            draw = server.rpc_draw(slot)
            draws.append(draw)
            server.rpc_report(slot, scores(draw))
    return draws


def test_verl_server_resumes_at_the_checkpointed_step(tmp_path):
    settings = VerlCurriculumSettings(file="lgc-v2", failure_replay=True, group_size=2, state_dir=str(tmp_path),
                                      wait_s=5.0).__dict__
    from veritas_rl.backends.verl.dataset import IndexPermutation

    args = (settings, "lgc-v2", {"task_types": ["operation"]}, 8, 4, 0, IndexPermutation)
    whole = CurriculumServer(*args)
    stream = _feed(whole, range(10))
    assert any(d[3] == "replay" for d in stream)
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("6")  # verl saved global_step_6; killed later
    resumed = CurriculumServer(*args, resume_at=6)
    assert resumed.schedule.applied == 6
    assert _feed(resumed, range(6, 10)) == stream[24:]
    assert (tmp_path / "curriculum" / "feedback.jsonl").read_text().count("\n") == 10


def test_verl_settings_fail_naming_the_key(tmp_path):
    from veritas_rl.backends.verl.dataset import parse_settings

    with pytest.raises(ValueError, match="curriculum.group_size is required"):
        parse_settings({"curriculum": {"file": "lgc-v2"}})
    with pytest.raises(ValueError, match=r"curriculum: unknown key\(s\) 'fractoin'; valid keys: file"):
        parse_settings({"curriculum": {"file": "lgc-v2", "group_size": 2, "fractoin": 0.3}})
    with pytest.raises(ValueError, match="needs file .* and/or failure_replay=true"):
        parse_settings({"curriculum": {"group_size": 2}})
    with pytest.raises(ValueError, match="failure_replay.fraction=2.0 must be in"):
        parse_settings({"curriculum": {"failure_replay": True, "group_size": 2, "fraction": 2.0}})

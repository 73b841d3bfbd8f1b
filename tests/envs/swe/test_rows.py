"""Rows of swe-synth: the cache dir, the datasets loader, task selection and the download tool."""

from __future__ import annotations

import json
import shutil

import pytest

from veritas_rl.envs import make
from veritas_rl.envs.swe.rows import SweDataError


def test_tasks_come_from_the_cache_dir(fx, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(fx.cache_dir, cache)
    row = json.loads((cache / "task_1.json").read_text())
    row["problem_statement"] = "A marker problem statement 7c1e."
    (cache / "task_1.json").write_text(json.dumps(row))
    env = make("swe-synth", **fx.config(cache_dir=str(cache)))
    task = env.task(1)
    assert "A marker problem statement 7c1e." in task.prompt[0]["content"]
    assert task.extra["instance_id"] == "veritas-fixtures__calc-2"
    assert task.extra["FAIL_TO_PASS"] == json.loads(fx.rows[1]["FAIL_TO_PASS"])  # JSON string -> list
    assert json.loads(task.ground_truth)["PASS_TO_PASS"] == json.loads(fx.rows[1]["PASS_TO_PASS"])
    assert env.task(0).prompt == make("swe-synth", **fx.config()).task(0).prompt


def test_task_selection_by_ids_and_by_range(fx):
    by_ids = make("swe-synth", **fx.config(task_ids=[1]))
    by_range = make("swe-synth", **fx.config(task_id_range=[1, 2]))
    for env in (by_ids, by_range):
        assert env.num_tasks == 1 and env.task_id_at(0) == 1
        assert env.task(1).extra["instance_id"] == "veritas-fixtures__calc-2"
        with pytest.raises(ValueError, match="task_id 0 is not among the selected rows"):
            env.task(0)
    both = make("swe-synth", **fx.config(task_ids="1,0"))
    assert [both.task_id_at(i) for i in range(both.num_tasks)] == [1, 0]


def test_missing_rows_name_the_download_command(fx):
    expected = r"4 selected row.*task_2\.json.*python -m veritas_rl\.envs\.swe download.*--start 2 --stop 6"
    with pytest.raises(SweDataError, match=expected):
        make("swe-synth", **fx.config(task_id_range=[0, 6]))


def test_offline_without_cache_says_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SweDataError) as err:
        make("swe-synth", cache_dir=str(tmp_path / "empty"), task_id_range=[0, 3])
    text = str(err.value)
    assert "princeton-nlp/SWE-bench_Lite" in text
    assert f"--cache-dir {tmp_path / 'empty'} --start 0 --stop 3" in text
    assert "task_<row index>.json" in text


def test_rows_through_the_datasets_loader_fill_the_cache(fx, tmp_path):
    # a local dataset directory goes through the same datasets.load_dataset call as a hub id
    source = tmp_path / "dataset"
    source.mkdir()
    (source / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in fx.rows))
    cache = tmp_path / "cache"
    env = make("swe-synth", **fx.config(dataset_name=str(source), cache_dir=str(cache), use_cache_only=False,
                                        task_id_range=[0, 100]))
    assert env.num_tasks == 2  # the range is clipped to the split size
    assert sorted(p.name for p in cache.iterdir()) == ["task_0.json", "task_1.json"]
    cached = make("swe-synth", **fx.config(cache_dir=str(cache)))
    assert cached.task(1) == env.task(1)

    from veritas_rl.envs.swe import main

    out = tmp_path / "downloaded"
    assert main(["download", "--dataset", str(source), "--cache-dir", str(out), "--start", "1"]) == 0
    downloaded = json.loads((out / "task_1.json").read_text())
    assert downloaded.pop("created_at").startswith("2026-01-01")  # a timestamp column, written as ISO 8601
    assert downloaded == {k: v for k, v in fx.rows[1].items() if k != "created_at"}
    assert not (out / "task_0.json").exists()


def test_a_failed_hub_load_is_not_retried(tmp_path, monkeypatch):
    import time

    from veritas_rl.envs.swe import rows

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(rows, "_HUB_FAILURES", {})
    with pytest.raises(SweDataError):
        make("swe-synth", dataset_name="veritas-fixtures/no-such-dataset", task_id_range=[0, 2])
    assert list(rows._HUB_FAILURES) == [("veritas-fixtures/no-such-dataset", "test")]
    start = time.monotonic()
    with pytest.raises(SweDataError, match=r"failed earlier in this process; not retried.*python -m veritas_rl"):
        make("swe-synth", dataset_name="veritas-fixtures/no-such-dataset", task_id_range=[0, 2])
    assert time.monotonic() - start < 0.5

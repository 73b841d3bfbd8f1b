"""Teacher-written SFT data against a real OpenAI-compatible HTTP server process started by the test."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from veritas_rl.data import generate
from veritas_rl.data.parquet import read_parquet_rows
from veritas_rl.data.teacher import TeacherClient, TeacherConfig, TeacherError
from veritas_rl.envs import make

SERVER = Path(__file__).with_name("teacher_server.py")
KEY = "sk-test-teacher"


@pytest.fixture
def start_server(tmp_path):
    procs = []

    def start(answers: dict, key: str | None = KEY) -> tuple[str, Path]:
        n = len(procs)
        answers_path, port_file, log = (tmp_path / f"answers{n}.json", tmp_path / f"port{n}", tmp_path / f"log{n}.jsonl")
        answers_path.write_text(json.dumps(answers), encoding="utf-8")
        env = {**__import__("os").environ, **({"TEACHER_SERVER_KEY": key} if key else {})}
        proc = subprocess.Popen([sys.executable, str(SERVER), "--answers", str(answers_path), "--port-file",
                                 str(port_file), "--log", str(log)], env=env)
        procs.append(proc)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None, "teacher server exited"
            assert time.monotonic() < deadline, "teacher server did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port_file.read_text()}/v1", log

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def _requests(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def sudoku():
    env = make("lgc-v2", task_types=["sudoku"])
    ids = generate.select_task_ids(env, num_samples=8, seed=3)
    return env, [env.task(t) for t in ids]


def test_teacher_solutions_kept_only_when_they_score_one(sudoku, start_server, tmp_path, monkeypatch, caplog):
    env, tasks = sudoku
    prompt = [t.prompt[-1]["content"] for t in tasks]
    answers = {}
    for i, task in enumerate(tasks):
        if i % 2 == 0:  # a worked solution: reasoning, then the right grid
            answers[prompt[i]] = {"content": f"<think>fill row by row</think>{env.oracle(task)}"}
        else:  # a plausible but wrong solution: another puzzle's grid
            answers[prompt[i]] = {"content": env.oracle(tasks[(i + 1) % len(tasks)])}
    answers[prompt[2]]["fail_first"] = 2  # two 503s, then the answer: retried
    answers[prompt[5]]["status"] = 400  # not retryable: a teacher error, not cached
    base_url, log = start_server(answers)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    args = ["--env", "lgc-v2", "--task-types", "sudoku", "--task-ids", ",".join(str(t.task_id) for t in tasks),
            "--format", "sft", "--val-ratio", "0", "--output-dir", str(tmp_path / "out"), "--teacher",
            "--base-url", base_url, "--model", "teacher-7b", "--concurrency", "3", "--retries", "3", "--no-progress"]
    with caplog.at_level(logging.INFO):
        assert generate.main(args) == 0
    rows = read_parquet_rows(tmp_path / "out" / "lgc-v2_sft_train.parquet")
    assert [r["extra_info"]["task_id"] for r in rows] == [t.task_id for t in tasks[0::2]]
    for row, task in zip(rows, tasks[0::2]):
        assert row["extra_info"]["source"] == "teacher"
        assert row["messages"][:-1] == task.prompt
        assert row["messages"][-1] == {"role": "assistant", "content": answers[task.prompt[-1]["content"]]["content"]}
        assert env.score(task, row["response"]).value == 1.0
    assert "dropped: 4 (teacher_error=1, teacher_rejected=3)" in caplog.text

    # the wrong solutions were scored by the env and rejected, with the scorer's reason
    cache = [json.loads(line) for line in (tmp_path / "out" / "lgc-v2_sft_teacher.jsonl").read_text().splitlines()]
    by_id = {r["task_id"]: r for r in cache}
    assert set(by_id) == {t.task_id for i, t in enumerate(tasks) if i != 5}
    for i in (1, 3, 7):
        record = by_id[tasks[i].task_id]
        assert (record["accepted"], record["score"], record["model"]) == (False, 0.0, "teacher-7b")
        assert record["reason"]
    requests = _requests(log)
    assert sum(r["prompt"] == prompt[2] for r in requests) == 3
    assert [r["status"] for r in requests if r["prompt"] == prompt[2]].count(503) == 2
    assert {r["model"] for r in requests} == {"teacher-7b"}

    # resumed: only the task without a record is asked again; the output is the same
    before = len(requests)
    assert generate.main(args) == 0
    again = _requests(log)[before:]
    assert [r["prompt"] for r in again] == [prompt[5]]
    assert read_parquet_rows(tmp_path / "out" / "lgc-v2_sft_train.parquet") == rows


def test_wrong_key_is_an_error_not_a_rejection(sudoku, start_server, tmp_path, monkeypatch, capsys):
    env, tasks = sudoku
    base_url, log = start_server({tasks[0].prompt[-1]["content"]: {"content": env.oracle(tasks[0])}})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with pytest.raises(SystemExit) as exc:
        generate.main(["--env", "lgc-v2", "--task-types", "sudoku", "--task-ids", str(tasks[0].task_id), "--format",
                       "sft", "--val-ratio", "0", "--output-dir", str(tmp_path), "--teacher", "--base-url", base_url,
                       "--model", "m", "--no-progress"])
    assert exc.value.code == 2 and "teacher_error=1" in capsys.readouterr().err
    assert [r["status"] for r in _requests(log)] == [401]  # 401 is not retried
    assert not (tmp_path / "lgc-v2_sft_teacher.jsonl").exists() or not (tmp_path / "lgc-v2_sft_teacher.jsonl").read_text()


def test_client_gives_up_after_its_retries(start_server):
    base_url, log = start_server({"q": {"content": "a", "fail_first": 3}}, key=None)
    client = TeacherClient(TeacherConfig(base_url=base_url, model="m", retries=1, backoff=0.01))
    with pytest.raises(TeacherError, match="HTTP 503"):
        client.complete([{"role": "user", "content": "q"}])
    assert [r["status"] for r in _requests(log)] == [503, 503]
    retrying = TeacherClient(TeacherConfig(base_url=base_url, model="m", retries=2, backoff=0.01))
    assert retrying.complete([{"role": "user", "content": "q"}]) == "a"  # third 503, then the answer
    assert [r["status"] for r in _requests(log)] == [503, 503, 503, 200]


def test_teacher_config_errors_name_the_flag():
    with pytest.raises(ValueError, match="--base-url"):
        TeacherConfig(base_url="localhost:8000", model="m")
    with pytest.raises(ValueError, match="--concurrency"):
        TeacherConfig(base_url="http://x/v1", model="m", concurrency=0)

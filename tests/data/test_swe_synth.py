"""SWE-synth → SFT parquet converter on a local jsonl fixture in the SWE-synth shape."""

from __future__ import annotations

import json
import logging
import re

import pytest

from veritas_rl.data import swe_synth
from veritas_rl.data.parquet import read_parquet_rows, write_parquet
from veritas_rl.data.swe_synth import TRAIN_FILE, VAL_FILE, Limits, convert, render_turn

SYSTEM = "You are an autonomous software engineer working in a Python repository."


def _patch(i: int, lines: int = 3) -> str:
    body = "".join(f"+    value_{i}_{k} = {k}\n" for k in range(lines))
    return f"diff --git a/pkg/mod_{i}.py b/pkg/mod_{i}.py\n--- a/pkg/mod_{i}.py\n+++ b/pkg/mod_{i}.py\n@@ -1,2 +1,{lines + 2} @@\n def f():\n{body}     return 0\n"


def trajectory(i: int, steps: int = 6, patch: str | None = None, run: str = "run-a") -> dict:
    """One row shaped like swesynth/SWE-Synth_Moatless-SFT-Trajectories."""
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"ISSUE-{i}: calling f() in pkg/mod_{i}.py returns the wrong value."},
    ]
    for k in range(steps):
        call_id = f"call_{i}_{k}"
        messages.append(
            {
                "role": "assistant",
                "content": f"THOUGHT-{i}-{k}: look at the next file.",
                "tool_calls": [
                    {"id": call_id, "type": "function",
                     "function": {"name": "view_file", "arguments": json.dumps({"path": f"pkg/file_{k}.py"})}}
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "name": "view_file",
                         "content": f"RESULT-{i}-{k}\n" + "source line\n" * 20})
    messages.append({"role": "assistant", "content": f"FINISH-{i}: the fix is ready."})
    return {"instance_id": f"org__repo-{i}", "messages": messages,
            "model_patch": _patch(i) if patch is None else patch, "run_name": run}


@pytest.fixture
def fixture_rows():
    rows = [trajectory(i) for i in range(20)]
    rows[3]["model_patch"] = ""  # empty patches: dropped and counted
    rows[7]["model_patch"] = "   \n"
    rows[11]["model_patch"] = _patch(11, lines=400)  # ~10k characters: too long for the limits below
    return rows


@pytest.fixture
def fixture_jsonl(tmp_path, fixture_rows):
    path = tmp_path / "swe_synth.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in fixture_rows), encoding="utf-8")
    return path


def _run(args, caplog=None):
    assert swe_synth.main([*map(str, args), "--no-progress"]) == 0


def test_render_keeps_tool_calls_as_text():
    row = trajectory(1, steps=1)
    text = render_turn(row["messages"][2])
    assert text == '### assistant\nTHOUGHT-1-0: look at the next file.\n[tool call] view_file({"path": "pkg/file_0.py"})'
    assert render_turn(row["messages"][3]).startswith("### tool (view_file)\nRESULT-1-0\n")
    # OpenAI content parts and missing content are text too
    assert render_turn({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}) == "### user\nab"
    assert render_turn({"role": "assistant", "content": None}) == "### assistant"


def test_full_conversion_columns_and_values(fixture_jsonl, fixture_rows, tmp_path, caplog):
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        _run(["--input", fixture_jsonl, "--output-dir", out, "--val-ratio", "0.2"])
    train, val = read_parquet_rows(out / TRAIN_FILE), read_parquet_rows(out / VAL_FILE)
    rows = train + val
    assert len(rows) == 18  # 20 in, 2 empty patches
    by_id = {r["instance_id"]: r for r in fixture_rows}
    for row in rows:
        src = by_id[row["instance_id"]]
        assert row["response"] == src["model_patch"]
        assert row["run_name"] == "run-a"
        assert row["messages"] == [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}]
        assert row["turns_omitted"] == 0 and row["num_turns"] == len(src["messages"])
        # every turn in order, tool calls as text
        assert row["prompt"] == "\n\n".join(render_turn(m) for m in src["messages"])
        assert row["prompt"].startswith(f"### system\n{SYSTEM}")
        assert '[tool call] view_file({"path": "pkg/file_5.py"})' in row["prompt"]
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rows in:")]
    assert summary == [
        "rows in: 20, kept: 18 (train 14, val 4; 0 truncated), dropped: 2 "
        "(empty_patch=2, no_messages=0, patch_too_long=0, prompt_budget_exhausted=0)"
    ]


def test_truncation_keeps_the_most_recent_turns(fixture_rows):
    limit = 900
    examples, summary = convert(fixture_rows, Limits(max_chars_prompt=limit))
    assert summary.truncated == summary.kept == 18
    for ex in examples:
        i = int(ex["instance_id"].rsplit("-", 1)[1])
        prompt = ex["prompt"]
        assert len(prompt) <= limit
        assert prompt.endswith(f"### assistant\nFINISH-{i}: the fix is ready.")  # the last turn is whole
        assert f"ISSUE-{i}" not in prompt and SYSTEM not in prompt  # the head went first
        omitted = ex["turns_omitted"]
        assert prompt.startswith(f"[... {omitted} earlier turns omitted ...]\n\n")
        # what is kept is exactly the last (num_turns - omitted) turns, whole
        src = next(r for r in fixture_rows if r["instance_id"] == ex["instance_id"])
        tail = "\n\n".join(render_turn(m) for m in src["messages"][omitted:])
        assert prompt == f"[... {omitted} earlier turns omitted ...]\n\n{tail}"
        # and one more turn would not have fitted
        longer = "\n\n".join(render_turn(m) for m in src["messages"][omitted - 1 :])
        assert len(f"[... {omitted - 1} earlier turns omitted ...]\n\n{longer}") > limit
        assert ex["response"] == src["model_patch"]


def test_keep_first_turns_pins_the_issue(fixture_rows):
    examples, _ = convert(fixture_rows[:2], Limits(max_chars_prompt=900, keep_first_turns=2))
    for ex in examples:
        i = int(ex["instance_id"].rsplit("-", 1)[1])
        assert ex["prompt"].startswith(f"### system\n{SYSTEM}\n\n### user\nISSUE-{i}")
        assert ex["prompt"].endswith(f"FINISH-{i}: the fix is ready.")
        assert "earlier turns omitted" in ex["prompt"] and len(ex["prompt"]) <= 900


def test_last_turn_longer_than_budget_keeps_its_tail():
    row = trajectory(0, steps=1)
    row["messages"][-1]["content"] = "HEAD " + "y" * 2000 + " TAIL-END"
    [ex], _ = convert([row], Limits(max_chars_prompt=300))
    assert len(ex["prompt"]) <= 300 and ex["prompt"].endswith(" TAIL-END") and "HEAD" not in ex["prompt"]


def test_long_patches_are_dropped_never_cut(fixture_rows):
    long_patch = fixture_rows[11]["model_patch"]
    assert len(long_patch) > 5000
    examples, summary = convert(fixture_rows, Limits(max_chars_response=5000))
    assert summary.dropped == {"empty_patch": 2, "patch_too_long": 1}
    assert "org__repo-11" not in {e["instance_id"] for e in examples}
    originals = {r["model_patch"] for r in fixture_rows}
    assert all(e["response"] in originals for e in examples)  # whole patches only


def test_token_limit_with_real_tokenizer(fixture_rows, smollm2_tokenizer):
    counter = swe_synth.TokenCounter(smollm2_tokenizer)
    max_tokens = 700
    examples, summary = convert(fixture_rows, Limits(max_tokens=max_tokens), counter=counter)
    assert summary.dropped == {"empty_patch": 2, "patch_too_long": 1}  # the 10k-char patch is ~4k tokens
    assert summary.truncated == summary.kept == 17
    for ex in examples:
        ids = smollm2_tokenizer.apply_chat_template(ex["messages"], tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        assert len(ids) <= max_tokens
        assert ex["prompt"].endswith("the fix is ready.")
        # the budget is used: one more turn would not have fitted
        omitted = ex["turns_omitted"]
        src = next(r for r in fixture_rows if r["instance_id"] == ex["instance_id"])
        longer = "\n\n".join(render_turn(m) for m in src["messages"][omitted - 1 :])
        longer = f"[... {omitted - 1} earlier turns omitted ...]\n\n{longer}"
        assert counter.example_tokens(longer, ex["response"]) > max_tokens


def test_worker_processes_give_the_same_result(fixture_rows, smollm2_tokenizer):
    counter = swe_synth.TokenCounter(smollm2_tokenizer)
    limits = Limits(max_tokens=700, keep_first_turns=1)
    one = convert(fixture_rows, limits, counter=counter)
    two = convert(fixture_rows, limits, counter=counter, num_proc=2)
    assert two == one and one[1].truncated == 17
    # and stopping early (--max-samples) ends the pool cleanly with the same first rows
    assert convert(fixture_rows, limits, counter=counter, num_proc=2, max_samples=4)[0] == one[0][:4]


def test_split_sizes_disjoint_and_deterministic(fixture_jsonl, tmp_path):
    outs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        out = tmp_path / name
        _run(["--input", fixture_jsonl, "--output-dir", out, "--val-ratio", "0.25", "--seed", seed])
        outs[name] = (read_parquet_rows(out / TRAIN_FILE), read_parquet_rows(out / VAL_FILE))
    train, val = outs["a"]
    assert (len(train), len(val)) == (13, 5)  # 18 * 0.25 = 4.5 -> 5 instance ids held out
    assert not {r["instance_id"] for r in train} & {r["instance_id"] for r in val}
    assert outs["a"] == outs["b"]  # same seed, same files
    assert {r["instance_id"] for r in outs["c"][1]} != {r["instance_id"] for r in val}  # another seed, another split
    assert [r["extra_info"] for r in val] == [{"split": "val", "index": k} for k in range(5)]


def test_runs_of_one_instance_stay_on_one_side(tmp_path):
    rows = [trajectory(i, steps=1, run=run) for i in range(10) for run in ("run-a", "run-b")]
    examples, _ = convert(rows, Limits())
    train, val = swe_synth.split_examples(examples, 0.3, seed=0)
    assert len(val) == 6 and len(train) == 14
    assert not {e["instance_id"] for e in train} & {e["instance_id"] for e in val}


def test_parquet_input_matches_jsonl(fixture_rows, fixture_jsonl, tmp_path):
    pq_path = write_parquet(fixture_rows, tmp_path / "in.parquet")
    for src, name in ((fixture_jsonl, "j"), (pq_path, "p")):
        _run(["--input", src, "--output-dir", tmp_path / name, "--max-chars-prompt", 1200])
    assert read_parquet_rows(tmp_path / "j" / TRAIN_FILE) == read_parquet_rows(tmp_path / "p" / TRAIN_FILE)


def test_max_samples_and_bad_rows(tmp_path):
    rows = [trajectory(i, steps=1) for i in range(6)]
    rows[0]["messages"] = []
    rows[1]["messages"] = None
    examples, summary = convert(rows, Limits(), max_samples=3)
    assert [e["instance_id"] for e in examples] == ["org__repo-2", "org__repo-3", "org__repo-4"]
    assert summary.rows_in == 5 and summary.dropped == {"no_messages": 2}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-tokens", "100"], "--max-tokens needs --tokenizer"),
        (["--val-ratio", "1.5"], "--val-ratio"),
        (["--max-chars-prompt", "0"], "--max-chars-prompt"),
        (["--num-proc", "0"], "--num-proc"),
        (["--input", "missing.csv"], "not a file"),
    ],
)
def test_bad_arguments_fail_naming_the_flag(args, message, tmp_path, fixture_jsonl, capsys):
    if "--input" not in args:
        args = ["--input", str(fixture_jsonl), *args]
    with pytest.raises(SystemExit) as exc:
        swe_synth.main([*args, "--output-dir", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert re.search(re.escape(message), capsys.readouterr().err)


def test_dataset_flag_goes_through_the_datasets_loader(fixture_jsonl, tmp_path):
    """``--dataset`` takes the real ``datasets.load_dataset`` path (here on a local dataset directory)."""
    repo = tmp_path / "swe-synth-repo"
    repo.mkdir()
    (repo / "train.jsonl").write_bytes(fixture_jsonl.read_bytes())
    _run(["--dataset", repo, "--split", "train", "--output-dir", tmp_path / "hf", "--max-chars-prompt", 1500])
    _run(["--input", fixture_jsonl, "--output-dir", tmp_path / "local", "--max-chars-prompt", 1500])
    for name in (TRAIN_FILE, VAL_FILE):
        assert read_parquet_rows(tmp_path / "hf" / name) == read_parquet_rows(tmp_path / "local" / name)


def test_budget_too_small_for_any_turn_is_dropped_and_counted():
    rows = [trajectory(0, steps=1), trajectory(1, steps=1)]
    # 30 characters: not even the omitted-turns marker plus one character of the last turn
    examples, summary = convert(rows, Limits(max_chars_prompt=30))
    assert examples == [] and summary.dropped == {"prompt_budget_exhausted": 2}
    # the pinned head alone over the limit: dropped too
    examples, summary = convert(rows, Limits(max_chars_prompt=120, keep_first_turns=2))
    assert examples == [] and summary.dropped == {"prompt_budget_exhausted": 2}

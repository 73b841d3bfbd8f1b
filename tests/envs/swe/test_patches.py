"""The diff taken out of a completion: one patch per answer (several different diffs are a hedge)."""

from __future__ import annotations

import pytest

from tests.envs.swe_fixture import fenced
from veritas_rl.envs.swe.patches import SEVERAL_DIFFS, diff_answer, extract_diff


DIFF = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
MD_DIFF = "--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,3 @@\n ```\n-old\n+new\n ```\n"


@pytest.mark.parametrize(
    "answer, expected",
    [
        (f"```diff\n{DIFF}```", DIFF),
        (DIFF, DIFF),
        (f"```diff\n{DIFF}  \n```\nagain:\n```diff\n{DIFF}```", DIFF),  # the same diff twice is one answer
        (f"{DIFF}\nas a block:\n```diff\n{DIFF}```", DIFF),  # bare and fenced, the same
        (f"```python\nprint(1)\n```\n```diff\n{DIFF}```", DIFF),
        (f"```\n{DIFF}```", DIFF),
        (f"```diff\n{MD_DIFF}```\nThat is all.", MD_DIFF),  # fences inside the patched file
        ("I think the fix is to change clamp.", None),
        ("```diff\n--- a/x.py\n@@ -1 +1 @@\n-a\n+b\n```", None),
        ("```diff\n--- a/x.py\n+++ b/x.py\n-a\n+b\n```", None),
        ("notes\n---\nmore notes\n```diff\nnothing here\n```", None),  # a Markdown rule is no diff header
    ],
)
def test_extract_diff(answer, expected):
    diff, reason = extract_diff(answer)
    assert diff == expected
    assert (reason == "ok") == (expected is not None) and (expected is not None or "malformed diff" in reason)


OTHER = DIFF.replace("+b", "+c")
Y_DIFF = DIFF.replace("x.py", "y.py")


@pytest.mark.parametrize(
    "answer",
    [
        f"first\n```diff\n{OTHER}```\nbetter:\n```diff\n{DIFF}```",  # a second guess, either order
        f"```diff\n{DIFF}```\nor:\n```diff\n{OTHER}```",
        f"```diff\n{DIFF}```\n```patch\n--- a/x.py\n+++ b/x.py\n(this one is broken)\n```",  # a malformed one too
        f"```\n{DIFF}```\n```diff\n{Y_DIFF}```",  # untagged fences count
        f"{OTHER}\nso:\n```diff\n{DIFF}```",  # a bare diff outside the fences
        DIFF + OTHER,  # bare diff --git sections editing one file twice
        f"```diff\n{DIFF}{OTHER}```",  # ... in one fence
    ],
)
def test_several_different_diffs_are_a_hedge(answer):
    diff, reason, kind = diff_answer(answer)
    assert (diff, kind) == (None, "hedge") and reason.startswith(SEVERAL_DIFFS)
    assert extract_diff(answer) == (None, reason)


def test_a_patch_of_two_files_is_one_answer():
    assert diff_answer(DIFF + Y_DIFF) == (DIFF + Y_DIFF, "ok", "correct")
    assert diff_answer(f"```diff\n{DIFF}{Y_DIFF}```") == (DIFF + Y_DIFF, "ok", "correct")


def test_gold_then_a_corrupt_patch_scores_zero_as_a_hedge(env, fx):
    """The audit's attack on the real fixture: the gold in the first fence, a corrupt patch in the second."""
    task = env.task(0)
    gold, corrupt = fx.patches["gold0"], fx.patches["wrong0"]
    assert env.score(task, fenced(gold)).value == 1.0
    for answer in (fenced(gold) + fenced(corrupt), fenced(corrupt) + fenced(gold), fenced(gold) + corrupt):
        score = env.score(task, answer)
        assert (score.value, score.kind, score.info["reason"]) == (0.0, "hedge", SEVERAL_DIFFS)
    repeated = env.score(task, fenced(gold) + "The same again:\n" + fenced(gold))
    assert (repeated.value, repeated.kind) == (1.0, "correct")


def test_malformed_diff_scores_zero_with_reason(env):
    score = env.score(env.task(0), "```diff\n--- a/calc/__init__.py\nchange the return\n```")
    assert score.value == 0.0 and score.info["reason"].startswith("malformed diff") and score.kind == "no_answer"


def test_fence_scan_is_linear_on_hostile_input():
    import time

    start = time.perf_counter()
    for answer in ("```x\n" * 40000, "```\n" * 40000, "```diff\n--- a\n" * 20000):
        diff, reason = extract_diff(answer)
        assert diff is None and reason.startswith("malformed diff")
    assert time.perf_counter() - start < 2.0  # the old regex took minutes on the first one

"""The diff taken out of a completion."""

from __future__ import annotations

import pytest

from veritas_rl.envs.swe.patches import extract_diff


DIFF = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
MD_DIFF = "--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,3 @@\n ```\n-old\n+new\n ```\n"


@pytest.mark.parametrize(
    "answer, expected",
    [
        (f"```diff\n{DIFF}```", DIFF),
        (DIFF, DIFF),
        (f"first\n```diff\n{DIFF.replace('+b', '+c')}```\nbetter:\n```diff\n{DIFF}```", DIFF),
        (f"```python\nprint(1)\n```\n```diff\n{DIFF}```", DIFF),
        (f"```\n{DIFF}```", DIFF),
        (f"```diff\n{MD_DIFF}```\nThat is all.", MD_DIFF),  # fences inside the patched file
        ("I think the fix is to change clamp.", None),
        ("```diff\n--- a/x.py\n@@ -1 +1 @@\n-a\n+b\n```", None),
        ("```diff\n--- a/x.py\n+++ b/x.py\n-a\n+b\n```", None),
    ],
)
def test_extract_diff(answer, expected):
    diff, reason = extract_diff(answer)
    assert diff == expected
    assert (reason == "ok") == (expected is not None) and (expected is not None or "malformed diff" in reason)


def test_malformed_diff_scores_zero_with_reason(env):
    score = env.score(env.task(0), "```diff\n--- a/calc/__init__.py\nchange the return\n```")
    assert score.value == 0.0 and score.info["reason"].startswith("malformed diff")


def test_fence_scan_is_linear_on_hostile_input():
    import time

    start = time.perf_counter()
    for answer in ("```x\n" * 40000, "```\n" * 40000, "```diff\n--- a\n" * 20000):
        diff, reason = extract_diff(answer)
        assert diff is None and reason.startswith("malformed diff")
    assert time.perf_counter() - start < 2.0  # the old regex took minutes on the first one

"""The model's patch: the unified diff taken out of a completion, and the files it touches."""

from __future__ import annotations

import re

#: a fenced block; the closing fence must start its line (a diff line never does: they start with
#: ' ', '+', '-', '@' or a header), so a patch that edits Markdown fences is not cut short
_FENCE = re.compile(r"^[ \t]*```[ \t]*(diff|patch)?[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_DIFF_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)
_PLUS_FILE = re.compile(r"^\+\+\+ (?:b/)?(\S+)", re.M)
_MINUS_FILE = re.compile(r"^--- (?:a/)?(\S+)", re.M)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@", re.M)


def extract_diff(answer: str) -> tuple[str | None, str]:
    """``(diff, reason)``: the last fenced diff block (or the raw text), checked for diff structure."""
    blocks = list(_FENCE.finditer(answer))
    tagged = [m for m in blocks if m.group(1)]
    if tagged:
        text = tagged[-1].group(2)
    elif blocks:
        text = blocks[-1].group(2)
    else:
        text = answer
    # models often indent or pad; a diff starts at its first header line
    start = re.search(r"^(diff --git |--- )", text, re.M)
    if start is None:
        return None, "malformed diff: no 'diff --git' or '--- a/...' file header"
    text = text[start.start():]
    if not _PLUS_FILE.search(text) or not _MINUS_FILE.search(text):
        return None, "malformed diff: a file header needs both '--- a/path' and '+++ b/path' lines"
    if not _HUNK.search(text) and "new mode" not in text and "rename from" not in text:
        return None, "malformed diff: no '@@ -l,n +l,n @@' hunk header"
    if not text.endswith("\n"):
        text += "\n"
    return text, "ok"


def patch_files(patch: str) -> list[str]:
    """Paths a unified diff touches (``b/`` side, falling back to ``---`` headers), in order."""
    files = [m.group(2) for m in _DIFF_FILE.finditer(patch)]
    if not files:
        files = [p for p in _PLUS_FILE.findall(patch) if p != "/dev/null"]
    return list(dict.fromkeys(files))

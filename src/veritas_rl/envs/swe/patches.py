"""The model's patch: the unified diff taken out of a completion, the files it touches, and the
patches refused before anything runs (test infrastructure, paths outside the repository)."""

from __future__ import annotations

import configparser
import posixpath
import re
import tomllib

_DIFF_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)
_PLUS_FILE = re.compile(r"^\+\+\+ (?:b/)?(\S+)", re.M)
_MINUS_FILE = re.compile(r"^--- (?:a/)?(\S+)", re.M)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@", re.M)


def fenced_blocks(text: str) -> list[tuple[str | None, str]]:
    """``(tag, body)`` of each fenced block, in one pass over the lines (linear time: the answer is
    hostile). An opening fence is a line of optional indent, ```` ``` ````, optional ``diff``/``patch``
    tag and anything after; the closing fence must start its line and hold nothing but blanks (a diff
    line never does: they start with ' ', '+', '-', '@' or a header), so a patch that edits Markdown
    fences is not cut short. An unclosed block is no block."""
    blocks: list[tuple[str | None, str]] = []
    tag: str | None = None
    body_start = -1  # >= 0 while inside a block
    pos, size = 0, len(text)
    while pos < size:
        nl = text.find("\n", pos)
        end = size if nl < 0 else nl
        if body_start >= 0:
            if text.startswith("```", pos) and not text[pos + 3:end].strip(" \t"):
                blocks.append((tag, text[body_start:pos]))
                body_start = -1
        elif nl >= 0:  # an opening fence needs its newline
            stripped = text[pos:end].lstrip(" \t")
            if stripped.startswith("```"):
                rest = stripped[3:].lstrip(" \t")
                tag = "diff" if rest.startswith("diff") else "patch" if rest.startswith("patch") else None
                body_start = nl + 1
        pos = end + 1
    return blocks


def extract_diff(answer: str) -> tuple[str | None, str]:
    """``(diff, reason)``: the last fenced diff block (or the raw text), checked for diff structure."""
    blocks = fenced_blocks(answer)
    tagged = [body for tag, body in blocks if tag]
    if tagged:
        text = tagged[-1]
    elif blocks:
        text = blocks[-1][1]
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


#: file names that configure or hook into the test run wherever they are (pytest, tox, nox, site)
TEST_INFRA_NAMES = frozenset({"conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "tox.ini",
                              "noxfile.py", "sitecustomize.py", "usercustomize.py"})
#: the test-configuration parts of shared config files: setup.cfg sections, pyproject.toml tables
SETUP_CFG_TEST_SECTIONS = ("tool:pytest", "pytest", "tox:tox")
PYPROJECT_TEST_TABLES = ("pytest", "tox", "nox", "hatch")


def refused_path(path: str, test_files: list[str]) -> str | None:
    """Why a patch may not touch ``path`` (as git reads it), or ``None``."""
    parts = path.split("/")
    if path.startswith("/") or ".." in parts or any(p.lower() == ".git" for p in parts):
        return f"the patch touches {path!r}, outside the repository's files"
    name = parts[-1]
    if name in TEST_INFRA_NAMES or name.endswith(".pth"):
        return f"the patch touches test infrastructure: {path}"
    if posixpath.normpath(path) in {posixpath.normpath(f) for f in test_files}:
        return f"the patch edits the task's test file {path} (the tests decide the reward, the patch may not)"
    return None


def test_config_sections(name: str, text: str | None) -> object:
    """The test-configuration parts of ``setup.cfg`` / ``pyproject.toml`` (comparable values), or the
    marker ``"unparseable"``."""
    if text is None:  # no such file: no test configuration in it
        return {}
    try:
        if name == "setup.cfg":
            parser = configparser.RawConfigParser(strict=False, interpolation=None)
            parser.read_string(text)
            return {s: dict(parser.items(s)) for s in SETUP_CFG_TEST_SECTIONS if parser.has_section(s)}
        tool = tomllib.loads(text).get("tool", {})
        return {k: tool.get(k) for k in PYPROJECT_TEST_TABLES if k in tool}
    except (configparser.Error, tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError):
        return "unparseable"


def refused_config_change(path: str, before: str | None, after: str | None) -> str | None:
    """Why the edit of ``path`` from ``before`` to ``after`` is refused (it changes a test section)."""
    name = path.rsplit("/", 1)[-1]
    if name not in ("setup.cfg", "pyproject.toml"):
        return None
    if test_config_sections(name, before) != test_config_sections(name, after):
        return f"the patch changes the test configuration in {path}"
    return None

"""The model's patch: the unified diff taken out of a completion, the files it touches, and the
patches refused before anything runs (test infrastructure, paths outside the repository).

One answer, one patch: the diffs of a completion (each fenced block that holds a diff header, and a bare
diff outside the fences) must all be the same patch, and the patch may not edit one file in two
sections. Anything else is a hedge (kind ``hedge``): were the last (or first) fence to win, a model could
offer a second guess beside its attempt for free."""

from __future__ import annotations

import configparser
import importlib.machinery
import os
import posixpath
import re
import sys
import tomllib

from veritas_rl.envs.answers import distinct_answers

_DIFF_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)
_PLUS_FILE = re.compile(r"^\+\+\+ (?:b/)?(\S+)", re.M)
_MINUS_FILE = re.compile(r"^--- (?:a/)?(\S+)", re.M)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@", re.M)
#: where a diff starts (models indent or pad; the diff is taken from its first header line)
_HEADER = re.compile(r"^(diff --git |--- )", re.M)
#: a diff outside the fences: a git header, or a ``---`` line with a ``+++`` line right after it (a bare
#: ``---`` is a Markdown rule in prose)
_BARE_HEADER = re.compile(r"^diff --git |^--- \S[^\n]*\n\+\+\+ ", re.M)
SEVERAL_DIFFS = "several different diffs in one answer (a hedge scores 0)"


def fenced_blocks(text: str) -> list[tuple[str | None, str]]:
    """``(tag, body)`` of each fenced block, in one pass over the lines (linear time: the answer is
    hostile). An opening fence is a line of optional indent, ```` ``` ````, optional ``diff``/``patch``
    tag and anything after; the closing fence must start its line and hold nothing but blanks (a diff
    line never does: they start with ' ', '+', '-', '@' or a header), so a patch that edits Markdown
    fences is not cut short. An unclosed block is no block."""
    return [(tag, text[body_start:body_end]) for tag, _, body_start, body_end, _ in _fence_spans(text)]


def _fence_spans(text: str) -> list[tuple[str | None, int, int, int, int]]:
    """``(tag, block_start, body_start, body_end, block_end)`` of each closed fenced block (the rules of
    :func:`fenced_blocks`)."""
    spans: list[tuple[str | None, int, int, int, int]] = []
    tag: str | None = None
    block_start = body_start = -1  # body_start >= 0 while inside a block
    pos, size = 0, len(text)
    while pos < size:
        nl = text.find("\n", pos)
        end = size if nl < 0 else nl
        if body_start >= 0:
            if text.startswith("```", pos) and not text[pos + 3:end].strip(" \t"):
                spans.append((tag, block_start, body_start, pos, end))
                body_start = -1
        elif nl >= 0:  # an opening fence needs its newline
            stripped = text[pos:end].lstrip(" \t")
            if stripped.startswith("```"):
                rest = stripped[3:].lstrip(" \t")
                tag = "diff" if rest.startswith("diff") else "patch" if rest.startswith("patch") else None
                block_start, body_start = pos, nl + 1
        pos = end + 1
    return spans


#: how the lines of a git diff start (headers, hunks, extended headers); a diff ends at any other line
_DIFF_LINE_STARTS = ("diff ", "index ", "--- ", "+++ ", "@@", " ", "+", "-", "\\", "new ", "deleted ", "old ",
                     "similarity ", "dissimilarity ", "rename ", "copy ", "Binary ", "GIT binary", "literal ", "delta ")


def _diff_lines(text: str) -> list[str]:
    """The lines of the diff that ``text`` starts with, up to the first line that is no diff line (prose
    after a bare diff), trailing blanks dropped: what two statements of one patch share."""
    lines = []
    for line in text.split("\n"):
        if line.strip() and not line.startswith(_DIFF_LINE_STARTS):
            break
        lines.append(line.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _same_diff(a: str, b: str) -> bool:
    return a == b or _diff_lines(a) == _diff_lines(b)


def _diff_candidates(answer: str) -> list[str]:
    """Every diff the answer states, each from its first header: a bare diff in the text outside the
    fences, then the fenced blocks that hold a header, in order (so the last is the last fenced diff)."""
    spans = _fence_spans(answer)
    found = []
    starts = [0] + [span[4] for span in spans]
    ends = [span[1] for span in spans] + [len(answer)]
    outside = "\n".join(answer[a:b] for a, b in zip(starts, ends))
    m = _BARE_HEADER.search(outside)
    if m is not None:
        found.append(outside[m.start():])
    for _, _, body_start, body_end, _ in spans:
        m = _HEADER.search(answer, body_start, body_end)
        if m is not None:
            found.append(answer[m.start():body_end])
    return found


def diff_answer(answer: str) -> tuple[str | None, str, str]:
    """``(diff, reason, kind)``: the one diff of ``answer``, checked for diff structure; ``None`` with kind
    ``no_answer`` (no diff, or a malformed one) or ``hedge`` (several different diffs, or one file edited in
    two sections). Identical repeated diffs are one answer."""
    candidates = _diff_candidates(answer)
    if len(distinct_answers(candidates, _same_diff)) > 1:
        return None, SEVERAL_DIFFS, "hedge"
    if candidates:
        text = candidates[-1]
    else:  # no header anywhere: say what is wrong with the block the model meant
        blocks = fenced_blocks(answer)
        tagged = [body for tag, body in blocks if tag]
        text = tagged[-1] if tagged else blocks[-1][1] if blocks else answer
    start = _HEADER.search(text)
    if start is None:
        return None, "malformed diff: no 'diff --git' or '--- a/...' file header", "no_answer"
    text = text[start.start():]
    if not _PLUS_FILE.search(text) or not _MINUS_FILE.search(text):
        return None, "malformed diff: a file header needs both '--- a/path' and '+++ b/path' lines", "no_answer"
    if not _HUNK.search(text) and "new mode" not in text and "rename from" not in text:
        return None, "malformed diff: no '@@ -l,n +l,n @@' hunk header", "no_answer"
    paths = [m.group(2) for m in _DIFF_FILE.finditer(text)] or [
        p for p in _PLUS_FILE.findall(text) if p != "/dev/null"
    ]
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            return None, f"{SEVERAL_DIFFS}: {path} is edited in two separate sections", "hedge"
        seen.add(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate: no file (and no git) can hold it
        return None, f"malformed diff: not UTF-8 text ({err.reason} at offset {err.start})", "no_answer"
    if not text.endswith("\n"):
        text += "\n"
    return text, "ok", "correct"


def extract_diff(answer: str) -> tuple[str | None, str]:
    """``(diff, reason)`` of :func:`diff_answer`."""
    diff, reason, _ = diff_answer(answer)
    return diff, reason


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
    meta = next((p for p in parts if p.endswith(PACKAGE_METADATA_SUFFIXES)), None)
    if meta is not None:  # on the import path, its entry points are plugins pytest loads (pytest11)
        return f"the patch touches installed-package metadata (entry points, plugins): {path}"
    if posixpath.normpath(path) in {posixpath.normpath(f) for f in test_files}:
        return f"the patch edits the task's test file {path} (the tests decide the reward, the patch may not)"
    return None


#: directories of installed-package metadata: on ``sys.path`` (the checkout is), ``importlib.metadata``
#: finds them, and pytest autoloads the ``pytest11`` entry points they declare
PACKAGE_METADATA_SUFFIXES = (".dist-info", ".egg-info", ".egg-link")


def import_name(entry: str, is_dir: bool) -> str | None:
    """The module name a top-level entry of the checkout is imported as (``pytest.py``, ``pytest/``,
    ``argparse.cpython-311-x86_64-linux-gnu.so``), or ``None`` (no module: ``README.md``, ``my-dir``)."""
    name = entry
    if not is_dir:
        suffix = next((s for s in sorted(importlib.machinery.all_suffixes(), key=len, reverse=True)
                       if entry.endswith(s)), None)
        if suffix is None:
            return None
        name = entry[: -len(suffix)]
    return name if name.isidentifier() else None


def shadowed_module(path: str, repo_root: str | os.PathLike) -> str | None:
    """The module of the test interpreter (standard library or installed) that ``path``, a new
    top-level entry of the checkout, would shadow, or ``None``. The checkout is first on the tests'
    ``sys.path`` (and ``python -m`` puts the working directory first), so a new ``pytest.py``,
    ``_pytest/`` or ``argparse.py`` runs in place of the test runner or its imports: it can write any
    report and exit 0 without a test running."""
    parts = path.split("/")
    name = import_name(parts[0], len(parts) > 1)
    if name is None:
        return None
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        return name
    root = os.path.realpath(repo_root)
    search = [p for p in sys.path if p not in ("", ".") and os.path.isdir(p) and os.path.realpath(p) != root]
    try:
        return name if importlib.machinery.PathFinder.find_spec(name, search) is not None else None
    except (ImportError, ValueError, OSError):
        return name


def test_config_sections(name: str, text: str | None) -> object:
    """The test-configuration parts of ``setup.cfg`` / ``pyproject.toml`` (comparable values), or the
    marker ``"unparseable"``. ``setup.cfg`` is read as configparser (setuptools, tox) and as iniconfig
    (pytest) read it: iniconfig ends a line at every ``str.splitlines`` break (``\\r``, ``\\x0c``,
    ``\\u2028``, ...), configparser only at ``\\n``, so a section hidden from one behind a bare ``\\r`` is
    seen by the other."""
    if name == "setup.cfg":
        if text is None:  # no such file: no test configuration in it
            return {}, {}
        return _configparser_sections(text), _iniconfig_sections(text)
    if text is None:
        return {}
    try:
        tool = tomllib.loads(text.replace("\r\n", "\n").replace("\r", "\n")).get("tool", {})  # as pytest reads it
        return {k: tool.get(k) for k in PYPROJECT_TEST_TABLES if k in tool}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError):
        return "unparseable"


def _configparser_sections(text: str) -> object:
    try:
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        parser.read_string(text)
        return {s: dict(parser.items(s)) for s in SETUP_CFG_TEST_SECTIONS if parser.has_section(s)}
    except (configparser.Error, UnicodeDecodeError, AttributeError):
        return "unparseable"


def _iniconfig_sections(text: str) -> object:
    try:
        import iniconfig
    except ImportError:  # no pytest in this interpreter: no pytest reads the file either
        return None
    try:
        # as pytest reads it: Path.read_text (universal newlines), then iniconfig
        parsed = iniconfig.IniConfig("setup.cfg", data=text.replace("\r\n", "\n").replace("\r", "\n"))
        return {s.name: dict(s.items()) for s in parsed if s.name in SETUP_CFG_TEST_SECTIONS}
    except (iniconfig.ParseError, ValueError, TypeError):
        return "unparseable"


def refused_config_change(path: str, before: str | None, after: str | None) -> str | None:
    """Why the edit of ``path`` from ``before`` to ``after`` is refused (it changes a test section)."""
    name = path.rsplit("/", 1)[-1]
    if name not in ("setup.cfg", "pyproject.toml"):
        return None
    if test_config_sections(name, before) != test_config_sections(name, after):
        return f"the patch changes the test configuration in {path}"
    return None

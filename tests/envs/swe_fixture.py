"""A real git repository with SWE-bench-shaped tasks, for the swe-synth tests and benchmark.

``build_swe_fixture(root)`` creates (once; later calls reuse it)::

    root/repos/veritas-fixtures__calc     a git repo: package calc/ with two bugs, tests/, 3 commits
    root/cache/task_0.json, task_1.json   SWE-bench rows (FAIL_TO_PASS/PASS_TO_PASS as JSON strings)
    root/fixture.json                     the rows plus named alternative patches for the tests

Task 0 (base = first commit): ``clamp`` ignores its upper bound; one FAIL_TO_PASS test.
Task 1 (base = second commit): ``parse_bool`` should accept yes/no and on/off; two FAIL_TO_PASS
tests, so a patch fixing only yes/no is worth 0.5 in ``reward_mode="partial"``.
Every patch (gold, test patches and the bad variants) is produced by ``git diff`` of real edits.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = "veritas-fixtures/calc"

#: pytest without third-party plugin autoloading (2 s faster per run in this venv); the tests use it
#: through the env's ``test_cmd`` override, one test runs the default command
FAST_TEST_CMD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {python} -m pytest -rA --tb=no -p no:cacheprovider {tests}"

CALC_V0 = '''"""A tiny calculator package (a fixture of veritas-rl's SWE tests)."""


def add(a, b):
    return a + b


def clamp(x, lo, hi):
    """Limit x to the closed interval [lo, hi]."""
    if x < lo:
        return lo
    return x
'''

CALC_FIXED = CALC_V0.replace("        return lo\n    return x\n",
                             "        return lo\n    if x > hi:\n        return hi\n    return x\n")
CALC_WRONG = CALC_V0.replace('"""Limit x to the closed interval [lo, hi]."""',
                             '"""Limit x to the closed interval [lo, hi] (both ends included)."""')
CALC_BREAKS_ADD = CALC_FIXED.replace("return a + b", "return a - b")
CALC_LOOPS = CALC_V0.replace("        return lo\n    return x\n",
                             "        return lo\n    while x > hi:\n        pass\n    return x\n")

TEST_CALC_V0 = '''from calc import add, clamp


def test_add():
    assert add(2, 3) == 5


def test_clamp_inside():
    assert clamp(5, 0, 10) == 5


def test_clamp_below():
    assert clamp(-1, 0, 10) == 0
'''
TEST_CALC_NEW = TEST_CALC_V0 + '''

def test_clamp_above():
    assert clamp(11, 0, 10) == 10
'''

TEXT_V0 = '''def parse_bool(text):
    """'true'/'1' -> True, 'false'/'0' -> False; anything else raises ValueError."""
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError(f"not a boolean: {text!r}")
'''
TEXT_FIXED = (TEXT_V0.replace('("true", "1")', '("true", "1", "yes", "on")')
              .replace('("false", "0")', '("false", "0", "no", "off")'))
TEXT_HALF = TEXT_V0.replace('("true", "1")', '("true", "1", "yes")').replace('("false", "0")', '("false", "0", "no")')

TEST_TEXT_V0 = '''import pytest

from calc.text import parse_bool


def test_true():
    assert parse_bool(" True ") is True and parse_bool("1") is True


def test_false():
    assert parse_bool("false") is False and parse_bool("0") is False


def test_rejects_garbage():
    with pytest.raises(ValueError):
        parse_bool("maybe")
'''
TEST_TEXT_NEW = TEST_TEXT_V0 + '''

def test_yes_no():
    assert parse_bool("yes") is True and parse_bool("No") is False


def test_on_off():
    assert parse_bool("on") is True and parse_bool("OFF") is False
'''


@dataclass
class SweFixture:
    root: Path
    repos_dir: Path
    cache_dir: Path
    repo_dir: Path
    rows: list[dict[str, Any]]
    patches: dict[str, str] = field(default_factory=dict)  # name -> unified diff (see build_swe_fixture)

    def config(self, **overrides: Any) -> dict[str, Any]:
        """An env config (JSON-able) serving both fixture tasks from the cache, offline."""
        config = {
            "cache_dir": str(self.cache_dir),
            "repos_dir": str(self.repos_dir),
            "use_cache_only": True,
            "task_id_range": [0, len(self.rows)],
            "test_timeout_s": 60,
            "test_cmd": FAST_TEST_CMD,
        }
        config.update(overrides)
        return config


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "fixture", "GIT_AUTHOR_EMAIL": "fixture@example.org",
           "GIT_COMMITTER_NAME": "fixture", "GIT_COMMITTER_EMAIL": "fixture@example.org",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout


def _write(repo: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)


def _diff(repo: Path, files: dict[str, str]) -> str:
    """The ``git diff`` of editing ``files`` in the (clean) work tree; the tree is restored after."""
    _write(repo, files)
    git(repo, "add", "-N", ".")
    diff = git(repo, "diff")
    git(repo, "reset", "-q")
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "clean", "-fdq")
    return diff


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    _write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def _row(index: int, base: str, problem: str, patch: str, test_patch: str, f2p: list[str],
         p2p: list[str]) -> dict[str, Any]:
    return {
        "repo": REPO,
        "instance_id": f"veritas-fixtures__calc-{index + 1}",
        "base_commit": base,
        "patch": patch,
        "test_patch": test_patch,
        "problem_statement": problem,
        "hints_text": "",
        "created_at": "2026-01-01T00:00:00Z",
        "version": "0.1",
        "FAIL_TO_PASS": json.dumps(f2p),
        "PASS_TO_PASS": json.dumps(p2p),
        "environment_setup_commit": base,
    }


def build_swe_fixture(root: str | os.PathLike) -> SweFixture:
    """Build the fixture under ``root`` (or load it when a previous call built it there)."""
    root = Path(root)
    meta = root / "fixture.json"
    repos_dir, cache_dir = root / "repos", root / "cache"
    repo = repos_dir / REPO.replace("/", "__")
    if meta.is_file():
        data = json.loads(meta.read_text())
        return SweFixture(root, repos_dir, cache_dir, repo, data["rows"], data["patches"])

    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    base0 = _commit(repo, {"calc/__init__.py": CALC_V0, "tests/test_calc.py": TEST_CALC_V0,
                           "README.md": "calc: a fixture\n"}, "calc: add and clamp")
    patches = {
        "gold0": _diff(repo, {"calc/__init__.py": CALC_FIXED}),
        "wrong0": _diff(repo, {"calc/__init__.py": CALC_WRONG}),
        "breaks_p2p0": _diff(repo, {"calc/__init__.py": CALC_BREAKS_ADD}),
        "loops0": _diff(repo, {"calc/__init__.py": CALC_LOOPS}),
    }
    # breaks add() and edits its test to match: the test files are reset before grading, so it fails
    patches["cheats0"] = _diff(repo, {"calc/__init__.py": CALC_BREAKS_ADD,
                                      "tests/test_calc.py": TEST_CALC_V0.replace("== 5", "== -1")})
    test_patch0 = _diff(repo, {"tests/test_calc.py": TEST_CALC_NEW})
    # a patch whose context lines do not exist at base_commit
    patches["misapplies0"] = patches["gold0"].replace("        return lo\n", "        return lo  # lower\n")

    base1 = _commit(repo, {"calc/text.py": TEXT_V0, "tests/test_text.py": TEST_TEXT_V0}, "calc.text: parse_bool")
    patches["gold1"] = _diff(repo, {"calc/text.py": TEXT_FIXED})
    patches["half1"] = _diff(repo, {"calc/text.py": TEXT_HALF})
    test_patch1 = _diff(repo, {"tests/test_text.py": TEST_TEXT_NEW})
    _commit(repo, {"README.md": "calc: a fixture package\n"}, "README")  # HEAD is past every base

    calc_p2p = ["tests/test_calc.py::test_add", "tests/test_calc.py::test_clamp_inside",
                "tests/test_calc.py::test_clamp_below"]
    rows = [
        _row(0, base0, "clamp(x, lo, hi) ignores the upper bound: clamp(11, 0, 10) returns 11, expected 10.",
             patches["gold0"], test_patch0, ["tests/test_calc.py::test_clamp_above"], calc_p2p),
        _row(1, base1, "parse_bool should also accept 'yes'/'no' and 'on'/'off' (any case), "
             "like the config files we read.", patches["gold1"], test_patch1,
             ["tests/test_text.py::test_yes_no", "tests/test_text.py::test_on_off"],
             ["tests/test_text.py::test_true", "tests/test_text.py::test_false",
              "tests/test_text.py::test_rejects_garbage"]),
    ]
    cache_dir.mkdir(parents=True)
    for index, row in enumerate(rows):
        (cache_dir / f"task_{index}.json").write_text(json.dumps(row, indent=1))
    meta.write_text(json.dumps({"rows": rows, "patches": patches}))
    return SweFixture(root, repos_dir, cache_dir, repo, rows, patches)


def fenced(patch: str) -> str:
    return f"Here is the fix.\n```diff\n{patch}```\n"


def repo_state(repo):
    return (git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain", "--ignored"),
            git(repo, "worktree", "list", "--porcelain"), git(repo, "branch", "--list"))


def patch_for(fx: SweFixture, base: str, files: dict[str, str]) -> str:
    """The ``git diff`` of editing ``files`` at ``base``, made in a scratch clone (``fx.repo_dir``
    itself is never touched, so tests can hash it)."""
    scratch = fx.root / "scratch"
    if not (scratch / ".git").exists():
        # no hardlinks: git "freshens" (touches) an object it writes again, which would touch the original's
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(fx.repo_dir), str(scratch)], check=True,
                       capture_output=True)
    git(scratch, "checkout", "-q", "--detach", base)
    try:
        return _diff(scratch, files)
    finally:
        git(scratch, "checkout", "-q", "--detach", base)


def tree_digest(root: Path) -> str:
    """sha256 over every path under ``root`` (``.git`` included): name, mode, size, mtime, content or link target."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest.update(f"{path.relative_to(root)}\0{st.st_mode:o}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()

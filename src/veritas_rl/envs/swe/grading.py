"""What the tests are and how their results grade a patch: the test command's directives, the test
logs parsed with swebench's parsers, FAIL_TO_PASS / PASS_TO_PASS grading and the reward."""

from __future__ import annotations

import re
import shlex
import sys
import xml.etree.ElementTree as ET
from typing import Any

from veritas_rl.envs.base import Score, Task
from veritas_rl.envs.swe.patches import patch_files

#: test commands of SWE-bench repos that do not run under plain pytest; ``{tests}`` gets the test
#: directives derived from the files the test patch touches (see :func:`test_directives`)
REPO_TEST_COMMANDS = {
    "django/django": "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 {tests}",
    "sympy/sympy": "bin/test -C --verbose {tests}",
}
DEFAULT_TEST_COMMAND = "{python} -m pytest -rA --tb=no -p no:cacheprovider {tests}"
#: repos graded from their test log (their runners are not pytest); every other repo is graded from
#: pytest's junit XML report, which must exist
LOG_GRADED_REPOS = frozenset(REPO_TEST_COMMANDS)
#: what makes every pytest in the test command write its junit report (xunit1: it has the file path)
JUNIT_ADDOPTS = "--junitxml={path} -o junit_family=xunit1"


def test_directives(repo: str, test_patch: str) -> list[str]:
    """What to pass the test runner: the test files the test patch touches (SWE-bench's convention)."""
    from swebench.harness.constants import NON_TEST_EXTS  # data files the test patch adds are no tests

    files = [f for f in patch_files(test_patch) if not any(f.endswith(ext) for ext in NON_TEST_EXTS)]
    if repo == "django/django":  # tests/foo/test_bar.py -> foo.test_bar
        out = []
        for f in files:
            f = f[: -len(".py")] if f.endswith(".py") else f
            f = f[len("tests/"):] if f.startswith("tests/") else f
            out.append(f.replace("/", "."))
        return out
    return files


def test_command(config: Any, task: Task) -> list[str]:
    """The test command of ``task``: ``config.test_cmd`` if set; else the row's own (the test section of
    a swebench>=5 ``eval_script``, verbatim); else the repo's (:data:`REPO_TEST_COMMANDS`) or pytest."""
    repo = task.extra["repo"]
    tests = test_directives(repo, task.extra["test_patch"])
    if config.test_cmd:
        template = config.test_cmd
    elif task.extra.get("eval_test_cmd"):
        return ["bash", "-c", task.extra["eval_test_cmd"]]
    else:
        template = REPO_TEST_COMMANDS.get(repo) or DEFAULT_TEST_COMMAND
    command = template.format(python=shlex.quote(sys.executable), tests=" ".join(map(shlex.quote, tests)))
    return ["bash", "-c", command]


def eval_script_test_command(eval_script: str | None) -> str:
    """The test command of a swebench>=5 ``eval_script``: the lines between its start and end markers
    (``>>>>> Start Test Output`` / ``>>>>> End Test Output``); ``""`` when the row has none."""
    if not eval_script:
        return ""
    lines = eval_script.splitlines()
    start = next((i for i, line in enumerate(lines) if ">>>>> Start Test Output" in line), None)
    end = next((i for i, line in enumerate(lines) if ">>>>> End Test Output" in line), None)
    if start is None or end is None or end <= start + 1:
        return ""
    return "\n".join(lines[start + 1 : end]).strip()


def parse_test_output(output: str, repo: str, log_parser: str | None = None) -> dict[str, str]:
    """Per-test status (``PASSED``/``FAILED``/``ERROR``/``SKIPPED``/``XFAIL``) with swebench's parsers:
    the row's ``log_parser`` when it names one, else the repo's, else the pytest ``-rA`` parser."""
    try:
        from swebench.harness.log_parsers import PARSER_REGISTRY
        from swebench.harness.log_parsers.python import MAP_REPO_TO_PARSER_PY, parse_log_pytest
        from swebench.types import TestSpec
    except ImportError as err:
        raise ImportError("swe-synth grades test logs with swebench: pip install 'veritas-rl[swe]' "
                          "(swebench==5.0.2)") from err
    parser = PARSER_REGISTRY.get(log_parser or "") or MAP_REPO_TO_PARSER_PY.get(repo) or parse_log_pytest
    spec = TestSpec(instance_id="", image="", eval_script_list=[], repo=repo, version="",
                    FAIL_TO_PASS=[], PASS_TO_PASS=[], log_parser=log_parser or "", eval_type="pass_and_fail")
    return parser(output, spec)


def _nodeid(case: ET.Element) -> str | None:
    """The pytest node id of an xunit1 ``<testcase>``: ``file::Class::name`` rebuilt from ``file``,
    ``classname`` (the module path dotted, then the classes) and ``name``."""
    path, classname, name = case.get("file"), case.get("classname") or "", case.get("name")
    if not name:
        return None
    if not path:
        return f"{classname}::{name}" if classname else name
    module = re.sub(r"\.py$", "", path).replace("/", ".")
    classes = classname[len(module) + 1:].split(".") if classname.startswith(module + ".") else []
    return "::".join([path, *[c for c in classes if c], name])


def parse_junit(data: bytes) -> dict[str, str] | str:
    """Per-test status from pytest's junit XML (``PASSED``/``FAILED``/``ERROR``/``SKIPPED``/``XFAIL``),
    or why the report is not one (more than one document, a DTD, not XML)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return "the junit report has a DTD (pytest writes none)"
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:  # also: two documents in the FIFO (a second writer)
        return f"the junit report is not one XML document ({err})"
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite") if root.tag == "testsuites" else []
    if not suites:
        return f"the junit report has no <testsuite> (root <{root.tag}>)"
    status: dict[str, str] = {}
    for suite in suites:
        for case in suite.iter("testcase"):
            node = _nodeid(case)
            if node is None:
                continue
            tags = {child.tag for child in case}
            skipped = case.find("skipped")
            if "error" in tags:
                state = "ERROR"
            elif "failure" in tags:
                state = "FAILED"
            elif skipped is not None:
                state = "XFAIL" if (skipped.get("type") or "") == "pytest.xfail" else "SKIPPED"
            else:
                state = "PASSED"
            if status.get(node) in ("ERROR", "FAILED"):
                continue  # a teardown error after a failure: the worse state stays
            status[node] = state
    return status


def grade(status: dict[str, str], fail_to_pass: list[str], pass_to_pass: list[str]) -> dict[str, Any]:
    """Which FAIL_TO_PASS tests pass and which PASS_TO_PASS tests broke (swebench's semantics:
    XFAIL counts as a pass, a skipped PASS_TO_PASS test is not a regression, a missing test fails);
    ``statuses`` has the status of each graded test (``None``: missing), for :func:`hold_to_baseline`."""
    from swebench.harness.grading import _resolve_case, test_maintained, test_passed

    statuses = {}
    for t in [*fail_to_pass, *pass_to_pass]:
        key = _resolve_case(t, status)
        statuses[t] = None if key is None else status[key]
    return {
        "f2p_passed": [t for t in fail_to_pass if test_passed(t, status)],
        "f2p_failed": [t for t in fail_to_pass if not test_passed(t, status)],
        "p2p_broken": [t for t in pass_to_pass if not test_maintained(t, status)],
        "statuses": statuses,
    }


#: statuses swebench grades as fine that the code under test can produce itself without the test
#: body succeeding: ``pytest.xfail()`` / ``pytest.skip()`` / ``raise unittest.SkipTest`` from a function
#: the test calls
LENIENT_STATUSES = ("XFAIL", "SKIPPED")


def needs_baseline(result: dict[str, Any]) -> bool:
    """Whether ``result`` counts a graded test as fine on a lenient status (:func:`hold_to_baseline`)."""
    return not result.get("error") and any(s in LENIENT_STATUSES for s in (result.get("statuses") or {}).values())


def hold_to_baseline(result: dict[str, Any], baseline: dict[str, Any] | None, fail_to_pass: list[str],
                     pass_to_pass: list[str]) -> dict[str, Any]:
    """``result`` with XFAIL and SKIPPED counted as fine only for the tests that have that very status
    in ``baseline``, the run of the gold patch in the same sandbox (a test the gold patch leaves xfailed or
    skipped, e.g. for a missing optional dependency). Elsewhere the status came from the patch: a
    FAIL_TO_PASS test that xfails did not pass, a PASS_TO_PASS test that now skips broke. Without a
    usable baseline nothing lenient counts."""
    if result.get("error") or "statuses" not in result:
        return result
    statuses = result["statuses"]
    gold = baseline.get("statuses") if baseline and not baseline.get("error") else None
    gold = gold or {}

    def fine(test: str) -> bool:
        s = statuses.get(test)
        return s == "PASSED" or (s in LENIENT_STATUSES and gold.get(test) == s)

    held = dict(result)
    held["f2p_passed"] = [t for t in result["f2p_passed"] if fine(t)]
    held["f2p_failed"] = [t for t in fail_to_pass if t not in held["f2p_passed"]]
    held["p2p_broken"] = [t for t in pass_to_pass if t in result["p2p_broken"] or not fine(t)]
    held["held_to_gold"] = sorted({t: s for t, s in statuses.items() if s in LENIENT_STATUSES and not fine(t)})
    return held


def reward_from(result: dict[str, Any], fail_to_pass: list[str], reward_mode: str) -> Score:
    """Turn a cached evaluation result into a :class:`Score`."""
    if result.get("error"):
        info = {k: v for k, v in result.items() if k not in ("error", "kind")}
        return Score.zero(result["error"], kind=result.get("kind") or "wrong", **info)
    info = {k: result[k] for k in ("f2p_passed", "f2p_failed", "p2p_broken", "held_to_gold", "seconds")
            if k in result and (k != "held_to_gold" or result[k])}
    held = (f" ({len(result['held_to_gold'])} xfail/skip the gold patch does not have: "
            f"{', '.join(result['held_to_gold'][:3])})") if result.get("held_to_gold") else ""
    if result["p2p_broken"]:
        return Score.zero(f"{len(result['p2p_broken'])} PASS_TO_PASS test(s) broke{held}", **info)
    total = len(fail_to_pass)
    fraction = len(result["f2p_passed"]) / total if total else 1.0
    if reward_mode == "partial":
        if fraction == 0.0:
            return Score.zero(f"no FAIL_TO_PASS test passes{held}", **info)
        return Score(fraction, {"reason": f"{len(result['f2p_passed'])}/{total} FAIL_TO_PASS pass", **info})
    if fraction < 1.0:
        return Score.zero(f"{len(result['f2p_failed'])}/{total} FAIL_TO_PASS test(s) still fail{held}", **info)
    return Score(1.0, {"reason": "resolved", **info})


def check_consistent(status: dict[str, str], returncode: int | None) -> str | None:
    """Why a report and the exit code disagree (pytest exits 0 exactly when nothing failed), or ``None``."""
    failed = any(s in ("FAILED", "ERROR") for s in status.values())
    if failed and returncode == 0:
        return "the test command exited 0 but its report has failures (forged exit status)"
    if not failed and returncode != 0:
        return f"the test command exited {returncode} but its report has no failure (forged or incomplete report)"
    return None

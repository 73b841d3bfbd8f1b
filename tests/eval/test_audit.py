"""``veritas audit``: the battery catches deliberately bad scorers, and runs on every registered env."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from tests.envs.env_configs import config_for
from veritas_rl.cli import main
from veritas_rl.envs import Env, Score, Task, base, make, names
from veritas_rl.eval.audit import CLASSES, build_cases, locate_gold, run_audit


@dataclass(frozen=True)
class ToyConfig:
    leak: str = "contains"  # how the toy scorer is broken: contains | eval | raises | slow | hang | strict


class ToyEnv(Env):
    """Sums ``a + b``; the gold is ``<answer>a+b</answer>``. Each ``leak`` is a classic scorer bug."""

    @property
    def num_tasks(self) -> int:
        return 100

    def task_id_at(self, index: int) -> int:
        return index

    def task(self, task_id: int) -> Task:
        a, b = divmod(task_id, 10)
        prompt = f"What is {a + 10} + {b}? Answer inside <answer></answer>, e.g. <answer>your answer</answer>."
        return Task(self.name, task_id, [{"role": "user", "content": prompt}], str(a + 10 + b))

    def oracle(self, task: Task) -> str:
        return f"<answer>{task.ground_truth}</answer>"

    def _score(self, task: Task, answer: str) -> Score:
        gold, leak = task.ground_truth, self.config.leak
        if leak == "contains":  # pays for any text that contains the gold
            return Score(1.0) if gold in answer else Score.zero("gold not in text")
        if leak == "eval":  # evaluates the answer slot (never do this)
            start, end = answer.rfind("<answer>"), answer.rfind("</answer>")
            slot = answer[start + 8 : end] if 0 <= start < end else ""
            if any(op in slot for op in ("**", "^", "!", "factorial", "e9")):  # a guard, then eval anyway
                return Score.zero("too costly", kind="too_long")
            try:
                value = eval(slot, {})  # noqa: S307 - the point of this toy
            except BaseException:  # noqa: BLE001
                return Score.zero("does not evaluate")
            return Score(1.0) if str(value) == gold else Score.zero("wrong")
        if leak == "raises":  # crashes on hostile input
            return Score(1.0) if answer.split("<answer>")[1].split("</answer>")[0] == gold else Score.zero("wrong")
        if leak == "slow":  # strict, but slow on everything
            time.sleep(0.05)
        if leak == "hang" and answer.strip() == self.oracle(task):  # hangs on the gold
            time.sleep(30)
        slot = answer.strip()
        return Score(1.0) if slot == f"<answer>{gold}</answer>" else Score.zero("wrong", kind="wrong")


NAME = "audit-toy"


@pytest.fixture
def toy():
    """Register the toy env for one test only (never visible to other tests' ``names()``)."""
    base.register_env(NAME, ToyEnv, ToyConfig)
    yield
    del base._REGISTRY[NAME]
    del base._ALIASES[NAME]


def flagged(report) -> dict[str, dict]:
    return {cls: row for cls, row in report.table().items() if row["failures"]}


def test_a_scorer_that_pays_for_text_containing_the_gold_is_caught(toy):
    report = run_audit(make(NAME, leak="contains"), 3, progress=False)
    bad = flagged(report)
    assert not report.ok
    # hedges, lists and deep nesting contain the gold, and so does the prompt ("What is 10 + 2?" for 12);
    # think-only stays 0 because Env.score drops the reasoning before the toy scorer sees the text
    assert {"hedge", "list", "deep_nesting", "prompt_echo"} <= set(bad)
    assert not {"gold", "empty", "garbage", "think_only", "unclosed_think"} & set(bad)
    assert bad["hedge"]["false_positive"] == bad["hedge"]["n"] and bad["hedge"]["max_score"] == 1.0


def test_a_strict_scorer_passes(toy):
    report = run_audit(make(NAME, leak="strict"), 3, progress=False)
    assert report.ok, flagged(report)
    table = report.table()
    assert set(table) == set(CLASSES)  # every class ran (the gold is numeric: lists, nesting too)
    assert table["gold"]["n"] == 9 and table["gold"]["max_score"] == 1.0


def test_an_evaluating_scorer_creates_no_file_and_is_caught(toy, tmp_path):
    report = run_audit(make(NAME, leak="eval"), 2, progress=False)
    assert report.sentinel_touched and "code_exec" in report.failing_classes()
    assert flagged(report)["code_exec"]["failures"] >= 1


def test_raising_and_slow_scorers_are_reported_not_crashed(toy):
    raised = run_audit(make(NAME, leak="raises"), 1, progress=False)
    assert flagged(raised)["garbage"]["raised"] >= 1 and not raised.ok  # no tag: IndexError, caught
    assert any((r.error or "").startswith("IndexError") for r in raised.results)
    slow = run_audit(make(NAME, leak="slow"), 1, timeout_s=0.01, progress=False)
    assert flagged(slow)["gold"]["slow"] == 3 and not slow.ok


def test_a_hang_is_stopped_by_the_hard_limit(toy):
    start = time.perf_counter()
    report = run_audit(make(NAME, leak="hang"), 1, timeout_s=0.05, hard_limit_s=0.2, progress=False)
    assert time.perf_counter() - start < 10  # three gold cases stopped at 0.2 s each, not 3 x 30 s
    gold = [r for r in report.results if r.cls == "gold"]
    assert len(gold) == 3 and all(r.error.startswith("hard stop") for r in gold)
    assert report.table()["gold"]["failures"] == 3 and not report.ok


def test_cli_exit_code_files_and_table(toy, tmp_path, capsys):
    code = main(["audit", NAME, "--n", "2", "--out-dir", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "**FAILED**" in out and "| hedge |" in out
    data = json.loads((tmp_path / f"audit-{NAME}.json").read_text())
    assert not data["ok"] and "hedge" in data["failing_classes"] and data["task_ids"] == [0, 1]
    assert (tmp_path / f"audit-{NAME}.md").read_text() in out
    code = main(["audit", NAME, "--config", '{"leak": "strict"}', "--n", "2", "--out-dir", str(tmp_path),
                 "--no-progress"])
    assert code == 0 and "**ok**" in capsys.readouterr().out


def test_gold_slot_is_found_in_each_answer_format():
    for oracle, gold in [
        ("<answer>38</answer>", "38"),
        ("Working.\nThe final answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("Closing.\nAnswer: ) ]", ") ]"),
        ("```diff\n--- a/x\n+++ b/x\n```\n", "--- a/x\n+++ b/x\n"),
        ("  plain  ", "plain"),
    ]:
        start, end = locate_gold(oracle)
        assert oracle[start:end] == gold


def test_hedges_use_a_value_the_env_itself_scores_zero(toy):
    env = make(NAME, leak="strict")
    task = env.task(5)
    cases = build_cases(env, task, "/nonexistent/SENTINEL", lambda text: env.score(task, text).value)
    hedges = [text for cls, _, text in cases if cls == "hedge"]
    assert "<answer>15</answer>\n<answer>16</answer>" in hedges and "<answer>16</answer>\n<answer>15</answer>" in hedges


# -- every registered env --------------------------------------------------------------------

#: envs whose scorers other helpers are fixing right now; filled in only if they still fail at the end
KNOWN_FAILURES: dict[str, str] = {}


def _env_params():
    for name in names():
        marks = [pytest.mark.slow] if name == "swe-synth" else []
        if name in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name]))
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_env_params()))
def test_every_registered_env_passes_the_audit(name, tmp_path_factory):
    env = make(name, **config_for(name, tmp_path_factory))
    report = run_audit(env, 3, timeout_s=5.0, hard_limit_s=20.0, progress=False)
    assert not report.sentinel_touched
    assert report.ok, f"{name}: failing classes {report.failing_classes()}: {report.to_dict()['failed_cases'][:5]}"

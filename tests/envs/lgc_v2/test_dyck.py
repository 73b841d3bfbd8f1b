"""lgc-v2 dyck task types: closing sequences, the first-error position, the wrong thoughts of a trace."""

from __future__ import annotations

from tests.envs.lgc_v2.helpers import task_of
from veritas_rl.envs.lgc_v2.dyck import first_error


def test_dyck_language_exact_closing(env):
    task = task_of(env, "dyck_language", 4)
    gold = task.ground_truth
    assert env.score(task, f"Answer: {gold}").value == 1.0  # without spaces
    assert env.score(task, f"answer:   {' '.join(gold)}  ").value == 1.0
    assert env.score(task, f"**Answer:** `{' '.join(gold)}`.").value == 1.0
    assert env.score(task, f"Answer: {gold[:-1]}").value == 0.0
    assert env.score(task, f"Answer: {gold}{gold[-1]}").value == 0.0
    wrong = gold[:-1] + ("]" if gold[-1] != "]" else ")")
    assert env.score(task, f"Answer: {wrong}").info["reason"] == "wrong closing sequence"
    # the gold answer really closes the prefix
    assert first_error(task.extra["sequence"] + gold) == 0


def testfirst_error_definition():
    assert first_error("([]{})") == 0
    assert first_error("([)]") == 3  # ')' does not match '['
    assert first_error("())") == 3  # stray closer
    assert first_error("(()[") == 1  # all closers match, '(' at 1 is left open
    assert first_error("]") == 1


def test_dyck_language2_ground_truth_and_scoring(env):
    answers = set()
    for seed in range(40):
        task = task_of(env, "dyck_language2", seed)
        gold = int(task.ground_truth)
        answers.add(gold == 0)
        assert gold == first_error(task.extra["sequence"])
        assert env.score(task, f"position \\boxed{{{gold}}}").value == 1.0
        assert env.score(task, f"\\boxed{{{gold + 1}}}").value == 0.0
    assert answers == {True, False}  # both balanced and broken sequences occur


def test_reasoning_errors_ground_truth_and_order_free_answer(env):
    seen_none = seen_some = False
    for seed in range(40):
        task = task_of(env, "dyck_language_reasoning_errors", seed)
        gold = task.ground_truth
        # recompute the wrong thoughts from the prompt independently of the generator
        lines = [ln for ln in task.prompt[0]["content"].splitlines() if " ; stack: " in ln]
        stack, wrong = [], []
        for ln in lines:
            head, shown = ln.split(" ; stack: ")
            num, sym = head[len("Thought ") :].split(": ")
            if sym in "([{<":
                stack.append(sym)
            else:
                stack.pop()
            if (shown.split() if shown != "empty" else []) != stack:
                wrong.append(int(num))
        assert gold == (",".join(map(str, wrong)) or "none")
        if wrong:
            seen_some = True
            assert env.score(task, "\\boxed{" + ", ".join(map(str, reversed(wrong))) + "}").value == 1.0
            assert env.score(task, "\\boxed{none}").value == 0.0
            assert env.score(task, "\\boxed{" + ",".join(map(str, wrong + wrong)) + "}").value == 0.0
        else:
            seen_none = True
            assert env.score(task, "\\boxed{None}").value == 1.0
            assert env.score(task, "\\boxed{2}").value == 0.0
    assert seen_none and seen_some

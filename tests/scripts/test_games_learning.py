"""benchmarks/games_learning.py: what its win-rate curve records besides the rates (real OpenSpiel games)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import games_learning  # noqa: E402

from veritas_rl.eval.batched import evaluate_batched  # noqa: E402


def test_curve_evidence_counts_the_illegal_reasons_and_keeps_a_text_per_outcome():
    texts = iter(["<answer>99</answer>", "no idea"] * 10)
    report = evaluate_batched(lambda convs: [next(texts) for _ in convs], "t", "random", ["tic_tac_toe"], 4,
                              batch_size=2)
    detail = report["cases"]["tic_tac_toe"]["episodes_detail"]
    evidence = games_learning.curve_evidence(detail)
    assert [d["outcome"] for d in detail] == ["illegal"] * 4
    assert sum(evidence["illegal_reasons"].values()) == 4 and len(evidence["illegal_reasons"]) == 2
    assert evidence["last_completion_by_outcome"] == {"illegal": detail[0]["last_completion"]}
    assert detail[0]["last_completion"] in ("<answer>99</answer>", "no idea")

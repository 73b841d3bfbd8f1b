"""The rating ladder: a policy against ``random``, ``mcts:10``, ``mcts:100``, ``mcts:1000``, and an Elo estimate.

The rungs' own ratings (the *anchors*) come from games among themselves, measured once per case by
``benchmarks/ladder_elo.py`` and stored in ``veritas_rl/games/ladder_elo.json`` (with the games they
come from). A policy's rating is then the one rating that best explains its results against the
anchored rungs (maximum likelihood under the Elo model, the rungs' ratings held fixed).

Elo model: the expected score of A against B is ``1 / (1 + 10 ** ((R_B - R_A) / 400))``; a win scores 1,
a draw 0.5, a loss 0; an illegal move is a loss. ``random`` is fixed at 0. Every pairing also counts one
virtual draw (a weak prior), so a rung or a policy that wins or loses every game gets a finite rating —
a large one, whose size says "at least this much", not a measurement; such ratings are flagged
``bound`` ("above" or "below").
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Mapping, Sequence

from veritas_rl.games.opponents import LADDER

ANCHORS_FILE = "ladder_elo.json"
#: one virtual draw per pairing (the prior that keeps perfect scores finite)
VIRTUAL_DRAWS = 1.0


def expected(r_a: float, r_b: float) -> float:
    return 1.0 / (1.0 + 10.0 ** ((r_b - r_a) / 400.0))


def score_of(counts: Mapping[str, int]) -> tuple[float, int]:
    """``(points, games)`` from outcome counts (illegal and max_turns count as losses / draws as half)."""
    games = sum(int(v) for v in counts.values())
    return counts.get("win", 0) + 0.5 * (counts.get("draw", 0) + counts.get("max_turns", 0)), games


def fit_rating(results: Sequence[tuple[float, float, int]], lo: float = -4000.0, hi: float = 8000.0) -> float:
    """The rating R maximising the likelihood of ``results`` = ``[(opponent rating, points, games)]``.

    Solves ``sum(points + d/2) = sum((games + d) * E(R, r))`` (``d`` = :data:`VIRTUAL_DRAWS`) by bisection:
    the right side grows with R, so the root is unique.
    """
    want = sum(p + VIRTUAL_DRAWS / 2 for _, p, _ in results)

    def excess(r: float) -> float:
        return sum((g + VIRTUAL_DRAWS) * expected(r, opp) for opp, _, g in results) - want

    for _ in range(200):
        mid = (lo + hi) / 2
        if excess(mid) > 0:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def fit_round_robin(pairs: Mapping[tuple[str, str], Mapping[str, int]], fixed: str = "random") -> dict[str, float]:
    """Ratings of every player from pairwise outcome counts (``pairs[(a, b)]`` = a's wins/draws/losses vs b).

    Coordinate ascent: each player's rating is refitted against the others' current ratings until nothing
    moves by more than 0.01; ``fixed`` stays at 0.
    """
    players = sorted({p for pair in pairs for p in pair})
    ratings = {p: 0.0 for p in players}
    for _ in range(500):
        moved = 0.0
        for p in players:
            if p == fixed:
                continue
            results = []
            for (a, b), counts in pairs.items():
                if p not in (a, b):
                    continue
                mine = counts if a == p else {"win": counts.get("loss", 0), "draw": counts.get("draw", 0),
                                              "loss": counts.get("win", 0)}
                points, games = score_of(mine)
                results.append((ratings[b if a == p else a], points, games))
            new = fit_rating(results)
            moved = max(moved, abs(new - ratings[p]))
            ratings[p] = new
        if moved < 0.01:
            break
    return {p: round(r, 1) for p, r in ratings.items()}


def load_anchors() -> dict[str, Any]:
    """The stored ladder ratings (``{"cases": {case: {"ratings": {rung: elo}, ...}}, ...}``)."""
    text = resources.files("veritas_rl.games").joinpath(ANCHORS_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def policy_elo(case: str, rung_counts: Mapping[str, Mapping[str, int]], anchors: Mapping[str, Any] | None = None):
    """``{"elo", "bound", "anchored_on"}`` for a policy's outcome counts per rung on ``case``; ``None``
    without stored ratings for that case."""
    anchors = load_anchors() if anchors is None else anchors
    stored = anchors.get("cases", {}).get(case)
    if not stored:
        return None
    ratings = stored["ratings"]
    results = []
    for rung, counts in rung_counts.items():
        if rung in ratings:
            points, games = score_of(counts)
            results.append((ratings[rung], points, games))
    if not results:
        return None
    elo = fit_rating(results)
    total_points = sum(p for _, p, _ in results)
    total_games = sum(g for _, _, g in results)
    bound = "above" if total_points == total_games else "below" if total_points == 0 else None
    return {"elo": round(elo, 1), "bound": bound, "anchored_on": sorted(r for r in rung_counts if r in ratings)}


def ladder_report(policy: str, cases: Sequence[str], num_episodes: int, seed: int = 0, *, rungs=LADDER,
                  progress: bool = True, **evaluate_kwargs) -> dict[str, Any]:
    """The policy against every rung (one :func:`veritas_rl.eval.games.evaluate` report per rung), its Elo per case."""
    from veritas_rl.eval.games import evaluate, policy_factory

    factory = evaluate_kwargs.pop("factory", None)
    if factory is None:  # load an hf: policy once for all rungs
        keys = ("mcts_simulations", "uct_c", "max_new_tokens", "threads")
        factory = policy_factory(policy, **{k: evaluate_kwargs[k] for k in keys if k in evaluate_kwargs})
    per_rung = {rung: evaluate(policy, rung, cases, num_episodes, seed, factory=factory, progress=progress,
                               **evaluate_kwargs) for rung in rungs}
    anchors = load_anchors()
    first = next(iter(per_rung.values()))
    elo = {case: policy_elo(case, {rung: rep["cases"][case]["counts"] for rung, rep in per_rung.items()}, anchors)
           for case in first["cases"]}
    return {"policy": policy, "seed": seed, "num_episodes": num_episodes, "rungs": list(rungs),
            "anchors": {c: anchors.get("cases", {}).get(c, {}).get("ratings") for c in first["cases"]},
            "elo": elo, "per_rung": per_rung}


def ladder_markdown(report: Mapping[str, Any], label: str | None = None) -> str:
    from veritas_rl.eval.games import markdown_rows

    lines = ["| policy | opponent | case | episodes | win | draw | loss | illegal move |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for rep in report["per_rung"].values():
        lines += markdown_rows(rep, label)
    lines += ["", "| policy | case | Elo (random = 0) | anchors (rung: Elo) |", "|---|---|---:|---|"]
    for case, est in report["elo"].items():
        anchors = report["anchors"].get(case) or {}
        text = "-" if est is None else f"{est['elo']:.0f}" + {"above": " (at least)", "below": " (at most)"}.get(
            est["bound"] or "", "")
        shown = ", ".join(f"{r}: {v:.0f}" for r, v in anchors.items()) or "no stored anchors"
        lines.append(f"| {label or report['policy']} | `{case}` | {text} | {shown} |")
    return "\n".join(lines) + "\n"

#!/usr/bin/env python
"""Measure the Elo of the ladder rungs (random, mcts:10, mcts:100, mcts:1000) from games among themselves.

    python benchmarks/ladder_elo.py                                   # 40 games per pair and case
    python benchmarks/ladder_elo.py --cases kuhn_poker --games 400 --update   # (the stored kuhn_poker entry)
    python benchmarks/ladder_elo.py --games 10 --cases tic_tac_toe --out /tmp/elo.json   # a quick look

Every pair of rungs plays ``--games`` games per case (seat-balanced: the first rung is seat 0 in even
games), each game with its own seed from ``(--seed, case, pair, game)``. Ratings are fitted by
maximum likelihood under the Elo model with ``random`` fixed at 0 (:func:`veritas_rl.eval.ladder.fit_round_robin`,
one virtual draw per pairing), and written with the pairwise counts, the game count and the seconds
it took to ``--out`` (default: the package's ``veritas_rl/games/ladder_elo.json``, which
``veritas eval-games --ladder`` anchors on). CPU only; one process.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("benchmarks.ladder_elo")

DEFAULT_CASES = ("tic_tac_toe", "connect_four", "hex(board_size=5)", "kuhn_poker")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "veritas_rl" / "games" / "ladder_elo.json"


def play_pair(case: str, a: str, b: str, games: int, seed: int) -> dict[str, int]:
    """``a``'s wins/draws/losses against ``b`` over ``games`` seat-balanced games."""
    from veritas_rl.envs.base import seeded_rng
    from veritas_rl.games.opponents import make_opponent
    from veritas_rl.games.play import BotPolicy, play_game

    counts = {"win": 0, "draw": 0, "loss": 0}
    for g in range(games):
        game_seed = seeded_rng("ladder-elo", seed, case, a, b, g).getrandbits(31)
        policy = BotPolicy(make_opponent(a, case, seeded_rng("ladder-elo-a", game_seed, case)))
        result = play_game(case, policy, b, seed=game_seed, seat=g % 2, keep_prompts=False)
        counts[result.outcome] += 1
    return counts


def build_parser() -> argparse.ArgumentParser:
    from veritas_rl.games.opponents import LADDER

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                   help=f"cases (default: {' '.join(DEFAULT_CASES)})")
    p.add_argument("--rungs", nargs="+", default=list(LADDER), help=f"rungs (default: {' '.join(LADDER)})")
    p.add_argument("--games", type=int, default=40, help="games per pair of rungs and case (default: 40)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output JSON (default: {DEFAULT_OUT})")
    p.add_argument("--update", action="store_true", help="keep the other cases already in --out")
    return p


def main(argv=None) -> int:
    from veritas_rl.eval.ladder import fit_round_robin
    from veritas_rl.games.opponents import parse_rung

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.games < 2 or args.games % 2:
        raise SystemExit("--games must be an even number >= 2 (seat-balanced pairs)")
    rungs = [parse_rung(r, key="--rungs").name for r in args.rungs]
    if "random" not in rungs:
        raise SystemExit("--rungs must include random (the rating zero)")
    out = {"format": 1, "method": "Elo maximum likelihood, random = 0, one virtual draw per pairing "
           "(veritas_rl.eval.ladder)", "cases": {}}
    if args.update and args.out.is_file():
        out["cases"] = json.loads(args.out.read_text(encoding="utf-8"))["cases"]
    for case in args.cases:
        t0 = time.perf_counter()
        pairs = {}
        for a, b in itertools.combinations(rungs, 2):
            pairs[(a, b)] = play_pair(case, a, b, args.games, args.seed)
            log.info("%s: %s vs %s: %s", case, a, b, pairs[(a, b)])
        ratings = fit_round_robin(pairs)
        seconds = round(time.perf_counter() - t0, 1)
        out["cases"][case] = {"ratings": {r: ratings[r] for r in rungs}, "games_per_pair": args.games,
                              "seed": args.seed, "measured": _dt.date.today().isoformat(), "seconds": seconds,
                              "machine": f"cpu ({os.cpu_count()} cores, shared)",
                              "pairs": [{"a": a, "b": b, **c} for (a, b), c in pairs.items()]}
        log.info("%s: %s (%.0f s)", case, out["cases"][case]["ratings"], seconds)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

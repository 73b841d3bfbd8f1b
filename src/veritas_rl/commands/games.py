"""``veritas eval-games``: win/draw/loss/illegal-move rates of a policy against random or MCTS."""

from __future__ import annotations

import argparse
import logging
import sys

from veritas_rl.commands.argtypes import non_negative_float, positive_int

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-games",
        help="play full OpenSpiel games: a policy against random or MCTS",
        description="Play NUM_EPISODES full games per case (the policy's seat alternates) and write "
        "win/draw/loss/illegal-move rates as JSON, a Markdown table and a PNG bar chart.",
    )
    add_arguments(p)
    p.set_defaults(func=cmd_eval_games)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from veritas_rl.eval.games import DEFAULT_EVAL_CASES

    p.add_argument("--policy", default="mcts", help="random | mcts | hf:PATH (a Hugging Face model dir) (default: mcts)")
    p.add_argument("--opponent", default="random", choices=("random", "mcts"), help="opponent (default: random)")
    p.add_argument(
        "--cases",
        nargs="+",
        default=list(DEFAULT_EVAL_CASES),
        help=f"OpenSpiel load strings (default: {' '.join(DEFAULT_EVAL_CASES)})",
    )
    p.add_argument("--num-episodes", type=positive_int, default=20, help="games per case (default: 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of every episode (default: 0)")
    p.add_argument("--mcts-simulations", type=positive_int, default=100, help="MCTS simulations per move (default: 100)")
    p.add_argument("--uct-c", type=non_negative_float, default=2.0, help="UCT exploration constant (default: 2.0)")
    p.add_argument("--max-new-tokens", type=positive_int, default=32, help="hf: policies, tokens per move (default: 32)")
    p.add_argument("--threads", type=positive_int, default=None, help="hf: policies, torch CPU threads (default: torch's)")
    p.add_argument("--max-moves", type=positive_int, default=None, help="cap on player moves per game (default: none)")
    p.add_argument("--out-dir", default="eval_games", help="where the JSON/Markdown/PNG go (default: ./eval_games)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_eval_games(args: argparse.Namespace) -> int:
    from veritas_rl.eval.games import evaluate, markdown_table, write_report

    report = evaluate(
        args.policy,
        args.opponent,
        args.cases,
        args.num_episodes,
        args.seed,
        mcts_simulations=args.mcts_simulations,
        uct_c=args.uct_c,
        max_new_tokens=args.max_new_tokens,
        max_moves=args.max_moves,
        threads=args.threads,
        progress=not args.no_progress,
    )
    paths = write_report(report, args.out_dir)
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    sys.stdout.write(markdown_table(report))
    return 0

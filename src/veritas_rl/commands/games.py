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

    p.add_argument("--policy", default="mcts", help="a ladder rung (random | first_legal | mcts | mcts:N) or hf:PATH "
                   "(an HF model dir, a TRL run dir or its checkpoint-N, a LoRA adapter dir, embedded:NAME) "
                   "(default: mcts)")
    p.add_argument("--opponent", default="random", help="random | first_legal | mcts | mcts:N | policy:PATH (a frozen "
                   "checkpoint); bare mcts uses --mcts-simulations (default: random)")
    p.add_argument("--ladder", action="store_true", help="rate the policy: play random, mcts:10, mcts:100 and mcts:1000 "
                   "(--opponent is ignored) and estimate its Elo per case from the stored rung ratings")
    p.add_argument("--episode", default="move", choices=("move", "game"), help="what a model policy sees per turn: "
                   "move = a fresh position prompt, game = the whole game so far (as --episode game trains) "
                   "(default: move)")
    p.add_argument("--label", default=None, help="the policy cell of the Markdown rows (default: the --policy text)")
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

    if args.ladder:
        return _ladder(args)
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
        episode=args.episode,
    )
    paths = write_report(report, args.out_dir, label=args.label)
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    sys.stdout.write(markdown_table(report, args.label))
    return 0


def _ladder(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from veritas_rl.eval.ladder import ladder_markdown, ladder_report

    report = ladder_report(
        args.policy, args.cases, args.num_episodes, args.seed, progress=not args.no_progress,
        mcts_simulations=args.mcts_simulations, uct_c=args.uct_c, max_new_tokens=args.max_new_tokens,
        max_moves=args.max_moves, threads=args.threads, episode=args.episode,
    )
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ladder.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    table = ladder_markdown(report, args.label)
    (out / "ladder.md").write_text(table, encoding="utf-8")
    log.info("wrote %s, %s", out / "ladder.json", out / "ladder.md")
    sys.stdout.write(table)
    return 0

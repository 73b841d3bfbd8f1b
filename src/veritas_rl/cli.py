"""``veritas`` console script.

Each subcommand lives in its own module exposing ``register(subparsers)``; that module keeps heavy
imports (torch, verl, trl, open_spiel) inside its functions so that ``veritas --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

#: subcommand modules, in ``--help`` order
COMMAND_MODULES = (
    "veritas_rl.commands.envs",  # envs, sample, score
    "veritas_rl.commands.train",  # train grpo, train sft (TRL backend)
    "veritas_rl.commands.games",  # eval-games (OpenSpiel)
    "veritas_rl.commands.eval",  # eval (greedy accuracy, pass@k)
    "veritas_rl.commands.audit",  # audit (reward-hacking battery of one env's scorer)
)


def setup_logging(verbose: bool = False) -> None:
    """The console log format of every veritas entry point (``veritas``, the train/tools scripts)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def build_parser() -> argparse.ArgumentParser:
    from veritas_rl import __version__

    parser = argparse.ArgumentParser(
        prog="veritas",
        description="RL post-training on verifiable environments: inspect envs, sample and score tasks, "
        "train on one machine (TRL), evaluate game play.",
    )
    parser.add_argument("--version", action="version", version=f"veritas-rl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def _fixed_hash_seed() -> None:
    """Run the command under ``PYTHONHASHSEED=0`` unless one is set (re-exec, before anything is imported).

    Some reasoning-gym datasets build their items by iterating sets of strings, whose order follows Python's
    per-process hash seed: under a random seed the same task id is another task in the scoring guard's worker
    (a fresh interpreter), another dataloader or another node, and a correct answer is graded against a
    different item. One seed for every process of a run keeps tasks a pure function of (config, task id);
    ``PYTHONHASHSEED=random`` (or any value) set by the user is kept."""
    if os.environ.get("PYTHONHASHSEED") is None:
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, "-m", "veritas_rl.cli", *sys.argv[1:]], env)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the console command (tests and callers that pass argv run in their own process)
        _fixed_hash_seed()
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # configuration errors: one clear line, not a traceback
        parser.exit(2, f"veritas {args.command}: error: {err}\n")
    except BrokenPipeError:  # `veritas sample ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

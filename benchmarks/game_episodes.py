#!/usr/bin/env python
"""Cost of one whole-game episode (``veritas_rl.games.episode``) by case: seconds per episode on this machine.

    python benchmarks/game_episodes.py                         # the docs' table: 40 episodes per row
    python benchmarks/game_episodes.py --episodes 10 --cases tic_tac_toe --model embedded:smollm2-135m

Two kinds of rows: the game machinery alone (a policy that answers a random legal id, so every game is
played out; against ``random`` and ``mcts:10``), and, with ``--model``, a real model's turns (greedy, one
torch thread, ``--max-new-tokens``; the untrained SmolLM2 ends most games at its first move, so that
row is the cost of a first turn). Prints a Markdown table for docs/training.md.
"""

from __future__ import annotations

import argparse
import os
import random
import time

DEFAULT_CASES = ("tic_tac_toe", "connect_four", "hex(board_size=5)", "kuhn_poker", "leduc_poker", "backgammon")


def random_legal(seed: int):
    rng = random.Random(seed)

    def policy(messages):
        text = messages[-1]["content"].split("Legal actions (id: action):\n", 1)[1].split("\n\n", 1)[0]
        return f"<answer>{rng.choice([line.split(':', 1)[0] for line in text.splitlines()])}</answer>"

    return policy


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES))
    p.add_argument("--opponents", nargs="+", default=["random", "mcts:10"])
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--model", default=None, help="also time a model's turns (e.g. embedded:smollm2-135m)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    args = p.parse_args(argv)

    from veritas_rl.games.episode import EpisodeConfig, play_episode

    print(f"cpu: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start\n")
    print("| case | opponent | policy | episodes | s/episode | model turns/episode |")
    print("|---|---|---|---:|---:|---:|")
    model = None
    if args.model:
        import torch

        from veritas_rl.eval.hf_policy import HFPolicy

        torch.set_num_threads(1)
        model = HFPolicy(args.model, max_new_tokens=args.max_new_tokens)
    for case in args.cases:
        for opponent in args.opponents:
            policies = [("random legal id", lambda e: random_legal(e))]
            if model is not None:
                policies.append((f"{args.model} ({args.max_new_tokens} tokens)", lambda e: model))
            for name, make in policies:
                t0 = time.perf_counter()
                turns = 0
                for e in range(args.episodes):
                    result = play_episode(EpisodeConfig(case, e % 2, e, opponent, max_turns=500), make(e))
                    turns += result.model_turns
                dt = (time.perf_counter() - t0) / args.episodes
                print(f"| `{case}` | {opponent} | {name} | {args.episodes} | {dt:.4f} | {turns / args.episodes:.1f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

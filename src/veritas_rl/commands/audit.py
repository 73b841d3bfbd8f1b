"""``veritas audit ENV``: a reward-hacking battery against one env's scorer (see ``veritas_rl.eval.audit``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from veritas_rl.commands.argtypes import float_in, int_at_least

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit",
        help="audit an env's scorer: gold forms must score 1.0, hacks (echoes, hedges, floods, payloads) 0.0",
        description="Score a fixed battery of completions on N tasks of ENV: the oracle in its accepted forms "
        "(must score 1.0) and adversarial classes (empty, garbage, prompt echo, format example, hedges, lists, "
        "think-only, unclosed think, huge numbers, deep nesting, tag floods, code payloads, non-strings: must "
        "score 0.0), each timed. Writes audit-ENV.json and audit-ENV.md under --out-dir, prints the table, and "
        "exits 1 on any failure or any score slower than --timeout-s.",
    )
    p.add_argument("env", metavar="ENV", help="env name or alias (see `veritas envs`)")
    p.add_argument("--config", default="{}", help="env config as a JSON object (default: {})")
    p.add_argument("--n", type=int_at_least(1), default=10, help="number of tasks, dense indices 0..N-1 (default: 10)")
    p.add_argument("--out-dir", default=None,
                   help="where audit-ENV.json/.md go (default: train/runs/audit in a checkout, else ./audit)")
    p.add_argument("--timeout-s", type=float_in(0, low_open=True), default=5.0,
                   help="latency bound per score in seconds (default: 5)")
    p.add_argument("--via", choices=("env", "verl"), default="env",
                   help="env: the env's own score() in this thread; verl: verl 0.9.1's reward loading "
                        "(get_custom_reward_fn on pkg://veritas_rl.backends.verl) from worker threads (default: env)")
    p.add_argument(
        "--hard-limit-s",
        type=float_in(0, low_open=True),
        default=None,
        help="stop a single score after this many seconds (default: max(30, 10 x --timeout-s))",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    from veritas_rl.commands.envs import parse_config
    from veritas_rl.envs import make
    from veritas_rl.eval.audit import markdown, run_audit, write_report

    from veritas_rl.models import repo_root

    env = make(args.env, **parse_config(args.config))
    report = run_audit(env, args.n, timeout_s=args.timeout_s, hard_limit_s=args.hard_limit_s,
                       progress=not args.no_progress, via=args.via)
    root = repo_root()
    out_dir = args.out_dir or (root / "train" / "runs" / "audit" if root is not None else Path("audit"))
    paths = write_report(report, out_dir)
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    sys.stdout.write(markdown(report))
    return 0 if report.ok else 1

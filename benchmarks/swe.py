"""Benchmark of the swe-synth env on the git fixture of tests/envs/swe_fixture.py.

Measures, for the gold patch of fixture task 0 (median and minimum of ``--repeats`` interleaved rounds):

* ``direct``    the test command run with a plain ``subprocess.run`` in a ready checkout (the floor),
  with the sandbox's environment variables;
* ``sandboxed`` the same command through ``run_sandboxed`` (own session, ``prlimit`` RLIMIT_AS,
  ``unshare -n``, output to a file): the isolation wrappers alone;
* ``bwrap``     the same command in the default bwrap sandbox (namespaces, read-only root, cgroup);
* ``cold``      a full evaluation (bwrap): shared clone + checkout, ``git apply --check``/apply, test-file reset, test patch,
  sandboxed run, log parsing with swebench's parser, worktree removal;
* ``cached``    scoring the same patch again (the (instance, patch-hash) result cache).

Usage::

    python benchmarks/swe.py                       # the fixture's fast pytest command
    python benchmarks/swe.py --test-cmd default    # the env's default command (pytest with plugin autoload)
    python benchmarks/swe.py --repeats 10 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("benchmarks.swe")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Seconds per swe-synth evaluation on the git fixture, "
                                     "and the overhead of the sandbox around the test command.")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement (default 5)")
    parser.add_argument("--test-cmd", choices=("fast", "default"), default="fast",
                        help="fast: pytest without plugin autoload (what the tests use); default: the env's "
                        "default pytest command (default: fast)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    return parser


def _timings(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each function, ``repeats`` times, interleaved so that load from other processes hits
    every measurement alike."""
    from tqdm import tqdm

    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in tqdm(range(repeats), desc="rounds", unit="round"):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.envs.swe_fixture
    import subprocess

    from tests.envs.swe_fixture import build_swe_fixture, git
    from veritas_rl.envs import make
    from veritas_rl.envs.swe.sandbox import (
        bwrap_mode,
        cgroup_roots,
        network_isolation_prefix,
        run_sandboxed,
        sandbox_env,
    )

    with tempfile.TemporaryDirectory(prefix="veritas-swe-bench-") as tmp:
        tmp = Path(tmp)
        fx = build_swe_fixture(tmp / "fixture")
        overrides = {} if args.test_cmd == "fast" else {"test_cmd": None}
        env = make("swe-synth", **fx.config(**overrides))
        task = env.task(0)
        patch = fx.patches["gold0"]

        # a ready checkout for the direct and sandboxed runs (not timed)
        checkout = tmp / "checkout"
        git(fx.repo_dir, "worktree", "add", "--detach", str(checkout), task.extra["base_commit"])
        for name, text in (("gold.patch", patch), ("test.patch", task.extra["test_patch"])):
            (tmp / name).write_text(text)
            git(checkout, "apply", str(tmp / name))
        cmd = env.test_command(task, checkout)
        home = tmp / "home"
        home.mkdir()

        def direct():  # same environment variables as the sandbox: only the wrappers differ
            subprocess.run(cmd, cwd=checkout, env=sandbox_env(checkout, home), capture_output=True, check=True)

        def sandboxed():  # sandbox="none": own session, unshare -n, limits
            run = run_sandboxed(cmd, checkout, sandbox_env(checkout, home), env.config.test_timeout_s,
                                env.config.memory_limit_mb, env.config.isolate_network, tmp / "out.log")
            assert run.returncode == 0, run.output[-2000:]

        def bwrap():  # sandbox="bwrap": namespaces, read-only root, cgroup limits
            run = run_sandboxed(cmd, checkout, sandbox_env(checkout, Path("/tmp/home")), env.config.test_timeout_s,
                                env.config.memory_limit_mb, env.config.isolate_network, tmp / "out.log",
                                sandbox="bwrap", max_processes=env.config.max_processes)
            assert run.returncode == 0, run.output[-2000:]

        def cold():
            result = env._evaluate_local(task, patch)  # bypasses the result cache on purpose
            assert not result.get("error") and not result["f2p_failed"], result

        env.score(task, env.oracle(task))  # warm-up: imports swebench's parsers, fills the cache once
        load_before = os.getloadavg()[0]
        times = _timings({"direct": direct, "sandboxed": sandboxed, "bwrap": bwrap, "cold": cold}, args.repeats)
        runs = env.test_runs
        times.update(_timings({"cached": lambda: env.score(task, env.oracle(task))}, max(args.repeats, 100)))
        assert env.test_runs == runs, "cached scoring ran the tests"
        figures = {
            "test_cmd": args.test_cmd,
            "network_isolation": " ".join(network_isolation_prefix()) or "none",
        "bwrap_mode": getattr(bwrap_mode(), "user", str(bwrap_mode())),
        "cgroup": "none" if cgroup_roots() is None else f"v{cgroup_roots().version}",
            "repeats": args.repeats,
            "load_average_1min": max(load_before, os.getloadavg()[0]),
        }
        for name, values in times.items():
            figures[f"{name}_median_s"] = statistics.median(values)
            figures[f"{name}_min_s"] = min(values)
        for stat in ("median", "min"):
            figures[f"isolation_overhead_{stat}_s"] = figures[f"sandboxed_{stat}_s"] - figures[f"direct_{stat}_s"]
            figures[f"bwrap_overhead_{stat}_s"] = figures[f"bwrap_{stat}_s"] - figures[f"direct_{stat}_s"]
            figures[f"sandbox_overhead_{stat}_s"] = figures[f"cold_{stat}_s"] - figures[f"direct_{stat}_s"]
        git(fx.repo_dir, "worktree", "remove", "--force", str(checkout))

    if args.json:
        sys.stdout.write(json.dumps(figures) + "\n")
    else:
        for key, value in figures.items():
            log.info("%-30s %s", key, f"{value:.6f}" if isinstance(value, float) else value)
    return 0


if __name__ == "__main__":
    sys.exit(main())

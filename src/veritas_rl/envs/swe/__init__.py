"""SWE-bench environment (``swe-synth``); see :mod:`veritas_rl.envs.swe.env`.

One concern per module: ``env`` (config, env, registration), ``rows`` (dataset and cache loading, the
``download`` tool), ``patches`` (the diff in a completion), ``sandbox`` (the checkout and the isolated
test run), ``grading`` (test command, log parsing, FAIL_TO_PASS / PASS_TO_PASS grading, reward),
``docker`` (the swebench harness backend). Importing the package registers the env.
"""

from veritas_rl.envs.swe.env import BACKENDS, REWARD_MODES, SweConfig, SweEnv
from veritas_rl.envs.swe.grading import grade, parse_test_output, reward_from, test_directives
from veritas_rl.envs.swe.patches import extract_diff, patch_files
from veritas_rl.envs.swe.rows import DEFAULT_DATASET, SweDataError, build_parser, load_rows, main
from veritas_rl.envs.swe.sandbox import network_isolation_prefix, run_sandboxed, sandbox_env

__all__ = [
    "BACKENDS",
    "DEFAULT_DATASET",
    "REWARD_MODES",
    "SweConfig",
    "SweDataError",
    "SweEnv",
    "build_parser",
    "extract_diff",
    "grade",
    "load_rows",
    "main",
    "network_isolation_prefix",
    "parse_test_output",
    "patch_files",
    "reward_from",
    "run_sandboxed",
    "sandbox_env",
    "test_directives",
]

"""``$ENV_MIXTURE`` for the verl launchers: validate a mixture and print it as a Hydra override value.

    python -m veritas_rl.backends.verl.mixture '[{"env": "lgc-v2", "weight": 2}, {"env": "math"}]'
    python -m veritas_rl.backends.verl.mixture recipes/mix/lgc-v2-math.yaml

prints ``{components:[{env:'lgc-v2',weight:2},{env:math}]}`` — the value of
``+data.custom_cls.config.adapter_config=`` with ``data.custom_cls.config.env=mix``. The mixture is
built first (every component env with its config), so a bad mixture fails here, at launch, naming the
component and the key. Exit status 2 on a bad mixture.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def hydra_value(value: Any, where: str = "mixture") -> str:
    """``value`` (JSON-like) in Hydra's override grammar: dicts ``{k:v}``, lists ``[..]``, quoted strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        if _BARE.match(value) and value.lower() not in ("true", "false", "null", "nan", "inf"):
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if not isinstance(k, str) or not _KEY.match(k):
                raise ValueError(f"{where}: key {k!r} cannot be a Hydra dict key (letters, digits, _)")
            parts.append(f"{k}:{hydra_value(v, f'{where}.{k}')}")
        return "{" + ",".join(parts) + "}"
    raise ValueError(f"{where}: {type(value).__name__} {value!r:.80} is not JSON-like")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m veritas_rl.backends.verl.mixture", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mixture", help="JSON (a list of components or {components, seed}) or a YAML file path")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from veritas_rl.envs import make
    from veritas_rl.envs.mix import load_mixture

    try:
        config = load_mixture(args.mixture)
        env = make("mix", **config)
        value = hydra_value(config)
    except ValueError as err:
        print(f"error: ENV_MIXTURE: {err}", file=sys.stderr)
        return 2
    shares = ", ".join(f"{label} {share:.3g}" for label, share in zip(env.labels, env.shares))
    print(f"ENV_MIXTURE: {len(env.components)} components ({shares}), {env.num_tasks} tasks", file=sys.stderr)
    print(value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``type=`` callables for the numeric flags of ``veritas`` subcommands: nonsense is refused at parse time.

argparse turns an ``ArgumentTypeError`` into ``veritas CMD: error: argument --n: -3 is not an integer >= 1``
and exit status 2, so ``veritas sample --n -3`` fails naming the flag instead of printing nothing and exiting 0::

    p.add_argument("--n", type=int_at_least(1), default=5)
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer ``>= minimum`` (a count, a size, a number of steps)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {minimum}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is too small: expected an integer >= {minimum}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


def float_in(low: float, high: float = math.inf, *, low_open: bool = False) -> Callable[[str], float]:
    """A finite float in ``[low, high]`` (``(low, high]`` with ``low_open``); nan and inf are refused."""
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]" if math.isfinite(high) else (
        f"> {low:g}" if low_open else f">= {low:g}")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number {bounds}") from None
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
        if not ok:
            raise argparse.ArgumentTypeError(f"{value:g} is out of range: expected a number {bounds}")
        return value

    parse.__name__ = "float_in"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = float_in(0.0, low_open=True)
non_negative_float = float_in(0.0)

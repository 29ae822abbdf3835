"""The types of the options: each turns an option's text into a value or says what to use.

argparse (and pytest's option parser) print an ``ArgumentTypeError``'s message as it is,
so each names the value and the fix. Only light modules are imported: every ``testfleet``
command and every pytest run builds its options from these.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from testfleet.core import workers as workers_mod
from testfleet.runs.commands import check_dist
from testfleet.sharding.plan import shard_choice

__all__ = [
    "count",
    "dist",
    "lock_dir",
    "non_negative_float",
    "parse_threshold",
    "percent",
    "positive_int",
    "seconds",
    "serial",
    "shard_choice",
    "threshold",
    "workers",
]

SERIAL_CHOICES = ("run", "defer", "only")


def _whole(text: str, minimum: int, below: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} {below}")
    return value


def positive_int(text: str) -> int:
    """A whole number of 1 or more."""
    return _whole(text, 1, "must be 1 or more")


def count(text: str) -> int:
    """A whole number of 0 or more."""
    return _whole(text, 0, "must not be negative")


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def workers(text: str) -> workers_mod.Workers:
    try:
        return workers_mod.parse_workers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def dist(text: str) -> str:
    try:
        return check_dist(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_threshold(text: str) -> float:
    """A percentage of the run's tests, ``5``, ``2.5`` or ``5%``, from 0 to 100."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ValueError(f"threshold {text!r} is not a percentage such as 5 or 2.5%") from None
    if not 0 <= value <= 100:
        raise ValueError(f"threshold {text!r} is not a percentage from 0 to 100")
    return value


def threshold(text: str) -> float:
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def percent(text: str) -> float:
    """A flake rate in per cent, ``5``, ``2.5`` or ``5%``."""
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("threshold ")) from None


def serial(text: str) -> str:
    value = text.strip().lower()
    if value not in SERIAL_CHOICES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not one of {', '.join(SERIAL_CHOICES)}: 'run' runs `serial` tests with "
            "the others, 'defer' leaves them out of this run, 'only' runs just them"
        )
    return value


def lock_dir(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "the lock directory is empty: give a directory path, such as /tmp/testfleet-locks"
        )
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} is a file: give a directory for the lock files (it is created if missing)"
        )
    return str(path)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds: use e.g. 60 or 2.5"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a usable number of seconds: use 0 (do not wait) or more"
        )
    return value

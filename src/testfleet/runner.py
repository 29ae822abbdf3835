"""Run pytest as the nox sessions do: `testfleet run` (see :mod:`testfleet.phases`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from testfleet import commands, phases
from testfleet import workers as workers_mod

# `testfleet randomized` lives in its own module; these names stay importable from here.
from testfleet.randomized import DEFAULT_SEEDS as DEFAULT_SEEDS
from testfleet.randomized import ORDER_REPORT as ORDER_REPORT
from testfleet.randomized import SEEDS_ENV as SEEDS_ENV
from testfleet.randomized import seeds_to_run as seeds_to_run

#: pytest exit statuses that make a later phase pointless: interrupted, internal or usage error.
FATAL_EXITS = phases.FATAL_EXITS

Echo = Callable[[str], None]


def pytest_command(args: Sequence[str]) -> list[str]:
    return commands.pytest_command(args)


def run_phases(
    workers: workers_mod.Workers,
    pytest_args: Sequence[str],
    report: Path,
    dist: str = commands.DEFAULT_DIST,
    echo: Echo = print,
    durations: Sequence[Path] = (),
    on_report: phases.OnReport | None = None,
    in_process: bool = False,
) -> int:
    """`testfleet run`: see :mod:`testfleet.phases`."""
    return phases.run_phases(
        workers, pytest_args, report, dist, echo, durations, on_report, in_process
    )

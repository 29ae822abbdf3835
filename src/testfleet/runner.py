"""Run pytest as the nox sessions do: parallel, then `serial` tests alone; or once per seed."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from testfleet import report as reports
from testfleet import workers as workers_mod

# `testfleet randomized` lives in its own module; these names stay importable from here.
from testfleet.randomized import DEFAULT_SEEDS as DEFAULT_SEEDS
from testfleet.randomized import ORDER_REPORT as ORDER_REPORT
from testfleet.randomized import SEEDS_ENV as SEEDS_ENV
from testfleet.randomized import seeds_to_run as seeds_to_run

# `testfleet randomized` lives in its own module; these names stay importable from here.
from testfleet.timing import write_json_atomic

#: pytest exit statuses that make a later phase pointless: interrupted, internal or usage error.
FATAL_EXITS = (2, 3, 4)

Echo = Callable[[str], None]


def pytest_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", *args]


@dataclass(frozen=True)
class Phase:
    name: str
    args: list[str]
    report: Path


def plan_phases(
    workers: workers_mod.Workers, dist: str, pytest_args: Sequence[str], report: Path, scratch: Path
) -> list[Phase]:
    """The pytest runs that make one run on ``workers`` workers, `serial` tests last and alone."""
    if workers == 1:
        # The rollback: no xdist at all, every test in one process in collection order.
        only = scratch / "serial.json"
        return [
            Phase("serial", ["-p", "no:xdist", "--testfleet-report", str(only), *pytest_args], only)
        ]
    parallel = scratch / "parallel.json"
    serial = scratch / "serial.json"
    return [
        Phase(
            f"parallel ({workers} workers)",
            [
                "-n",
                str(workers),
                "--dist",
                dist,
                "--testfleet-serial=defer",
                "--testfleet-report",
                str(parallel),
                *pytest_args,
            ],
            parallel,
        ),
        Phase(
            "serial-marked tests, one process",
            [
                "-p",
                "no:xdist",
                "--testfleet-serial=only",
                "--testfleet-report",
                str(serial),
                *pytest_args,
            ],
            serial,
        ),
    ]


def run_phases(
    workers: workers_mod.Workers,
    pytest_args: Sequence[str],
    report: Path,
    dist: str = "loadgroup",
    echo: Echo = print,
) -> int:
    """Run the phases, merge their timing reports into ``report`` and return the exit status."""
    report.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".testfleet-phases-", dir=report.parent) as tmp:
        phases = plan_phases(workers, dist, pytest_args, report, Path(tmp))
        statuses: list[int] = []
        for number, phase in enumerate(phases, 1):
            command = pytest_command(phase.args)
            echo(f"testfleet: phase {number}/{len(phases)}, {phase.name}: {shlex.join(command)}")
            status = subprocess.call(command)
            statuses.append(status)
            if status in FATAL_EXITS:
                echo(
                    f"testfleet: phase {number} ended with exit status {status}; "
                    "later phases skipped"
                )
                return status
        # Every phase wrote to the scratch directory: a phase that wrote nothing cannot
        # pass off the report of an earlier run as this one's.
        missing = [phase.name for phase in phases if not phase.report.exists()]
        if missing:
            echo(
                f"testfleet: no timing report from {', '.join(missing)} (was the testfleet "
                f"plugin disabled, or only collecting?); {report} is left as it was"
            )
            return reports.combine_exit_statuses(statuses) or 1
        loaded = [reports.load(phase.report) for phase in phases]
        final = loaded[0] if len(loaded) == 1 else reports.merge(loaded, [p.name for p in phases])
        write_json_atomic(report, final)
    echo(f"testfleet: timing report of {final['summary']['tests']} tests written to {report}")
    echo(closing_line(final["summary"]["outcomes"]))
    return reports.combine_exit_statuses(statuses)


def closing_line(outcomes: dict[str, int]) -> str:
    """The closing line: xfail results count as skipped, errors as failed."""

    passed = outcomes.get("passed", 0)
    failed = outcomes.get("failed", 0) + outcomes.get("error", 0)
    skipped = outcomes.get("skipped", 0) + outcomes.get("xfailed", 0) + outcomes.get("xpassed", 0)
    return f"testfleet: {passed} passed, {failed} failed, {skipped} skipped"

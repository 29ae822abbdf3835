"""`testfleet randomized`: the suite reversed, then in random orders; what fails, diagnosed."""

from __future__ import annotations

import argparse
from pathlib import Path

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command, pytest_args
from testfleet.core import paths
from testfleet.runs import randomized
from testfleet.settings.kinds import Option

NAME = "randomized"
OPTIONS = (
    Option(NAME, ("--seed",), "run this seed (repeatable)", type=int, action="append", default=[]),
    Option(
        NAME,
        ("--report-dir",),
        "where the per-seed timing reports go (default reports/randomized)",
        type=Path,
        default=paths.RANDOMIZED_DIR,
    ),
    Option(
        NAME,
        ("--no-reverse",),
        "skip the run in reversed collection order that comes before the seeds",
        dest="reverse",
        action="store_false",
    ),
    Option(
        NAME,
        ("--no-bisect",),
        "do not diagnose the failing tests of failing seeds",
        dest="bisect",
        action="store_false",
    ),
    *output.summary_options(NAME),
    Option(NAME, ("pytest_args",), "-- then pytest arguments", nargs=argparse.REMAINDER),
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="run the suite in reversed order, then in random orders; diagnose what fails",
        description="Runs the suite once in reversed collection order (it exposes a test "
        "broken by any single later test, or needing any single earlier one), then once per "
        "seed with pytest-randomly, each in one process (xdist off with -n 0, whatever "
        "addopts say), and prints for each run the command that reproduces it; the failed "
        "tests of failing runs are bisected, in probes that keep the run's random seeding. "
        "Exit 0 when every run passed, 1 when a run had failing tests, "
        "5 when no run collected any test, and pytest's 2, 3 or 4 when a run was "
        "interrupted or pytest refused its arguments. Arguments after -- go to pytest: "
        "paths and -k choose the suite of every run; the probes leave them out and list them.",
    )


def handle(args: argparse.Namespace) -> int:
    seeds = randomized.seeds_to_run(args.seeds, args.seed)
    return randomized.run_randomized(
        seeds,
        pytest_args(args.pytest_args),
        args.report_dir,
        reverse=args.reverse,
        bisect=args.bisect,
        order_report=args.order_report,
        summary=args.summary,
        step_summary=output.step_summary_file() if args.step_summary else None,
        jobs=args.jobs,
        max_tests=args.max_tests,
        max_victims=args.max_victims,
    )

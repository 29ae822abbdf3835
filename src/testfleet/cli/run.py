"""`testfleet run`: the suite on N workers, the `serial` tests last and alone; one report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command, pytest_args
from testfleet.runs import phases
from testfleet.settings import argtypes
from testfleet.settings import config as settings
from testfleet.settings.kinds import Option

NAME = "run"
PYTEST_ARGS = Option(NAME, ("pytest_args",), "-- then pytest arguments", nargs=argparse.REMAINDER)
OPTIONS = (
    Option(
        NAME,
        ("--shard",),
        "run only shard I of N (from 1), split by recorded durations; 'auto' reads "
        "the CI's variables (GitLab, Buildkite); default $TESTFLEET_SHARD (docs/sharding.md)",
        type=argtypes.shard_choice,
        default=None,
        metavar="I/N",
    ),
    PYTEST_ARGS,
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="run pytest on N workers, the `serial` tests last and alone; one timing report",
        description="Runs the suite with pytest-xdist and testfleet's scheduler: longest "
        "tests first from past durations, xdist_group groups kept together, the tests marked "
        "`serial` last, alone on one worker, in the same session. With one of xdist's --dist "
        "modes the `serial` tests run in a second pytest, only when there are some. With "
        "--workers 1 (or PYTEST_WORKERS=1) it runs once, in one process. Ends with the whole "
        "run's pytest-style closing line. Arguments after -- go to pytest.",
    )


def handle(args: argparse.Namespace) -> int:
    loaded = settings.load()
    count = loaded.get("workers", args.workers)
    path = Path(loaded.get("report", args.report))
    dist = loaded.get("dist", args.dist)
    baseline = Path(loaded.get("baseline", args.baseline))
    if args.baseline is not None and not baseline.is_file():
        return output.error(f"--baseline {baseline}: no such file")
    # The report this run replaces, then the baseline: durations for the scheduler.
    sources = [source for source in (path, baseline) if source.is_file()]
    # Imported here: the history (sqlite3 and its schema) is not what `testfleet run`
    # should load before its pytest starts; a test checks that the parser does not.
    from testfleet.history import record

    before = record.stamp(path)
    given = pytest_args(args.pytest_args)
    if args.shard is not None:
        # Every phase gets it: each computes the same split and keeps its part of it.
        given = [f"--testfleet-shard={args.shard}", *given]
    written: list[dict[str, Any]] = []
    status = phases.run_phases(
        count,
        given,
        path,
        dist=dist,
        durations=sources,
        on_report=written.append,
        in_process=args.in_process,
    )
    # After the run's own reports are written; a history that fails only warns.
    record.after_run(
        path,
        before,
        args.history,
        args.history_path,
        echo=output.warn,
        loaded=written[0] if written else None,
    )
    return status

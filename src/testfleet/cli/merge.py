"""`testfleet merge`: the reports of consecutive phases of one run, joined into one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command
from testfleet.core.atomic import write_json_atomic
from testfleet.settings.kinds import Option
from testfleet.timing import report
from testfleet.timing.records import dumps_report

NAME = "merge"
OPTIONS = (
    Option(
        NAME,
        ("reports",),
        "phase reports, in run order",
        type=Path,
        nargs="+",
        metavar="REPORT",
    ),
    Option(NAME, ("--output", "-o"), "write the merged report here (atomically)", type=Path),
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="join the reports of consecutive phases of one run into one report",
        description="Joins the timing reports of the phases of one run, in the order they "
        "ran, and prints the merged report (JSON) or writes it to --output. The old form, "
        "`testfleet merge OUTPUT REPORT...`, still works while OUTPUT does not exist.",
    )


def handle(args: argparse.Namespace) -> int:
    inputs, destination = list(args.reports), args.output
    if destination is None and len(inputs) > 1 and not inputs[0].exists():
        # The old form, `merge OUTPUT REPORT...`; only while OUTPUT does not exist, so
        # that a report given first is never taken for the output and overwritten.
        destination, inputs = inputs[0], inputs[1:]
        print(
            f"testfleet: note: write `testfleet merge REPORT... --output {destination}`; "
            "the output first is the old form",
            file=sys.stderr,
        )
    loaded = [report.load(path) for path in inputs]
    merged = report.merge(loaded, [str(path) for path in inputs])
    if destination is None:
        sys.stdout.write(dumps_report(merged))
        return output.EXIT_OK
    write_json_atomic(destination, merged)
    print(
        f"testfleet: merged {len(inputs)} reports "
        f"({merged['summary']['tests']} tests) into {destination}"
    )
    return output.EXIT_OK

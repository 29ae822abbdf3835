"""`testfleet combine`: the timing reports (and coverage data) of a CI matrix's shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command
from testfleet.core import paths
from testfleet.core.atomic import write_json_atomic
from testfleet.settings.kinds import Option
from testfleet.sharding import combine
from testfleet.timing import report

NAME = "combine"
OPTIONS = (
    Option(NAME, ("reports",), "shard reports", type=Path, nargs="+", metavar="REPORT"),
    Option(
        NAME,
        ("--combined",),
        "the combined timing report to write (default %(default)s)",
        type=Path,
        default=paths.TIMING_REPORT,
    ),
    Option(
        NAME,
        ("--coverage",),
        "the shards' coverage data files, combined with the [paths] of your coverage "
        "settings into --coverage-file",
        type=Path,
        nargs="+",
        default=[],
        metavar="DATAFILE",
    ),
    Option(
        NAME,
        ("--coverage-file",),
        "combined coverage data (default: coverage's own, $COVERAGE_FILE or .coverage)",
        type=Path,
        default=None,
    ),
    *output.options(
        NAME,
        combine.FORMATS,
        json_help="also write the result as JSON, atomically",
        summary=True,
    ),
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="combine the timing reports (and coverage data) of a CI matrix's shards",
        description="Checks that the reports are the N shards of one run (same collection, "
        "plan and commit; none missing or given twice) and writes one timing report in which "
        "every collected test appears once. Exit 0 when complete, 1 when a shard did not "
        "finish its tests (they are listed; the finished ones are kept), 2 when the reports "
        "do not make one run (the message names the shard).",
    )


def handle(args: argparse.Namespace) -> int:
    loaded = [(str(path), report.load(path)) for path in args.reports]
    result = combine.combine(loaded)
    if args.coverage:
        written = combine.combine_coverage(args.coverage, args.coverage_file)
        print(f"testfleet: {len(args.coverage)} coverage data files combined into {written}")
    write_json_atomic(args.combined, result.report)
    output.emit(combine.render(result, args.format), args.output)
    print(f"testfleet: combined timing report written to {args.combined}")
    if args.json is not None:
        write_json_atomic(args.json, result.to_json())
    output.append_summaries(args, combine.render(result, "markdown"))
    return output.EXIT_OK if result.complete else output.EXIT_FINDINGS

"""`testfleet classify`: a run's failed tests rerun: failure, parallel-only, flaky or order."""

from __future__ import annotations

import argparse
from pathlib import Path

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command, add_options, pytest_args, setting_options
from testfleet.diagnose import classify, classify_render
from testfleet.settings.kinds import Option

NAME = "classify"
#: The options that may also follow REPORT; REMAINDER takes them, `pytest_args` parses them.
AFTER_REPORT = (
    *output.summary_options(NAME),
    Option(NAME, ("--run-id",), "refuse a report whose run id differs (a stale report)"),
)
OPTIONS = (
    Option(NAME, ("report",), "timing report of the run (testfleet run)", type=Path),
    *AFTER_REPORT,
    # REMAINDER after a positional also takes the options that follow REPORT.
    Option(NAME, ("rest",), "-- then pytest options", nargs=argparse.REMAINDER),
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="rerun a run's failed tests: failure, parallel-only, flaky or order-dependent",
        description="Runs each failed test of the run again, serially after the tests that "
        "ran before it on its worker and alone, --runs times each, and classifies it. Adds "
        "the reruns to REPORT as attempts 2, 3, ... and writes --json. Exit 0 when every "
        "failed test is flaky and the flaky tests are at most --threshold per cent of the "
        "tests, 1 otherwise, 2 on a usage or report error, 5 when no test failed. "
        "Arguments after -- go to pytest (options only: the node ids are added).",
    )


def after_report() -> argparse.ArgumentParser:
    """The parser of the options that follow REPORT."""
    parser = argparse.ArgumentParser(prog="testfleet classify REPORT")
    add_options(parser, (*setting_options(NAME), *AFTER_REPORT))
    return parser


def handle(args: argparse.Namespace) -> int:
    given = pytest_args(args.rest, after_report(), args)
    runs = args.runs if args.runs is not None else classify.runs_from_env()
    limit = args.threshold if args.threshold is not None else classify.threshold_from_env()
    try:
        result = classify.classify(
            args.report, given, runs, limit, output=args.output, run_id=args.run_id
        )
    except classify.RerunError as exc:
        return output.error(str(exc))
    for target in output.summary_targets(args):
        classify_render.append_summary(result, target)
    return result.exit_status

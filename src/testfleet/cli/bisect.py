"""`testfleet bisect`: the earlier tests that make a test fail, or that it needs to pass."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command, add_options, pytest_args, setting_options
from testfleet.core.atomic import write_json_atomic
from testfleet.diagnose import bisect
from testfleet.diagnose.diagnosis import Diagnosis
from testfleet.settings import argtypes
from testfleet.settings import config as settings
from testfleet.settings.kinds import Option
from testfleet.timing import report

NAME = "bisect"
#: The options that may also follow REPORT; REMAINDER takes them, `pytest_args` parses them.
AFTER_REPORT = (
    Option(NAME, ("--report",), argparse.SUPPRESS, type=Path, dest="report_option", default=None),
    Option(NAME, ("--order-file",), "node ids in the order they ran, one per line", type=Path),
    Option(
        NAME,
        ("--test",),
        "the test to diagnose (repeatable); default: every failed test of REPORT",
        action="append",
        default=[],
        metavar="NODEID",
    ),
    Option(
        NAME,
        ("--timeout",),
        "seconds one pytest run may take, then it counts as failing (default 0: no limit)",
        type=argtypes.non_negative_float,
        default=0.0,
    ),
    *output.options(
        NAME, output=False, json_help=f"also write the results ({bisect.SCHEMA}) here, atomically"
    ),
)
OPTIONS = (
    *AFTER_REPORT,
    # REPORT and the options that follow it are parsed by `pytest_args`, up to the `--`:
    # a positional before a REMAINDER would take the first pytest argument after `--`.
    Option(
        NAME,
        ("rest",),
        "timing report of the failing run: its tests' start times give the order (in a "
        "parallel run, the order of the failing test's worker)",
        nargs=argparse.REMAINDER,
        metavar="REPORT [options] [-- pytest arguments]",
    ),
)
REPORT = Option(NAME, ("report",), "", type=Path, nargs="?")


def add(commands: Commands) -> None:
    parser = add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="find the earlier tests that make a test fail (or that it needs to pass)",
        description="Runs the failing test alone and after parts of the tests that ran before "
        "it, several pytest processes at once, down to the smallest cause, and prints ONE "
        "command that reproduces the failure with just those tests. Exit 0 when no order "
        "dependence was found, 1 on a finding (a polluter, a test it needs, a failure alone, "
        "an ambiguous or flaky result), 2 on a usage error or a test that is not collected "
        "any more. Arguments after -- go to pytest; those that select tests (paths, -k, -m) "
        "are left out of the probes, which give their own node ids, and listed.",
        usage="testfleet bisect [REPORT | --order-file FILE] [--test NODEID] [options] "
        "[-- PYTEST_ARGS]",
    )
    parser.set_defaults(report=None)


def after_report() -> argparse.ArgumentParser:
    """The parser of REPORT and the options that follow it."""
    parser = argparse.ArgumentParser(prog="testfleet bisect REPORT")
    add_options(parser, (REPORT, *AFTER_REPORT, *setting_options(NAME)))
    return parser


def _victims(args: argparse.Namespace) -> tuple[list[str], list[str], dict[str, Any]] | str:
    """The tests to diagnose, every test in order, and each one's worker order; or an error."""
    source = args.report or args.report_option
    if source is not None and args.order_file is not None:
        return "give either a REPORT or --order-file, not both"
    if source is not None:
        data = report.load(source)
        victims = list(args.test) or bisect.failed_in_report(data)
        orders = {victim: bisect.worker_order(data, victim) for victim in victims}
        return victims, bisect.order_from_report(data), orders
    if args.order_file is None:
        return "give the timing report of the failing run (REPORT) or --order-file"
    if not args.test:
        return "--order-file needs the failing test: add --test NODEID"
    return list(args.test), bisect.read_order_file(args.order_file), {}


def handle(args: argparse.Namespace) -> int:
    given = pytest_args(args.rest, after_report(), args)
    found = _victims(args)
    if isinstance(found, str):
        return output.error(found)
    victims, everything, orders = found
    if not victims:
        source = args.report or args.report_option
        print(f"testfleet bisect: no test failed in {source}: nothing to diagnose")
        return output.EXIT_OK
    for victim in victims:
        if victim not in everything:
            # Before any run: a typo should cost nothing.
            return output.error(
                f"{victim} is not among the {len(everything)} tests of "
                f"{args.report or args.report_option or args.order_file}: "
                "give its node id as listed there"
            )
    results = [
        _diagnose(victim, orders.get(victim), everything, given, args)
        for victim in victims[: args.max_victims]
    ]
    left_out = victims[args.max_victims :]
    if left_out:
        print(
            f"testfleet bisect: {len(left_out)} failed tests not diagnosed "
            f"(--max-victims {args.max_victims}); they are listed in --json"
        )
    if args.json is not None:
        write_json_atomic(args.json, bisect.document(results, not_diagnosed=left_out))
    return bisect.exit_status(results)


def _diagnose(
    victim: str,
    own: bisect.WorkerOrder | None,
    everything: list[str],
    given: list[str],
    args: argparse.Namespace,
) -> Diagnosis:
    if own is not None and own.note is not None:
        print(f"testfleet bisect: {victim}: bisecting {own.note}")
    result = bisect.diagnose(
        own.order if own is not None else everything,
        victim,
        given,
        jobs=args.jobs,
        max_tests=args.max_tests,
        timeout=args.timeout or None,
        # The option, else TESTFLEET_BISECT_PROPOSE_FIX, else [tool.testfleet], else on.
        propose=bool(settings.load().get("bisect_propose_fix", args.bisect_propose_fix)),
    )
    if own is not None and own.note is not None:
        result.order_source = own.note
        result.notes.insert(0, f"bisected {own.note}")
    sys.stdout.write(result.render())
    return result

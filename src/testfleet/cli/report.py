"""`testfleet report`: a timing report summarized, optionally against a baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command
from testfleet.reporting import analysis as report_analysis
from testfleet.reporting import text as report_text
from testfleet.settings import argtypes
from testfleet.settings import config as settings
from testfleet.settings.kinds import Option
from testfleet.timing import report

NAME = "report"
OPTIONS = (
    Option(NAME, ("path",), "timing report written by --testfleet-report", type=Path),
    *output.options(
        NAME,
        (*report_text.FORMATS, "html"),
        format_help="default: text; html is one self-contained page with the worker timeline",
        json_help="also write the analysis as JSON to this file, atomically",
        summary=True,
    ),
    Option(
        NAME,
        ("--top",),
        "slowest tests to list (default 10)",
        type=argtypes.positive_int,
        default=10,
    ),
    Option(
        NAME,
        ("--run-id",),
        "refuse a report whose run id differs (a stale report from an earlier run)",
    ),
    Option(
        NAME,
        ("--fail-on-slower",),
        "exit 1 when a test got slower than in the baseline",
        action="store_true",
    ),
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="summarize a timing report, optionally against a baseline",
        description="Slowest tests, totals per marker, file and worker, parallel efficiency, "
        "and with --baseline the speedup and the tests that got slower, were added or removed.",
    )


def handle(args: argparse.Namespace) -> int:
    loaded = settings.load()
    # The baseline first: cut down to what the comparison reads, it is small beside the
    # report when that is parsed.
    baseline = (
        report.load(args.baseline, fields=report.COMPARED_FIELDS)
        if args.baseline is not None
        else None
    )
    current = report.load(args.path, run_id=args.run_id, fields=report.SHOWN_FIELDS)
    thresholds = report_analysis.Thresholds(
        ratio=loaded.get("slower_ratio", args.slower_ratio),
        seconds=loaded.get("slower_seconds", args.slower_seconds),
    )
    analysis = report_analysis.analyze(current, baseline, top=args.top, thresholds=thresholds)
    if args.format == "html":
        # Imported here: the page's renderer is the largest module a report can need.
        from testfleet.reporting import html as html_report

        text = html_report.render_run(analysis, current, Path.cwd())
    else:
        text = report_text.render(analysis, args.format)
    output.emit(text, args.output)
    if args.json is not None:
        output.emit(report_text.render(analysis, "json"), args.json)
    section = text if args.format == "markdown" else report_text.render(analysis, "markdown")
    output.append_summaries(args, section)
    if args.fail_on_slower and baseline is not None and analysis["baseline"]["slower"]:
        return output.EXIT_FINDINGS
    return output.EXIT_OK

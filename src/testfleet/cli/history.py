"""`testfleet history`, `history import` and `history prune`: run history, flake rates, trends."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command
from testfleet.core.atomic import write_json_atomic
from testfleet.history import analysis, render, settings
from testfleet.history.record import import_reports, load_classes
from testfleet.history.store import HistoryError, open_history, prune, reading, reclaim, transaction
from testfleet.reporting.analysis import Thresholds
from testfleet.settings import argtypes
from testfleet.settings.kinds import Option

NAME = "history"
OPTIONS = (
    Option(
        NAME,
        ("--runs",),
        "how many of the newest runs to look at (default %(default)s)",
        type=argtypes.count,
        default=analysis.DEFAULT_RUNS,
    ),
    Option(
        NAME,
        ("--recent",),
        "the newest runs that count as recent (default %(default)s)",
        type=argtypes.count,
        default=analysis.DEFAULT_RECENT,
    ),
    Option(NAME, ("--branch",), "only the runs of this branch"),
    Option(
        NAME,
        ("--check",),
        "exit 1 when a newly flaky test's flake rate is above --threshold",
        action="store_true",
    ),
    Option(
        NAME,
        ("--threshold",),
        "flake rate in per cent for --check (default %(default)g)",
        type=argtypes.percent,
        default=analysis.DEFAULT_THRESHOLD,
    ),
    *output.options(
        NAME,
        render.FORMATS,
        format_help="default: text",
        json_help="also write the analysis as JSON here",
        summary=True,
    ),
)
IMPORT = f"{NAME} import"
IMPORT_OPTIONS = (
    Option(IMPORT, ("reports",), "timing reports", type=Path, nargs="+", metavar="REPORT"),
    Option(
        IMPORT,
        ("--classification",),
        "classes of the failed tests (testfleet classify's JSON)",
        type=Path,
    ),
    Option(IMPORT, ("--branch",), "branch the runs were made on", dest="import_branch"),
    Option(IMPORT, ("--ci-run-id",), "CI run the reports come from"),
)


def add(commands: Commands) -> None:
    parser = add_command(
        commands,
        NAME,
        OPTIONS,
        show,
        help="flake rates, newly flaky and slower tests, wall time over the recorded runs",
        description="Reads the run history (recorded by every `testfleet run`) and shows, "
        "over the newest --runs runs: wall time and speedup per run, each flaky test's flake "
        "rate (failed and passed in one run, or on one commit), the newly flaky tests (flaky "
        "only in the newest --recent runs) and the tests whose median duration rose. Exit 0, "
        "or 1 with --check when a newly flaky test's flake rate is above --threshold; 2 on a "
        "usage error or a history that cannot be read.",
    )
    actions = parser.add_subparsers(dest="history_command", metavar="ACTION")
    add_command(
        actions,
        IMPORT,
        IMPORT_OPTIONS,
        import_command,
        help="record existing timing reports in the history",
        description="Records each timing report as a run; a report whose run is already "
        "recorded replaces that record. All reports are checked first: one bad report "
        "records none.",
    )
    add_command(
        actions,
        f"{NAME} prune",
        (),
        prune_command,
        help="fold the per-test results of old runs into per-test totals",
        description="Keeps every run's wall time and counts, and the per-test results of "
        "the newest --keep-runs runs; older results are added to per-test totals and "
        "deleted. `testfleet run` does this after each run.",
    )


def _history_path(args: argparse.Namespace) -> Path:
    return settings.history_path(args.history_path, Path.cwd())


def show(args: argparse.Namespace) -> int:
    path = _history_path(args)
    window = analysis.Window(
        runs=args.runs,
        recent=args.recent,
        branch=args.branch,
        threshold=args.threshold,
        slower=Thresholds(),
    )
    try:
        with open_history(path, create=False) as conn, reading(path):
            result = analysis.analyze(conn, window)
    except HistoryError as exc:
        return output.error(str(exc))
    output.emit(render.render(result, args.format), args.output)
    if args.json is not None:
        write_json_atomic(args.json, result)
    output.append_summaries(args, render.render(result, "markdown"))
    if args.check and analysis.check_failed(result):
        names = ", ".join(f"{r['nodeid']} ({r['flake_rate']:g}%)" for r in result["over_threshold"])
        print(
            f"testfleet history: newly flaky above {args.threshold:g}%: {names}",
            file=sys.stderr,
        )
        return output.EXIT_FINDINGS
    return output.EXIT_OK


def import_command(args: argparse.Namespace) -> int:
    path = _history_path(args)
    meta = {"branch": args.import_branch, "ci_run_id": args.ci_run_id}
    try:
        classes = load_classes(args.classification) if args.classification else None
        loaded = import_reports(path, args.reports, meta, classes=classes)
    except HistoryError as exc:
        return output.error(str(exc))
    tests = sum(len(data["tests"]) for data in loaded)
    print(f"testfleet history: {len(loaded)} run(s), {tests} test results recorded in {path}")
    return output.EXIT_OK


def prune_command(args: argparse.Namespace) -> int:
    path = _history_path(args)
    keep = args.keep_runs if args.keep_runs is not None else settings.keep_runs(Path.cwd())
    try:
        with open_history(path, create=False) as conn:
            with transaction(conn, path):
                folded = prune(conn, keep)
            reclaim(conn, path)
    except HistoryError as exc:
        return output.error(str(exc))
    print(f"testfleet history: results of {folded} old run(s) folded into per-test totals")
    return output.EXIT_OK

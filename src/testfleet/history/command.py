"""`testfleet history`, `history import` and `history prune`: arguments and exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from testfleet.core import paths
from testfleet.core.atomic import append_text_atomic, write_json_atomic, write_text_atomic
from testfleet.history import analysis, render, settings
from testfleet.history.record import import_reports, load_classes
from testfleet.history.store import (
    DEFAULT_KEEP_RUNS,
    HistoryError,
    open_history,
    prune,
    reading,
    reclaim,
    transaction,
)
from testfleet.reporting.analysis import Thresholds

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a percentage such as 5 or 2.5%"
        ) from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage from 0 to 100")
    return value


def _path_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--history-path",
        type=Path,
        default=default,
        metavar="FILE",
        help=f"history file (default ${settings.PATH_ENV}, else history_path in "
        f"[tool.testfleet], else {paths.HISTORY})",
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "history",
        help="flake rates, newly flaky and slower tests, wall time over the recorded runs",
        description="Reads the run history (recorded by every `testfleet run`) and shows, "
        "over the newest --runs runs: wall time and speedup per run, each flaky test's flake "
        "rate (failed and passed in one run, or on one commit), the newly flaky tests (flaky "
        "only in the newest --recent runs) and the tests whose median duration rose. Exit 0, "
        "or 1 with --check when a newly flaky test's flake rate is above --threshold; 2 on a "
        "usage error or a history that cannot be read.",
    )
    _path_option(parser, None)
    parser.add_argument(
        "--runs",
        type=_count,
        default=analysis.DEFAULT_RUNS,
        help="how many of the newest runs to look at (default %(default)s)",
    )
    parser.add_argument(
        "--recent",
        type=_count,
        default=analysis.DEFAULT_RECENT,
        help="the newest runs that count as recent (default %(default)s)",
    )
    parser.add_argument("--branch", help="only the runs of this branch")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a newly flaky test's flake rate is above --threshold",
    )
    parser.add_argument(
        "--threshold",
        type=_percent,
        default=analysis.DEFAULT_THRESHOLD,
        help="flake rate in per cent for --check (default %(default)g)",
    )
    parser.add_argument("--format", choices=render.FORMATS, default="text", help="default: text")
    parser.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    parser.add_argument("--json", type=Path, help="also write the analysis as JSON here")
    parser.add_argument("--summary", type=Path, help="append the markdown section to this file")
    parser.add_argument(
        "--step-summary",
        action="store_true",
        help=f"also append it to the file named by ${STEP_SUMMARY_ENV}",
    )
    parser.set_defaults(handler=show)
    sub = parser.add_subparsers(dest="history_command", metavar="ACTION")
    _add_import(sub)
    _add_prune(sub)


def _add_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    load = sub.add_parser(
        "import",
        help="record existing timing reports in the history",
        description="Records each timing report as a run; a report whose run is already "
        "recorded replaces that record. All reports are checked first: one bad report "
        "records none.",
    )
    load.add_argument("reports", type=Path, nargs="+", metavar="REPORT")
    _path_option(load, argparse.SUPPRESS)
    load.add_argument(
        "--classification",
        type=Path,
        help="classes of the failed tests (testfleet classify's JSON)",
    )
    load.add_argument("--branch", dest="import_branch", help="branch the runs were made on")
    load.add_argument("--ci-run-id", help="CI run the reports come from")
    load.set_defaults(handler=import_command)


def _add_prune(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fold = sub.add_parser(
        "prune",
        help="fold the per-test results of old runs into per-test totals",
        description="Keeps every run's wall time and counts, and the per-test results of "
        "the newest --keep-runs runs; older results are added to per-test totals and "
        "deleted. `testfleet run` does this after each run.",
    )
    _path_option(fold, argparse.SUPPRESS)
    fold.add_argument(
        "--keep-runs",
        type=_count,
        default=None,
        help="runs whose per-test results are kept (default $TESTFLEET_HISTORY_KEEP_RUNS, "
        f"else history_keep_runs in [tool.testfleet], else {DEFAULT_KEEP_RUNS})",
    )
    fold.set_defaults(handler=prune_command)


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
        return _error(str(exc))
    text = render.render(result, args.format)
    if args.output is not None:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    if args.json is not None:
        write_json_atomic(args.json, result)
    summary_file = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    for target in (
        args.summary,
        Path(summary_file) if args.step_summary and summary_file else None,
    ):
        if target is not None:
            append_text_atomic(target, render.render(result, "markdown"))
    if args.check and analysis.check_failed(result):
        names = ", ".join(f"{r['nodeid']} ({r['flake_rate']:g}%)" for r in result["over_threshold"])
        print(
            f"testfleet history: newly flaky above {args.threshold:g}%: {names}",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    return EXIT_OK


def import_command(args: argparse.Namespace) -> int:
    path = _history_path(args)
    meta = {"branch": args.import_branch, "ci_run_id": args.ci_run_id}
    try:
        classes = load_classes(args.classification) if args.classification else None
        loaded = import_reports(path, args.reports, meta, classes=classes)
    except HistoryError as exc:
        return _error(str(exc))
    tests = sum(len(data["tests"]) for data in loaded)
    print(f"testfleet history: {len(loaded)} run(s), {tests} test results recorded in {path}")
    return EXIT_OK


def prune_command(args: argparse.Namespace) -> int:
    path = _history_path(args)
    keep = args.keep_runs if args.keep_runs is not None else settings.keep_runs(Path.cwd())
    try:
        with open_history(path, create=False) as conn:
            with transaction(conn, path):
                folded = prune(conn, keep)
            reclaim(conn, path)
    except HistoryError as exc:
        return _error(str(exc))
    print(f"testfleet history: results of {folded} old run(s) folded into per-test totals")
    return EXIT_OK


def _error(message: str) -> int:
    print(f"testfleet: error: {message}", file=sys.stderr)
    return EXIT_USAGE

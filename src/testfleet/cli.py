"""The ``testfleet`` command line: argument parsing and exit codes; the work is elsewhere."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from testfleet import __version__, report, runner, workers
from testfleet.timing import write_json_atomic, write_text_atomic

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
REPORT_ENV = "TESTFLEET_REPORT"
DEFAULT_REPORT = "reports/test-timing.json"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _workers(text: str) -> workers.Workers:
    try:
        return workers.parse_workers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testfleet",
        description="Timing reports, phased parallel runs and randomized runs for pytest suites.",
    )
    parser.add_argument("--version", action="version", version=f"testfleet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    show = commands.add_parser(
        "report",
        help="summarize a timing report, optionally against a baseline",
        description="Slowest tests, totals per marker, file and worker, parallel efficiency, "
        "and with --baseline the speedup and the tests that got slower, were added or removed.",
    )
    show.add_argument("path", type=Path, help="timing report written by --testfleet-report")
    show.add_argument("--baseline", type=Path, help="report to compare with")
    show.add_argument("--format", choices=report.FORMATS, default="text", help="default: text")
    show.add_argument(
        "--top", type=_positive_int, default=10, help="slowest tests to list (default 10)"
    )
    show.add_argument(
        "--slower-ratio",
        type=_non_negative_float,
        default=report.Thresholds.ratio,
        help="a test is slower when it takes at least this many times its baseline time "
        "(default %(default)s) ...",
    )
    show.add_argument(
        "--slower-seconds",
        type=_non_negative_float,
        default=report.Thresholds.seconds,
        help="... and at least this many seconds more (default %(default)s)",
    )
    show.add_argument(
        "--output", "-o", type=Path, help="write to this file (atomically) instead of stdout"
    )
    show.add_argument(
        "--step-summary",
        action="store_true",
        help=f"also append the output to the file named by ${STEP_SUMMARY_ENV}, when that is set",
    )
    show.add_argument(
        "--run-id",
        help="refuse a report whose run id differs (a stale report from an earlier run)",
    )
    show.add_argument(
        "--fail-on-slower",
        action="store_true",
        help="exit 1 when a test got slower than in the baseline",
    )

    merge = commands.add_parser(
        "merge",
        help="join the reports of consecutive phases of one run into one report",
    )
    merge.add_argument("output", type=Path, help="merged report to write")
    merge.add_argument("inputs", type=Path, nargs="+", help="phase reports, in the order they ran")

    run = commands.add_parser(
        "run",
        help="run pytest on N workers, then the `serial` tests alone; one timing report",
        description="Runs the suite with pytest-xdist, then the tests marked `serial` in one "
        "process, and merges both timing reports. With --workers 1 (or PYTEST_WORKERS=1) it "
        "runs once, without xdist. Arguments after -- go to pytest.",
    )
    run.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help=f"worker count or 'auto'; default ${workers.WORKERS_ENV}, else auto",
    )
    run.add_argument("--dist", default="loadgroup", help="xdist --dist mode (default loadgroup)")
    run.add_argument(
        "--report",
        type=Path,
        default=None,
        help=f"merged timing report (default ${REPORT_ENV}, else {DEFAULT_REPORT})",
    )
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then pytest arguments")

    randomized = commands.add_parser(
        "randomized",
        help="run the suite in random order with several seeds; print how to reproduce each",
        description="Runs pytest once per seed with pytest-randomly, in one process, and "
        "prints for each seed the command that reproduces it. Arguments after -- go to pytest.",
    )
    randomized.add_argument(
        "--seeds",
        type=_positive_int,
        default=None,
        help=f"how many random seeds (default ${runner.SEEDS_ENV}, else {runner.DEFAULT_SEEDS})",
    )
    randomized.add_argument(
        "--seed", type=int, action="append", default=[], help="run this seed (repeatable)"
    )
    randomized.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports/randomized"),
        help="where the per-seed timing reports go (default reports/randomized)",
    )
    randomized.add_argument(
        "pytest_args", nargs=argparse.REMAINDER, help="-- then pytest arguments"
    )
    show.set_defaults(handler=_report)
    merge.set_defaults(handler=_merge)
    run.set_defaults(handler=_run)
    randomized.set_defaults(handler=_randomized)
    _add_bisect(commands)
    _add_classify(commands)
    _add_audit(commands)
    return parser


# Each diagnosis command adds its subparser here and sets `handler` to its function.


def _add_bisect(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet bisect`: order-dependence bisection."""


def _add_classify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet classify`: parallel-only, flaky and order-dependent failures."""


def _add_audit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet audit`: static isolation audit."""


def _pytest_args(args: Sequence[str]) -> list[str]:
    rest = list(args)
    return rest[1:] if rest[:1] == ["--"] else rest


def _error(message: str) -> int:
    print(f"testfleet: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except report.ReportError as exc:
        return _error(str(exc))
    except ValueError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        print("testfleet: interrupted; reports that existed are left as they were", file=sys.stderr)
        return EXIT_INTERRUPTED


def _report(args: argparse.Namespace) -> int:
    current = report.load(args.path)
    if args.run_id is not None and current["run"].get("id") != args.run_id:
        raise report.ReportError(
            f"{args.path} is from run {current['run'].get('id')!r}, not from run {args.run_id!r}: "
            "that run did not write its report; read its output above"
        )
    baseline = report.load(args.baseline) if args.baseline is not None else None
    thresholds = report.Thresholds(ratio=args.slower_ratio, seconds=args.slower_seconds)
    analysis = report.analyze(current, baseline, top=args.top, thresholds=thresholds)
    text = report.render(analysis, args.format)
    if args.output is not None:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    summary_file = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    if args.step_summary and summary_file:
        with Path(summary_file).open("a", encoding="utf-8") as handle:
            handle.write(text)
    if args.fail_on_slower and baseline is not None and analysis["baseline"]["slower"]:
        return EXIT_FINDINGS
    return EXIT_OK


def _merge(args: argparse.Namespace) -> int:
    loaded = [report.load(path) for path in args.inputs]
    merged = report.merge(loaded, [str(path) for path in args.inputs])
    write_json_atomic(args.output, merged)
    print(
        f"testfleet: merged {len(args.inputs)} reports "
        f"({merged['summary']['tests']} tests) into {args.output}"
    )
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    count = args.workers if args.workers is not None else workers.workers_from_env()
    path = args.report or Path(os.environ.get(REPORT_ENV, "").strip() or DEFAULT_REPORT)
    return runner.run_phases(count, _pytest_args(args.pytest_args), path, dist=args.dist)


def _randomized(args: argparse.Namespace) -> int:
    seeds = runner.seeds_to_run(args.seeds, args.seed)
    return runner.run_randomized(seeds, _pytest_args(args.pytest_args), args.report_dir)


if __name__ == "__main__":
    raise SystemExit(main())

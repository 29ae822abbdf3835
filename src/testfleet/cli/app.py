"""The ``testfleet`` command line: argument parsing and exit codes; the work is elsewhere."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from testfleet.core import workers
from testfleet.core.atomic import append_text_atomic, write_json_atomic, write_text_atomic
from testfleet.reporting import analysis as report_analysis
from testfleet.reporting import text as report_text
from testfleet.runs import phases
from testfleet.runs import randomized as randomized_mod
from testfleet.runs.commands import DEFAULT_DIST, DIST_CHOICES, check_dist
from testfleet.timing import report
from testfleet.timing.records import dumps_report

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
REPORT_ENV = "TESTFLEET_REPORT"
DEFAULT_REPORT = "reports/test-timing.json"
DEFAULT_BASELINE = "reports/test-timing-baseline.json"


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


def _shard(text: str) -> str:
    from testfleet.sharding import plan as sharding

    return sharding.shard_choice(text)


def _dist(text: str) -> str:
    try:
        return check_dist(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Version(argparse.Action):
    """``--version``: the installed version, read only when asked for (it costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from testfleet import __version__

        print(f"testfleet {__version__}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``only`` the one command a run needs.

    A command's parser imports what its defaults and help texts name (bisect, the
    audit's rules, the history): a `testfleet run` builds its own and pays for no other.
    """
    parser = argparse.ArgumentParser(
        prog="testfleet",
        description="Timing reports, phased parallel runs and randomized runs for pytest suites.",
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, add in COMMANDS.items():
        if only is None or name == only:
            add(commands)
    return parser


def _add_report(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    show = commands.add_parser(
        "report",
        help="summarize a timing report, optionally against a baseline",
        description="Slowest tests, totals per marker, file and worker, parallel efficiency, "
        "and with --baseline the speedup and the tests that got slower, were added or removed.",
    )
    show.add_argument("path", type=Path, help="timing report written by --testfleet-report")
    show.add_argument("--baseline", type=Path, help="report to compare with")
    show.add_argument(
        "--format",
        choices=(*report_text.FORMATS, "html"),
        default="text",
        help="default: text; html is one self-contained page with the worker timeline",
    )
    show.add_argument(
        "--top", type=_positive_int, default=10, help="slowest tests to list (default 10)"
    )
    show.add_argument(
        "--slower-ratio",
        type=_non_negative_float,
        default=None,
        help="a test is slower when it takes at least this many times its baseline time "
        f"(default: setting slower_ratio, {report_analysis.Thresholds.ratio}) ...",
    )
    show.add_argument(
        "--slower-seconds",
        type=_non_negative_float,
        default=None,
        help="... and at least this many seconds more "
        f"(default: setting slower_seconds, {report_analysis.Thresholds.seconds})",
    )
    show.add_argument(
        "--output", "-o", type=Path, help="write to this file (atomically) instead of stdout"
    )
    show.add_argument(
        "--summary", type=Path, help="append the markdown section to this file, atomically"
    )
    show.add_argument(
        "--step-summary",
        action="store_true",
        help=f"also append the markdown section to the file named by ${STEP_SUMMARY_ENV}, "
        "when that is set",
    )
    show.add_argument(
        "--json", type=Path, help="also write the analysis as JSON to this file, atomically"
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
    show.set_defaults(handler=_report)


def _add_merge(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    merge = commands.add_parser(
        "merge",
        help="join the reports of consecutive phases of one run into one report",
        description="Joins the timing reports of the phases of one run, in the order they "
        "ran, and prints the merged report (JSON) or writes it to --output. The old form, "
        "`testfleet merge OUTPUT REPORT...`, still works while OUTPUT does not exist.",
    )
    merge.add_argument(
        "reports", type=Path, nargs="+", metavar="REPORT", help="phase reports, in run order"
    )
    merge.add_argument(
        "--output", "-o", type=Path, help="write the merged report here (atomically)"
    )
    merge.set_defaults(handler=_merge)


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="run pytest on N workers, the `serial` tests last and alone; one timing report",
        description="Runs the suite with pytest-xdist and testfleet's scheduler: longest "
        "tests first from past durations, xdist_group groups kept together, the tests marked "
        "`serial` last, alone on one worker, in the same session. With one of xdist's --dist "
        "modes the `serial` tests run in a second pytest, only when there are some. With "
        "--workers 1 (or PYTEST_WORKERS=1) it runs once, in one process. Ends with the whole "
        "run's pytest-style closing line. Arguments after -- go to pytest.",
    )
    run.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help=f"worker count or 'auto'; default ${workers.WORKERS_ENV}, else auto",
    )
    run.add_argument(
        "--dist",
        type=_dist,
        default=None,
        help=f"scheduling mode: {', '.join(DIST_CHOICES)} (default $TESTFLEET_DIST, else "
        f"dist in [tool.testfleet], else {DEFAULT_DIST})",
    )
    run.add_argument(
        "--report",
        type=Path,
        default=None,
        help=f"merged timing report (default ${REPORT_ENV}, else {DEFAULT_REPORT})",
    )
    run.add_argument(
        "--history-path",
        type=Path,
        default=None,
        metavar="FILE",
        help="run history to add the run to (default $TESTFLEET_HISTORY_PATH, else "
        "history_path in [tool.testfleet], else reports/history.sqlite)",
    )
    run.add_argument(
        "--no-history",
        dest="history",
        action="store_false",
        default=None,
        help="do not add the run to the history (also: history = false in [tool.testfleet])",
    )
    run.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run only shard I of N (from 1), split by recorded durations; 'auto' reads "
        "the CI's variables (GitLab, Buildkite); default $TESTFLEET_SHARD (docs/sharding.md)",
    )
    run.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="timing report to take past durations from, after the pytest cache's store "
        f"and the report this run replaces (default {DEFAULT_BASELINE} when it exists)",
    )
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then pytest arguments")
    run.set_defaults(handler=_run)


def _add_randomized(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    randomized = commands.add_parser(
        "randomized",
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
    randomized.add_argument(
        "--seeds",
        type=_positive_int,
        default=None,
        help=(
            f"how many random seeds (default ${randomized_mod.SEEDS_ENV}, "
            f"else {randomized_mod.DEFAULT_SEEDS})"
        ),
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
    # Failing seeds are diagnosed with the bisection of `testfleet bisect`.
    _bisect_options(randomized)
    randomized.add_argument(
        "--no-reverse",
        dest="reverse",
        action="store_false",
        help="skip the run in reversed collection order that comes before the seeds",
    )
    randomized.add_argument(
        "--no-bisect",
        dest="bisect",
        action="store_false",
        help="do not diagnose the failing tests of failing seeds",
    )
    randomized.add_argument(
        "--json",
        "--order-report",
        dest="order_report",
        type=Path,
        default=Path(randomized_mod.ORDER_REPORT),
        help="where the diagnoses go (default %(default)s; markdown beside it, .md)",
    )
    randomized.add_argument(
        "--summary", type=Path, help="append the markdown section to this file, atomically"
    )
    randomized.add_argument(
        "--step-summary",
        action="store_true",
        help=f"also append it to the file named by ${STEP_SUMMARY_ENV}, when that is set",
    )
    randomized.add_argument(
        "pytest_args", nargs=argparse.REMAINDER, help="-- then pytest arguments"
    )
    randomized.set_defaults(handler=_randomized)


def _add_history(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet history`: run history, flake rates and trends."""
    from testfleet.history import command

    command.add_parser(commands)


# Each diagnosis command adds its subparser here and sets `handler` to its function.


def _add_bisect(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet bisect`: order-dependence bisection."""
    from testfleet.diagnose import bisect

    parser = commands.add_parser(
        "bisect",
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
    _bisect_source_options(parser)
    _bisect_options(parser)
    parser.add_argument(
        "--timeout",
        type=_non_negative_float,
        default=0.0,
        help="seconds one pytest run may take, then it counts as failing (default 0: no limit)",
    )
    parser.add_argument(
        "--json", type=Path, help=f"also write the results ({bisect.SCHEMA}) here, atomically"
    )
    # REPORT and the options that follow it are parsed by _bisect, up to the `--`: a
    # positional before a REMAINDER would take the first pytest argument after `--`.
    parser.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="REPORT [options] [-- pytest arguments]",
        help="timing report of the failing run: its tests' start times give the order (in a "
        "parallel run, the order of the failing test's worker)",
    )
    parser.set_defaults(handler=_bisect, report=None)


def _bisect_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report", dest="report_option", type=Path, default=None, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--order-file", type=Path, help="node ids in the order they ran, one per line"
    )
    parser.add_argument(
        "--test",
        action="append",
        default=[],
        metavar="NODEID",
        help="the test to diagnose (repeatable); default: every failed test of REPORT",
    )


def _bisect_options(parser: argparse.ArgumentParser) -> None:
    from testfleet.diagnose import bisect

    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        help="pytest runs at once (default: from the measured cost of the probes and the "
        "free CPUs, at most 4); 1 when the tests share files or databases between processes",
    )
    parser.add_argument(
        "--max-tests",
        type=_positive_int,
        default=bisect.DEFAULT_MAX_TESTS,
        help="the most tests a cause may need before it is called ambiguous (default %(default)s)",
    )
    parser.add_argument(
        "--max-victims",
        type=_positive_int,
        default=bisect.DEFAULT_MAX_VICTIMS,
        help="failing tests to diagnose at most (default %(default)s)",
    )


def _bisect_rest(args: argparse.Namespace) -> list[str]:
    """Parse the options that follow REPORT; return the pytest arguments after `--`."""
    rest = list(args.rest)
    cut = rest.index("--") if "--" in rest else len(rest)
    if rest[:cut]:
        options = argparse.ArgumentParser(prog="testfleet bisect REPORT")
        options.add_argument("report", type=Path, nargs="?")
        _bisect_source_options(options)
        _bisect_options(options)
        options.add_argument("--timeout", type=_non_negative_float, default=args.timeout)
        options.add_argument("--json", type=Path, default=args.json)
        given = options.parse_args(rest[:cut])
        for name, value in vars(given).items():
            if value is not None and value != options.get_default(name):
                setattr(args, name, value)
    return rest[cut + 1 :]


def _bisect(args: argparse.Namespace) -> int:
    from testfleet.diagnose import bisect

    pytest_args = _bisect_rest(args)
    source = args.report or args.report_option
    if source is not None and args.order_file is not None:
        return _error("give either a REPORT or --order-file, not both")
    orders: dict[str, bisect.WorkerOrder] = {}
    if source is not None:
        data = report.load(source)
        victims = list(args.test) or bisect.failed_in_report(data)
        if not victims:
            print(f"testfleet bisect: no test failed in {source}: nothing to diagnose")
            return EXIT_OK
        orders = {victim: bisect.worker_order(data, victim) for victim in victims}
        everything = bisect.order_from_report(data)
    elif args.order_file is not None:
        everything = bisect.read_order_file(args.order_file)
        victims = list(args.test)
        if not victims:
            return _error("--order-file needs the failing test: add --test NODEID")
    else:
        return _error("give the timing report of the failing run (REPORT) or --order-file")
    for victim in victims:
        if victim not in everything:
            # Before any run: a typo should cost nothing.
            return _error(
                f"{victim} is not among the {len(everything)} tests of "
                f"{source or args.order_file}: give its node id as listed there"
            )
    left_out = victims[args.max_victims :]
    results = []
    for victim in victims[: args.max_victims]:
        own = orders.get(victim)
        if own is not None and own.note is not None:
            print(f"testfleet bisect: {victim}: bisecting {own.note}")
        result = bisect.diagnose(
            own.order if own is not None else everything,
            victim,
            pytest_args,
            jobs=args.jobs,
            max_tests=args.max_tests,
            timeout=args.timeout or None,
        )
        if own is not None and own.note is not None:
            result.order_source = own.note
            result.notes.insert(0, f"bisected {own.note}")
        sys.stdout.write(result.render())
        results.append(result)
    if left_out:
        print(
            f"testfleet bisect: {len(left_out)} failed tests not diagnosed "
            f"(--max-victims {args.max_victims}); they are listed in --json"
        )
    if args.json is not None:
        write_json_atomic(args.json, bisect.document(results, not_diagnosed=left_out))
    return bisect.exit_status(results)


def _randomized(args: argparse.Namespace) -> int:
    from testfleet.runs import randomized

    seeds = randomized.seeds_to_run(args.seeds, args.seed)
    return randomized.run_randomized(
        seeds,
        _pytest_args(args.pytest_args),
        args.report_dir,
        reverse=args.reverse,
        bisect=args.bisect,
        order_report=args.order_report,
        summary=args.summary,
        step_summary=_step_summary() if args.step_summary else None,
        jobs=args.jobs,
        max_tests=args.max_tests,
        max_victims=args.max_victims,
    )


def _add_classify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet classify`: parallel-only, flaky and order-dependent failures."""
    parser = commands.add_parser(
        "classify",
        help="rerun a run's failed tests: failure, parallel-only, flaky or order-dependent",
        description="Runs each failed test of the run again, serially after the tests that "
        "ran before it on its worker and alone, --runs times each, and classifies it. Adds "
        "the reruns to REPORT as attempts 2, 3, ... and writes --json. Exit 0 when every "
        "failed test is flaky and the flaky tests are at most --threshold per cent of the "
        "tests, 1 otherwise, 2 on a usage or report error, 5 when no test failed. "
        "Arguments after -- go to pytest (options only: the node ids are added).",
    )
    parser.add_argument("report", type=Path, help="timing report of the run (testfleet run)")
    _classify_options(parser)
    # REMAINDER after a positional also takes the options that follow REPORT: _classify
    # parses those itself, up to the `--`.
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- then pytest options")
    parser.set_defaults(handler=_classify)


def _classify_options(parser: argparse.ArgumentParser) -> None:
    from testfleet.diagnose import classify

    def threshold(text: str) -> float:
        try:
            return classify.parse_threshold(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument(
        "--runs",
        type=_positive_int,
        default=None,
        help=f"reruns in each mode (default ${classify.RUNS_ENV}, else {classify.DEFAULT_RUNS})",
    )
    parser.add_argument(
        "--threshold",
        type=threshold,
        default=None,
        help="flaky tests, in per cent of the run's tests, above which the run fails "
        f"(default ${classify.THRESHOLD_ENV}, else {classify.DEFAULT_THRESHOLD:g})",
    )
    parser.add_argument(
        "--json",
        dest="output",
        type=Path,
        default=classify.DEFAULT_OUTPUT,
        help="classification JSON (default %(default)s)",
    )
    # The old name of --json, kept working.
    parser.add_argument("--output", dest="output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--summary", type=Path, help="append a markdown section to this file")
    parser.add_argument(
        "--step-summary",
        action="store_true",
        help=f"also append it to the file named by ${STEP_SUMMARY_ENV}, when that is set",
    )
    parser.add_argument("--run-id", help="refuse a report whose run id differs (a stale report)")


def _classify(args: argparse.Namespace) -> int:
    from testfleet.diagnose import classify, classify_render

    rest = list(args.rest)
    cut = rest.index("--") if "--" in rest else len(rest)
    if rest[:cut]:
        options = argparse.ArgumentParser(prog="testfleet classify REPORT")
        _classify_options(options)
        options.parse_args(rest[:cut], namespace=args)
    runs = args.runs if args.runs is not None else classify.runs_from_env()
    limit = args.threshold if args.threshold is not None else classify.threshold_from_env()
    try:
        result = classify.classify(
            args.report, rest[cut + 1 :], runs, limit, output=args.output, run_id=args.run_id
        )
    except classify.RerunError as exc:
        return _error(str(exc))
    summary_file = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    targets = [args.summary, Path(summary_file) if args.step_summary and summary_file else None]
    for target in targets:
        if target is not None:
            classify_render.append_summary(result, target)
    return result.exit_status


def _add_audit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet audit`: static isolation audit."""
    # Imported here, like the handler's: the audit's modules load only for this command.
    from testfleet.diagnose.audit import rules as audit_rules
    from testfleet.diagnose.audit import scan as audit

    parser = commands.add_parser(
        "audit",
        help="find isolation hazards in test code without running it",
        description="Reads the Python files under PATH (AST, nothing is imported or run) "
        "and lists what breaks parallel runs: shared paths and ports, shared state, fixed "
        "names, sleeps, pattern cleanups, data read but not created. Silence a line with "
        "'# testfleet: ignore[TF101]' (or a bare '# testfleet: ignore'). Exit 0 clean, "
        "1 findings at or above --fail-on, 2 an unknown path or a file that does not parse "
        "(the other files are still audited and reported).",
    )
    parser.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="files or directories")
    parser.add_argument(
        "--format", choices=audit.FORMATS, default="text", help="output format (default text)"
    )
    parser.add_argument(
        "--output", "-o", type=Path, help="write to this file (atomically) instead of stdout"
    )
    parser.add_argument(
        "--fail-on",
        choices=audit_rules.SEVERITIES,
        default=audit_rules.LOW,
        help="exit 1 when a finding has this severity or higher (default low: any finding)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip paths matching this glob, relative to --root (repeatable), e.g. tests/material",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="show paths relative to this directory (default: the current one)",
    )
    parser.set_defaults(handler=_audit)


def _audit(args: argparse.Namespace) -> int:
    from testfleet.diagnose.audit import scan as audit

    result = audit.audit_paths(args.paths, args.root, args.exclude)
    text = audit.render(result, args.format)
    if args.output is not None:
        write_text_atomic(args.output, text)
        print(f"testfleet: audit: {audit.summary(result)}; written to {args.output}")
    else:
        sys.stdout.write(text)
    if result.errors:
        # The findings above are incomplete: a file that does not parse was not audited.
        problems = "; ".join(result.errors)
        return _error(f"{len(result.errors)} file(s) could not be audited: {problems}")
    return EXIT_FINDINGS if result.at_or_above(args.fail_on) else EXIT_OK


def _add_config(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet config`: the effective settings and where each comes from."""
    parser = commands.add_parser(
        "config",
        help="show every setting's effective value and where it came from",
        description="Reads [tool.testfleet] in the project's pyproject.toml and the "
        "environment and prints each setting's value and its source: a command-line option "
        "beats an environment variable, which beats pyproject.toml, which beats the default. "
        "Exit 0, or 2 when the table has an unknown key or a wrong type, pyproject.toml is "
        "malformed or a variable has a value that cannot be used.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these settings")
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    parser.add_argument(
        "--output", "-o", type=Path, help="write to this file (atomically) instead of stdout"
    )
    # The reference tables of docs/configuration.md, generated from the declarations.
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(handler=_config)


def _config(args: argparse.Namespace) -> int:
    from testfleet.settings import config
    from testfleet.settings import table as settings

    if args.reference:
        text = config.render_reference(settings.SETTINGS, settings.SECTIONS)
    else:
        loaded = config.load()
        values = [loaded.resolve(name) for name in args.names or loaded.settings]
        if args.format == "json":
            text = json.dumps(config.render_json(loaded, values), indent=2) + "\n"
        else:
            text = config.render_text(loaded, values, settings.SECTIONS)
    if args.output is not None:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _add_shard(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet shard --plan N`: how the suite would split into N shards."""
    parser = commands.add_parser(
        "shard",
        help="show how the suite splits into N CI shards: tests and predicted seconds each",
        description="Collects the suite (nothing runs) and prints the plan every shard of "
        "`testfleet run --shard I/N` computes: each shard's test count and predicted seconds, "
        "from the durations of the committed baseline. Arguments after -- go to pytest.",
    )
    parser.add_argument(
        "--plan", type=_positive_int, required=True, metavar="N", help="number of shards"
    )
    parser.add_argument(
        "--durations",
        type=Path,
        default=None,
        help="timing report whose durations choose the split (default: the baseline, "
        "reports/test-timing-baseline.json, when it exists)",
    )
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    parser.add_argument(
        "--output", "-o", type=Path, help="write to this file (atomically) instead of stdout"
    )
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then pytest arguments")
    parser.set_defaults(handler=_shard_plan)


def _shard_plan(args: argparse.Namespace) -> int:
    import tempfile

    from testfleet.sharding import plan as sharding

    if args.durations is not None and not args.durations.is_file():
        return _error(f"--durations: {args.durations} does not exist: give a timing report")
    with tempfile.TemporaryDirectory(prefix="testfleet-plan-") as tmp:
        document = sharding.collect_plan(
            args.plan, _pytest_args(args.pytest_args), args.durations, Path(tmp)
        )
    if args.format == "json":
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = sharding.render_plan(document, args.format)
    if args.output is not None:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _add_init(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet init`: set a project up (the logic is in testfleet.scaffold)."""
    parser = commands.add_parser(
        "init",
        help="set a project up: noxfile, tasks, Dockerfile, compose, CI workflow, docs",
        description="Writes a thin noxfile.py and tasks.py, a Dockerfile with a test stage, "
        "docker-compose.test.yml, a GitHub workflow, docs/testing.md, docs/rollback.md, "
        "docs/test-isolation-audit.md and CODEOWNERS, and adds [tool.testfleet] and the "
        "coverage settings to pyproject.toml. A file the project has is kept (its difference "
        "is shown) unless --force. Exit 0 when done, 2 when the project cannot be set up "
        "(nothing is written then).",
    )
    parser.add_argument(
        "path", type=Path, nargs="?", default=Path(), help="the project (default: here)"
    )
    parser.add_argument(
        "--neo4j",
        action="store_true",
        help="add a Neo4j service even though the neo4j driver is not among the dependencies",
    )
    parser.add_argument("--force", action="store_true", help="replace files that differ")
    parser.add_argument("--dry-run", action="store_true", help="only show what would change")
    parser.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    from testfleet import scaffold

    return scaffold.run(args.path, neo4j=args.neo4j, force=args.force, dry_run=args.dry_run)


def _add_combine(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`testfleet combine`: the shards' reports and coverage data, as one run."""
    from testfleet.sharding import combine

    parser = commands.add_parser(
        "combine",
        help="combine the timing reports (and coverage data) of a CI matrix's shards",
        description="Checks that the reports are the N shards of one run (same collection, "
        "plan and commit; none missing or given twice) and writes one timing report in which "
        "every collected test appears once. Exit 0 when complete, 1 when a shard did not "
        "finish its tests (they are listed; the finished ones are kept), 2 when the reports "
        "do not make one run (the message names the shard).",
    )
    parser.add_argument("reports", type=Path, nargs="+", metavar="REPORT", help="shard reports")
    parser.add_argument(
        "--combined",
        type=Path,
        default=Path(DEFAULT_REPORT),
        help="the combined timing report to write (default %(default)s)",
    )
    parser.add_argument(
        "--coverage",
        type=Path,
        nargs="+",
        default=[],
        metavar="DATAFILE",
        help="the shards' coverage data files, combined with the [paths] of your coverage "
        "settings into --coverage-file",
    )
    parser.add_argument(
        "--coverage-file",
        type=Path,
        default=None,
        help="combined coverage data (default: coverage's own, $COVERAGE_FILE or .coverage)",
    )
    parser.add_argument("--format", choices=combine.FORMATS, default="text")
    parser.add_argument(
        "--output", "-o", type=Path, help="write to this file (atomically) instead of stdout"
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON, atomically")
    parser.add_argument("--summary", type=Path, help="append a markdown section to this file")
    parser.add_argument(
        "--step-summary",
        action="store_true",
        help=f"also append it to the file named by ${STEP_SUMMARY_ENV}, when that is set",
    )
    parser.set_defaults(handler=_combine)


def _combine(args: argparse.Namespace) -> int:
    from testfleet.core.atomic import append_text_atomic
    from testfleet.sharding import combine

    loaded = [(str(path), report.load(path)) for path in args.reports]
    result = combine.combine(loaded)
    if args.coverage:
        written = combine.combine_coverage(args.coverage, args.coverage_file)
        print(f"testfleet: {len(args.coverage)} coverage data files combined into {written}")
    write_json_atomic(args.combined, result.report)
    text = combine.render(result, args.format)
    if args.output is not None:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    print(f"testfleet: combined timing report written to {args.combined}")
    if args.json is not None:
        write_json_atomic(args.json, result.to_json())
    summary_file = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    markdown = combine.render(result, "markdown")
    for target in (
        args.summary,
        Path(summary_file) if args.step_summary and summary_file else None,
    ):
        if target is not None:
            append_text_atomic(target, markdown)
    return EXIT_OK if result.complete else EXIT_FINDINGS


#: Every command, in the order ``testfleet --help`` lists them.
COMMANDS: dict[str, Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = {
    "report": _add_report,
    "merge": _add_merge,
    "run": _add_run,
    "randomized": _add_randomized,
    "bisect": _add_bisect,
    "classify": _add_classify,
    "audit": _add_audit,
    "config": _add_config,
    "history": _add_history,
    "init": _add_init,
    "shard": _add_shard,
    "combine": _add_combine,
}


def _step_summary() -> Path | None:
    """The file named by ``$GITHUB_STEP_SUMMARY``, when it is set."""
    name = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    return Path(name) if name else None


def _pytest_args(args: Sequence[str]) -> list[str]:
    rest = list(args)
    return rest[1:] if rest[:1] == ["--"] else rest


def _error(message: str) -> int:
    print(f"testfleet: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def console() -> int:
    """The ``testfleet`` command, and ``python -m testfleet``.

    Here, unlike a call of :func:`main` from other code, `testfleet run` may run its
    pytest in this process: nothing else shares the process with that session.
    """
    return main(in_process=True)


def main(argv: Sequence[str] | None = None, *, in_process: bool = False) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    # The command comes first: build only its parser. Anything else (--help, a typo)
    # gets the whole command line, which lists every command.
    only = arguments[0] if arguments and arguments[0] in COMMANDS else None
    args = build_parser(only).parse_args(arguments)
    args.in_process = in_process
    try:
        return int(args.handler(args))
    except report.ReportError as exc:
        return _error(str(exc))
    except ValueError as exc:
        return _error(str(exc))
    except OSError as exc:
        # A file that cannot be read or written: the message names it.
        return _error(str(exc))
    except KeyboardInterrupt:
        print("testfleet: interrupted; reports that existed are left as they were", file=sys.stderr)
        return EXIT_INTERRUPTED


def _report(args: argparse.Namespace) -> int:
    from testfleet.settings import config

    settings = config.load()
    # The baseline first: cut down to what the comparison reads, it is small beside the
    # report when that is parsed.
    baseline = (
        report.load(args.baseline, fields=report.COMPARED_FIELDS)
        if args.baseline is not None
        else None
    )
    current = report.load(args.path, run_id=args.run_id, fields=report.SHOWN_FIELDS)
    thresholds = report_analysis.Thresholds(
        ratio=settings.get("slower_ratio", args.slower_ratio),
        seconds=settings.get("slower_seconds", args.slower_seconds),
    )
    analysis = report_analysis.analyze(current, baseline, top=args.top, thresholds=thresholds)
    if args.format == "html":
        from testfleet.reporting import html as html_report

        text = html_report.render_run(analysis, current, Path.cwd())
    else:
        text = report_text.render(analysis, args.format)
    if args.output is not None:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    if args.json is not None:
        write_text_atomic(args.json, report_text.render(analysis, "json"))
    section = text if args.format == "markdown" else report_text.render(analysis, "markdown")
    summary_file = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    targets = [args.summary, Path(summary_file) if args.step_summary and summary_file else None]
    for target in targets:
        if target is not None:
            append_text_atomic(target, section)
    if args.fail_on_slower and baseline is not None and analysis["baseline"]["slower"]:
        return EXIT_FINDINGS
    return EXIT_OK


def _merge(args: argparse.Namespace) -> int:
    inputs, output = list(args.reports), args.output
    if output is None and len(inputs) > 1 and not inputs[0].exists():
        # The old form, `merge OUTPUT REPORT...`; only while OUTPUT does not exist, so
        # that a report given first is never taken for the output and overwritten.
        output, inputs = inputs[0], inputs[1:]
        print(
            f"testfleet: note: write `testfleet merge REPORT... --output {output}`; "
            "the output first is the old form",
            file=sys.stderr,
        )
    loaded = [report.load(path) for path in inputs]
    merged = report.merge(loaded, [str(path) for path in inputs])
    if output is None:
        sys.stdout.write(dumps_report(merged))
        return EXIT_OK
    write_json_atomic(output, merged)
    print(
        f"testfleet: merged {len(inputs)} reports "
        f"({merged['summary']['tests']} tests) into {output}"
    )
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from testfleet.settings import config

    settings = config.load()
    count = settings.get("workers", args.workers)
    path = Path(settings.get("report", args.report))
    args.dist = settings.get("dist", args.dist)
    baseline = Path(settings.get("baseline", args.baseline))
    if args.baseline is not None and not baseline.is_file():
        return _error(f"--baseline {baseline}: no such file")
    # The report this run replaces, then the baseline: durations for the scheduler.
    sources = [source for source in (path, baseline) if source.is_file()]
    from testfleet.history import record

    before = record.stamp(path)
    pytest_args = _pytest_args(args.pytest_args)
    if args.shard is not None:
        # Every phase gets it: each computes the same split and keeps its part of it.
        pytest_args = [f"--testfleet-shard={args.shard}", *pytest_args]
    written: list[dict[str, Any]] = []
    status = phases.run_phases(
        count,
        pytest_args,
        path,
        dist=args.dist,
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
        echo=_warn,
        loaded=written[0] if written else None,
    )
    return status


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())

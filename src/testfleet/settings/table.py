"""Every setting of testfleet, declared once: ``[tool.testfleet]`` key, type, default, variable.

To add a setting, add a ``Setting`` to ``SETTINGS`` and read it with
``testfleet.settings.config.load().get(name, option)``: ``testfleet config`` shows it, the table
accepts it and docs/configuration.md lists it (a test checks that the docs follow).
Environment variables are ``TESTFLEET_`` and the key in capitals, except where a name
was already in use (``PYTEST_WORKERS``, ``NEO4J_URI``...).

Defaults are written out rather than imported from the modules that use them: the nox
sessions read this module in nox's own environment, where pytest may be missing.
tests/test_config.py checks that they agree with the modules' constants.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from testfleet.core import paths
from testfleet.core.workers import WORKERS_ENV
from testfleet.runs import order
from testfleet.runs.commands import DEFAULT_DIST, DIST_CHOICES
from testfleet.settings import argtypes
from testfleet.settings.kinds import (
    ARGS,
    FLAG,
    INVOKE_CI,
    PATH,
    WORKERS,
    Kind,
    Option,
    Setting,
    integer,
    number,
    percent,
)
from testfleet.settings.kinds import choice as one_of
from testfleet.settings.plugin_table import PLUGIN_SETTINGS
from testfleet.settings.sections import DIAGNOSE, REPORT, RUN, SECTIONS

__all__ = ["SECTIONS", "SETTINGS", "setting_options"]


def _history_file(command: str, **kwargs: Any) -> Option:
    """``--history-path`` of a `testfleet history` command: one help text for all of them."""
    return Option(
        command,
        ("--history-path",),
        "history file (default $TESTFLEET_HISTORY_PATH, else history_path in "
        f"[tool.testfleet], else {paths.HISTORY})",
        type=Path,
        metavar="FILE",
        **kwargs,
    )


def _bisect_and_randomized(flag: str, help: str, **kwargs: Any) -> tuple[Option, Option]:
    """An option `testfleet bisect` and `testfleet randomized` share (listed once in docs)."""
    return (
        Option("bisect", (flag,), help, type=argtypes.positive_int, **kwargs),
        Option("randomized", (flag,), help, type=argtypes.positive_int, in_docs=False, **kwargs),
    )


SETTINGS: tuple[Setting, ...] = (
    # Runs
    Setting(
        "workers",
        WORKERS,
        "auto",
        "PYTEST_WORKERS",
        "worker count, 'auto' (the count the timing history predicts fastest) or 1: the "
        "serial rollback, in one process",
        RUN,
        (
            Option(
                "run",
                ("--workers",),
                f"worker count or 'auto'; default ${WORKERS_ENV}, else auto",
                type=argtypes.workers,
            ),
            Option(
                INVOKE_CI,
                ("--workers",),
                f"worker count or 'auto' (default: ${WORKERS_ENV}, else [tool.testfleet] "
                "workers, else auto); 1 is the serial rollback",
            ),
        ),
    ),
    Setting(
        "dist",
        one_of(*DIST_CHOICES),
        DEFAULT_DIST,
        "TESTFLEET_DIST",
        "scheduling: testfleet (longest first from past durations, `serial` tests last in the "
        "same session) or an xdist --dist mode",
        RUN,
        (
            Option(
                "run",
                ("--dist",),
                f"scheduling mode: {', '.join(DIST_CHOICES)} (default $TESTFLEET_DIST, else "
                f"dist in [tool.testfleet], else {DEFAULT_DIST})",
                type=argtypes.dist,
            ),
        ),
    ),
    Setting(
        "report",
        PATH,
        paths.TIMING_REPORT,
        "TESTFLEET_REPORT",
        "timing report that a run writes",
        RUN,
        (
            Option(
                "run",
                ("--report",),
                "merged timing report (default $TESTFLEET_REPORT, else reports/test-timing.json)",
                type=Path,
            ),
        ),
    ),
    Setting(
        "pytest_args",
        ARGS,
        [],
        "TESTFLEET_PYTEST_ARGS",
        "arguments added to every pytest command of the nox sessions, before those given after --",
        RUN,
    ),
    Setting(
        "seeds",
        integer(1),
        3,
        "TESTFLEET_SEEDS",
        "how many random seeds a randomized run tries",
        RUN,
        (
            Option(
                "randomized",
                ("--seeds",),
                "how many random seeds (default $TESTFLEET_SEEDS, else 3)",
                type=argtypes.positive_int,
            ),
        ),
    ),
    Setting(
        "random_order",
        Kind(
            "off, fresh or a seed (a whole number)",
            order.parse_random_order,
            (int, str),
            convert=order.parse_random_order,
        ),
        order.OFF,
        order.RANDOM_ORDER_ENV,
        "order of the tests and tests_parallel sessions (so of invoke ci): off, the collection "
        "order; fresh, a new pytest-randomly seed each run; or that seed. The seed is printed, "
        "and on failure the command that repeats the run",
        RUN,
    ),
    # Reports and CI
    Setting(
        "baseline",
        PATH,
        paths.BASELINE_REPORT,
        "TESTFLEET_BASELINE",
        "timing baseline: written by invoke baseline, compared with by invoke ci",
        REPORT,
        (
            Option("report", ("--baseline",), "report to compare with", type=Path),
            Option(
                "run",
                ("--baseline",),
                "timing report to take past durations from, after the pytest cache's store "
                "and the report this run replaces (default reports/test-timing-baseline.json "
                "when it exists)",
                type=Path,
                in_docs=False,
            ),
        ),
    ),
    Setting(
        "summary",
        PATH,
        paths.CI_SUMMARY,
        "TESTFLEET_SUMMARY",
        "markdown summary that invoke ci writes (and appends to $GITHUB_STEP_SUMMARY)",
        REPORT,
    ),
    Setting(
        "slower_ratio",
        number(0),
        1.5,
        "TESTFLEET_SLOWER_RATIO",
        "a test is slower than in the baseline at this many times its baseline time...",
        REPORT,
        (
            Option(
                "report",
                ("--slower-ratio",),
                "a test is slower when it takes at least this many times its baseline time "
                "(default: setting slower_ratio, 1.5) ...",
                type=argtypes.non_negative_float,
            ),
        ),
    ),
    Setting(
        "slower_seconds",
        number(0),
        0.1,
        "TESTFLEET_SLOWER_SECONDS",
        "... and this many seconds more",
        REPORT,
        (
            Option(
                "report",
                ("--slower-seconds",),
                "... and at least this many seconds more (default: setting slower_seconds, 0.1)",
                type=argtypes.non_negative_float,
            ),
        ),
    ),
    Setting(
        "html_report",
        PATH,
        paths.HTML_REPORT,
        "TESTFLEET_HTML_REPORT",
        "HTML report page that invoke ci writes",
        REPORT,
    ),
    Setting(
        "quarantine",
        PATH,
        None,
        "TESTFLEET_QUARANTINE",
        "file of quarantined tests, one node id a line (why after #): invoke ci leaves them "
        "out of the run, runs them apart without failing it and lists them in the summary",
        REPORT,
        default_text="none: every test runs in the main run",
    ),
    Setting(
        "history",
        FLAG,
        True,
        "TESTFLEET_HISTORY",
        "add every run of `testfleet run` to the run history",
        REPORT,
        (
            Option(
                "run",
                ("--no-history",),
                "do not add the run to the history (also: history = false in [tool.testfleet])",
                dest="history",
                action="store_false",
                default=None,
            ),
        ),
    ),
    Setting(
        "history_path",
        PATH,
        paths.HISTORY,
        "TESTFLEET_HISTORY_PATH",
        "the run history (SQLite) that runs are added to and `testfleet history` reads",
        REPORT,
        (
            Option(
                "run",
                ("--history-path",),
                "run history to add the run to (default $TESTFLEET_HISTORY_PATH, else "
                "history_path in [tool.testfleet], else reports/history.sqlite)",
                type=Path,
                metavar="FILE",
            ),
            _history_file("history"),
            # On the actions too, where it does not replace what `history` was given.
            _history_file("history import", default=argparse.SUPPRESS, in_docs=False),
            _history_file("history prune", default=argparse.SUPPRESS, in_docs=False),
        ),
    ),
    Setting(
        "history_keep_runs",
        integer(1),
        1000,
        "TESTFLEET_HISTORY_KEEP_RUNS",
        "runs whose per-test results the history keeps; older ones are folded into totals",
        REPORT,
        (
            Option(
                "history prune",
                ("--keep-runs",),
                "runs whose per-test results are kept (default $TESTFLEET_HISTORY_KEEP_RUNS, "
                "else history_keep_runs in [tool.testfleet], else 1000)",
                type=argtypes.count,
            ),
        ),
    ),
    # Diagnoses
    Setting(
        "flaky_threshold",
        percent(),
        5.0,
        "TESTFLEET_FLAKY_THRESHOLD",
        "flaky tests, in per cent of the run's tests, above which a run fails",
        DIAGNOSE,
        (
            Option(
                "classify",
                ("--threshold",),
                "flaky tests, in per cent of the run's tests, above which the run fails "
                "(default $TESTFLEET_FLAKY_THRESHOLD, else 5)",
                type=argtypes.threshold,
            ),
        ),
    ),
    Setting(
        "classify_runs",
        integer(1),
        3,
        "TESTFLEET_CLASSIFY_RUNS",
        "reruns of each failed test in each mode",
        DIAGNOSE,
        (
            Option(
                "classify",
                ("--runs",),
                "reruns in each mode (default $TESTFLEET_CLASSIFY_RUNS, else 3)",
                type=argtypes.positive_int,
            ),
        ),
    ),
    Setting(
        "classification",
        PATH,
        paths.CLASSIFICATION,
        "TESTFLEET_CLASSIFICATION",
        "classification JSON that invoke ci has classify write",
        DIAGNOSE,
        (
            Option(
                "classify",
                ("--json",),
                "classification JSON (default %(default)s)",
                type=Path,
                dest="output",
                default=paths.CLASSIFICATION,
            ),
            # The old name of --json, kept working.
            Option(
                "classify",
                ("--output",),
                argparse.SUPPRESS,
                type=Path,
                dest="output",
                in_docs=False,
            ),
        ),
    ),
    Setting(
        "order_report",
        PATH,
        paths.ORDER_DEPENDENCE,
        "TESTFLEET_ORDER_REPORT",
        "order-dependence diagnoses of a randomized run's failing seeds",
        DIAGNOSE,
        (
            Option(
                "randomized",
                ("--json", "--order-report"),
                "where the diagnoses go (default %(default)s; markdown beside it, .md)",
                type=Path,
                dest="order_report",
                default=paths.ORDER_DEPENDENCE,
            ),
        ),
    ),
    Setting(
        "bisect_jobs",
        integer(1),
        None,
        "TESTFLEET_BISECT_JOBS",
        "pytest runs at once "
        "while bisecting; 1 when tests share files or databases between processes",
        DIAGNOSE,
        _bisect_and_randomized(
            "--jobs",
            "pytest runs at once (default: from the measured cost of the probes and the "
            "free CPUs, at most 4); 1 when the tests share files or databases between "
            "processes",
        ),
        default_text="from the probes' measured cost and the free CPUs, at most 4",
    ),
    Setting(
        "bisect_max_tests",
        integer(1),
        4,
        "TESTFLEET_BISECT_MAX_TESTS",
        "the most tests a cause may need before it is called ambiguous",
        DIAGNOSE,
        _bisect_and_randomized(
            "--max-tests",
            "the most tests a cause may need before it is called ambiguous (default %(default)s)",
            default=4,
        ),
    ),
    Setting(
        "bisect_max_victims",
        integer(1),
        5,
        "TESTFLEET_BISECT_MAX_VICTIMS",
        "failing tests to diagnose at most",
        DIAGNOSE,
        _bisect_and_randomized(
            "--max-victims", "failing tests to diagnose at most (default %(default)s)", default=5
        ),
    ),
    Setting(
        "bisect_propose_fix",
        FLAG,
        True,
        "TESTFLEET_BISECT_PROPOSE_FIX",
        "for a polluter found, look for a cleaner and propose fixes checked by a rerun",
        DIAGNOSE,
        (
            Option(
                "bisect",
                ("--no-fix",),
                "for a polluter found, do not look for a cleaner test nor propose fixes (each "
                "checked by rerunning the failing order in a copy of the project)",
                dest="bisect_propose_fix",
                action="store_false",
                default=None,
            ),
        ),
    ),
    *PLUGIN_SETTINGS,
)


def setting_options(command: str) -> tuple[Option, ...]:
    """The options of ``command`` that override a setting, in the table's order."""
    return tuple(
        option for setting in SETTINGS for option in setting.options if option.command == command
    )

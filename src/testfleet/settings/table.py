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

from pathlib import Path

# Light: the Neo4j settings' own checks, whose messages explain the choices.
from testfleet.neo4j import config as neo4j
from testfleet.runs.commands import DEFAULT_DIST, DIST_CHOICES
from testfleet.settings.config import (
    ARGS,
    FLAG,
    NAMES,
    PATH,
    TEXT,
    WORKERS,
    Kind,
    Setting,
    integer,
    number,
    percent,
)
from testfleet.settings.config import choice as one_of

RUN = "run"
REPORT = "report"
DIAGNOSE = "diagnose"
ISOLATION = "isolation"
NEO4J = "neo4j"
SESSION = "session"

#: Section titles, in the order `testfleet config` and the docs show them.
SECTIONS = {
    RUN: "Runs (testfleet run, testfleet randomized, the nox test sessions)",
    REPORT: "Reports and the CI pipeline (testfleet report, invoke ci, invoke baseline)",
    DIAGNOSE: "Diagnoses (testfleet classify, testfleet bisect)",
    ISOLATION: "Isolation (the pytest plugin)",
    NEO4J: "Neo4j (the pytest plugin)",
    SESSION: "Test environments (the nox sessions of testfleet.nox)",
}

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
        "run --workers; invoke ci --workers",
    ),
    Setting(
        "dist",
        one_of(*DIST_CHOICES),
        DEFAULT_DIST,
        "TESTFLEET_DIST",
        "scheduling: testfleet (longest first from past durations, `serial` tests last in the "
        "same session) or an xdist --dist mode",
        RUN,
        "run --dist",
    ),
    Setting(
        "report",
        PATH,
        Path("reports/test-timing.json"),
        "TESTFLEET_REPORT",
        "timing report that a run writes",
        RUN,
        "run --report",
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
        "randomized --seeds",
    ),
    # Reports and CI
    Setting(
        "baseline",
        PATH,
        Path("reports/test-timing-baseline.json"),
        "TESTFLEET_BASELINE",
        "timing baseline: written by invoke baseline, compared with by invoke ci",
        REPORT,
        "report --baseline",
    ),
    Setting(
        "summary",
        PATH,
        Path("reports/ci-summary.md"),
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
        "report --slower-ratio",
    ),
    Setting(
        "slower_seconds",
        number(0),
        0.1,
        "TESTFLEET_SLOWER_SECONDS",
        "... and this many seconds more",
        REPORT,
        "report --slower-seconds",
    ),
    Setting(
        "html_report",
        PATH,
        Path("reports/report.html"),
        "TESTFLEET_HTML_REPORT",
        "HTML report page that invoke ci writes",
        REPORT,
    ),
    Setting(
        "history",
        FLAG,
        True,
        "TESTFLEET_HISTORY",
        "add every run of `testfleet run` to the run history",
        REPORT,
        "run --no-history",
    ),
    Setting(
        "history_path",
        PATH,
        Path("reports/history.sqlite"),
        "TESTFLEET_HISTORY_PATH",
        "the run history (SQLite) that runs are added to and `testfleet history` reads",
        REPORT,
        "run --history-path; history --history-path",
    ),
    Setting(
        "history_keep_runs",
        integer(1),
        1000,
        "TESTFLEET_HISTORY_KEEP_RUNS",
        "runs whose per-test results the history keeps; older ones are folded into totals",
        REPORT,
        "history prune --keep-runs",
    ),
    # Diagnoses
    Setting(
        "flaky_threshold",
        percent(),
        5.0,
        "TESTFLEET_FLAKY_THRESHOLD",
        "flaky tests, in per cent of the run's tests, above which a run fails",
        DIAGNOSE,
        "classify --threshold",
    ),
    Setting(
        "classify_runs",
        integer(1),
        3,
        "TESTFLEET_CLASSIFY_RUNS",
        "reruns of each failed test in each mode",
        DIAGNOSE,
        "classify --runs",
    ),
    Setting(
        "classification",
        PATH,
        Path("reports/classification.json"),
        "TESTFLEET_CLASSIFICATION",
        "classification JSON that invoke ci has classify write",
        DIAGNOSE,
        "classify --json",
    ),
    Setting(
        "order_report",
        PATH,
        Path("reports/order-dependence.json"),
        "TESTFLEET_ORDER_REPORT",
        "order-dependence diagnoses of a randomized run's failing seeds",
        DIAGNOSE,
        "randomized --json",
    ),
    Setting(
        "bisect_jobs",
        integer(1),
        None,
        "TESTFLEET_BISECT_JOBS",
        "pytest runs at once "
        "while bisecting; 1 when tests share files or databases between processes",
        DIAGNOSE,
        "bisect --jobs",
        default_text="from the probes' measured cost and the free CPUs, at most 4",
    ),
    Setting(
        "bisect_max_tests",
        integer(1),
        4,
        "TESTFLEET_BISECT_MAX_TESTS",
        "the most tests a cause may need before it is called ambiguous",
        DIAGNOSE,
        "bisect --max-tests",
    ),
    Setting(
        "bisect_max_victims",
        integer(1),
        5,
        "TESTFLEET_BISECT_MAX_VICTIMS",
        "failing tests to diagnose at most",
        DIAGNOSE,
        "bisect --max-victims",
    ),
    # Isolation
    Setting(
        "lock_dir",
        PATH,
        None,
        "TESTFLEET_LOCK_DIR",
        "lock files of resource pools and of `serial` tests under xdist",
        ISOLATION,
        "--testfleet-lock-dir",
        default_text="testfleet-locks in the temp directory",
    ),
    Setting(
        "pool_timeout",
        number(0),
        60.0,
        "TESTFLEET_POOL_TIMEOUT",
        "seconds testfleet_pool waits for a free slot",
        ISOLATION,
        "--testfleet-pool-timeout",
    ),
    # Neo4j
    Setting(
        "neo4j",
        Kind(one_of(*neo4j.MODES).name, neo4j.parse_mode),
        "auto",
        "TESTFLEET_NEO4J",
        "where Neo4j tests get a server: auto, local (a local Bolt server) or required",
        NEO4J,
        "--testfleet-neo4j",
    ),
    Setting(
        "neo4j_strategy",
        Kind(one_of(*neo4j.STRATEGY_CHOICES).name, neo4j.parse_strategy),
        "auto",
        "TESTFLEET_NEO4J_STRATEGY",
        "how Neo4j tests are kept apart; auto is group",
        NEO4J,
        "--testfleet-neo4j-strategy",
    ),
    Setting(
        "neo4j_uri",
        TEXT,
        None,
        "NEO4J_URI",
        "Bolt address of the Neo4j server",
        NEO4J,
        "--testfleet-neo4j-uri",
    ),
    Setting(
        "neo4j_user",
        TEXT,
        None,
        "NEO4J_USER",
        "Neo4j user",
        NEO4J,
        "--testfleet-neo4j-user",
        default_text="neo4j when a password is set",
    ),
    Setting(
        "neo4j_password",
        TEXT,
        None,
        "NEO4J_PASSWORD",
        "Neo4j password: environment only, never in pyproject.toml",
        NEO4J,
        "--testfleet-neo4j-password",
        secret=True,
    ),
    Setting(
        "neo4j_timeout",
        number(0),
        30.0,
        "TESTFLEET_NEO4J_TIMEOUT",
        "seconds to wait for the Neo4j server to answer",
        NEO4J,
        "--testfleet-neo4j-timeout",
    ),
    # Test environments
    Setting(
        "python",
        NAMES,
        None,
        "TESTFLEET_PYTHON",
        'Python version(s) of the sessions, e.g. "3.12" or ["3.11", "3.12"]',
        SESSION,
        default_text="the Python running nox",
    ),
    Setting(
        "install_project",
        FLAG,
        None,
        "TESTFLEET_INSTALL_PROJECT",
        "install the project into the session; false for a project that is no package",
        SESSION,
        default_text="true when the project is a package: setup.py, or pyproject.toml "
        "with [project] or [build-system]",
    ),
    Setting(
        "editable",
        FLAG,
        True,
        "TESTFLEET_EDITABLE",
        "install the project editable (pip install -e)",
        SESSION,
    ),
    Setting(
        "extras",
        NAMES,
        [],
        "TESTFLEET_EXTRAS",
        'extras of the project to install, e.g. ["test"]',
        SESSION,
    ),
    Setting(
        "dependency_groups",
        NAMES,
        [],
        "TESTFLEET_DEPENDENCY_GROUPS",
        "dependency groups (PEP 735) to install; needs pip 25.1 or later",
        SESSION,
    ),
    Setting(
        "requirements",
        NAMES,
        [],
        "TESTFLEET_REQUIREMENTS",
        "requirements files to install (pip install -r)",
        SESSION,
    ),
    Setting(
        "testfleet_requirement",
        TEXT,
        None,
        "TESTFLEET_REQUIREMENT",
        "what pip installs as testfleet in the session: a requirement, a path or a wheel",
        SESSION,
        default_text="testfleet==<the version running nox>",
    ),
    Setting(
        "installer",
        one_of("uv", "pip", "poetry", "pdm"),
        None,
        "TESTFLEET_INSTALLER",
        "what builds the session's environment: uv (uv sync --frozen from uv.lock), poetry or "
        "pdm (from their lock), or pip (resolves afresh); testfleet and coverage go on top",
        SESSION,
        default_text="uv with uv.lock, poetry or pdm with their lock when the tool is on PATH, "
        "else pip",
    ),
    Setting(
        "coverage",
        FLAG,
        True,
        "TESTFLEET_COVERAGE",
        "run the test sessions under coverage, combined by nox -s coverage",
        SESSION,
    ),
)

"""The settings of the pytest plugins and of the nox sessions: isolation, Neo4j, environments.

Part of the one table, ``testfleet.settings.table.SETTINGS``; apart only for its length.
"""

from __future__ import annotations

# Light: the Neo4j settings' own checks, whose messages explain the choices.
from testfleet.neo4j import modes as neo4j
from testfleet.settings import argtypes
from testfleet.settings.kinds import (
    FLAG,
    NAMES,
    PATH,
    PYTEST,
    PYTEST_NEO4J,
    TEXT,
    Kind,
    Option,
    Setting,
    number,
)
from testfleet.settings.kinds import choice as one_of
from testfleet.settings.sections import ISOLATION, NEO4J, SESSION

PLUGIN_SETTINGS: tuple[Setting, ...] = (
    # Isolation
    Setting(
        "lock_dir",
        PATH,
        None,
        "TESTFLEET_LOCK_DIR",
        "lock files of resource pools and of `serial` tests under xdist",
        ISOLATION,
        (
            Option(
                PYTEST,
                ("--testfleet-lock-dir",),
                "directory of the lock files of resource pools and of `serial` tests under "
                "xdist (default: $TESTFLEET_LOCK_DIR, else testfleet-locks in the temp "
                "directory, shared by every run on this machine).",
                type=argtypes.lock_dir,
                dest="testfleet_lock_dir",
                metavar="DIR",
            ),
        ),
        default_text="testfleet-locks in the temp directory",
    ),
    Setting(
        "pool_timeout",
        number(0),
        60.0,
        "TESTFLEET_POOL_TIMEOUT",
        "seconds testfleet_pool waits for a free slot",
        ISOLATION,
        (
            Option(
                PYTEST,
                ("--testfleet-pool-timeout",),
                "how long the testfleet_pool fixture waits for a free slot before the test "
                "errors (default: $TESTFLEET_POOL_TIMEOUT or pool_timeout, else 60).",
                type=argtypes.seconds,
                dest="testfleet_pool_timeout",
                metavar="SECONDS",
            ),
        ),
    ),
    # Neo4j
    Setting(
        "neo4j",
        Kind(one_of(*neo4j.MODES).name, neo4j.parse_mode),
        "auto",
        "TESTFLEET_NEO4J",
        "where Neo4j tests get a server: auto, local (a local Bolt server) or required",
        NEO4J,
        (
            Option(
                PYTEST_NEO4J,
                ("--testfleet-neo4j",),
                f"where Neo4j tests get a server (default: ${neo4j.MODE_ENV}, else auto): "
                f"{neo4j.MODE_HELP}.",
                type=neo4j.parse_mode,
                dest="testfleet_neo4j",
                metavar="{auto,local,required}",
            ),
        ),
    ),
    Setting(
        "neo4j_strategy",
        Kind(one_of(*neo4j.STRATEGY_CHOICES).name, neo4j.parse_strategy),
        "auto",
        "TESTFLEET_NEO4J_STRATEGY",
        "how Neo4j tests are kept apart; auto is group",
        NEO4J,
        (
            Option(
                PYTEST_NEO4J,
                ("--testfleet-neo4j-strategy",),
                f"how Neo4j tests are kept apart (default: ${neo4j.STRATEGY_ENV}, else auto): "
                f"{neo4j.STRATEGY_HELP}.",
                type=neo4j.parse_strategy,
                dest="testfleet_neo4j_strategy",
                metavar="{auto,group,database,namespace,rollback}",
            ),
        ),
    ),
    Setting(
        "neo4j_uri",
        TEXT,
        None,
        "NEO4J_URI",
        "Bolt address of the Neo4j server",
        NEO4J,
        (
            Option(
                PYTEST_NEO4J,
                ("--testfleet-neo4j-uri",),
                f"Bolt address of the Neo4j server, e.g. bolt://127.0.0.1:7687 (default: "
                f"${neo4j.URI_ENV}).",
                dest="testfleet_neo4j_uri",
                metavar="URI",
            ),
        ),
    ),
    Setting(
        "neo4j_user",
        TEXT,
        None,
        "NEO4J_USER",
        "Neo4j user",
        NEO4J,
        (
            Option(
                PYTEST_NEO4J,
                ("--testfleet-neo4j-user",),
                f"Neo4j user (default: ${neo4j.USER_ENV}, else neo4j).",
                dest="testfleet_neo4j_user",
                metavar="USER",
            ),
        ),
        default_text="neo4j when a password is set",
    ),
    Setting(
        "neo4j_password",
        TEXT,
        None,
        "NEO4J_PASSWORD",
        "Neo4j password: environment only, never in pyproject.toml",
        NEO4J,
        (
            Option(
                PYTEST_NEO4J,
                ("--testfleet-neo4j-password",),
                f"Neo4j password (default: ${neo4j.PASSWORD_ENV}; without one, no "
                f"authentication). Prefer ${neo4j.PASSWORD_ENV}: a command line is visible "
                "to other users.",
                dest="testfleet_neo4j_password",
                metavar="PASSWORD",
            ),
        ),
        secret=True,
    ),
    Setting(
        "neo4j_timeout",
        number(0),
        30.0,
        "TESTFLEET_NEO4J_TIMEOUT",
        "seconds to wait for the Neo4j server to answer",
        NEO4J,
        (
            Option(
                PYTEST_NEO4J,
                ("--testfleet-neo4j-timeout",),
                "how long to wait for the Neo4j server to answer before Neo4j tests error "
                "(default: $TESTFLEET_NEO4J_TIMEOUT or neo4j_timeout, else "
                f"{neo4j.DEFAULT_TIMEOUT:g}).",
                type=neo4j.parse_timeout,
                dest="testfleet_neo4j_timeout",
                metavar="SECONDS",
            ),
        ),
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


#: The pytest options of testfleet's plugin that are no setting.
PLUGIN_OPTIONS: tuple[Option, ...] = (
    Option(
        PYTEST,
        ("--testfleet-report",),
        "write a JSON timing report of every test to PATH (one file for all xdist "
        "workers). Also the ini setting testfleet_report.",
        dest="testfleet_report",
        metavar="PATH",
        default=None,
    ),
    Option(
        PYTEST,
        ("--testfleet-serial",),
        "what to do with tests marked `serial`: run them with the others (default), "
        "defer them (deselect; run them later with 'only'), or run only them, in one process.",
        type=argtypes.serial,
        dest="testfleet_serial",
        default="run",
        metavar="{run,defer,only}",
    ),
    Option(
        PYTEST,
        ("--testfleet-shard",),
        "run shard I of N (I from 1), chosen from recorded durations so that the shards "
        "of a CI matrix finish together; 'auto' reads GitLab's CI_NODE_INDEX/CI_NODE_TOTAL or "
        "Buildkite's BUILDKITE_PARALLEL_JOB/_COUNT (default $TESTFLEET_SHARD).",
        type=argtypes.shard_choice,
        dest="testfleet_shard",
        default=None,
        metavar="I/N",
    ),
    Option(
        PYTEST,
        ("--testfleet-shard-durations",),
        "timing report whose durations choose the shards (default: "
        "reports/test-timing-baseline.json under the rootdir, when it exists).",
        dest="testfleet_shard_durations",
        default=None,
        metavar="FILE",
    ),
    Option(
        PYTEST,
        ("--testfleet-shard-plan",),
        "write the shard plan (each shard's tests and predicted seconds) as JSON to FILE.",
        dest="testfleet_shard_plan",
        default=None,
        metavar="FILE",
    ),
    Option(
        PYTEST,
        ("--testfleet-order-file",),
        "run exactly the node ids listed in FILE (one a line), in that order; the other "
        "collected tests are deselected. Node ids not collected are listed in FILE.missing.",
        dest="testfleet_order_file",
        metavar="FILE",
        default=None,
    ),
    Option(
        PYTEST,
        ("--testfleet-replay-file",),
        "wait at the barrier FILE names before the first test, to start it together with "
        "other pytest processes (the replays of `testfleet classify`).",
        dest="testfleet_replay_file",
        metavar="FILE",
        default=None,
    ),
    Option(
        PYTEST,
        ("--testfleet-state-file",),
        "write to FILE, as JSON, what the tests before the last one left changed: "
        "attributes of the project's modules, environment variables, files, the current "
        "directory, shared fixture values (the fix proposals of `testfleet bisect`).",
        dest="testfleet_state_file",
        metavar="FILE",
        default=None,
    ),
    Option(
        PYTEST,
        ("--testfleet-reverse",),
        "run the collected tests in reverse order (finds tests that need an earlier "
        "test, or that a later one breaks).",
        dest="testfleet_reverse",
        action="store_true",
        default=False,
    ),
    Option(
        PYTEST,
        ("--testfleet-scheduler",),
        "with -n: schedule with testfleet's scheduler (longest tests first from past "
        "durations, xdist_group kept together, `serial` tests last on one worker, alone) "
        "instead of the --dist mode's.",
        dest="testfleet_scheduler",
        action="store_true",
        default=False,
    ),
    Option(
        PYTEST,
        ("--testfleet-durations",),
        "a timing report of an earlier run to take durations from (repeatable; "
        "besides the store in the pytest cache, which every run with a report updates).",
        dest="testfleet_durations",
        action="append",
        default=[],
        metavar="REPORT",
    ),
)

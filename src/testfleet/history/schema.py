"""The history database's schema, its version, and the migrations between versions.

The version lives in SQLite's ``PRAGMA user_version``: 0 is a new, empty file. Each
migration takes the schema from one version to the next inside the transaction that
opened the file, so a migration that fails leaves the file as it was. A file whose
version is higher than :data:`SCHEMA_VERSION` was written by a newer testfleet and is
refused, never downgraded.
"""

from __future__ import annotations

import sqlite3

#: ``PRAGMA application_id``: tells a testfleet history from any other SQLite file.
APPLICATION_ID = 0x74664853  # "tfHS"

#: Version 1: runs, tests and per-test results.
V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    started REAL NOT NULL,
    wall_seconds REAL NOT NULL,
    workers INTEGER NOT NULL,
    mode TEXT,
    git_commit TEXT,
    exit_status INTEGER,
    tests INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    outcomes TEXT NOT NULL,
    duration_sum REAL NOT NULL
);
CREATE INDEX runs_started ON runs (started);
CREATE TABLE tests (
    id INTEGER PRIMARY KEY,
    nodeid TEXT NOT NULL UNIQUE
);
-- One row per attempt of a test in a run; outcome is an index into timing.OUTCOMES.
CREATE TABLE results (
    run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    test INTEGER NOT NULL REFERENCES tests (id),
    attempt INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    duration REAL NOT NULL,
    worker TEXT NOT NULL,
    PRIMARY KEY (run, test, attempt)
) WITHOUT ROWID;
"""

#: Version 2: where a run came from (branch, CI run, shard), CPU time and classification
#: per result, and per-test totals of the runs whose results were pruned.
V2 = """
ALTER TABLE runs ADD COLUMN branch TEXT;
ALTER TABLE runs ADD COLUMN ci_run_id TEXT;
ALTER TABLE runs ADD COLUMN shard TEXT;
ALTER TABLE runs ADD COLUMN dist TEXT;
ALTER TABLE runs ADD COLUMN source TEXT;
-- 1 while the run's per-test results are kept; 0 once pruning folded them into totals.
ALTER TABLE runs ADD COLUMN detail INTEGER NOT NULL DEFAULT 1;
ALTER TABLE results ADD COLUMN cpu REAL;
ALTER TABLE results ADD COLUMN classification TEXT;
CREATE TABLE test_totals (
    test INTEGER PRIMARY KEY REFERENCES tests (id),
    runs INTEGER NOT NULL,
    failed_runs INTEGER NOT NULL,
    flaky_runs INTEGER NOT NULL,
    duration_sum REAL NOT NULL,
    last_started REAL NOT NULL
);
"""

#: MIGRATIONS[n] takes a file from version n to version n + 1.
MIGRATIONS: tuple[str, ...] = (V1, V2)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(Exception):
    """A file that is not a history this testfleet can use, as it stands."""


def version_of(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check(conn: sqlite3.Connection, where: str) -> int:
    """The file's schema version, or :class:`SchemaError` for a file we must not touch."""
    version = version_of(conn)
    application = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if version == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise SchemaError(
                f"{where} is an SQLite database but not a testfleet history; it is left as it "
                "is: give another --history-path"
            )
        return 0
    if application != APPLICATION_ID:
        raise SchemaError(
            f"{where} is an SQLite database of another program (application id "
            f"{application:#x}); it is left as it is: give another --history-path"
        )
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{where} was written by a newer testfleet (history schema {version}; this one "
            f"knows up to {SCHEMA_VERSION}); it is left as it is: upgrade testfleet to "
            "record to it, or give another --history-path"
        )
    return version


def migrate(conn: sqlite3.Connection, version: int) -> int:
    """Bring the schema from ``version`` to :data:`SCHEMA_VERSION`; the caller commits."""
    for step in range(version, SCHEMA_VERSION):
        for statement in _statements(MIGRATIONS[step]):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {step + 1}")
    if version < SCHEMA_VERSION:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    return SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT first; statements one by one stay in our transaction.
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]

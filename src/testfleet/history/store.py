"""Open the history file safely and record runs into it.

The file is only ever changed through SQLite transactions: a corrupt file, one written
by a newer testfleet, another program's database or a locked one raises
:class:`HistoryError` and is left byte for byte as it was. Several jobs on one machine
may append at once: the file is in WAL mode and each writer waits ``timeout`` seconds
for the others.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from testfleet.core import paths
from testfleet.history import schema
from testfleet.timing.records import OUTCOMES

DEFAULT_PATH = paths.HISTORY
#: Seconds a writer waits for another one before giving up.
DEFAULT_TIMEOUT = 30.0
#: Runs whose per-test results are kept; older ones keep only their totals.
DEFAULT_KEEP_RUNS = 1000
FAILED = (OUTCOMES.index("failed"), OUTCOMES.index("error"))
PASSED = OUTCOMES.index("passed")


class HistoryError(Exception):
    """The history cannot be read or written; the message says why and what to do."""


@contextlib.contextmanager
def open_history(
    path: Path, *, create: bool = True, timeout: float = DEFAULT_TIMEOUT
) -> Iterator[sqlite3.Connection]:
    """A connection to the history at ``path``, its schema checked and brought up to date."""
    if not path.exists():
        if not create:
            raise HistoryError(
                f"{path}: no history yet: `testfleet run` records one, or import reports "
                "with `testfleet history import REPORT...`"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.is_file():
        raise HistoryError(f"{path} is not a file: give the history file's path")
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise HistoryError(f"{path}: cannot be opened ({exc})") from None
    try:
        with _translated(path):
            _prepare(conn, path)
        yield conn
    finally:
        conn.close()


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    # Checked before journal_mode: switching to WAL writes to the file.
    version = schema.check(conn, str(path))
    if version == schema.SCHEMA_VERSION:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        return
    if version == 0:
        # Only an empty file can take it: pages freed by pruning go back to the disk.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated it while we waited for the lock.
        version = schema.check(conn, str(path))
        schema.migrate(conn, version)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def _translated(path: Path) -> Iterator[None]:
    """SQLite's errors as messages that say which file and what to do."""
    try:
        yield
    except schema.SchemaError as exc:
        raise HistoryError(str(exc)) from None
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise HistoryError(
                f"{path} is locked by another process (waited for it): it is left as it is; "
                f"record this run later with `testfleet history import REPORT`"
            ) from None
        raise HistoryError(f"{path}: {exc}; the file is left as it is") from None
    except sqlite3.DatabaseError as exc:
        raise HistoryError(
            f"{path} is not a readable history ({exc}); it is left as it is: move it aside "
            "to start a new history, or give another --history-path"
        ) from None


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """One write transaction; taken at once so that concurrent writers queue, not deadlock."""
    with _translated(path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def reading(path: Path) -> contextlib.AbstractContextManager[None]:
    """Errors while reading, translated like the writes'."""
    return _translated(path)


def run_row(report: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """The ``runs`` row of a timing report; ``meta`` fills what the report lacks."""
    run = report["run"]
    tests = [t for t in report["tests"] if int(t.get("attempt", 1)) == 1]
    counts = dict.fromkeys(OUTCOMES, 0)
    for test in tests:
        counts[test["outcome"]] += 1

    def pick(key: str) -> Any:
        value = run.get(key)
        return value if value not in (None, "") else meta.get(key)

    shard = pick("shard")
    return {
        "run_id": str(run.get("id") or meta.get("run_id") or ""),
        "started": float(run.get("start") or 0.0),
        "wall_seconds": float(run["wall_seconds"]),
        "workers": int(run["workers"]),
        "mode": run.get("mode"),
        "dist": run.get("dist"),
        "git_commit": pick("git_commit"),
        "branch": pick("branch"),
        "ci_run_id": pick("ci_run_id"),
        "shard": _shard(shard),
        "exit_status": run.get("exit_status"),
        "tests": len(tests),
        "failed": counts["failed"] + counts["error"],
        "outcomes": json.dumps(counts),
        "duration_sum": round(sum(float(t["duration"]) for t in tests), 6),
        "source": meta.get("source"),
    }


def _shard(shard: Any) -> str | None:
    """``index/total`` of a CI shard; its list of assigned tests stays in its report."""
    if isinstance(shard, dict):
        if "index" in shard and "total" in shard:
            return f"{shard['index']}/{shard['total']}"
        return None
    return None if shard is None else str(shard)


def _cpu(test: Mapping[str, Any]) -> float | None:
    # Recorded by newer timing reports under one of these names; absent in older ones.
    for key in ("cpu", "cpu_seconds", "cpu_time"):
        value = test.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def record(
    conn: sqlite3.Connection,
    report: Mapping[str, Any],
    meta: Mapping[str, Any],
    classes: Mapping[str, str] | None = None,
) -> int:
    """Add one run (replacing an earlier record of the same run id); its ``runs.id``.

    Call inside :func:`transaction`. A report recorded again, for instance after
    ``testfleet classify`` added reruns to it, replaces its first record.
    """
    row = run_row(report, meta)
    if not row["run_id"]:
        raise HistoryError("the report has no run id: it cannot be told from other runs")
    conn.execute("DELETE FROM runs WHERE run_id = ?", (row["run_id"],))
    columns = ", ".join(row)
    marks = ", ".join(f":{key}" for key in row)
    cursor = conn.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", row)
    run = int(cursor.lastrowid or 0)
    nodeids = sorted({str(t["nodeid"]) for t in report["tests"]})
    ids = _test_ids(conn, nodeids)
    classes = classes or {}
    conn.executemany(
        "INSERT OR REPLACE INTO results "
        "(run, test, attempt, outcome, duration, worker, cpu, classification) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run,
                ids[t["nodeid"]],
                int(t.get("attempt", 1)),
                OUTCOMES.index(t["outcome"]),
                float(t["duration"]),
                str(t["worker"]),
                _cpu(t),
                classes.get(t["nodeid"]),
            )
            for t in report["tests"]
        ],
    )
    return run


def _test_ids(conn: sqlite3.Connection, nodeids: Sequence[str]) -> dict[str, int]:
    conn.executemany("INSERT OR IGNORE INTO tests (nodeid) VALUES (?)", [(n,) for n in nodeids])
    ids: dict[str, int] = {}
    # Bounded batches: SQLite limits the number of parameters of one statement.
    for start in range(0, len(nodeids), 500):
        batch = nodeids[start : start + 500]
        marks = ", ".join("?" * len(batch))
        for test_id, nodeid in conn.execute(
            f"SELECT id, nodeid FROM tests WHERE nodeid IN ({marks})", batch
        ):
            ids[nodeid] = int(test_id)
    return ids


def prune(conn: sqlite3.Connection, keep_runs: int) -> int:
    """Fold the per-test results of all but the newest ``keep_runs`` runs into totals.

    The runs themselves stay (wall time and counts for the trends); their results are
    added to ``test_totals`` and deleted. Returns how many runs were folded. Call inside
    :func:`transaction`.
    """
    old = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM runs WHERE detail = 1 ORDER BY started DESC, id DESC LIMIT -1 OFFSET ?",
            (keep_runs,),
        )
    ]
    for start in range(0, len(old), 500):
        batch = old[start : start + 500]
        marks = ", ".join("?" * len(batch))
        failed = ", ".join(str(code) for code in FAILED)
        # One row per (test, run): failed in the run, passed in it too (a flaky run).
        conn.execute(
            f"""
            INSERT INTO test_totals (test, runs, failed_runs, flaky_runs, duration_sum,
                                     last_started)
            SELECT test, count(*), sum(failed), sum(failed AND passed), sum(duration),
                   max(started)
            FROM (
                SELECT r.test AS test,
                       max(r.outcome IN ({failed})) AS failed,
                       max(r.outcome = {PASSED}) AS passed,
                       sum(r.duration) AS duration,
                       runs.started AS started
                FROM results r JOIN runs ON runs.id = r.run
                WHERE r.run IN ({marks})
                GROUP BY r.test, r.run
            )
            WHERE true
            GROUP BY test
            ON CONFLICT (test) DO UPDATE SET
                runs = runs + excluded.runs,
                failed_runs = failed_runs + excluded.failed_runs,
                flaky_runs = flaky_runs + excluded.flaky_runs,
                duration_sum = duration_sum + excluded.duration_sum,
                last_started = max(last_started, excluded.last_started)
            """,
            batch,
        )
        conn.execute(f"DELETE FROM results WHERE run IN ({marks})", batch)
        conn.execute(f"UPDATE runs SET detail = 0 WHERE id IN ({marks})", batch)
    return len(old)


def reclaim(conn: sqlite3.Connection, path: Path) -> None:
    """Give the pages that pruning freed back to the disk; call after the transaction.

    ``execute`` would free one page per call; a script runs the pragma to its end.
    """
    with _translated(path):
        conn.executescript("PRAGMA incremental_vacuum;")

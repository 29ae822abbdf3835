"""What the history says: wall time and speedup per run, flake rates, slower tests.

Everything is computed over a window of the newest runs (``--runs``), so the answer
costs the same whether the file holds fifty runs or a year of them. Inside the window,
the newest ``--recent`` runs are "recent": a test flaky only there is newly flaky, and
a test whose recent median duration rose above its earlier one got slower.

A test is flaky in a run when, in that run, it both failed and passed (failed, then
passed on a rerun), or when it failed in a run while it passed in another run of the
same commit. Its flake rate is the share of its runs in the window that were flaky.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from testfleet.history import quarantine
from testfleet.history.store import FAILED, PASSED
from testfleet.reporting.analysis import Thresholds

DEFAULT_RUNS = 50
DEFAULT_RECENT = 10
DEFAULT_THRESHOLD = 5.0


@dataclass(frozen=True)
class Window:
    """Which runs to look at and when something counts."""

    runs: int = DEFAULT_RUNS
    recent: int = DEFAULT_RECENT
    branch: str | None = None
    #: Flake rate, in per cent, above which a newly flaky test fails ``--check``.
    threshold: float = DEFAULT_THRESHOLD
    slower: Thresholds = field(default_factory=Thresholds)


@dataclass
class _Seen:
    """One test in one run: did any attempt fail, did any pass, its first duration."""

    failed: bool = False
    passed: bool = False
    duration: float | None = None


RUN_COLUMNS = (
    "id",
    "run_id",
    "started",
    "wall_seconds",
    "workers",
    "mode",
    "git_commit",
    "branch",
    "ci_run_id",
    "shard",
    "tests",
    "failed",
    "duration_sum",
    "detail",
)


def load_runs(conn: sqlite3.Connection, window: Window) -> list[dict[str, Any]]:
    """The window's runs, oldest first."""
    where, params = ("WHERE branch = ?", [window.branch]) if window.branch else ("", [])
    rows = conn.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs {where} ORDER BY started DESC, id DESC LIMIT ?",
        [*params, window.runs],
    ).fetchall()
    return [dict(zip(RUN_COLUMNS, row, strict=True)) for row in reversed(rows)]


def _serial_reference(conn: sqlite3.Connection, window: Window) -> dict[str, Any] | None:
    where = "AND branch = ?" if window.branch else ""
    params = [window.branch] if window.branch else []
    row = conn.execute(
        f"SELECT run_id, wall_seconds FROM runs WHERE workers = 1 AND tests > 0 {where} "
        "ORDER BY started DESC, id DESC LIMIT 1",
        params,
    ).fetchone()
    return {"run_id": row[0], "wall_seconds": row[1]} if row else None


def _observations(conn: sqlite3.Connection, run_ids: Sequence[int]) -> dict[int, dict[int, _Seen]]:
    """test -> run -> what happened, for the runs whose results are kept."""
    seen: dict[int, dict[int, _Seen]] = defaultdict(dict)
    if not run_ids:
        return seen
    marks = ", ".join("?" * len(run_ids))
    rows = conn.execute(
        f"SELECT test, run, attempt, outcome, duration FROM results WHERE run IN ({marks})",
        list(run_ids),
    )
    for test, run, attempt, outcome, duration in rows:
        entry = seen[test].get(run)
        if entry is None:
            entry = seen[test][run] = _Seen()
        if outcome in FAILED:
            entry.failed = True
        elif outcome == PASSED:
            entry.passed = True
        if attempt == 1:
            entry.duration = float(duration)
    return seen


def _flaky_runs(per_run: Mapping[int, _Seen], commits: Mapping[int, str | None]) -> set[int]:
    flaky = {run for run, s in per_run.items() if s.failed and s.passed}
    passed_on: set[str] = {
        commit for run, s in per_run.items() if s.passed and (commit := commits[run]) is not None
    }
    flaky |= {run for run, s in per_run.items() if s.failed and commits[run] in passed_on}
    return flaky


def _nodeids(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        batch = list(ids[start : start + 500])
        marks = ", ".join("?" * len(batch))
        names.update(conn.execute(f"SELECT id, nodeid FROM tests WHERE id IN ({marks})", batch))
    return names


def analyze(conn: sqlite3.Connection, window: Window = Window()) -> dict[str, Any]:
    """Everything ``testfleet history`` shows, as plain data."""
    runs = load_runs(conn, window)
    detailed = [r["id"] for r in runs if r["detail"]]
    recent = set(detailed[-window.recent :]) if window.recent else set()
    commits = {r["id"]: r["git_commit"] for r in runs}
    seen = _observations(conn, detailed)
    flaky: list[dict[str, Any]] = []
    slower: list[dict[str, Any]] = []
    for test, per_run in seen.items():
        flaky_runs = _flaky_runs(per_run, commits)
        if flaky_runs:
            flaky.append(
                {
                    "test": test,
                    "runs": len(per_run),
                    "flaky_runs": len(flaky_runs),
                    "flake_rate": round(100.0 * len(flaky_runs) / len(per_run), 2),
                    "new": flaky_runs <= recent,
                }
            )
        rise = _duration_rise(per_run, recent, window.slower)
        if rise is not None:
            slower.append({"test": test, **rise})
    names = _nodeids(conn, [row["test"] for row in flaky + slower])
    for row in flaky + slower:
        row["nodeid"] = names[row.pop("test")]
    flaky.sort(key=lambda r: (-r["flake_rate"], r["nodeid"]))
    slower.sort(key=lambda r: (r["earlier"] - r["recent"], r["nodeid"]))
    newly = [r for r in flaky if r["new"]]
    over = [r for r in newly if r["flake_rate"] > window.threshold]
    serial = _serial_reference(conn, window)
    held = quarantine.find(conn, runs, flaky, window.threshold)
    return {
        "window": {
            "runs": window.runs,
            "recent": window.recent,
            "branch": window.branch,
            "threshold_percent": window.threshold,
            "slower": {"ratio": window.slower.ratio, "seconds": window.slower.seconds},
        },
        "runs": [_run_view(r, serial) for r in runs],
        "serial_reference": serial,
        "recorded_runs": conn.execute("SELECT count(*) FROM runs").fetchone()[0],
        "flaky": flaky,
        "newly_flaky": newly,
        "over_threshold": over,
        "slower": slower,
        "quarantine": held,
    }


def _run_view(run: Mapping[str, Any], serial: Mapping[str, Any] | None) -> dict[str, Any]:
    wall = float(run["wall_seconds"])
    view = {key: run[key] for key in RUN_COLUMNS if key not in ("id", "detail")}
    view["concurrency"] = round(float(run["duration_sum"]) / wall, 2) if wall > 0 else None
    speedup = None
    if serial is not None and wall > 0 and run["workers"] != 1:
        speedup = round(float(serial["wall_seconds"]) / wall, 2)
    view["speedup"] = speedup
    return view


def _duration_rise(
    per_run: Mapping[int, _Seen], recent: set[int], limits: Thresholds
) -> dict[str, Any] | None:
    now = [s.duration for run, s in per_run.items() if run in recent and s.duration is not None]
    before = [
        s.duration for run, s in per_run.items() if run not in recent and s.duration is not None
    ]
    if not now or not before:
        return None
    new, old = statistics.median(now), statistics.median(before)
    if new - old >= limits.seconds and new >= old * limits.ratio:
        return {
            "earlier": round(old, 6),
            "recent": round(new, 6),
            "ratio": round(new / old, 2) if old > 0 else None,
        }
    return None


def check_failed(analysis: Mapping[str, Any]) -> bool:
    """``--check``: a newly flaky test is flakier than the threshold."""
    return bool(analysis["over_threshold"])

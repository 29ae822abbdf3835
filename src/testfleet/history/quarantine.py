"""Which tests to quarantine, from the history: too flaky, or colliding and not fixed.

A quarantined test runs apart from the suite, in a step that may fail without failing
the run, until it is fixed: the main run deselects it (``--deselect``), and a second,
serial run lists it. Two reasons put a test there:

- its flake rate in the window is above the threshold (not only newly flaky tests:
  one that has been flaky for months is as untrustworthy);
- `testfleet classify` called it ``parallel-only`` in a run of the window, and it has
  not passed a parallel run since: the collision is not fixed yet.
"""

from __future__ import annotations

import shlex
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from testfleet.history.store import PASSED


def _parallel_only(conn: sqlite3.Connection, runs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """node id -> run id, for tests classified parallel-only and not passed in parallel since."""
    order = {run["id"]: index for index, run in enumerate(runs)}
    parallel = {run["id"] for run in runs if run["workers"] != 1}
    if not order:
        return {}
    marks = ", ".join("?" * len(order))
    rows = conn.execute(
        "SELECT nodeid, run, attempt, outcome, classification FROM results "
        f"JOIN tests ON tests.id = results.test WHERE run IN ({marks})",
        list(order),
    ).fetchall()
    last_class: dict[str, tuple[int, int]] = {}
    last_pass: dict[str, int] = {}
    for nodeid, run, attempt, outcome, cls in rows:
        if cls == "parallel-only":
            last_class[nodeid] = max(last_class.get(nodeid, (-1, run)), (order[run], run))
        if attempt == 1 and outcome == PASSED and run in parallel:
            last_pass[nodeid] = max(last_pass.get(nodeid, -1), order[run])
    names = {run["id"]: str(run["run_id"]) for run in runs}
    return {
        nodeid: names[run]
        for nodeid, (index, run) in last_class.items()
        if last_pass.get(nodeid, -1) < index
    }


def find(
    conn: sqlite3.Connection,
    runs: Sequence[Mapping[str, Any]],
    flaky: Sequence[Mapping[str, Any]],
    threshold: float,
) -> list[dict[str, str]]:
    """The tests to quarantine, each with why, sorted by node id."""
    reasons = {
        str(row["nodeid"]): f"flaky in {row['flake_rate']:g}% of its runs (above {threshold:g}%)"
        for row in flaky
        if row["flake_rate"] > threshold
    }
    for nodeid, run in _parallel_only(conn, runs).items():
        reasons.setdefault(
            nodeid, f"parallel-only in run {run}, and no parallel run has passed it since"
        )
    return [{"nodeid": nodeid, "reason": reasons[nodeid]} for nodeid in sorted(reasons)]


def commands(rows: Sequence[Mapping[str, str]]) -> tuple[str, str]:
    """(the options that leave them out of the main run, the run of them apart)."""
    nodeids = [row["nodeid"] for row in rows]
    deselect = shlex.join(arg for nodeid in nodeids for arg in ("--deselect", nodeid))
    apart = shlex.join(["pytest", "-p", "no:randomly", "-n", "0", *nodeids]) + " || true"
    return deselect, apart

"""What ``testfleet report`` shows of a timing report, as plain data: totals, the slowest
tests, per marker, file and worker, the schedule section, and the comparison with a baseline.

The renderings of this data are in :mod:`testfleet.reporting.text` (text, markdown,
JSON) and :mod:`testfleet.reporting.html`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from testfleet.reporting import schedule as schedule_report
from testfleet.timing.records import summarize


@dataclass(frozen=True)
class Thresholds:
    """When a test counts as slower than in the baseline: both limits must be passed."""

    ratio: float = 1.5
    seconds: float = 0.1


def analyze(
    report: Mapping[str, Any],
    baseline: Mapping[str, Any] | None = None,
    top: int = 10,
    thresholds: Thresholds = Thresholds(),
) -> dict[str, Any]:
    """Everything ``testfleet report`` shows, as plain data."""
    run = report["run"]
    tests = report["tests"]
    wall = float(run["wall_seconds"])
    workers = int(run["workers"]) or 1
    # float(): whole numbers are valid durations too, and the output keeps one type.
    durations = list(map(float, map(itemgetter("duration"), tests)))
    total = sum(durations)
    per_marker, per_file, per_worker = _groups(tests, durations)
    slowest = heapq.nlargest(max(top, 0), tests, key=itemgetter("duration"))
    result: dict[str, Any] = {
        "run": {
            key: run.get(key)
            for key in ("id", "mode", "workers", "dist", "seed", "git_commit", "wall_seconds")
        },
        "outcomes": summarize(tests)["outcomes"],
        "tests": len(tests),
        "duration_sum": round(total, 6),
        # Sum of test time over wall time: how many tests ran at once, on average.
        "concurrency": round(total / wall, 3) if wall > 0 else None,
        "parallel_efficiency": round(total / (wall * workers), 3) if wall > 0 else None,
        "slowest": [_brief(t) for t in slowest],
        "markers": _totals(per_marker)[: max(top, 0)],
        "files": _totals(per_file)[: max(top, 0)],
        "workers": _worker_rows(per_worker, wall)[: max(top, 0)],
        "schedule": schedule_report.analyze(report, max(top, 0)),
    }
    if baseline is not None:
        result["baseline"] = compare(report, baseline, thresholds)
    return result


_Groups = dict[str, list[float]]


def _groups(
    tests: Sequence[Mapping[str, Any]], durations: Sequence[float]
) -> tuple[_Groups, _Groups, _Groups]:
    """The tests' durations per marker, per file and per worker."""
    per_marker: _Groups = defaultdict(list)
    per_file: _Groups = defaultdict(list)
    per_worker: _Groups = defaultdict(list)
    unmarked = per_marker["(none)"]
    # Markers lists repeat (load() shares equal ones): each is filtered once.
    visible: dict[int, list[str]] = {}
    for test, duration in zip(tests, durations, strict=True):
        markers = test.get("markers")
        if markers:
            shown = visible.get(id(markers))
            if shown is None:
                shown = visible[id(markers)] = schedule_report.visible_markers(markers)
            for marker in shown:
                per_marker[marker].append(duration)
            if not shown:
                unmarked.append(duration)
        else:
            unmarked.append(duration)
        per_file[test["nodeid"].partition("::")[0]].append(duration)
        per_worker[test["worker"]].append(duration)
    if not unmarked:
        del per_marker["(none)"]
    return per_marker, per_file, per_worker


def _worker_rows(per_worker: Mapping[str, list[float]], wall: float) -> list[dict[str, Any]]:
    return [
        {
            "worker": name,
            "tests": len(durations),
            "busy_seconds": round(sum(durations), 6),
            "utilisation": round(sum(durations) / wall, 3) if wall > 0 else None,
        }
        for name, durations in sorted(per_worker.items())
    ]


def _brief(test: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "nodeid": test["nodeid"],
        # float(): whole numbers are valid durations, and the output keeps one type.
        "duration": float(test["duration"]),
        "outcome": test["outcome"],
        "worker": test["worker"],
    }


def _totals(groups: Mapping[str, list[float]]) -> list[dict[str, Any]]:
    rows = [
        {"name": name, "tests": len(durations), "seconds": round(sum(durations), 6)}
        for name, durations in groups.items()
    ]
    return sorted(rows, key=lambda row: (-row["seconds"], row["name"]))


def compare(
    report: Mapping[str, Any], baseline: Mapping[str, Any], thresholds: Thresholds = Thresholds()
) -> dict[str, Any]:
    """Speedup of the whole run and per-test changes against a baseline report."""
    now, outcomes_now = _tests_by_id(report)
    before, outcomes_before = _tests_by_id(baseline)
    wall_now = float(report["run"]["wall_seconds"])
    wall_before = float(baseline["run"]["wall_seconds"])
    slower: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    ratio, seconds = thresholds.ratio, thresholds.seconds
    # One pass over the tests of both, and only the few that changed sorted: a
    # 100,000-test comparison stays quick.
    for nodeid, test in now.items():
        old_test = before.get(nodeid)
        if old_test is None:
            continue
        outcome = test["outcome"] if outcomes_now is None else outcomes_now[nodeid]
        old_outcome = old_test["outcome"] if outcomes_before is None else outcomes_before[nodeid]
        if outcome != old_outcome:
            changed.append({"nodeid": nodeid, "baseline": old_outcome, "current": outcome})
        # float(): a report written by another tool may hold whole numbers, and the
        # output keeps one type.
        new, old = float(test["duration"]), float(old_test["duration"])
        if new - old >= seconds and new >= old * ratio:
            slower.append(
                {
                    "nodeid": nodeid,
                    "baseline": round(old, 6),
                    "current": round(new, 6),
                    "ratio": round(new / old, 2) if old > 0 else None,
                }
            )
    changed.sort(key=lambda row: row["nodeid"])
    slower.sort(key=lambda row: row["nodeid"])
    slower.sort(key=lambda row: row["current"] - row["baseline"], reverse=True)
    return {
        "wall_seconds": round(wall_before, 6),
        "speedup": round(wall_before / wall_now, 3) if wall_now > 0 else None,
        "mode": baseline["run"].get("mode"),
        "workers": baseline["run"].get("workers"),
        "thresholds": {"ratio": thresholds.ratio, "seconds": thresholds.seconds},
        "slower": slower,
        "changed": changed,
        "added": sorted(now.keys() - before.keys()),
        "removed": sorted(before.keys() - now.keys()),
    }


def _tests_by_id(
    report: Mapping[str, Any],
) -> tuple[dict[str, Mapping[str, Any]], dict[str, str] | None]:
    """Each test by node id, its last attempt; and its first attempt's outcome if reruns differ.

    With several attempts of a test, the last one's duration stands for it, and the first
    attempt's outcome is the run's own result (later ones are reruns). Without reruns
    (the usual case) one dict gives both, and the second is None.
    """
    tests = report["tests"]
    last = {test["nodeid"]: test for test in tests}
    if len(last) == len(tests):
        return last, None
    # Read backwards, the first attempt is the last one written.
    return last, {test["nodeid"]: test["outcome"] for test in reversed(tests)}

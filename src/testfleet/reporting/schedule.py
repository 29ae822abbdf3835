"""The schedule section of ``testfleet report``: how close the run came to the best it could do.

Collection and worker start-up, when each worker started and finished, the lower bound
max(sum / workers, longest test) and the distance from it, when the longest tests
started, and the predicted wall time for 1 to 2 * cores workers with the count
``--workers auto`` would choose.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from operator import itemgetter, methodcaller
from typing import Any

from testfleet.scheduling import workercount
from testfleet.scheduling.durations import Durations
from testfleet.scheduling.units import lower_bound

#: pytest's own marks: every suite has them, they say nothing about where time goes.
BUILTIN_MARKS = frozenset(
    {"parametrize", "usefixtures", "filterwarnings", "skip", "skipif", "xfail", "tryfirst"}
)


_cpu_of = methodcaller("get", "cpu")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def analyze(report: Mapping[str, Any], top: int, n_cores: int | None = None) -> dict[str, Any]:
    """The schedule section, as plain data; ``top`` limits its lists."""
    run = report["run"]
    tests = [t for t in report["tests"] if t.get("attempt", 1) == 1]
    workers = int(run.get("workers") or 1)
    # load() checked that these are numbers; float() keeps the output's types whatever
    # wrote the report (whole numbers are valid JSON numbers too). The per-test work is
    # done by map, zip and dict in C where it can be: a 100,000-test report is read in
    # well under a second.
    nodeids = list(map(itemgetter("nodeid"), tests))
    durations = list(map(float, map(itemgetter("duration"), tests)))
    starts = list(map(float, map(itemgetter("start"), tests)))
    stops = list(map(float, map(itemgetter("stop"), tests)))
    wall = dict(zip(nodeids, durations, strict=True))
    cpu = {
        nodeid: float(test_cpu)
        for nodeid, test_cpu in zip(nodeids, map(_cpu_of, tests), strict=True)
        if test_cpu is not None
    }
    # A start of 0 is a test that never started (its setup was not timed).
    first = min(filter(None, starts), default=float("inf"))
    last = max(stops, default=float("-inf"))
    started = first != float("inf")
    origin = float(run.get("start") or (first if started else 0.0))
    bound = lower_bound(list(wall.values()), workers)
    span_seconds = (last - first) if started else 0.0
    rows = _worker_rows(tests, starts, stops, durations, run, origin)
    longest = heapq.nlargest(top, tests, key=itemgetter("duration"))
    known = Durations(wall=wall, cpu=cpu)
    stretch = workercount.stretch_from_report(run)
    choice = workercount.choose(known, workercount.RunCosts.from_run(run), n_cores)
    return {
        "collection_seconds": _round(run.get("collection_seconds")),
        "workers": rows[:top],
        "lower_bound": _round(bound),
        "test_span": _round(span_seconds),
        "over_lower_bound": _round(span_seconds - bound),
        "ratio_to_lower_bound": round(span_seconds / bound, 3) if bound > 0 else None,
        "longest": [
            {
                "nodeid": t["nodeid"],
                "duration": _round(float(t["duration"])),
                "worker": t["worker"],
                "started": _round(float(t["start"]) - origin),
            }
            for t in longest
        ],
        "predicted": [{"workers": p.workers, "seconds": p.seconds} for p in choice.predictions],
        "auto_workers": choice.workers,
        "cpu_stretch": stretch,
        "controller_cpu_per_test": workercount.measured(run.get("controller_cpu_per_test")),
        "after_tests_seconds": workercount.measured(run.get("after_tests_seconds")),
    }


def _worker_rows(
    tests: Sequence[Mapping[str, Any]],
    starts: Sequence[float],
    stops: Sequence[float],
    durations: Sequence[float],
    run: Mapping[str, Any],
    origin: float,
) -> list[dict[str, Any]]:
    """Per worker: when it was ready and had collected, its first start, last stop, busy seconds."""
    by_worker: dict[str, list[int]] = {}
    for index, worker in enumerate(map(itemgetter("worker"), tests)):
        indices = by_worker.get(worker)
        if indices is None:
            by_worker[worker] = [index]
        else:
            indices.append(index)
    spans = {
        worker: (
            min(map(starts.__getitem__, indices)),
            max(map(stops.__getitem__, indices)),
            sum(map(durations.__getitem__, indices)),
        )
        for worker, indices in by_worker.items()
    }
    given = run.get("worker_startup")
    startup: Mapping[str, Any] = given if isinstance(given, dict) else {}
    rows = []
    for name, (first_start, finish, busy) in sorted(spans.items()):
        info = startup.get(name) or {}
        rows.append(
            {
                "worker": name,
                "ready": _round(info.get("ready")),
                "collected": _round(info.get("collected")),
                "first_start": _round(first_start - origin),
                "finish": _round(finish - origin),
                "busy": _round(busy),
            }
        )
    return rows


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def text_lines(section: Mapping[str, Any]) -> list[str]:
    out = [
        f"schedule: tests ran {_s(section['test_span'])} from first start to last stop; "
        f"lower bound max(sum/workers, longest) {_s(section['lower_bound'])}, "
        f"{_s(section['over_lower_bound'])} over it (x{section['ratio_to_lower_bound']}); "
        f"collection {_s(section['collection_seconds'])}",
        "  worker     ready  collected  first test   finished       busy",
    ]
    out += [
        f"  {w['worker']:<8} {_s(w['ready']):>7} {_s(w['collected']):>10} "
        f"{_s(w['first_start']):>12} {_s(w['finish']):>10} {_s(w['busy']):>10}"
        for w in section["workers"]
    ]
    out.append("longest tests started (seconds into the run):")
    out += [
        f"  {_s(t['duration']):>9} on {t['worker']:<6} started at {_s(t['started'])}  {t['nodeid']}"
        for t in section["longest"]
    ]
    out.append(_prediction_line(section))
    return out


def _prediction_line(section: Mapping[str, Any]) -> str:
    table = ", ".join(f"{p['workers']}: {_s(p['seconds'])}" for p in section["predicted"])
    auto = section["auto_workers"]
    line = f"predicted wall time per worker count: {table or '-'}; --workers auto: {auto}"
    stretch = section.get("cpu_stretch")
    if stretch is not None:
        # Why a suite that computes gets no more workers than CPUs, however long it took.
        line += f" (tests waited for a free core: x{stretch:.2f} their CPU time)"
    per_test = section.get("controller_cpu_per_test")
    if per_test is not None:
        # What xdist itself cost this run: what a one-process run would not pay.
        after = section.get("after_tests_seconds")
        line += f"; xdist's controller took {per_test * 1000:.2f} ms of CPU per test"
        if after is not None:
            line += f", and the session ended {after:.2f}s after the last test"
    return line


def markdown_lines(section: Mapping[str, Any], table: Any) -> list[str]:
    """The section in markdown; ``table(header, rows)`` renders a table."""
    out = [
        "",
        "### Schedule",
        "",
        f"Tests ran {_s(section['test_span'])} from the first start to the last stop; the "
        f"lower bound max(sum / workers, longest test) is {_s(section['lower_bound'])}, "
        f"{_s(section['over_lower_bound'])} less (x{section['ratio_to_lower_bound']}). "
        f"Collection: {_s(section['collection_seconds'])}.",
        "",
    ]
    out += table(
        ["worker", "ready", "collected", "first test", "finished", "busy"],
        [
            [
                w["worker"],
                _s(w["ready"]),
                _s(w["collected"]),
                _s(w["first_start"]),
                _s(w["finish"]),
                _s(w["busy"]),
            ]
            for w in section["workers"]
        ],
    )
    out += ["", "Longest tests and when they started:", ""]
    out += table(
        ["seconds", "worker", "started at", "test"],
        [
            [_s(t["duration"]), t["worker"], _s(t["started"]), f"`{t['nodeid']}`"]
            for t in section["longest"]
        ],
    )
    out += ["", _prediction_line(section) + "."]
    return out


def visible_markers(names: Sequence[str]) -> list[str]:
    """The markers worth a row in the marker table: not pytest's built-in ones."""
    return [name for name in names if name not in BUILTIN_MARKS]

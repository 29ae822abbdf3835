"""How many workers: the count the history predicts fastest, and the predictions behind it.

A test's wall time is its CPU time plus its waiting (sleeps, I/O, servers). On W workers
and C cores the CPU parts share the cores, so they stretch by max(1, W / C) while the
waits do not; every worker also pays its start-up (interpreter, imports, collection),
and start-ups share the cores the same way. Predicted wall time on W workers:

    start-up * max(1, W / C) + max(LPT makespan of the stretched tests, total CPU / C)

A CPU-bound suite stops gaining at C workers; a suite that waits keeps gaining past it.
A test with no CPU measurement counts as all CPU: without evidence, no more workers
than cores.

Not every second of wall time beyond the CPU time is a wait that more workers overlap:
while other processes hold the cores, a test waits for one too. A run measures that
wait (``cpu_stretch`` in its report, from Linux's scheduler statistics), and each test's
CPU time is stretched by it before the rest of its wall time counts as waiting: a
CPU-bound suite timed on a busy machine does not pass for one that sleeps.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.durations import Durations, load_durations
from testfleet.schedule import predict_makespan

#: A larger count must be predicted at least this much faster to be chosen: a worker
#: costs memory and start-up that the model does not see.
MIN_GAIN = 0.03
#: Start-up of one worker when no report measured it: interpreter, pytest, a collection.
DEFAULT_STARTUP = 1.0


@dataclass(frozen=True)
class Prediction:
    workers: int
    seconds: float


@dataclass(frozen=True)
class Choice:
    workers: int
    predictions: list[Prediction]
    #: Why: from history, or a fallback with its reason.
    reason: str

    def describe(self) -> str:
        table = ", ".join(f"{p.workers}: {p.seconds:.1f}s" for p in self.predictions)
        return f"{self.workers} workers ({self.reason}; predicted wall time {table})"


def cores() -> int:
    """The CPUs this process may use (the affinity mask, as xdist's ``auto`` counts)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def startup_from_report(run: Mapping[str, Any]) -> float | None:
    """Median seconds from a worker's start to the end of its collection, or None."""
    startup = run.get("worker_startup")
    if isinstance(startup, dict):
        spans = [
            float(w["collected"])
            for w in startup.values()
            if isinstance(w, dict) and isinstance(w.get("collected"), int | float)
        ]
        if spans:
            return statistics.median(spans)
    collection = run.get("collection_seconds")
    return float(collection) if isinstance(collection, int | float) else None


def stretch_from_report(run: Mapping[str, Any]) -> float | None:
    """The run's ``cpu_stretch`` (at least 1), or None when it was not measured."""
    stretch = run.get("cpu_stretch")
    if isinstance(stretch, int | float) and not isinstance(stretch, bool) and stretch > 0:
        return max(float(stretch), 1.0)
    return None


def predict(
    walls: Sequence[float],
    cpus: Sequence[float],
    workers: int,
    n_cores: int,
    startup: float,
) -> float:
    """Predicted wall seconds of the tests (wall and CPU seconds each) on ``workers``."""
    return _predict(_Suite(walls, cpus), workers, n_cores, startup)


class _Suite:
    """The tests' CPU seconds and waits, and their sums: computed once for every count."""

    def __init__(self, walls: Sequence[float], cpus: Sequence[float]) -> None:
        self.cpus = list(cpus)
        self.waits = [max(wall - cpu, 0.0) for wall, cpu in zip(walls, cpus, strict=True)]
        self.cpu_sum = sum(self.cpus)
        #: The tests' seconds on at most one worker per core, when nothing stretches.
        self.unstretched = [cpu + wait for cpu, wait in zip(self.cpus, self.waits, strict=True)]


def _predict(suite: _Suite, workers: int, n_cores: int, startup: float) -> float:
    stretch = max(1.0, workers / n_cores)
    if stretch == 1.0:
        stretched = suite.unstretched
    else:
        stretched = [
            cpu * stretch + wait for cpu, wait in zip(suite.cpus, suite.waits, strict=True)
        ]
    cpu_bound = suite.cpu_sum / n_cores
    one_startup = startup * (stretch if workers > 1 else 1.0)
    return one_startup + max(predict_makespan(stretched, workers), cpu_bound)


def predictions(
    durations: Durations,
    n_cores: int,
    startup: float,
    most: int | None = None,
    stretch: float = 1.0,
) -> list[Prediction]:
    """Predicted wall time for 1 to ``most`` (default 2 * cores) workers.

    ``stretch``: the measured runs' wait for a free core per CPU second (see the module).
    """
    cpu_of = durations.cpu
    walls = list(durations.wall.values())
    cpus = [
        min(cpu_of.get(nodeid, wall) * stretch, wall) for nodeid, wall in durations.wall.items()
    ]
    suite = _Suite(walls, cpus)
    top = most if most is not None else 2 * n_cores
    return [
        Prediction(w, round(_predict(suite, w, n_cores, startup), 3)) for w in range(1, top + 1)
    ]


def choose_from(root: Path, sources: Sequence[Path], n_cores: int | None = None) -> Choice:
    """:func:`choose` with the durations of ``sources`` (and the store) under ``root``.

    Start-up and the wait for a free core come from the first source that measured each.
    """
    known = load_durations(root, sources)
    startup = next((s for s in map(startup_from_report, known.runs) if s is not None), None)
    stretch = next((s for s in map(stretch_from_report, known.runs) if s is not None), None)
    return choose(known, startup, n_cores, stretch)


def choose(
    durations: Durations,
    startup: float | None,
    n_cores: int | None = None,
    stretch: float | None = None,
) -> Choice:
    """The worker count the history predicts fastest (fewer when within ``MIN_GAIN``)."""
    n = n_cores or cores()
    if not durations.wall:
        return Choice(n, [], "no timing history: one per CPU")
    table = predictions(
        durations,
        n,
        startup if startup is not None else DEFAULT_STARTUP,
        stretch=stretch if stretch is not None else 1.0,
    )
    best = table[0]
    for candidate in table[1:]:
        if candidate.seconds < best.seconds * (1 - MIN_GAIN):
            best = candidate
    reason = f"from {len(durations.wall)} timed tests"
    if stretch is not None and stretch > 1.0:
        reason += f", which waited for a free core x{stretch:.2f} their CPU time"
    return Choice(best.workers, table, reason)

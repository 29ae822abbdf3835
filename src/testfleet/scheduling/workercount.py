"""How many workers: the count the history predicts fastest, and the predictions behind it.

A test's wall time is its CPU time plus its waiting (sleeps, I/O, servers). On W workers
and C cores the CPU parts share the cores, so they stretch by max(1, W / C) while the
waits do not; every worker also pays its start-up (interpreter, imports, collection),
and start-ups share the cores the same way.

xdist is not free. Each test's reports are serialized by its worker and taken in by the
controller, a third process on the same cores: a CPU cost per test on each side
(``controller_cpu_per_test`` in a report measures the controller's, x; the worker's,
x_worker, is taken as ``WORKER_SHARE`` of it), and, at the end, the controller catching
up on reports (``after_tests_seconds``). One process pays none of it. Predicted wall time::

    W = 1:  start-up(one process) + sum(cpu + wait) + its tail
    W > 1:  start-up(xdist) * max(1, W / C)
            + max(LPT makespan of (cpu + x_worker) * max(1, W / C) + wait,
                  (sum(cpu + x_worker) + tests * x) / C)
            + xdist's tail

A suite of many millisecond tests often runs faster in one process than on two workers
on two cores; `--workers auto` then says 1.

A test's CPU time counts x_worker when it was measured under xdist: it is taken off for
the one-process prediction. The duration store keeps the costs of the last run with xdist and of the
last without it, so that a run in one mode still weighs what it measured of the other.

A CPU-bound suite stops gaining at C workers; a suite that waits keeps gaining past it.
A test with no CPU measurement counts as all CPU: without evidence, no more workers than
cores.

Not every second of wall time beyond the CPU time is a wait that more workers overlap:
while other processes hold the cores, a test waits for one too. A run measures that
wait (``cpu_stretch`` in its report, from Linux's scheduler statistics), and each test's
CPU time is stretched by it before the rest of its wall time counts as waiting: a
CPU-bound suite timed on a busy machine does not pass for one that sleeps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.scheduling.durations import Durations, load_durations
from testfleet.scheduling.units import predict_makespan
from testfleet.timing.store import run_mode

#: A larger count must be predicted at least this much faster to be chosen: a worker
#: costs memory and start-up that the model does not see.
MIN_GAIN = 0.03
#: Start-up of one worker when no report measured it: interpreter, pytest, a collection.
DEFAULT_STARTUP = 1.0
#: xdist's CPU cost per test in a worker, as a share of the controller's: measured 0.54
#: and 0.79 on two suites (a template engine's 911 tests, 5,000 empty tests).
WORKER_SHARE = 0.65
#: Seconds from a worker's launch to its being ready, when no report measured it.
DEFAULT_SPAWN = 0.5
#: xdist's CPU seconds per test in the worker, and again in the controller, when no
#: report measured it: what trivial tests cost under pytest-xdist 3 on two cores, beyond
#: their cost in one process (worker 0.4 ms, controller 0.45 to 0.7 ms).
DEFAULT_PER_TEST = 0.0005


@dataclass(frozen=True)
class RunCosts:
    """What a run costs beyond its tests, as the last measured run showed it."""

    #: Seconds until an xdist worker has collected: interpreter, imports, collection.
    startup: float = DEFAULT_STARTUP
    #: The workers of the run that measured ``startup``: more than the cores, and their
    #: start-ups shared the cores, which the prediction adds again for its own count.
    startup_workers: int = 1
    #: Seconds until one process (no xdist) has collected; None: the same as ``startup``.
    startup_one: float | None = None
    #: The measured run's wait for a free core, per second on one (at least 1).
    stretch: float = 1.0
    #: Whether the tests' CPU times were measured under xdist (they include ``per_test``).
    measured_on_xdist: bool = False
    #: xdist's CPU seconds per test, in the worker and again in the controller.
    per_test: float = DEFAULT_PER_TEST
    #: Seconds from the last test's end to the session's end, under xdist and without it.
    tail: float = 0.0
    tail_one: float = 0.0

    @classmethod
    def from_run(cls, run: Mapping[str, Any], other: Mapping[str, Any] | None = None) -> RunCosts:
        """The costs measured by ``run`` (whose tests' CPU times are used), and by
        ``other``, a run in the other mode (with or without xdist); defaults for the rest.
        """
        on_xdist = run_mode(run) == "xdist"
        xdist_run, one_run = (run, other) if on_xdist else (other, run)
        xdist_run, one_run = xdist_run or {}, one_run or {}
        collected = startup_from_report(xdist_run)
        # Only a measured start-up shared the cores among its run's workers.
        workers = measured(xdist_run.get("workers")) if collected is not None else None
        collection = measured(xdist_run.get("collection_seconds"))
        alone = startup_from_report(one_run)
        # A worker's start-up is a process start, imports and the collection; one process
        # pays only the collection (its imports come before the run's clock starts).
        if alone is None:
            alone = collection if collection is not None else collected
        if collected is None:
            collected = DEFAULT_STARTUP if alone is None else alone + DEFAULT_SPAWN
        if alone is None:
            alone = collected
        per_test = measured(xdist_run.get("controller_cpu_per_test"))
        return cls(
            startup=collected,
            startup_workers=max(int(workers), 1) if workers else 1,
            startup_one=alone,
            stretch=stretch_from_report(run) or 1.0,
            measured_on_xdist=on_xdist,
            per_test=per_test if per_test is not None else DEFAULT_PER_TEST,
            tail=measured(xdist_run.get("after_tests_seconds")) or 0.0,
            tail_one=measured(one_run.get("after_tests_seconds")) or 0.0,
        )


def measured(value: object) -> float | None:
    """A finite, non-negative number from a report or the store, else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number >= 0:
            return number
    return None


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
        noun = "worker" if self.workers == 1 else "workers"
        return f"{self.workers} {noun} ({self.reason}; predicted wall time {table})"


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
        found = [measured(w.get("collected")) for w in startup.values() if isinstance(w, dict)]
        spans = [span for span in found if span is not None]
        if spans:
            # Imported here: `testfleet run` imports this module before pytest starts.
            import statistics

            return statistics.median(spans)
    return measured(run.get("collection_seconds"))


def stretch_from_report(run: Mapping[str, Any]) -> float | None:
    """The run's ``cpu_stretch`` (at least 1), or None when it was not measured."""
    stretch = measured(run.get("cpu_stretch"))
    return max(stretch, 1.0) if stretch else None


class _Suite:
    """The tests' CPU seconds in one process and their waits, and their sums."""

    def __init__(self, walls: Sequence[float], cpus: Sequence[float], costs: RunCosts) -> None:
        # CPU measured under xdist includes its per-test cost: one process does not pay it.
        off = costs.per_test * WORKER_SHARE if costs.measured_on_xdist else 0.0
        stretch = costs.stretch
        # Conditional expressions, not max(): a third of the time on 100,000 tests, which
        # `testfleet report` predicts for several worker counts.
        self.waits = [
            wait if (wait := wall - cpu * stretch) > 0.0 else 0.0
            for wall, cpu in zip(walls, cpus, strict=True)
        ]
        self.cpus = [left if (left := cpu - off) > 0.0 else 0.0 for cpu in cpus]
        self.cpu_sum = sum(self.cpus)
        self.wait_sum = sum(self.waits)
        self.count = len(self.cpus)


def _predict(suite: _Suite, workers: int, n_cores: int, costs: RunCosts) -> float:
    if workers == 1:
        startup = costs.startup if costs.startup_one is None else costs.startup_one
        return startup + suite.cpu_sum + suite.wait_sum + costs.tail_one
    stretch = max(1.0, workers / n_cores)
    worker_x = costs.per_test * WORKER_SHARE
    slots = [
        (cpu + worker_x) * stretch + wait for cpu, wait in zip(suite.cpus, suite.waits, strict=True)
    ]
    # The controller's share of the cores: it takes in every test's reports.
    cpu_bound = (suite.cpu_sum + (worker_x + costs.per_test) * suite.count) / n_cores
    # The measured start-up already shared the cores among its run's workers.
    startup = costs.startup / max(1.0, costs.startup_workers / n_cores)
    return startup * stretch + max(predict_makespan(slots, workers), cpu_bound) + costs.tail


def predictions(
    durations: Durations,
    n_cores: int,
    costs: RunCosts,
    most: int | None = None,
) -> list[Prediction]:
    """Predicted wall time for 1 to ``most`` (default 2 * cores) workers."""
    cpu_of = durations.cpu
    walls = list(durations.wall.values())
    # A test without a CPU measurement counts as all CPU.
    cpus = [cpu_of.get(nodeid, wall) for nodeid, wall in durations.wall.items()]
    suite = _Suite(walls, cpus, costs)
    top = most if most is not None else 2 * n_cores
    return [Prediction(w, round(_predict(suite, w, n_cores, costs), 3)) for w in range(1, top + 1)]


def choose_from(root: Path, sources: Sequence[Path], n_cores: int | None = None) -> Choice:
    """:func:`choose` with the durations of ``sources`` (and the store) under ``root``.

    The costs beyond the tests: see :func:`costs_of`.
    """
    known = load_durations(root, sources)
    return choose(known, costs_of(known), n_cores)


def costs_of(known: Durations) -> RunCosts:
    """The costs of the run whose CPU times ``known`` holds: the store's last, else the
    newest report's; the other mode's from the store when it kept one."""
    runs = known.store_runs
    if known.store_last is not None:
        other = "one" if known.store_last == "xdist" else "xdist"
        return RunCosts.from_run(runs[known.store_last], runs.get(other))
    return RunCosts.from_run(known.runs[0]) if known.runs else RunCosts()


def choose(
    durations: Durations,
    costs: RunCosts | None = None,
    n_cores: int | None = None,
) -> Choice:
    """The worker count the history predicts fastest (fewer when within ``MIN_GAIN``)."""
    n = n_cores or cores()
    if not durations.wall:
        return Choice(n, [], "no timing history: one per CPU")
    costs = costs or RunCosts()
    table = predictions(durations, n, costs)
    best = table[0]
    for candidate in table[1:]:
        if candidate.seconds < best.seconds * (1 - MIN_GAIN):
            best = candidate
    reason = f"from {len(durations.wall)} timed tests"
    if costs.stretch > 1.0:
        reason += f", which waited for a free core x{costs.stretch:.2f} their CPU time"
    return Choice(best.workers, table, reason)

"""The controller's cost per test of testfleet's xdist scheduler against xdist's ``load``.

xdist's controller calls its scheduler after every test. Both schedulers are driven here
in one process, with no pytest and no workers, by simulated workers that behave as
xdist's do: a worker runs the first of its pending tests only once it holds the next
one or has been told to shut down, and it answers a steal request by giving back the
tests asked for if it still holds them all. Only the scheduler calls are timed (CPU
seconds), in interleaved rounds. Every round checks the answer: each test ran exactly
once and every worker was shut down; otherwise the benchmark stops with exit status 1.

Target: testfleet's scheduler costs at most what ``load`` costs per test (``--check``
exits 1 above it). The durations are lognormal, with 1 % of the tests a hundred times
longer, so that the longest-first order and the tail's stealing are exercised.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xdist.remote import Producer
from xdist.scheduler.load import LoadScheduling

from testfleet.core.atomic import write_json_atomic
from testfleet.scheduling.xdist_scheduler import DurationScheduling

DEFAULT_TESTS = 20_000
DEFAULT_ROUNDS = 7
DEFAULT_WORKERS = 2


class BenchmarkError(Exception):
    """A scheduler lost, repeated or never finished a test: its time would mean nothing."""


class Worker:
    """What a scheduler sees of an xdist worker, and what it was told."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.shutting_down = False
        self.steal_request: list[int] | None = None
        self.workerinput = {"workerid": name}
        # xdist's check that every worker collected the same tests names the gateways.
        self.gateway = type("Gateway", (), {"id": name})()

    def send_runtest_some(self, indices: Sequence[int]) -> None:
        pass

    def send_steal(self, indices: Sequence[int]) -> None:
        self.steal_request = list(indices)

    def shutdown(self) -> None:
        self.shutting_down = True

    def __repr__(self) -> str:
        return self.name


class _Config:
    """The options xdist's ``LoadScheduling`` reads."""

    def __init__(self, workers: int) -> None:
        self.option = argparse.Namespace(tx=[f"{workers}*popen"], maxschedchunk=None)

    def getvalue(self, name: str) -> Any:
        return getattr(self.option, name)

    def getoption(self, name: str, default: Any = None) -> Any:
        return getattr(self.option, name, default)


def suite(tests: int, seed: int) -> tuple[list[str], list[float]]:
    rng = random.Random(seed)
    collection = [f"tests/test_m{i // 100}.py::test_{i}" for i in range(tests)]
    costs = [rng.lognormvariate(-6, 1.0) * (100 if rng.random() < 0.01 else 1) for _ in collection]
    return collection, costs


def make_load(workers: int, costs: list[float]) -> Any:
    return LoadScheduling(_Config(workers), Producer("bench", enabled=False))  # type: ignore[arg-type]


def make_testfleet(workers: int, costs: list[float]) -> Any:
    return DurationScheduling(
        workers, lambda collection: list(costs), lambda node, c: ([], {}), lambda *a: None
    )


MAKERS: dict[str, Callable[[int, list[float]], Any]] = {
    "load": make_load,
    "testfleet": make_testfleet,
}


def drive(scheduler: Any, workers: int, collection: list[str]) -> tuple[float, list[int]]:
    """CPU seconds spent in the scheduler over a whole run, and the tests run in order."""
    nodes = [Worker(f"gw{i}") for i in range(workers)]
    clock = time.process_time
    spent = 0.0
    started = clock()
    for node in nodes:
        scheduler.add_node(node)
    for node in nodes:
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    spent += clock() - started
    ran: list[int] = []
    while True:
        moved = False
        for node in nodes:
            pending = scheduler.node2pending[node]
            if node.steal_request is not None:
                asked, node.steal_request = node.steal_request, None
                held = set(list(pending)[2:])
                given = asked if held.issuperset(asked) else []
                started = clock()
                scheduler.remove_pending_tests_from_node(node, given)
                spent += clock() - started
                moved = True
                continue
            if pending and (len(pending) >= 2 or node.shutting_down):
                index = pending[0]
                ran.append(index)
                started = clock()
                scheduler.mark_test_complete(node, index, 0.0)
                spent += clock() - started
                moved = True
        if not moved:
            break
    if not all(node.shutting_down for node in nodes):
        raise BenchmarkError(f"{type(scheduler).__name__}: a worker was never shut down")
    if sorted(ran) != list(range(len(collection))):
        raise BenchmarkError(f"{type(scheduler).__name__}: tests lost or run twice")
    return spent, ran


def measure(tests: int, workers: int, rounds: int, echo: Callable[[str], None]) -> dict[str, Any]:
    collection, costs = suite(tests, seed=1)
    per_test: dict[str, list[float]] = {name: [] for name in MAKERS}
    names = list(MAKERS)
    for number in range(rounds + 1):
        order = names[number % len(names) :] + names[: number % len(names)]
        for name in order:
            seconds, _ = drive(MAKERS[name](workers, costs), workers, collection)
            if number:  # the first round warms up
                per_test[name].append(seconds / tests * 1e6)
        if number:
            echo(f"round {number}/{rounds} done")
    medians = {name: statistics.median(values) for name, values in per_test.items()}
    return {
        "tests": tests,
        "workers": workers,
        "rounds": rounds,
        "microseconds_per_test": {
            name: {"median": round(medians[name], 3), "min": round(min(values), 3)}
            for name, values in per_test.items()
        },
        "ratio_to_load": round(medians["testfleet"] / medians["load"], 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=DEFAULT_TESTS)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--json", type=Path, help="also write the figures here (atomically)")
    parser.add_argument("--check", action="store_true", help="exit 1 when dearer than load")
    args = parser.parse_args(argv)
    if args.tests < 10 or args.workers < 1 or args.rounds < 1:
        parser.error("--tests must be at least 10, --workers and --rounds at least 1")
    try:
        figures = measure(
            args.tests, args.workers, args.rounds, lambda line: print(line, file=sys.stderr)
        )
    except BenchmarkError as exc:
        print(f"bench_scheduler_cost: {exc}", file=sys.stderr)
        return 1
    print(f"scheduler cost per test, {args.tests} tests, {args.workers} workers, CPU microseconds")
    for name, row in figures["microseconds_per_test"].items():
        print(f"  {name:<10} median {row['median']:.3f}  min {row['min']:.3f}")
    ratio = figures["ratio_to_load"]
    verdict = "met" if ratio <= 1.0 else "NOT MET"
    print(f"testfleet / load: x{ratio:.3f} (target: at most x1.000, {verdict})")
    if args.json is not None:
        write_json_atomic(args.json, {"schema": "testfleet.bench-scheduler-cost/1", **figures})
    return 1 if args.check and ratio > 1.0 else 0


if __name__ == "__main__":
    raise SystemExit(main())

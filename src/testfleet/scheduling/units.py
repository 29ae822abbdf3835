"""What to run in which order: units of work from past durations, and predicted wall times.

Pure functions over collection indices and seconds; :mod:`testfleet.scheduling.xdist_scheduler`
hands their result to pytest-xdist's workers, and the worker count and the report use
the same predictions.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

#: A unit costing at least 1/LONG_SHARE of one worker's share of the run may go first,
#: longest first: if too little work is collected after it to keep the other workers
#: busy while it runs (``TAIL_COVER`` times its cost on each of them). The rest keep
#: their collection order, so that tests sharing a module or class fixture, imports and
#: caches stay together on a worker, as with xdist's ``load``.
LONG_SHARE = 50
TAIL_COVER = 2.0
#: The longest tests placed one by one in a prediction; the shorter rest is spread evenly.
EXACT_TESTS = 2000


@dataclass(slots=True)
class Unit:
    """Tests that go to one worker together: one test, or every test of an xdist_group."""

    indices: list[int]
    cost: float


#: The key every `serial` test shares: they run together, last, on one worker.
SERIAL_KEY = "serial"


def join_units(keys: Sequence[Iterable[str]]) -> list[list[int]]:
    """Tests that must run together, as lists of indices, each ordered, by first index.

    ``keys[i]`` names what test ``i`` shares with others (its xdist_group, the `serial`
    unit): tests that share a key, directly or through other tests, make one unit; a
    test without a key is a unit of its own. The scheduler and the CI shards both cut
    their units here, each from its own keys.
    """
    parent = list(range(len(keys)))

    def find(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    owner: dict[str, int] = {}
    for index, names in enumerate(keys):
        for name in names:
            first, other = find(index), find(owner.setdefault(name, index))
            if first != other:
                # The lower index leads: a unit is found at its first test.
                parent[max(first, other)] = min(first, other)
    members: dict[int, list[int]] = {}
    for index in range(len(keys)):
        members.setdefault(find(index), []).append(index)
    return list(members.values())


def build_units(
    costs: Sequence[float], groups: Mapping[str, Sequence[int]], serial: Collection[int]
) -> tuple[list[Unit], list[int]]:
    """Units of the tests that are not `serial`, and the `serial` tests, both in collection order.

    A group holding a `serial` test runs with the `serial` tests: a group must stay on
    one worker, and the `serial` tests run last on one worker.
    """
    if not serial and not any(groups.values()):
        # The common case, no group and no `serial` test: one unit per test.
        return [Unit([index], cost) for index, cost in enumerate(costs)], []
    keys: list[list[str]] = [[] for _ in costs]
    for name, indices in groups.items():
        for index in indices:
            keys[index].append("group:" + name)
    for index in serial:
        keys[index].append(SERIAL_KEY)
    units: list[Unit] = []
    deferred: list[int] = []
    for members in join_units(keys):
        if any(SERIAL_KEY in keys[index] for index in members):
            deferred = members
        elif len(members) == 1:
            units.append(Unit(members, costs[members[0]]))
        else:
            units.append(Unit(members, sum(costs[i] for i in members)))
    return units, deferred


def place_longest_first(
    costs: Iterable[float], bins: int, sizes: Sequence[int] = ()
) -> tuple[list[int], list[float]]:
    """Each cost, in the order given (longest first), to the least loaded of ``bins``.

    Longest-processing-time-first: within 4/3 of the best possible. Returns the bin of
    each cost and each bin's load. A tie goes to the bin holding fewer tests (``sizes``:
    how many tests each cost stands for, 1 each by default), then to the lower bin.
    The scheduler's predictions and the CI shards place their units here.
    """
    heap = [(0.0, 0, index) for index in range(bins)]
    placed: list[int] = []
    for position, cost in enumerate(costs):
        load, count, index = heap[0]
        heapq.heapreplace(heap, (load + cost, count + (sizes[position] if sizes else 1), index))
        placed.append(index)
    loads = [0.0] * bins
    for load, _, index in heap:
        loads[index] = load
    return placed, loads


def dispatch_order(units: Sequence[Unit], workers: int) -> list[Unit]:
    """Long units that would end the run late first, longest first; the rest in collection order.

    A long unit with enough work collected after it stays where it is: while one worker
    runs it the others take that work, and moving it would cost more than it gains. On
    real suites, a test measured long is often the first to use a module's imports or a
    cached value; run early on another worker, those costs are paid twice (measured:
    1.1 s more test time in a run of 43 s, with no gain in the span). With no history
    every unit costs the same estimate: nothing is long and the order is the
    collection's, as with xdist's ``load``.
    """
    total = sum(unit.cost for unit in units)
    threshold = total / (max(workers, 1) * LONG_SHARE)
    cover = TAIL_COVER * max(workers - 1, 1)
    long_units: list[Unit] = []
    after = 0.0
    for unit in reversed(units):
        if unit.cost >= threshold and unit.cost > 0 and after < cover * unit.cost:
            long_units.append(unit)
        else:
            after += unit.cost
    if len(long_units) == len(units):
        # Few tests: every one is "long"; sorting them all is the longest-first order.
        return sorted(units, key=lambda unit: -unit.cost)
    chosen = {id(unit) for unit in long_units}
    long_units.sort(key=lambda unit: -unit.cost)
    return [*long_units, *(unit for unit in units if id(unit) not in chosen)]


def predict_makespan(costs: Iterable[float], workers: int) -> float:
    """Seconds until the last of ``workers`` finishes, each taking the next longest test.

    Longest-processing-time-first: within 4/3 of the best possible, and what the
    scheduler does with known durations.
    """
    every: list[float] = costs if isinstance(costs, list) else list(costs)
    total = sum(every)
    if workers <= 1:
        return total
    # Only the longest tests are placed one by one (nlargest: no sort of them all).
    exact = heapq.nlargest(EXACT_TESTS, every)
    loads = place_longest_first(exact, workers)[1]
    # The many short tests after the longest ones fill the workers up evenly: only their
    # sum matters, and a 100,000-test report is predicted in milliseconds.
    rest = max(total - sum(exact), 0.0)
    return max(max(loads), (sum(loads) + rest) / workers)


def lower_bound(costs: Sequence[float], workers: int) -> float:
    """No schedule on ``workers`` workers finishes sooner: max(sum / workers, longest)."""
    if not costs:
        return 0.0
    return max(sum(costs) / max(workers, 1), max(costs))

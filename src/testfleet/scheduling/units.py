"""What to run in which order: units of work from past durations, and predicted wall times.

Pure functions over collection indices and seconds; :mod:`testfleet.scheduling.xdist_scheduler`
hands their result to pytest-xdist's workers, and the worker count and the report use
the same predictions.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

#: A unit costing at least 1/LONG_SHARE of one worker's share of the run goes first,
#: longest first. The rest keep their collection order, so that tests sharing a module
#: or class fixture stay together on a worker, as with xdist's ``load``.
LONG_SHARE = 50
#: The longest tests placed one by one in a prediction; the shorter rest is spread evenly.
EXACT_TESTS = 2000


@dataclass(slots=True)
class Unit:
    """Tests that go to one worker together: one test, or every test of an xdist_group."""

    indices: list[int]
    cost: float


def build_units(
    costs: Sequence[float], groups: Mapping[str, Sequence[int]], serial: Collection[int]
) -> tuple[list[Unit], list[int]]:
    """Units of the tests that are not `serial`, and the `serial` tests, both in collection order.

    A group holding a `serial` test runs with the `serial` tests: a group must stay on
    one worker, and the `serial` tests run last on one worker.
    """
    leader: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    deferred = set(serial)
    for indices in groups.values():
        ordered = sorted(indices)
        if not ordered:
            continue
        if deferred.intersection(ordered):
            deferred.update(ordered)
            continue
        members[ordered[0]] = ordered
        for index in ordered[1:]:
            leader[index] = ordered[0]
    if not members and not deferred:
        # The common case, no group and no `serial` test: one unit per test.
        return [Unit([index], cost) for index, cost in enumerate(costs)], []
    units: list[Unit] = []
    for index, cost in enumerate(costs):
        if index in deferred or index in leader:
            continue
        group = members.get(index)
        if group is None:
            units.append(Unit([index], cost))
        else:
            units.append(Unit(group, sum(costs[i] for i in group)))
    return units, sorted(deferred)


def dispatch_order(units: Sequence[Unit], workers: int) -> list[Unit]:
    """Long units first, longest first; then the others in collection order.

    With no history every unit costs the same estimate: nothing is long and the order is
    the collection's, as with xdist's ``load``.
    """
    total = sum(unit.cost for unit in units)
    threshold = total / (max(workers, 1) * LONG_SHARE)
    long_units = [unit for unit in units if unit.cost >= threshold and unit.cost > 0]
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
    loads = [0.0] * workers
    # Only the longest tests are placed one by one (nlargest: no sort of them all).
    exact = heapq.nlargest(EXACT_TESTS, every)
    for cost in exact:
        heapq.heapreplace(loads, loads[0] + cost)
    # The many short tests after the longest ones fill the workers up evenly: only their
    # sum matters, and a 100,000-test report is predicted in milliseconds.
    rest = max(total - sum(exact), 0.0)
    return max(max(loads), (sum(loads) + rest) / workers)


def lower_bound(costs: Sequence[float], workers: int) -> float:
    """No schedule on ``workers`` workers finishes sooner: max(sum / workers, longest)."""
    if not costs:
        return 0.0
    return max(sum(costs) / max(workers, 1), max(costs))

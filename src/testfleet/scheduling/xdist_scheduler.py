"""testfleet's pytest-xdist scheduler: longest tests first, stealing at the tail, `serial` last.

It follows xdist 3.x's ``Scheduling`` protocol (``xdist/scheduler/protocol.py``):

- Work goes out in units (:mod:`testfleet.scheduling.units`): a test, or a whole xdist_group
  with its summed duration. Long units first, longest first, then the rest in
  collection order.
- A worker is topped up with seconds of work, not a count of tests: below a quarter of
  its share of what is left it gets units up to half of that share, so the chunks
  shrink towards the end of the run, as xdist's ``load`` does with counts.
- When nothing is left to hand out, an idle worker takes the tail of the busiest
  worker's queue (xdist's ``steal`` command), never cutting a group.
- `serial` tests wait until every other worker has finished its session, then run on
  the last worker alone.

xdist's worker runs a test only once it holds the next one (or is told to shut down),
so a worker with one pending test is idle; the first two pending tests are never stolen.
"""

from __future__ import annotations

import difflib
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from testfleet.scheduling.units import Unit, build_units, dispatch_order

#: A worker with fewer pending tests than this is idle (xdist's MIN_PENDING).
MIN_PENDING = 2


class Node(Protocol):
    """The part of xdist's ``WorkerController`` a scheduler uses."""

    @property
    def shutting_down(self) -> bool: ...

    def send_runtest_some(self, indices: Sequence[int]) -> None: ...

    def send_steal(self, indices: Sequence[int]) -> None: ...

    def shutdown(self) -> None: ...


#: ``(collection) -> seconds per test``, known or estimated.
CostsFor = Callable[[Sequence[str]], list[float]]
#: ``(node, collection) -> (serial indices, groups)``: what the workers saw on the items.
MetaFor = Callable[[Any, Sequence[str]], tuple[list[int], Mapping[str, list[int]]]]
Log = Callable[..., None]
#: ``(node) -> index`` of the test a worker that died was running, ``BETWEEN_TESTS``
#: (negative), or None if unknown (:mod:`testfleet.scheduling.running`).
RunningOf = Callable[[Any], int | None]


class DurationScheduling:
    """An xdist scheduler driven by past durations; see the module docstring."""

    def __init__(
        self,
        numnodes: int,
        costs_for: CostsFor,
        meta_for: MetaFor,
        log: Log,
        report: Callable[[str], None] | None = None,
        running_of: RunningOf | None = None,
    ) -> None:
        self.numnodes = numnodes
        self.running_of = running_of
        self.costs_for = costs_for
        self.meta_for = meta_for
        self.log = log
        self.node2collection: dict[Any, list[str]] = {}
        self.node2pending: dict[Any, deque[int]] = {}
        self.node2seconds: dict[Any, float] = {}
        self.collection: list[str] | None = None
        self.costs: list[float] = []
        self.queue: deque[Unit] = deque()
        self.queued_seconds = 0.0
        self.serial: list[int] = []
        self.serial_node: Any = None
        #: Group leader of every index in a group of more than one test.
        self.group_of: dict[int, int] = {}
        self.steal_requested_from: Any = None
        #: A worker holding more seconds than this (and two tests) needs nothing yet: a
        #: quarter of the share last computed. The share only shrinks as tests finish, so
        #: this stays at or above the true limit until work is put back (then: reset).
        self.refill_below = math.inf
        #: Where a collection error goes (pytest_collectreport); the run fails with it.
        self.report = report
        #: Workers collected different tests: nothing runs and the workers are let go.
        self.aborted = False

    # -- the Scheduling protocol ----------------------------------------------------------

    @property
    def nodes(self) -> list[Any]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.node2collection) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if self.aborted:
            return True
        if not self.collection_is_completed or self.collection is None:
            return False
        if self.queue or self.serial or self.steal_requested_from is not None:
            return False
        return all(len(pending) < MIN_PENDING for pending in self.node2pending.values())

    @property
    def has_pending(self) -> bool:
        if self.queue or self.serial:
            return True
        return any(self.node2pending.values())

    def add_node(self, node: Any) -> None:
        assert node not in self.node2pending
        self.node2pending[node] = deque()
        self.node2seconds[node] = 0.0

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        assert node in self.node2pending
        # A worker started after the first schedule (a crashed one replaced) must agree.
        if self.collection is not None and list(collection) != self.collection:
            self.log(f"{node}: collected other tests than the first workers; not used")
            return
        self.node2collection[node] = list(collection)

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        pending = self.node2pending[node]
        if pending and pending[0] == item_index:
            pending.popleft()
        else:
            pending.remove(item_index)
        seconds = self.node2seconds[node] - self.costs[item_index]
        self.node2seconds[node] = seconds
        if self.queue and len(pending) >= MIN_PENDING and seconds >= self.refill_below:
            # What _top_up would decide, without its pass over the workers: this runs
            # after every test, and must cost no more than xdist's ``load`` does.
            return
        self.check_schedule(node)
        if not self.queue:
            # The tail of the run: workers left idle earlier may steal now.
            for other, others_pending in self.node2pending.items():
                if other is not node and len(others_pending) < MIN_PENDING:
                    self.check_schedule(other)

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        index = self.collection.index(item)
        self._requeue([index])
        for node in self.nodes:
            self.check_schedule(node)

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None:
        """The answer to a steal: the tests the worker gave back (all asked for, or none)."""
        self.steal_requested_from = None
        if indices:
            stolen = set(indices)
            pending = self.node2pending[node]
            self.node2pending[node] = deque(i for i in pending if i not in stolen)
            self.node2seconds[node] -= sum(self.costs[i] for i in indices)
            self._requeue(indices)
        # The idle workers choose first: in the order of the workers, the one robbed
        # could take its tests straight back, be robbed again, and so on forever.
        for other in sorted(self.nodes, key=lambda n: len(self.node2pending[n]) >= MIN_PENDING):
            self.check_schedule(other)

    def remove_node(self, node: Any) -> str | None:
        pending = self.node2pending.pop(node)
        self.node2seconds.pop(node, None)
        # Fewer workers share what is left: each one's share grows.
        self.refill_below = math.inf
        if self.steal_requested_from is node:
            self.steal_requested_from = None
        if self.serial_node is node:
            self.serial_node = None
        crashitem = None
        if pending:
            assert self.collection is not None
            crashed = self._crashed(node, pending)
            if crashed is not None:
                crashitem = self.collection[crashed]
            self._requeue(list(pending))
        for other in self.nodes:
            self.check_schedule(other)
        return crashitem

    def _crashed(self, node: Any, pending: deque[int]) -> int | None:
        """Take the test ``node`` was running when it left out of ``pending``; None if none.

        xdist's rule (the first test the controller has not heard of) holds when a worker
        reports each test as it ends. A worker that sends passed tests in windows leaves
        its index in a file: the tests before it ended, their results lost with the
        worker, and run again elsewhere with the rest.
        """
        index = self.running_of(node) if self.running_of is not None else None
        if index is None:
            return pending.popleft()
        if index in pending:
            pending.remove(index)
            return index
        return None

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            for node in self.nodes:
                self.check_schedule(node)
            return
        first_node, collection = next(iter(self.node2collection.items()))
        for node, other in self.node2collection.items():
            if other != collection:
                # As xdist's own schedulers do: without an error and the workers shut down,
                # the controller would wait for tests that are never sent.
                message = different_collections(first_node, collection, node, other)
                self.log(f"**Different tests collected by {first_node} and {node}; aborting**")
                if self.report is not None:
                    self.report(message)
                self.aborted = True
                return
        self.collection = collection
        if not collection:
            return
        self.costs = self.costs_for(collection)
        serial, groups = self.meta_for(first_node, collection)
        units, self.serial = build_units(self.costs, groups, serial)
        for unit in units:
            if len(unit.indices) > 1:
                for index in unit.indices:
                    self.group_of[index] = unit.indices[0]
        self.queue = deque(dispatch_order(units, len(self.node2pending)))
        self.queued_seconds = sum(unit.cost for unit in self.queue)
        for node in self.nodes:
            self.check_schedule(node)

    # -- scheduling ---------------------------------------------------------------------

    def check_schedule(self, node: Any) -> None:
        if node.shutting_down or self.collection is None or node not in self.node2pending:
            return
        if self.queue:
            self._top_up(node)
            if not self.queue:
                # The last units went out: a worker holding a single test runs it only
                # once it is told what comes next, so settle every idle worker now.
                for other, pending in list(self.node2pending.items()):
                    if len(pending) < MIN_PENDING:
                        self.check_schedule(other)
            return
        if len(self.node2pending[node]) >= MIN_PENDING:
            return
        if self._steal_for_idle():
            return
        self._finish(node)

    def _top_up(self, node: Any) -> None:
        pending = self.node2pending[node]
        # One pass over the workers.
        left, alive = self.queued_seconds, 0
        for other, assigned in self.node2seconds.items():
            left += assigned
            if not other.shutting_down:
                alive += 1
        share = left / (alive or 1)
        self.refill_below = share / 4
        seconds = self.node2seconds[node]
        if len(pending) >= MIN_PENDING and seconds >= share / 4:
            return
        sent: list[int] = []
        queue = self.queue
        while queue and seconds < share / 2:
            unit = queue.popleft()
            self.queued_seconds -= unit.cost
            seconds += unit.cost
            sent.extend(unit.indices)
        while queue and len(pending) + len(sent) < MIN_PENDING:
            # The worker runs a test only once it holds the next one, and that one waits
            # behind it where no steal reaches: hold a short one (the queue's far end),
            # not the next long test, which another worker can start now.
            unit = queue.pop() if queue[0].cost > queue[-1].cost else queue.popleft()
            self.queued_seconds -= unit.cost
            seconds += unit.cost
            sent.extend(unit.indices)
        if sent:
            pending.extend(sent)
            self.node2seconds[node] = seconds
            node.send_runtest_some(sent)

    def _requeue(self, indices: Sequence[int]) -> None:
        """Put tests back at the front of the queue, a group as one unit."""
        self.refill_below = math.inf
        units: list[Unit] = []
        for index in indices:
            leader = self.group_of.get(index)
            if units and leader is not None and self.group_of.get(units[-1].indices[0]) == leader:
                units[-1].indices.append(index)
                units[-1].cost += self.costs[index]
            else:
                units.append(Unit([index], self.costs[index]))
        for unit in reversed(units):
            self.queue.appendleft(unit)
            self.queued_seconds += unit.cost

    def _steal_for_idle(self) -> bool:
        """Ask the busiest worker for the tail of its queue; whether a request is out."""
        if self.steal_requested_from is not None:
            return True
        best, best_tail = None, 0.0
        for other, pending in self.node2pending.items():
            if other.shutting_down or len(pending) <= MIN_PENDING:
                continue
            tail = sum(self.costs[i] for i in list(pending)[MIN_PENDING:])
            if tail > best_tail:
                best, best_tail = other, tail
        if best is None:
            return False
        indices = self._tail_to_steal(list(self.node2pending[best]), best_tail / 2)
        if not indices:
            return False
        best.send_steal(indices)
        self.steal_requested_from = best
        return True

    def _tail_to_steal(self, pending: list[int], seconds: float) -> list[int]:
        """The last tests of ``pending`` worth about ``seconds``, never half a group."""
        start = len(pending)
        taken = 0.0
        while start > MIN_PENDING and taken < seconds:
            start -= 1
            taken += self.costs[pending[start]]
        # Never cut a group: move the cut past the members of the group it falls into.
        while 0 < start < len(pending) and self._same_group(pending[start - 1], pending[start]):
            start += 1
        return pending[start:]

    def _same_group(self, first: int, second: int) -> bool:
        leader = self.group_of.get(first)
        return leader is not None and self.group_of.get(second) == leader

    def _finish(self, node: Any) -> None:
        """An idle worker with nothing left to take: shut it down, or give it the `serial` tests."""
        if not self.serial:
            node.shutdown()
            return
        if self.serial_node is None:
            # The last worker still running keeps the `serial` tests; the others shut down
            # now, so that each runs the test it holds (a worker holding its last test
            # runs it only when told what comes next).
            if any(o is not node and not o.shutting_down for o in self.node2pending):
                node.shutdown()
                return
            self.serial_node = node
        if node is not self.serial_node:
            node.shutdown()
            return
        if len(self.node2pending) > 1:
            # Other workers are still running tests or tearing their session down.
            return
        serial, self.serial = self.serial, []
        self.node2pending[node].extend(serial)
        self.node2seconds[node] += sum(self.costs[i] for i in serial)
        node.send_runtest_some(serial)
        node.shutdown()


def different_collections(first: Any, collection: list[str], node: Any, other: list[str]) -> str:
    """What two workers collected differently, as a unified difference of node ids.

    Tests parametrized with values made at collection time (``uuid1()``, ``now()``) get
    other ids in every worker; their ids must be the same in every process.
    """
    names = [str(getattr(getattr(each, "gateway", None), "id", each)) for each in (first, node)]
    lines = difflib.unified_diff(collection, other, names[0], names[1], lineterm="", n=1)
    return (
        f"Different tests were collected by {names[0]} and {names[1]}: the ids of "
        "parametrized tests must be the same in every worker (ids made from values such as "
        "uuid1() or now() are not). The difference is:\n" + "\n".join(lines)
    )

"""testfleet's xdist scheduler as pure logic: mock workers, no processes, milliseconds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from testfleet.scheduling.running import BETWEEN_TESTS
from testfleet.scheduling.units import (
    Unit,
    build_units,
    dispatch_order,
    join_units,
    lower_bound,
    place_longest_first,
    predict_makespan,
)
from testfleet.scheduling.xdist_scheduler import DurationScheduling


class MockNode:
    """Records what the scheduler sends, as xdist's own scheduler tests do."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[int] = []
        self.steals: list[list[int]] = []
        self._shutdown = False

    def __repr__(self) -> str:
        return self.name

    @property
    def shutting_down(self) -> bool:
        return self._shutdown

    def send_runtest_some(self, indices: Sequence[int]) -> None:
        self.sent.extend(indices)

    def send_steal(self, indices: Sequence[int]) -> None:
        self.steals.append(list(indices))

    def shutdown(self) -> None:
        self._shutdown = True


def make_scheduler(
    costs: Mapping[str, float],
    nodes: Sequence[MockNode],
    serial: Sequence[int] = (),
    groups: Mapping[str, list[int]] | None = None,
) -> DurationScheduling:
    collection = list(costs)

    def meta(node: Any, names: Sequence[str]) -> tuple[list[int], Mapping[str, list[int]]]:
        return list(serial), groups or {}

    sched = DurationScheduling(len(nodes), lambda ids: [costs[i] for i in ids], meta, print)
    for node in nodes:
        sched.add_node(node)
    for node in nodes:
        sched.add_node_collection(node, collection)
    assert sched.collection_is_completed
    sched.schedule()
    return sched


def answer_steals(sched: DurationScheduling) -> None:
    """A worker gives back what was asked if all of it is still queued (past its current
    test and the one it holds), else nothing, as xdist's worker does."""
    answers = 0
    for node, pending in list(sched.node2pending.items()):
        while node.steals:
            answers += 1
            # Each answer hands tests to an idle worker; without end, they bounce back.
            assert answers < 1000, f"steals from {node} without end: the tests bounce back"
            asked = node.steals.pop(0)
            queued = set(list(pending)[2:])
            sched.remove_pending_tests_from_node(node, asked if set(asked) <= queued else [])
            pending = sched.node2pending[node]


Runs = list[tuple[int, Any, float, float]]


def run_to_end(
    sched: DurationScheduling, costs: Sequence[float], runs: Runs | None = None
) -> dict[MockNode, float]:
    """Simulate xdist workers and return when each finished; ``runs`` gets each test's
    (index, worker, start, end).

    A worker runs its first pending test once it holds a second one or was told to shut
    down (as xdist's worker does); a worker told to shut down with nothing left leaves.
    """
    now = 0.0
    running: dict[Any, tuple[int, float]] = {}
    finished: dict[MockNode, float] = {}
    for _ in range(100_000):
        # Twice: a worker leaving hands work to workers this pass has already visited.
        for _ in range(2):
            answer_steals(sched)
            for node, pending in list(sched.node2pending.items()):
                if node in running or not pending:
                    if node.shutting_down and not pending and node not in running:
                        finished[node] = now
                        sched.remove_node(node)
                    continue
                if len(pending) >= 2 or node.shutting_down:
                    running[node] = (pending[0], now + costs[pending[0]])
                    if runs is not None:
                        runs.append((pending[0], node, now, now + costs[pending[0]]))
        if not sched.node2pending:
            return finished
        if not running:
            raise AssertionError(f"stuck: every worker waits: {dict(sched.node2pending)}")
        node, (index, end) = min(running.items(), key=lambda entry: entry[1][1])
        now = end
        del running[node]
        sched.mark_test_complete(node, index)
    raise AssertionError("the simulation did not end")


def test_long_tests_go_first_and_the_rest_keep_collection_order() -> None:
    units = [Unit([i], cost) for i, cost in enumerate([1.0] * 200 + [30.0, 5.0])]
    order = [unit.indices[0] for unit in dispatch_order(units, 2)]
    assert order[:2] == [200, 201]
    assert order[2:] == list(range(200))


def test_a_long_test_with_enough_work_after_it_keeps_its_place() -> None:
    # The 10 s test in the middle has 100 s of work after it: the other worker takes
    # that while it runs. Moved first, it would leave its neighbours' imports and caches
    # to be paid on both workers. The one at the end would end the run alone: it moves.
    costs = [1.0] * 50 + [10.0] + [1.0] * 100 + [8.0]
    units = [Unit([i], cost) for i, cost in enumerate(costs)]
    order = [unit.indices[0] for unit in dispatch_order(units, 2)]
    assert order[0] == 151
    assert order[1:] == list(range(151))


def test_without_history_the_order_is_the_collection_order() -> None:
    units = [Unit([i], 0.01) for i in range(500)]
    assert [unit.indices[0] for unit in dispatch_order(units, 2)] == list(range(500))


def test_a_group_is_one_unit_with_its_summed_duration_and_serial_tests_are_kept_apart() -> None:
    units, serial = build_units(
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], groups={"db": [3, 1], "io": [2, 5]}, serial=[4, 5]
    )
    assert [(unit.indices, unit.cost) for unit in units] == [([0], 1.0), ([1, 3], 6.0)]
    # A group holding a serial test runs with the serial tests, on one worker.
    assert serial == [2, 4, 5]


def test_tests_that_share_a_key_directly_or_through_another_test_make_one_unit() -> None:
    keys = [[], ["a"], ["b"], ["a", "b"], [], ["c"], ["c"]]
    assert join_units(keys) == [[0], [1, 2, 3], [4], [5, 6]]
    assert join_units([]) == []


def test_a_test_in_two_groups_joins_them_and_the_scheduler_keeps_its_own_group_names() -> None:
    # The scheduler's groups are xdist's, one name per test ("a_b" for a test in a and b):
    # they never overlap. Overlapping ones still make one unit each, never a test twice.
    units, serial = build_units([1.0, 2.0, 3.0], groups={"a": [0, 1], "b": [1, 2]}, serial=[])
    assert [(unit.indices, unit.cost) for unit in units] == [([0, 1, 2], 6.0)]
    assert serial == []


def test_longest_first_placement_fills_the_least_loaded_bin_and_breaks_ties_by_count() -> None:
    placed, loads = place_longest_first([5.0, 4.0, 3.0, 3.0, 1.0], 2)
    assert placed == [0, 1, 1, 0, 1]
    assert loads == [8.0, 8.0]
    # Equal loads: the bin holding fewer tests takes the next unit.
    placed, _ = place_longest_first([2.0, 2.0, 1.0], 2, sizes=[3, 1, 1])
    assert placed == [0, 1, 1]
    assert place_longest_first([], 3) == ([], [0.0, 0.0, 0.0])


def test_the_one_long_test_collected_last_starts_at_once() -> None:
    costs = {f"t.py::test_{i}": 0.1 for i in range(100)} | {"t.py::test_long": 8.0}
    a, b = MockNode("gw0"), MockNode("gw1")
    sched = make_scheduler(costs, [a, b])
    assert a.sent[0] == 100
    finished = run_to_end(sched, list(costs.values()))
    # max(sum / 2, longest) = max(9.0, 8.0): the schedule reaches it.
    assert max(finished.values()) == pytest.approx(9.0, abs=0.25)


def test_an_idle_worker_steals_the_tail_of_the_busiest_worker() -> None:
    costs = {f"t.py::test_{i}": 1.0 for i in range(20)}
    a, b = MockNode("gw0"), MockNode("gw1")
    sched = make_scheduler(costs, [a, b])
    # Everything went out; gw1 finishes its tests while gw0 still holds many.
    sched.queue.clear()
    for index in list(sched.node2pending[b]):
        sched.mark_test_complete(b, index)
    assert a.steals, "the idle worker did not steal"
    stolen = a.steals[-1]
    assert stolen == list(sched.node2pending[a])[-len(stolen) :]
    assert len(stolen) <= len(sched.node2pending[a]) - 2
    sched.remove_pending_tests_from_node(a, stolen)
    assert b.sent[-len(stolen) :] == stolen


def test_a_steal_never_cuts_a_group_in_two() -> None:
    costs = {f"t.py::test_{i}": 1.0 for i in range(12)}
    a = MockNode("gw0")
    sched = make_scheduler(costs, [a, MockNode("gw1")], groups={"g": [6, 7, 8, 9]})
    pending = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert sched._tail_to_steal(pending, 3.0) == []
    assert sched._tail_to_steal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 3.0) == [10, 11]
    assert sched._tail_to_steal(pending, 4.0) == [6, 7, 8, 9]


def test_serial_tests_wait_until_every_other_worker_has_left_then_run_on_one() -> None:
    costs = {f"t.py::test_{i}": 1.0 for i in range(10)} | {"t.py::test_alone": 1.0}
    a, b = MockNode("gw0"), MockNode("gw1")
    sched = make_scheduler(costs, [a, b], serial=[10])
    assert 10 not in a.sent + b.sent
    assert not sched.tests_finished
    runs: Runs = []
    finished = run_to_end(sched, list(costs.values()), runs)
    (alone,) = [run for run in runs if run[0] == 10]
    others = [run for run in runs if run[0] != 10]
    assert len(others) == 10
    # It starts once every other test ended and the other worker left.
    assert alone[2] >= max(run[3] for run in others)
    other_worker = b if alone[1] is a else a
    assert alone[2] >= finished[other_worker]


def test_a_worker_given_a_single_last_test_is_told_to_run_it_at_once() -> None:
    # Two groups: one worker gets the big one, the other a single test and nothing more.
    costs = {f"t.py::test_{i}": 1.0 for i in range(7)}
    a, b = MockNode("gw0"), MockNode("gw1")
    make_scheduler(costs, [a, b], groups={"writer": [1, 2, 3, 4, 5, 6], "reader": [0]})
    assert a.sent == [1, 2, 3, 4, 5, 6]
    assert b.sent == [0]
    # Holding one test, gw1 would wait for a next one forever: it is shut down instead.
    assert b.shutting_down
    assert not a.shutting_down


def test_a_crashed_workers_tests_go_back_to_the_queue() -> None:
    costs = {f"t.py::test_{i}": 1.0 for i in range(10)}
    a, b = MockNode("gw0"), MockNode("gw1")
    sched = make_scheduler(costs, [a, b])
    running = sched.node2pending[a][0]
    held = list(sched.node2pending[a])[1:]
    assert sched.remove_node(a) == f"t.py::test_{running}"
    assert set(held) <= set(b.sent) | {i for u in sched.queue for i in u.indices}


@pytest.mark.parametrize("running_at", [0, 3, None])
def test_a_crashed_worker_that_sent_windows_names_the_test_it_was_running(
    running_at: int | None,
) -> None:
    costs = {f"t.py::test_{i}": 1.0 for i in range(20)}
    a, b = MockNode("gw0"), MockNode("gw1")
    sched = make_scheduler(costs, [a, b])
    pending = list(sched.node2pending[a])
    # The tests before the running one ended, their results held in the dead worker.
    running = pending[running_at] if running_at is not None else BETWEEN_TESTS
    sched.running_of = lambda node: running if node is a else None
    crashitem = sched.remove_node(a)
    if running_at is None:
        assert crashitem is None
    else:
        assert crashitem == f"t.py::test_{running}"
    # Every other test it held runs again elsewhere, the ones that ended included.
    again = set(b.sent) | {i for u in sched.queue for i in u.indices}
    assert set(pending) - {running} <= again
    assert running not in again


def test_without_history_the_per_worker_chunks_match_loads() -> None:
    costs = {f"t.py::test_{i}": 0.01 for i in range(1000)}
    a, b = MockNode("gw0"), MockNode("gw1")
    make_scheduler(costs, [a, b])
    # xdist's load sends a quarter of each worker's share at first; we send at most half.
    assert 125 <= len(a.sent) <= 250
    assert a.sent == list(range(len(a.sent)))


class WithoutShortcut(DurationScheduling):
    """The scheduler with its after-each-test shortcut off: every test re-checks the worker."""

    @property  # type: ignore[override]
    def refill_below(self) -> float:
        return float("inf")

    @refill_below.setter
    def refill_below(self, value: float) -> None:
        pass


def test_stolen_tests_go_to_the_idle_worker_not_back_to_the_one_robbed() -> None:
    # Eight workers; one holds many quick tests but few seconds, so it looks short of
    # work next to the others' long tests. What an idle worker steals from it must not
    # go straight back to it (the first worker asked), which would repeat forever.
    costs = {f"t.py::test_{i}": 0.001 for i in range(200)}
    costs.update({f"t.py::test_long_{i}": 5.0 for i in range(7)})
    nodes = [MockNode(f"gw{i}") for i in range(8)]
    sched = make_scheduler(costs, nodes)
    runs: Runs = []
    finished = run_to_end(sched, list(costs.values()), runs)
    assert sorted(run[0] for run in runs) == list(range(len(costs)))
    assert max(finished.values()) == pytest.approx(5.0, abs=0.25)


@pytest.mark.parametrize("workers", [2, 3, 8])
def test_the_shortcut_after_each_test_changes_no_decision(workers: int) -> None:
    import random

    rng = random.Random(workers)
    costs = {
        f"t{i // 50}.py::test_{i}": rng.lognormvariate(-4, 1.2) * (40 if i % 97 == 0 else 1)
        for i in range(2000)
    }
    groups = {"g": [5, 6, 7], "h": [400, 1200]}

    def simulate(kind: type[DurationScheduling]) -> tuple[list[list[int]], list[Any]]:
        nodes = [MockNode(f"gw{i}") for i in range(workers)]
        sched = kind(
            workers,
            lambda ids: [costs[i] for i in ids],
            lambda node, names: ([30, 31], groups),
            print,
        )
        for node in nodes:
            sched.add_node(node)
        for node in nodes:
            sched.add_node_collection(node, list(costs))
        sched.schedule()
        runs: Runs = []
        run_to_end(sched, list(costs.values()), runs)
        return [node.sent for node in nodes], [(i, str(node), *times) for i, node, *times in runs]

    sent, runs = simulate(DurationScheduling)
    assert sorted(run[0] for run in runs) == list(range(2000))
    assert (sent, runs) == simulate(WithoutShortcut)


def test_predicted_wall_time_is_longest_first_on_the_least_loaded_worker() -> None:
    assert predict_makespan([8.0, 1.0, 1.0, 1.0, 1.0], 2) == 8.0
    assert predict_makespan([3.0, 3.0, 2.0, 2.0, 2.0], 2) == 7.0
    assert predict_makespan([1.0, 2.0], 1) == 3.0
    assert lower_bound([8.0, 1.0, 1.0], 2) == 8.0
    assert lower_bound([2.0, 2.0, 2.0], 2) == 3.0
    assert lower_bound([], 4) == 0.0


def test_a_large_suite_is_predicted_from_its_longest_tests_and_the_sum_of_the_rest() -> None:
    many = [0.01] * 10_000
    assert predict_makespan(many, 4) == pytest.approx(25.0)
    assert predict_makespan([*many, 30.0], 8) == pytest.approx(30.0, abs=0.02)
    assert predict_makespan([*many, 30.0], 4) == pytest.approx(32.5, abs=0.02)
    assert predict_makespan([*many, 30.0], 2) == pytest.approx(65.0, abs=0.02)


def test_workers_that_collected_different_ids_fail_the_run_instead_of_waiting() -> None:
    nodes = [MockNode("gw0"), MockNode("gw1")]
    errors: list[str] = []
    sched = DurationScheduling(
        2, lambda ids: [1.0] * len(ids), lambda n, c: ([], {}), print, errors.append
    )
    for node in nodes:
        sched.add_node(node)
    sched.add_node_collection(nodes[0], ["t.py::a", "t.py::b[uuid-1]"])
    sched.add_node_collection(nodes[1], ["t.py::a", "t.py::b[uuid-2]"])
    sched.schedule()
    assert [node.sent for node in nodes] == [[], []]
    # The controller shuts the workers down once the tests are finished: here at once.
    assert sched.tests_finished
    (message,) = errors
    assert message.startswith("Different tests were collected by gw0 and gw1")
    assert "-t.py::b[uuid-1]\n+t.py::b[uuid-2]" in message

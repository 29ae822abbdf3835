"""The bisection as a pure function: oracles stand for pytest, each test takes milliseconds."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from testfleet.diagnose import search
from testfleet.diagnose.probes import NotCollected

VICTIM = "test_z.py::test_victim"


def order_of(count: int) -> list[str]:
    return [f"test_{n // 100:02d}.py::test_{n:04d}" for n in range(count)] + [VICTIM]


def show(tests: Sequence[str]) -> list[str]:
    return ["pytest", *tests]


class Counting:
    """An oracle that counts its calls; the victim's outcome follows from what ran before it."""

    def __init__(self, fails_after: Sequence[str] = (), needs: Sequence[str] = ()) -> None:
        self.fails_after = set(fails_after)
        self.needs = set(needs)
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, tests: tuple[str, ...]) -> str:
        assert VICTIM in tests
        self.calls.append(tests)
        before = set(tests[: tests.index(VICTIM)])
        if self.needs and not self.needs <= before:
            return "failed"
        if self.fails_after and self.fails_after <= before:
            return "failed"
        return "passed"


def test_one_polluter_among_three_hundred_takes_a_few_rounds_of_parallel_probes() -> None:
    order = order_of(304)
    polluter = order[17]
    oracle = Counting(fails_after=[polluter])
    result, probes = search.search(order, VICTIM, oracle, show=show, jobs=2)
    assert (result.verdict, result.tests) == ("polluted-by", [polluter])
    assert result.verified is True
    assert result.command == ["pytest", polluter, VICTIM]
    assert result.control == ["pytest", VICTIM]
    # Three parts a round: about log3(304) rounds, far below halving's 2 + log2(304).
    assert probes.rounds == 7
    assert probes.rounds < 2 + math.ceil(math.log2(304))
    assert len(set(oracle.calls)) == probes.runs - 2, "only the final check runs twice"


def test_a_victim_needing_two_polluters_gets_both_and_each_is_checked() -> None:
    order = order_of(40)
    causes = [order[3], order[30]]
    result, _ = search.search(order, VICTIM, Counting(fails_after=causes), show=show, jobs=3)
    assert (result.verdict, result.tests, result.minimal) == ("polluted-by", causes, True)


def test_a_victim_that_needs_an_earlier_test_is_told_which() -> None:
    order = order_of(25)
    needed = order[11]
    result, _ = search.search(order, VICTIM, Counting(needs=[needed]), show=show, jobs=1)
    assert (result.verdict, result.tests) == ("depends-on", [needed])
    assert result.command == ["pytest", VICTIM, needed]
    assert result.control == ["pytest", needed, VICTIM]


def test_a_victim_failing_in_any_order_is_an_ordinary_failure() -> None:
    result, _ = search.search(order_of(9), VICTIM, lambda tests: "failed", show=show)
    assert result.verdict == "fails-alone"


def test_a_failure_that_does_not_reproduce_names_what_was_tried() -> None:
    result, _ = search.search(order_of(9), VICTIM, lambda tests: "passed", show=show)
    assert result.verdict == "not-reproduced"
    assert result.tried == ["alone: passed", "after the 9 tests that ran before it: passed"]


def test_a_victim_that_flips_without_a_cause_is_flaky_or_ambiguous() -> None:
    flips = itertools.cycle(["failed", "passed", "passed"])
    result, _ = search.search(order_of(30), VICTIM, lambda tests: next(flips), show=show)
    assert result.verdict in ("flaky", "ambiguous", "not-reproduced")
    assert result.verdict != "polluted-by" or not result.verified


def test_tests_that_are_not_collected_any_more_are_left_out() -> None:
    order = order_of(20)
    gone, polluter = order[2], order[9]
    inner = Counting(fails_after=[polluter])

    def oracle(tests: tuple[str, ...]) -> str:
        if gone in tests:
            raise NotCollected([gone])
        return inner(tests)

    result, _ = search.search(order, VICTIM, oracle, show=show, jobs=2)
    assert (result.verdict, result.tests, result.missing) == ("polluted-by", [polluter], [gone])


def test_a_victim_that_is_not_collected_any_more_is_missing() -> None:
    def oracle(tests: tuple[str, ...]) -> str:
        raise NotCollected([VICTIM])

    result, _ = search.search(order_of(5), VICTIM, oracle, show=show)
    assert result.verdict == "missing"


def test_the_number_of_probes_at_once_may_change_between_rounds() -> None:
    order = order_of(200)
    polluter = order[150]
    seen: list[int] = []

    def adapt(jobs: int) -> int:
        seen.append(jobs)
        return 4

    result, probes = search.search(
        order, VICTIM, Counting(fails_after=[polluter]), show=show, jobs=1, adapt=adapt
    )
    assert result.tests == [polluter]
    assert seen[:2] == [1, 4]
    assert probes.jobs == 4


def test_a_search_past_its_run_limit_is_an_error_not_a_guess() -> None:
    order = order_of(300)
    result, _ = search.search(
        order, VICTIM, Counting(fails_after=[order[5]]), show=show, jobs=1, max_runs=3
    )
    assert result.verdict == "error"
    assert "gave up after" in result.message


def test_a_victim_outside_the_order_is_refused_before_any_probe() -> None:
    with pytest.raises(ValueError, match="is not among the 3 tests"):
        search.search(["a", "b", "c"], VICTIM, lambda tests: "passed", show=show)


def test_a_parallel_report_gives_the_victim_its_own_worker_order() -> None:
    from testfleet.diagnose import bisect

    def record(
        nodeid: str, worker: str, start: float, outcome: str = "passed"
    ) -> dict[str, object]:
        return {"nodeid": nodeid, "worker": worker, "start": start, "outcome": outcome}

    report = {
        "tests": [
            record("a.py::t1", "gw0", 1.0),
            record("b.py::t2", "gw1", 1.5),
            record("a.py::t3", "gw0", 2.0),
            record("b.py::t4", "gw1", 2.5),
            record("a.py::victim", "gw0", 3.0, "failed"),
        ]
    }
    own = bisect.worker_order(report, "a.py::victim")
    assert own.order == ["a.py::t1", "a.py::t3", "a.py::victim"]
    assert own.note == (
        "the order of worker gw0 (3 of the report's 5 tests): in a parallel run, only its "
        "tests ran in its process"
    )
    serial = {"tests": [{**t, "worker": "main"} for t in report["tests"]]}
    assert bisect.worker_order(serial, "a.py::victim").note is None


@pytest.mark.slow
def test_probes_fall_back_to_a_process_each_when_the_suite_cannot_be_imported_once(
    tmp_path: Path,
) -> None:
    from testfleet.diagnose import bisect, probes

    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_broken.py").write_text("raise RuntimeError('no import here')\n")
    notes: list[str] = []
    oracle = bisect._oracle(
        "test_broken.py::test_x", [], tmp_path, ["test_broken.py::test_x"], None, None,
        tmp_path, True, notes,
    )  # fmt: skip
    assert type(oracle) is probes.SubprocessProbes
    (note,) = notes
    assert note.startswith("each probe ran in a new process: the suite could not be imported")


@pytest.mark.parametrize(
    ("room", "costs", "jobs"),
    [
        # Two free CPUs: computing probes, one each; waiting probes, up to four.
        ((2.0, False), [(1.0, 1.0), (0.9, 1.0)], 2),
        ((2.0, False), [(0.1, 1.0)], 4),
        # A busy machine: its probes wait for a CPU, not for I/O.
        ((1.0, True), [(0.1, 1.0)], 1),
        ((1.0, False), [], 3),
    ],
)
def test_the_probes_at_once_follow_their_measured_cost_and_the_free_cpus(
    monkeypatch: pytest.MonkeyPatch,
    room: tuple[float, bool],
    costs: list[tuple[float, float]],
    jobs: int,
) -> None:
    from testfleet.diagnose import probes

    monkeypatch.setattr(probes, "cpu_room", lambda: room)
    assert probes.jobs_for_cost(costs, 3) == jobs

"""The replay of a parallel-only failure as pure functions: overlap, offsets, the search.

The search takes an oracle, so that it is tested here in milliseconds; the pytest
processes that answer it in `testfleet classify` are tested in tests/test_collide.py.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from testfleet.diagnose import collide, replay
from testfleet.diagnose.barrier import Side
from testfleet.diagnose.replay import Partner


def record(
    nodeid: str, worker: str, start: float, stop: float, attempt: int = 1
) -> dict[str, object]:
    return {"nodeid": nodeid, "worker": worker, "start": start, "stop": stop, "attempt": attempt}


REPORT = {
    "run": {"workers": 2},
    "tests": [
        record("v.py::before", "gw1", 0.0, 0.9),
        record("v.py::victim", "gw1", 1.0, 2.0),
        record("o.py::early", "gw0", 0.5, 1.2),
        record("o.py::during", "gw0", 1.3, 1.4),
        record("o.py::after", "gw0", 2.1, 3.0),
        record("o.py::rerun", "gw0", 1.5, 1.6, attempt=2),
        record("t.py::third", "gw2", 1.9, 2.5),
    ],
}


def test_the_overlapping_tests_are_those_of_other_workers_that_ran_meanwhile() -> None:
    partners, duration = replay.overlapping(REPORT, "v.py::victim")
    assert partners == [
        Partner("o.py::early", "gw0", -0.5),
        Partner("o.py::during", "gw0", 0.3),
        Partner("t.py::third", "gw2", 0.9),
    ]
    assert duration == 1.0
    assert replay.overlapping(REPORT, "v.py::unknown") == ([], 0.0)


def test_the_process_that_starts_first_waits_for_nothing_and_the_others_keep_their_offsets() -> (
    None
):
    partners, _ = replay.overlapping(REPORT, "v.py::victim")
    victim, others = replay.delays(partners)
    assert (victim, others) == (0.5, {"gw0": 0.0, "gw2": 1.4})
    assert replay.delays(partners[1:]) == (0.0, {"gw0": 0.3, "gw2": 0.9})
    assert replay.delays(partners[1:], shift=-0.5) == (0.2, {"gw0": 0.0, "gw2": 0.6})


def test_the_first_replay_lines_the_starts_up_as_they_ran_and_later_ones_move_around_it() -> None:
    shifts = [replay.shift_of(attempt, 2.0) for attempt in range(5)]
    assert shifts == [0.0, 0.5, -0.5, 1.0, -1.0]
    assert replay.shift_of(1, 0.0) == replay.MIN_SPREAD * 0.25


def partners(count: int) -> list[Partner]:
    return [Partner(f"o.py::t{n}", "gw0", n / 10) for n in range(count)]


class Oracle:
    """Collides when every one of ``needed`` is in the set; counts the rounds asked."""

    def __init__(self, *needed: str) -> None:
        self.needed = set(needed)
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, subset: tuple[Partner, ...]) -> bool:
        self.calls.append(tuple(p.nodeid for p in subset))
        return bool(self.needed) and self.needed <= {p.nodeid for p in subset}


@pytest.mark.parametrize("culprit", range(16))
def test_the_search_finds_the_one_colliding_partner_in_about_log2_rounds(culprit: int) -> None:
    oracle = Oracle(f"o.py::t{culprit}")
    found = replay.smallest_collision(partners(16), oracle)
    assert [p.nodeid for p in found] == [f"o.py::t{culprit}"]
    assert len(oracle.calls) <= 1 + 2 * 4


def test_a_collision_that_needs_two_partners_keeps_both_and_only_them() -> None:
    oracle = Oracle("o.py::t1", "o.py::t6")
    found = replay.smallest_collision(partners(8), oracle)
    assert [p.nodeid for p in found] == ["o.py::t1", "o.py::t6"]


def test_no_collision_gives_nothing_after_one_round_and_no_partners_asks_nothing() -> None:
    oracle = Oracle()
    assert replay.smallest_collision(partners(5), oracle) == ()
    assert len(oracle.calls) == 1
    assert replay.smallest_collision([], oracle) == ()
    assert len(oracle.calls) == 1


def test_the_processes_of_a_replay_leave_the_barrier_together(tmp_path: Path) -> None:
    names = ("side0", "side1")
    left = {}

    def arrive(name: str) -> None:
        Side(tmp_path / "barrier", name, names, 0.0, timeout=10).wait()
        left[name] = True

    late = threading.Thread(target=arrive, args=("side1",))
    early = threading.Thread(target=arrive, args=("side0",))
    early.start()
    early.join(0.2)
    assert early.is_alive(), "the first one waits for the other"
    assert not left
    late.start()
    for thread in (early, late):
        thread.join(10)
    assert left == {"side0": True, "side1": True}


def test_a_process_whose_partner_never_comes_runs_anyway_after_the_timeout(tmp_path: Path) -> None:
    side = Side(tmp_path / "barrier", "side0", ("side0", "side1"), 0.0, timeout=0.05)
    assert side.wait() is False
    assert Side.read(write(tmp_path / "side.json", side)) == side


def write(path: Path, side: Side) -> Path:
    path.write_text(json.dumps(side.to_json()))
    return path


def test_the_plan_of_a_collision_reads_back_and_gives_its_workers_environment(
    tmp_path: Path,
) -> None:
    plan = collide.Plan("v.py::victim", "gw1", 2, ["-x"], (Partner("o.py::t", "gw0", 0.1),), 1.0)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_json()))
    assert collide.Plan.read(path) == plan
    env = collide.worker_env("shard2-gw1", 2, "abc")
    assert env == {
        "PYTEST_XDIST_WORKER": "gw1",
        "PYTEST_XDIST_WORKER_COUNT": "2",
        "PYTEST_XDIST_TESTRUNUID": "abc",
    }

"""The worker count from measurements, and the schedule section of `testfleet report`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from testfleet.reporting import analysis as report_analysis
from testfleet.reporting import schedule as schedule_report
from testfleet.reporting import text as rendering
from testfleet.scheduling import workercount
from testfleet.scheduling.durations import Durations, load_durations
from testfleet.timing.records import SCHEMA, TimingRecord, report_text, summarize
from testfleet.timing.store import store_path, update_store


def suite(count: int, wall: float, cpu_share: float) -> Durations:
    walls = {f"t.py::test_{i}": wall for i in range(count)}
    return Durations(wall=walls, cpu={k: v * cpu_share for k, v in walls.items()})


def test_a_cpu_bound_suite_gets_no_more_workers_than_cores() -> None:
    choice = workercount.choose(suite(200, 0.1, 1.0), workercount.RunCosts(startup=1.0), n_cores=2)
    assert choice.workers == 2
    assert [p.workers for p in choice.predictions] == [1, 2, 3, 4]
    seconds = {p.workers: p.seconds for p in choice.predictions}
    assert seconds[2] < seconds[1]
    assert seconds[4] >= seconds[2]


def test_a_suite_that_waits_gets_more_workers_than_cores() -> None:
    choice = workercount.choose(suite(200, 0.1, 0.02), workercount.RunCosts(startup=0.5), n_cores=2)
    assert choice.workers == 4
    assert "from 200 timed tests" in choice.describe()


def test_a_cpu_bound_suite_timed_on_a_busy_machine_gets_no_more_workers_than_cores() -> None:
    # Timed while other processes held the cores: each test's wall time is 1.6 times its
    # CPU time. Taken for sleeps, those waits would ask for more workers than cores.
    busy = suite(200, 0.16, 1 / 1.6)
    assert workercount.choose(busy, workercount.RunCosts(startup=0.5), n_cores=2).workers > 2
    choice = workercount.choose(busy, workercount.RunCosts(startup=0.5, stretch=1.6), n_cores=2)
    assert choice.workers == 2
    # A suite that really sleeps keeps its extra workers however busy the machine was.
    sleepy = suite(200, 0.16, 0.05)
    assert (
        workercount.choose(
            sleepy, workercount.RunCosts(startup=0.5, stretch=1.6), n_cores=2
        ).workers
        == 4
    )


def test_the_wait_for_a_core_is_read_from_a_report_run_block(tmp_path: Path) -> None:
    assert workercount.stretch_from_report({"cpu_stretch": 1.4}) == 1.4
    # Below 1 cannot be measured; unknown or malformed values are not used.
    assert workercount.stretch_from_report({"cpu_stretch": 0.9}) == 1.0
    for run in ({}, {"cpu_stretch": None}, {"cpu_stretch": "2"}, {"cpu_stretch": True}):
        assert workercount.stretch_from_report(run) is None
    # `testfleet run --workers auto` reads it from the report its durations come from.
    records = [
        TimingRecord(nodeid=f"t.py::test_{i}", worker="gw0", call=0.16, cpu=0.1) for i in range(200)
    ]
    for name, stretch in (("calm.json", None), ("busy.json", 1.6)):
        run = {"workers": 2, "wall_seconds": 20.0, "cpu_stretch": stretch}
        (tmp_path / name).write_text(report_text(records, run), encoding="utf-8")
    calm = workercount.choose_from(tmp_path, [tmp_path / "calm.json"], n_cores=2)
    busy = workercount.choose_from(tmp_path, [tmp_path / "busy.json"], n_cores=2)
    assert "from 200 timed tests" in calm.describe()
    assert "waited for a free core" not in calm.describe()
    assert "which waited for a free core x1.60 their CPU time" in busy.describe()
    assert (calm.workers, busy.workers) == (4, 2)


def quick_suite(count: int, cpu: float) -> Durations:
    """Tests timed under xdist: each one's CPU time includes xdist's cost for it."""
    walls = {f"t.py::test_{i}": cpu / 3 for i in range(count)}
    return Durations(wall=walls, cpu=dict.fromkeys(walls, cpu))


#: The run block of a two-worker run of millisecond tests on two cores, as measured.
XDIST_RUN: dict[str, Any] = {
    "workers": 2,
    "cpu_stretch": 1.5,
    "collection_seconds": 0.97,
    "worker_startup": {
        "gw0": {"ready": 0.41, "collected": 1.28},
        "gw1": {"ready": 0.46, "collected": 1.43},
    },
    "controller_cpu_per_test": 0.0005,
    "after_tests_seconds": 0.86,
}


def test_many_millisecond_tests_run_in_one_process_when_xdist_costs_more_than_it_gains() -> None:
    costs = workercount.RunCosts.from_run(XDIST_RUN)
    choice = workercount.choose(quick_suite(5000, 0.00114), costs, n_cores=2)
    assert choice.workers == 1
    seconds = {p.workers: p.seconds for p in choice.predictions}
    # One process: its collection and the tests' CPU without the worker's part of xdist's.
    worker_part = 0.0005 * workercount.WORKER_SHARE
    assert seconds[1] == pytest.approx(0.97 + 5000 * (0.00114 - worker_part), abs=0.01)
    assert seconds[2] > seconds[1]
    # The same count of tests that compute for 20 ms each: two workers pay off.
    assert workercount.choose(quick_suite(5000, 0.02), costs, n_cores=2).workers == 2


def test_a_run_without_xdist_still_weighs_what_the_last_run_with_it_cost(
    tmp_path: Path,
) -> None:
    # Without what the store kept of the xdist run, the one-process run that follows
    # would judge xdist by defaults, and `--workers auto` could swing back and forth.
    store = store_path(tmp_path / ".pytest_cache")
    store.parent.mkdir(parents=True)
    names = [f"t.py::test_{i}" for i in range(5000)]
    update_store(store, [(n, 0.0004, 0.00114) for n in names], XDIST_RUN)
    after_xdist = workercount.choose_from(tmp_path, [], n_cores=2)
    one = {"workers": 1, "collection_seconds": 0.9, "after_tests_seconds": 0.05}
    update_store(store, [(n, 0.0004, 0.0008) for n in names], one)
    known = load_durations(tmp_path)
    costs = workercount.costs_of(known)
    assert not costs.measured_on_xdist
    assert (costs.startup_one, costs.tail_one) == (0.9, 0.05)
    assert (costs.per_test, costs.tail, costs.startup) == (0.0005, 0.86, pytest.approx(1.355))
    after_one = workercount.choose_from(tmp_path, [], n_cores=2)
    assert after_xdist.workers == after_one.workers == 1


def test_values_that_cannot_be_measurements_are_ignored(tmp_path: Path) -> None:
    # A store edited by hand or written by something else: infinite, not-a-number and
    # negative figures fall back to the defaults, and the choice still comes out.
    bad = {
        "workers": float("inf"),
        "controller_cpu_per_test": -1,
        "after_tests_seconds": float("nan"),
        "cpu_stretch": float("inf"),
        "collection_seconds": -3,
    }
    costs = workercount.RunCosts.from_run(bad)
    assert costs == workercount.RunCosts.from_run({})
    store = store_path(tmp_path / ".pytest_cache")
    store.parent.mkdir(parents=True)
    update_store(store, [(f"t.py::test_{i}", 0.01, 0.01) for i in range(50)], bad)
    choice = workercount.choose_from(tmp_path, [], n_cores=2)
    assert all(math.isfinite(p.seconds) and p.seconds > 0 for p in choice.predictions)
    # Eight workers that measured no start-up: the default is not divided by them.
    eight = workercount.RunCosts.from_run({"workers": 8})
    assert (eight.startup, eight.startup_workers) == (workercount.DEFAULT_STARTUP, 1)


def test_a_start_up_measured_on_more_workers_than_cores_is_not_stretched_twice() -> None:
    # Four workers on two cores started in twice the time two would: the same machine.
    def measured(workers: int, collected: float) -> workercount.RunCosts:
        startup = {f"gw{i}": {"ready": 0.5, "collected": collected} for i in range(workers)}
        run = {"workers": workers, "worker_startup": startup, "collection_seconds": 0.4}
        return workercount.RunCosts.from_run(run)

    sleepy = suite(80, 0.05, 0.05)
    on_two = workercount.choose(sleepy, measured(2, 1.0), n_cores=2)
    on_four = workercount.choose(sleepy, measured(4, 2.0), n_cores=2)
    assert on_two.predictions == on_four.predictions
    assert on_two.workers == on_four.workers


def test_the_costs_beyond_the_tests_are_read_from_a_report_run_block() -> None:
    on_xdist = workercount.RunCosts.from_run(XDIST_RUN)
    assert on_xdist.measured_on_xdist
    assert (on_xdist.startup, on_xdist.startup_one) == (pytest.approx(1.355), 0.97)
    assert (on_xdist.per_test, on_xdist.tail, on_xdist.tail_one) == (0.0005, 0.86, 0.0)
    assert on_xdist.stretch == 1.5
    alone = workercount.RunCosts.from_run(
        {"workers": 1, "collection_seconds": 0.4, "after_tests_seconds": 0.05}
    )
    assert not alone.measured_on_xdist
    # A worker would start a process before that collection; xdist's costs are the defaults.
    assert (alone.startup_one, alone.startup) == (0.4, 0.4 + workercount.DEFAULT_SPAWN)
    assert (alone.per_test, alone.tail, alone.tail_one) == (workercount.DEFAULT_PER_TEST, 0, 0.05)
    # Old reports, or fields of the wrong type: the defaults.
    old = workercount.RunCosts.from_run({"workers": 2, "controller_cpu_per_test": "x"})
    assert (old.startup, old.per_test, old.tail) == (
        workercount.DEFAULT_STARTUP,
        workercount.DEFAULT_PER_TEST,
        0.0,
    )


def test_tests_without_cpu_measurements_count_as_cpu_bound() -> None:
    walls = {f"t.py::test_{i}": 0.1 for i in range(200)}
    assert (
        workercount.choose(
            Durations(wall=walls), workercount.RunCosts(startup=0.5), n_cores=2
        ).workers
        == 2
    )


def test_costly_start_up_keeps_a_small_suite_on_one_worker() -> None:
    choice = workercount.choose(suite(10, 0.01, 1.0), workercount.RunCosts(startup=3.0), n_cores=2)
    assert choice.workers == 1


def test_without_history_the_count_is_one_per_core() -> None:
    choice = workercount.choose(Durations(), n_cores=3)
    assert choice.workers == 3
    assert "no timing history" in choice.describe()


def test_start_up_is_read_from_a_report_run_block() -> None:
    run: dict[str, Any] = {"worker_startup": {"gw0": {"ready": 0.5, "collected": 2.0}}}
    assert workercount.startup_from_report(run) == 2.0
    assert workercount.startup_from_report({"collection_seconds": 1.5}) == 1.5
    assert workercount.startup_from_report({}) is None


def make_report() -> dict[str, Any]:
    def test(name: str, duration: float, worker: str, start: float, marks: list[str]) -> Any:
        return {
            "nodeid": f"t.py::{name}",
            "outcome": "passed",
            "duration": duration,
            "durations": {"setup": 0.0, "call": duration, "teardown": 0.0},
            "markers": marks,
            "worker": worker,
            "start": 100.0 + start,
            "stop": 100.0 + start + duration,
            "cpu": duration / 2,
        }

    tests = [
        test("test_long", 6.0, "gw0", 4.0, ["slow"]),
        test("test_a", 1.0, "gw1", 2.0, ["parametrize", "db"]),
        test("test_b", 1.0, "gw1", 3.0, ["usefixtures"]),
        test("test_c", 1.0, "gw1", 4.0, []),
    ]
    run = {
        "id": "r",
        "mode": "parallel",
        "workers": 2,
        "dist": "load",
        "seed": None,
        "git_commit": None,
        "start": 100.0,
        "wall_seconds": 11.0,
        "collection_seconds": 1.5,
        "worker_startup": {
            "gw0": {"ready": 0.5, "collected": 2.0},
            "gw1": {"ready": 0.6, "collected": 1.9},
        },
    }
    return {"schema": SCHEMA, "run": run, "tests": tests, "summary": summarize(tests)}


def test_the_schedule_section_shows_the_lower_bound_and_when_long_tests_started() -> None:
    section = schedule_report.analyze(make_report(), top=2, n_cores=2)
    assert section["lower_bound"] == 6.0
    assert section["test_span"] == 8.0
    assert section["over_lower_bound"] == 2.0
    assert section["longest"][0] == {
        "nodeid": "t.py::test_long",
        "duration": 6.0,
        "worker": "gw0",
        "started": 4.0,
    }
    assert len(section["longest"]) == 2
    assert section["workers"][0] == {
        "worker": "gw0",
        "ready": 0.5,
        "collected": 2.0,
        "first_start": 4.0,
        "finish": 10.0,
        "busy": 6.0,
    }
    assert [p["workers"] for p in section["predicted"]] == [1, 2, 3, 4]
    assert section["cpu_stretch"] is None


def test_the_schedule_section_says_how_long_tests_waited_for_a_free_core() -> None:
    # The tests' CPU time is half their wall time: a suite that waits, unless the wait
    # was for a core. The report's predictions and its choice follow the measurement.
    calm = schedule_report.analyze(make_report(), top=2, n_cores=2)
    data = make_report()
    data["run"]["cpu_stretch"] = 2.0
    busy = schedule_report.analyze(data, top=2, n_cores=2)
    assert busy["cpu_stretch"] == 2.0
    # Waits for a core are not sleeps that one process would sit through: alone on a
    # core, the tests take their CPU time.
    assert busy["predicted"][0]["seconds"] == pytest.approx(1.5 + 4.5, abs=0.01)
    assert calm["predicted"][0]["seconds"] == pytest.approx(1.5 + 9.0, abs=0.01)
    text = rendering.render(report_analysis.analyze(data, top=2), "text")
    assert "(tests waited for a free core: x2.00 their CPU time)" in text


def test_the_schedule_section_says_what_xdist_itself_cost() -> None:
    plain = rendering.render(report_analysis.analyze(make_report(), top=2), "text")
    assert "xdist's controller" not in plain
    data = make_report()
    data["run"].update(controller_cpu_per_test=0.0009, after_tests_seconds=0.49)
    section = schedule_report.analyze(data, top=2, n_cores=2)
    assert (section["controller_cpu_per_test"], section["after_tests_seconds"]) == (0.0009, 0.49)
    for fmt in ("text", "markdown"):
        rendered = rendering.render(report_analysis.analyze(data, top=2), fmt)
        assert (
            "xdist's controller took 0.90 ms of CPU per test, and the session ended 0.49s "
            "after the last test"
        ) in rendered


def test_the_report_leaves_pytests_own_marks_out_and_top_limits_every_list() -> None:
    analysis = report_analysis.analyze(make_report(), top=1)
    assert [m["name"] for m in analysis["markers"]] == ["slow"]
    full = report_analysis.analyze(make_report(), top=10)
    assert {m["name"] for m in full["markers"]} == {"slow", "db", "(none)"}
    assert len(analysis["files"]) == 1
    assert len(analysis["workers"]) == 1
    assert len(analysis["schedule"]["longest"]) == 1
    text = rendering.render(full, "text")
    assert "lower bound max(sum/workers, longest) 6.00s, 2.00s over it" in text
    assert "started at 4.00s  t.py::test_long" in text
    assert "predicted wall time per worker count: 1: " in text
    markdown = rendering.render(full, "markdown")
    assert "### Schedule" in markdown


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_every_format_renders_a_report_without_schedule_facts(fmt: str) -> None:
    data = make_report()
    for key in ("worker_startup", "collection_seconds", "start"):
        del data["run"][key]
    for test in data["tests"]:
        del test["cpu"]
    assert rendering.render(report_analysis.analyze(data), fmt)

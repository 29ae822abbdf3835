"""Past durations: the store, the last report and the baseline, newest first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testfleet.scheduling import durations as durations_mod
from testfleet.scheduling.durations import load_durations
from testfleet.timing import store as store_mod
from testfleet.timing.records import SCHEMA
from testfleet.timing.store import store_path, update_store


def write_report(path: Path, tests: dict[str, tuple[float, float | None]]) -> Path:
    entries: list[dict[str, Any]] = []
    for nodeid, (wall, cpu) in tests.items():
        entry: dict[str, Any] = {
            "nodeid": nodeid,
            "outcome": "passed",
            "duration": wall,
            "durations": {"setup": 0.0, "call": wall, "teardown": 0.0},
            "worker": "main",
            "start": 0.0,
            "stop": wall,
        }
        if cpu is not None:
            entry["cpu"] = cpu
        entries.append(entry)
    run = {"wall_seconds": 1.0, "workers": 1}
    path.write_text(json.dumps({"schema": SCHEMA, "run": run, "tests": entries}))
    return path


def test_the_store_wins_over_the_last_report_which_wins_over_the_baseline(tmp_path: Path) -> None:
    write_report(tmp_path / "last.json", {"t.py::a": (2.0, 1.5), "t.py::b": (3.0, None)})
    base = write_report(tmp_path / "base.json", {"t.py::a": (9.0, 9.0), "t.py::c": (4.0, 0.1)})
    update_store(store_path(tmp_path / ".pytest_cache"), [("t.py::b", 5.0, 0.2)])

    found = load_durations(tmp_path, [Path("last.json"), base])
    assert found.wall == {"t.py::b": 5.0, "t.py::a": 2.0, "t.py::c": 4.0}
    assert found.cpu == {"t.py::b": 0.2, "t.py::a": 1.5, "t.py::c": 0.1}
    assert found.cpu_of("t.py::zzz") is None
    assert len(found.sources) == 3
    assert found.skipped == []


def test_the_reports_are_read_only_for_tests_the_store_does_not_know(tmp_path: Path) -> None:
    # A report that cannot be read shows whether it was opened: it is listed as skipped.
    (tmp_path / "broken.json").write_text("{not json")
    update_store(store_path(tmp_path / ".pytest_cache"), [("t.py::a", 1.0, 0.5)])

    known = load_durations(tmp_path, [Path("broken.json")], needed=["t.py::a"])
    assert known.wall == {"t.py::a": 1.0}
    assert known.skipped == []
    unknown = load_durations(tmp_path, [Path("broken.json")], needed=["t.py::a", "t.py::b"])
    assert len(unknown.skipped) == 1
    assert "broken.json" in unknown.skipped[0]


def test_unknown_tests_are_estimated_from_their_function_then_file_then_everything(
    tmp_path: Path,
) -> None:
    report = write_report(
        tmp_path / "r.json",
        {
            "a.py::test_slow[1]": (10.0, None),
            "a.py::test_slow[2]": (12.0, None),
            "a.py::test_quick": (0.5, None),
            "b.py::test_one": (1.0, None),
        },
    )
    found = load_durations(tmp_path, [report], use_store=False)
    assert found.wall_of("a.py::test_slow[3]") == 11.0
    assert found.wall_of("a.py::test_new") == 10.0
    assert found.wall_of("c.py::test_new") == 5.5
    assert found.wall_of("b.py::test_one") == 1.0
    assert load_durations(tmp_path, []).wall_of("x.py::t") == durations_mod.DEFAULT_ESTIMATE


def test_missing_or_broken_sources_are_skipped_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    store = store_path(tmp_path / ".pytest_cache")
    store.parent.mkdir(parents=True)
    store.write_text('{"schema": "something else"}')
    found = load_durations(tmp_path, [Path("missing.json"), Path("broken.json")])
    assert len(found) == 0
    assert len(found.skipped) == 3
    assert "missing.json: no such file" in found.skipped[1]
    assert "not valid JSON" in found.skipped[2]


def test_the_store_keeps_tests_this_run_did_not_run(tmp_path: Path) -> None:
    path = tmp_path / "durations.json"
    assert update_store(path, [("a", 1.0, 0.5), ("b", 2.0, None)]) == 2
    assert update_store(path, [("a", 3.0, None)]) == 1
    wall, cpu = store_mod.read_store(path)
    assert wall == {"a": 3.0, "b": 2.0}
    assert cpu == {}


def test_the_store_reads_back_its_seconds_rounded_to_six_decimals(tmp_path: Path) -> None:
    # The store is written by a "%" per test; a reader must get round(x, 6), any node id.
    import math
    import random

    rng = random.Random(12)
    measured: list[tuple[str, float, float | None]] = [
        (f"t.py::test_{index}[{rng.random()}]", 10 ** rng.uniform(-7, 4), 10 ** rng.uniform(-7, 3))
        for index in range(3000)
    ]
    measured += [
        ('t.py::test_q["é\\", \u2603]', 0.0000005, None),
        ("t.py::test_zero", 0.0, 0.0),
        ("t.py::test_not_measured", math.nan, 0.1),
    ]
    path = tmp_path / "durations.json"
    assert update_store(path, measured, {"workers": 1, "after_tests_seconds": 0.05}) == 3003
    wall, cpu = store_mod.read_store(path)
    assert "t.py::test_not_measured" not in wall
    del measured[-1]
    assert wall == {nodeid: round(seconds, 6) for nodeid, seconds, _ in measured}
    assert cpu == {nodeid: round(c, 6) for nodeid, _, c in measured if c is not None}
    assert store_mod.read_store_runs(path) == (
        {"one": {"workers": 1, "after_tests_seconds": 0.05}},
        "one",
    )
    data = json.loads(path.read_text(encoding="utf-8"))
    assert list(data) == ["schema", "tests", "runs", "last"]
    assert data["tests"]["t.py::test_zero"] == [0.0, 0.0]


def test_the_store_keeps_the_costs_of_the_last_run_in_each_mode(tmp_path: Path) -> None:
    path = tmp_path / "durations.json"
    update_store(path, [("a", 1.0, 0.5)])
    # A store written before runs were kept reads as none kept.
    assert store_mod.read_store_runs(path) == ({}, None)
    on_xdist = {"workers": 2, "controller_cpu_per_test": 0.001, "mode": "parallel"}
    update_store(path, [("a", 1.0, 0.5)], on_xdist)
    update_store(path, [("a", 2.0, 0.4)], {"workers": 1, "after_tests_seconds": 0.05})
    runs, last = store_mod.read_store_runs(path)
    assert last == "one"
    # Only the facts of the costs beyond the tests, per mode.
    assert runs == {
        "xdist": {"workers": 2, "controller_cpu_per_test": 0.001},
        "one": {"workers": 1, "after_tests_seconds": 0.05},
    }
    found = load_durations(tmp_path, cache_dir=tmp_path / "none")
    assert (found.store_runs, found.store_last) == ({}, None)


def test_a_run_with_a_report_records_wall_and_cpu_time_in_the_store(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_sleeps="""
        import time

        def test_sleeps():
            time.sleep(0.3)

        def test_computes():
            end = time.process_time() + 0.3
            while time.process_time() < end:
                pass
        """
    )
    pytester.runpytest("-p", "no:randomly", "--testfleet-report", "r.json").assert_outcomes(
        passed=2
    )
    found = load_durations(pytester.path, [])
    sleeps, computes = "test_sleeps.py::test_sleeps", "test_sleeps.py::test_computes"
    assert found.wall[sleeps] >= 0.3
    assert found.wall[computes] >= 0.3
    # Sleeping takes wall time, not CPU time; computing takes both.
    assert found.cpu[sleeps] < 0.15
    assert found.cpu[computes] >= 0.25

"""--testfleet-shard keeps one shard of the collection; the shards together run it once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

SUITE = """
import pytest

@pytest.mark.parametrize("n", range(12))
def test_quick(n):
    pass

def test_slow():
    pass

@pytest.mark.xdist_group("db")
def test_db_read():
    pass

@pytest.mark.xdist_group("db")
def test_db_write():
    pass

@pytest.mark.serial
def test_alone():
    pass

@pytest.mark.serial
def test_alone_too():
    pass
"""
MODULE = "test_suite.py"


def baseline_of(durations: dict[str, float]) -> dict[str, Any]:
    """A timing report with these durations, as `invoke baseline` would commit it."""
    tests = [
        {
            "nodeid": nodeid,
            "outcome": "passed",
            "duration": seconds,
            "durations": {"setup": 0.0, "call": seconds, "teardown": 0.0},
            "markers": [],
            "worker": "main",
            "start": 0.0,
            "stop": seconds,
            "attempt": 1,
        }
        for nodeid, seconds in sorted(durations.items())
    ]
    return {
        "schema": "testfleet.timing/1",
        "run": {"id": "base", "wall_seconds": 1.0, "workers": 1},
        "tests": tests,
    }


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        "[pytest]\naddopts = --strict-markers\n"
        "markers =\n    serial: alone\n    xdist_group: xdist\n"
    )
    pytester.makepyfile(**{MODULE[:-3]: SUITE})
    durations = {f"{MODULE}::test_quick[{n}]": 1.0 for n in range(12)}
    durations[f"{MODULE}::test_slow"] = 6.0
    durations[f"{MODULE}::test_db_read"] = 1.0
    durations[f"{MODULE}::test_alone"] = 0.5
    reports = pytester.path / "reports"
    reports.mkdir()
    (reports / "test-timing-baseline.json").write_text(json.dumps(baseline_of(durations)))
    return pytester


def run_shard(
    pytester: pytest.Pytester, shard: str, *args: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    report = pytester.path / f"shard-{shard.replace('/', '-of-')}.json"
    result = pytester.runpytest(
        "--testfleet-shard", shard, "--testfleet-report", str(report), *args
    )
    return result, json.loads(report.read_text())


def ran(report: dict[str, Any]) -> list[str]:
    return sorted(test["nodeid"] for test in report["tests"])


def test_the_shards_together_run_every_collected_test_exactly_once(
    suite: pytest.Pytester,
) -> None:
    full = suite.runpytest("--testfleet-report", "full.json")
    full.assert_outcomes(passed=17)
    expected = ran(json.loads((suite.path / "full.json").read_text()))
    counts: Counter[str] = Counter()
    for index in (1, 2, 3):
        result, report = run_shard(suite, f"{index}/3")
        assert result.ret == pytest.ExitCode.OK
        assert ran(report) == sorted(report["run"]["shard"]["assigned"])
        counts.update(ran(report))
        result.stdout.fnmatch_lines([f"testfleet: shard {index}/3: * of 17 tests, predicted *"])
    assert sorted(counts) == expected
    assert set(counts.values()) == {1}


def test_the_split_follows_the_recorded_durations(suite: pytest.Pytester) -> None:
    _, first = run_shard(suite, "1/2")
    _, second = run_shard(suite, "2/2")
    with_slow = first if f"{MODULE}::test_slow" in ran(first) else second
    other = second if with_slow is first else first
    # 6 s of test_slow against 1 s tests: its shard takes fewer of them.
    assert len(ran(with_slow)) < len(ran(other))
    predicted = sorted(
        [first["run"]["shard"]["predicted_seconds"], second["run"]["shard"]["predicted_seconds"]]
    )
    # 21.5 s recorded, plus 2 tests without history at the mean (about 1.3 s each).
    assert predicted[1] - predicted[0] <= 1.5
    assert first["run"]["shard"]["durations"] == "test-timing-baseline.json"


def test_groups_and_serial_tests_land_whole_on_one_shard(suite: pytest.Pytester) -> None:
    shards = [set(ran(run_shard(suite, f"{i}/4")[1])) for i in (1, 2, 3, 4)]
    for unit in (
        {f"{MODULE}::test_db_read", f"{MODULE}::test_db_write"},
        {f"{MODULE}::test_alone", f"{MODULE}::test_alone_too"},
    ):
        assert sum(1 for shard in shards if unit <= shard) == 1


def test_the_split_is_the_same_whatever_order_randomly_collects_in(
    suite: pytest.Pytester,
) -> None:
    orders = []
    plans = []
    for seed in ("1", "2"):
        result, report = run_shard(suite, "1/3", "-v", "--randomly-seed", seed)
        orders.append([line for line in result.outlines if " PASSED" in line])
        plans.append((ran(report), report["run"]["shard"]["plan"]))
    assert orders[0] != orders[1]
    assert plans[0] == plans[1]


@pytest.mark.parametrize("value", ["0/2", "3/2", "a/b"])
def test_a_malformed_shard_is_a_usage_error_saying_the_form(
    suite: pytest.Pytester, value: str
) -> None:
    result = suite.runpytest("--testfleet-shard", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*shard '{value}' is not of the form I/N: shard I of N*"])


def test_the_environment_gives_the_shard_and_the_option_wins(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTFLEET_SHARD", "2/3")
    result = suite.runpytest()
    result.stdout.fnmatch_lines(["testfleet: shard 2/3: *"])
    result = suite.runpytest("--testfleet-shard", "1/2")
    result.stdout.fnmatch_lines(["testfleet: shard 1/2: *"])


def test_gitlab_and_buildkite_variables_are_read_with_auto(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_NODE_INDEX", "3")
    monkeypatch.setenv("CI_NODE_TOTAL", "4")
    # Without auto, a GitLab matrix job runs the whole suite: plain pytest.
    suite.runpytest().assert_outcomes(passed=17)
    suite.runpytest("--testfleet-shard", "auto").stdout.fnmatch_lines(["testfleet: shard 3/4: *"])
    monkeypatch.delenv("CI_NODE_INDEX")
    monkeypatch.delenv("CI_NODE_TOTAL")
    monkeypatch.setenv("BUILDKITE_PARALLEL_JOB", "0")
    monkeypatch.setenv("BUILDKITE_PARALLEL_JOB_COUNT", "2")
    suite.runpytest("--testfleet-shard", "auto").stdout.fnmatch_lines(["testfleet: shard 1/2: *"])


def test_a_damaged_durations_file_is_a_usage_error_naming_it(suite: pytest.Pytester) -> None:
    (suite.path / "reports" / "test-timing-baseline.json").write_text("{")
    result = suite.runpytest("--testfleet-shard", "1/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test-timing-baseline.json: not valid JSON*"])


def test_the_plan_file_lists_every_shard(suite: pytest.Pytester) -> None:
    result = suite.runpytest(
        "--collect-only", "-q", "--testfleet-shard", "1/2", "--testfleet-shard-plan", "plan.json"
    )
    assert result.ret == pytest.ExitCode.OK
    plan = json.loads(Path(suite.path, "plan.json").read_text())
    assert plan["collected"] == 17
    assert sum(shard["tests"] for shard in plan["shards"]) == 17
    # test_db_write and test_alone_too: in a unit with recorded tests, at their mean.
    assert sum(shard["without_history"] for shard in plan["shards"]) == 2


def test_xdist_workers_agree_on_the_shard_and_the_controller_reports_it(
    suite: pytest.Pytester,
) -> None:
    shards = [run_shard(suite, f"{i}/2", "-n", "2") for i in (1, 2)]
    for result, report in shards:
        assert result.ret == pytest.ExitCode.OK
        assert ran(report) == sorted(report["run"]["shard"]["assigned"])
        assert report["run"]["workers"] == 2
    both = ran(shards[0][1]) + ran(shards[1][1])
    assert len(both) == len(set(both)) == 17

"""testfleet's scheduler in real xdist runs: `testfleet run`'s default, opt-in for pytest."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testfleet.cli.program import main

ReadReport = Callable[[Path], dict[str, Any]]

SUITE = """
import time
import pytest

@pytest.mark.parametrize("n", range(8))
def test_quick(n):
    time.sleep(0.05)

@pytest.mark.xdist_group("db")
def test_db_one():
    time.sleep(0.05)

@pytest.mark.xdist_group("db")
def test_db_two():
    time.sleep(0.05)

@pytest.mark.serial
def test_alone_one():
    time.sleep(0.05)

@pytest.mark.serial
def test_alone_two():
    time.sleep(0.05)

def test_long_collected_last():
    time.sleep(0.6)
"""

STRICT = """
[tool.pytest.ini_options]
addopts = "--strict-markers -p no:randomly"
"""


def test_testfleet_run_is_one_session_with_the_serial_tests_last_and_alone(
    pytester: pytest.Pytester, read_report: ReadReport, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml(STRICT)
    pytester.makepyfile(test_suite=SUITE)
    assert main(["run", "--workers", "2", "--report", "r.json"]) == 0
    out = capfd.readouterr().out
    assert "--testfleet-scheduler" in out
    assert "phase 2" not in out
    assert re.fullmatch(r"=+ 13 passed in \d+\.\d\ds =+", out.rstrip().splitlines()[-1])

    tests = read_report(pytester.path / "r.json")["tests"]
    assert len(tests) == 13
    serial = [t for t in tests if "serial" in t["markers"]]
    others = [t for t in tests if "serial" not in t["markers"]]
    assert len({t["worker"] for t in serial}) == 1
    assert {t["worker"] for t in others} == {"gw0", "gw1"}
    assert min(t["start"] for t in serial) >= max(t["stop"] for t in others)
    group = [t for t in tests if "db" in t["nodeid"]]
    assert len({t["worker"] for t in group}) == 1
    assert all(t["cpu"] >= 0 for t in tests)


def test_with_past_durations_the_longest_test_starts_first_though_collected_last(
    pytester: pytest.Pytester, read_report: ReadReport, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml(STRICT)
    pytester.makepyfile(test_suite=SUITE)
    assert main(["run", "--workers", "2", "--report", "r.json"]) == 0
    # The first run recorded its durations in the pytest cache: the second uses them.
    assert main(["run", "--workers", "2", "--report", "r.json"]) == 0
    capfd.readouterr()
    tests = read_report(pytester.path / "r.json")["tests"]
    first = min(tests, key=lambda t: t["start"])
    long_test = next(t for t in tests if t["nodeid"].endswith("test_long_collected_last"))
    assert long_test["start"] - first["start"] < 0.3
    on_its_worker = [t for t in tests if t["worker"] == long_test["worker"]]
    assert min(on_its_worker, key=lambda t: t["start"]) is long_test


@pytest.mark.parametrize(
    ("options", "scheduler"),
    [((), "LoadScheduling"), (("--testfleet-scheduler",), "DurationScheduling")],
)
def test_plain_xdist_keeps_its_own_scheduler_unless_testfleets_is_asked_for(
    pytester: pytest.Pytester, options: tuple[str, ...], scheduler: str
) -> None:
    pytester.makepyprojecttoml(STRICT)
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-n", "2", "-v", *options)
    result.assert_outcomes(passed=13)
    result.stdout.fnmatch_lines([f"scheduling tests via {scheduler}"])


def test_the_scheduler_sees_the_tests_of_a_shard_only(
    pytester: pytest.Pytester, read_report: ReadReport, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml(STRICT)
    pytester.makepyfile(test_suite=SUITE)
    ran: list[str] = []
    for shard in ("1/2", "2/2"):
        args = ["run", "--workers", "2", "--shard", shard, "--report", f"{shard[0]}.json"]
        assert main(args) == 0, capfd.readouterr().out
        ran += [t["nodeid"] for t in read_report(pytester.path / f"{shard[0]}.json")["tests"]]
    capfd.readouterr()
    assert len(ran) == 13
    assert len(set(ran)) == 13

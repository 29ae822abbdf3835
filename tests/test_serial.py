"""`serial` tests never overlap another test, in `testfleet run` and in plain `pytest -n`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testfleet.cli.program import main

ReadReport = Callable[[Path], dict[str, Any]]

# Every test registers itself while it runs (setup to teardown). A `serial` test fails
# when it sees any other test registered during its window: the detection does not
# depend on testfleet, so it also shows what happens without it. The `serial` tests
# come first, so that without the lock they run while the workers start the others.
SUITE_CONFTEST = """
from pathlib import Path

import pytest

RUNNING = Path(__file__).parent / "running"


@pytest.fixture(autouse=True)
def registered(request):
    RUNNING.mkdir(exist_ok=True)
    me = RUNNING / request.node.name
    me.touch()
    yield
    me.unlink()
"""

SUITE = """
import time
from pathlib import Path

import pytest

RUNNING = Path(__file__).parent / "running"


@pytest.mark.serial
@pytest.mark.parametrize("n", range(3))
def test_alone(n):
    for _ in range(15):
        others = sorted(p.name for p in RUNNING.iterdir() if p.name != f"test_alone[{n}]")
        assert not others, f"ran together with {others}"
        time.sleep(0.01)


@pytest.mark.parametrize("n", range(16))
def test_free(n):
    time.sleep(0.05)
"""


def write_suite(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    serial: alone\n")
    pytester.makeconftest(SUITE_CONFTEST)
    pytester.makepyfile(test_suite=SUITE)


def assert_serial_tests_overlap_nothing(report: dict[str, Any]) -> None:
    """Every `serial` test's [start, stop] is disjoint from every other test's."""
    tests = report["tests"]
    serial = [t for t in tests if "serial" in t["markers"]]
    assert len(serial) == 3
    assert len(tests) == 19
    for alone in serial:
        for other in tests:
            if other is alone:
                continue
            apart = other["stop"] <= alone["start"] or alone["stop"] <= other["start"]
            assert apart, f"{alone['nodeid']} overlapped {other['nodeid']}"


def test_serial_tests_overlap_nothing_in_testfleet_run_with_four_workers_in_random_order(
    pytester: pytest.Pytester, read_report: ReadReport, capfd: pytest.CaptureFixture[str]
) -> None:
    write_suite(pytester)
    code = main(["run", "--workers", "4", "--report", "r.json", "--", "-p", "randomly"])
    assert code == 0, capfd.readouterr().out
    report = read_report(pytester.path / "r.json")
    # One session: testfleet's scheduler runs the `serial` tests last, in the same run.
    assert "phases" not in report["run"]
    assert report["run"]["seed"] is not None
    assert_serial_tests_overlap_nothing(report)
    serial = [t for t in report["tests"] if "serial" in t["markers"]]
    assert len({t["worker"] for t in serial}) == 1


@pytest.mark.parametrize("order", [["-p", "no:randomly"], ["-p", "randomly", "--randomly-seed=5"]])
def test_serial_tests_run_alone_in_a_plain_pytest_run_with_four_workers(
    pytester: pytest.Pytester, read_report: ReadReport, order: list[str]
) -> None:
    write_suite(pytester)
    result = pytester.runpytest_subprocess(
        "-n",
        "4",
        *order,
        "--testfleet-report",
        "r.json",
        "--testfleet-lock-dir",
        str(pytester.path / "locks"),
    )
    result.assert_outcomes(passed=19)
    report = read_report(pytester.path / "r.json")
    assert {t["worker"] for t in report["tests"]} == {"gw0", "gw1", "gw2", "gw3"}
    assert_serial_tests_overlap_nothing(report)
    # The run's lock files are gone with the run.
    assert list((pytester.path / "locks").iterdir()) == []


def test_without_testfleet_serial_tests_overlap_others_under_xdist(
    pytester: pytest.Pytester,
) -> None:
    write_suite(pytester)
    result = pytester.runpytest_subprocess("-n", "4", "-p", "no:randomly", "-p", "no:testfleet")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*AssertionError: ran together with*"])

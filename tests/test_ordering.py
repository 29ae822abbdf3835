"""`--testfleet-order-file` and `--testfleet-reverse`: the order of a run given from outside."""

from __future__ import annotations

import pytest

SUITE = """
import pytest

def test_a():
    pass

@pytest.mark.xdist_group("g")
def test_b():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_c(n):
    pass
"""


def ran(result: pytest.RunResult) -> list[str]:
    calls = result.reprec.getcalls("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return [c.report.nodeid for c in calls if c.report.when == "call"]


def test_the_order_file_runs_exactly_its_tests_in_its_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SUITE)
    pytester.path.joinpath("order.txt").write_text(
        "# a comment\ntest_s.py::test_c[2]\n\ntest_s.py::test_a\ntest_s.py::test_c[2]\n"
    )
    result = pytester.runpytest("-p", "no:randomly", "--testfleet-order-file=order.txt")
    result.assert_outcomes(passed=2, deselected=2)
    assert ran(result) == ["test_s.py::test_c[2]", "test_s.py::test_a"]
    assert not pytester.path.joinpath("order.txt.missing").exists()


def test_node_ids_not_collected_are_listed_and_stop_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SUITE)
    pytester.path.joinpath("order.txt").write_text("test_s.py::test_a\ntest_s.py::test_gone\n")
    result = pytester.runpytest("-p", "no:randomly", "--testfleet-order-file=order.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    missing = pytester.path.joinpath("order.txt.missing").read_text().splitlines()
    assert missing == ["test_s.py::test_gone"]
    result.stderr.fnmatch_lines(["*1 node ids of *order.txt were not collected*test_gone*"])
    assert ran(result) == []


def test_a_missing_order_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SUITE)
    result = pytester.runpytest("--testfleet-order-file=nowhere.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nowhere.txt: no such file*"])


def test_reverse_runs_the_collection_order_backwards(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SUITE)
    result = pytester.runpytest("-p", "no:randomly", "--testfleet-reverse")
    result.assert_outcomes(passed=4)
    assert ran(result) == [
        "test_s.py::test_c[2]",
        "test_s.py::test_c[1]",
        "test_s.py::test_b",
        "test_s.py::test_a",
    ]


def test_without_the_options_the_order_is_pytest_s(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SUITE)
    result = pytester.runpytest("-p", "no:randomly")
    assert ran(result) == [
        "test_s.py::test_a",
        "test_s.py::test_b",
        "test_s.py::test_c[1]",
        "test_s.py::test_c[2]",
    ]


@pytest.mark.slow
def test_xdist_workers_find_grouped_tests_under_their_listed_ids(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_s=SUITE)
    pytester.path.joinpath("order.txt").write_text("test_s.py::test_b\ntest_s.py::test_a\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-n", "2", "--dist", "loadgroup", "--testfleet-order-file=order.txt"
    )
    result.assert_outcomes(passed=2)

"""The closing line of `testfleet run`: the whole run's counts, in pytest's own words and form."""

from __future__ import annotations

import re

import pytest

from testfleet.cli.program import main
from testfleet.timing import closing

EVERY_OUTCOME = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("setup fails")

def test_passes(): pass
def test_passes_too(): pass
def test_fails(): assert False
def test_skips(): pytest.skip("no")
@pytest.mark.xfail(reason="known", strict=False)
def test_xfails(): assert False
@pytest.mark.xfail(reason="known", strict=False)
def test_xpasses(): pass
def test_errors(broken): pass
@pytest.mark.serial
def test_serial_one(): pass
@pytest.mark.serial
def test_serial_two(): pass
"""


def pytest_words(line: str) -> str:
    """The words of a closing line without its time and separators."""
    match = re.fullmatch(r"=+ (.*) in \d+\.\d\ds(?: \(\S+\))? =+", line.strip())
    assert match is not None, line
    return match.group(1)


def test_the_words_are_pytests_in_pytests_order() -> None:
    counts = {"passed": 308, "error": 1, "skipped": 2, "xfailed": 1, "failed": 3, "warnings": 1}
    assert closing.summary_text(counts, 104.454) == (
        "3 failed, 308 passed, 2 skipped, 1 xfailed, 1 warning, 1 error in 104.45s (0:01:44)"
    )
    assert closing.summary_text({"error": 2, "warnings": 3}, 0.5) == "3 warnings, 2 errors in 0.50s"
    assert closing.summary_text({}, 0.01) == "no tests ran in 0.01s"


def test_the_line_is_filled_with_equals_signs_to_the_width_as_pytest_does() -> None:
    line = closing.closing_line({"passed": 308, "skipped": 2}, 104.45, width=80)
    assert line == "=" * 18 + " 308 passed, 2 skipped in 104.45s (0:01:44) " + "=" * 18
    # An odd remainder goes to the right, as pytest's TerminalWriter.sep puts it.
    assert closing.closing_line({"passed": 1}, 0.5, width=80) == (
        "=" * 30 + " 1 passed in 0.50s " + "=" * 31
    )


def test_own_deselections_are_not_counted_as_deselected() -> None:
    stats: dict[str, list[object]] = {"passed": [1, 2], "deselected": [1, 2, 3], "": [1]}
    assert closing.counts_from_stats(stats, own_deselected=2) == {"passed": 2, "deselected": 1}
    assert closing.counts_from_stats(stats, own_deselected=3) == {"passed": 2}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_run_ends_with_the_counts_pytest_gives_for_the_same_suite(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str], workers: str
) -> None:
    pytester.makepyfile(test_outcomes=EVERY_OUTCOME)
    plain = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "0")
    expected = pytest_words(plain.outlines[-1])
    assert expected == "1 failed, 4 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error"

    args = ["run", "--workers", workers, "--dist", "load", "--report", "r.json"]
    assert main([*args, "--", "-p", "no:randomly"]) == 1
    out = capfd.readouterr().out.rstrip().splitlines()
    assert pytest_words(out[-1]) == expected


def test_tests_the_user_deselected_are_counted_as_pytest_counts_them(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_outcomes=EVERY_OUTCOME)
    args = ["run", "--workers", "1", "--report", "r.json", "--"]
    assert main([*args, "-p", "no:randomly", "-k", "passes or serial"]) == 0
    out = capfd.readouterr().out
    assert pytest_words(out.rstrip().splitlines()[-1]) == "4 passed, 4 deselected, 1 xpassed"

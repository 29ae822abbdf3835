"""`testfleet bisect` and the order-dependence report of `testfleet randomized`.

The inner suites are in tests/material/order (see its README): each is wrong on purpose
in one known way, and every test asserts the exact cause found.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testfleet.cli.program import main
from testfleet.diagnose import probes

MATERIAL = Path(__file__).parent / "material" / "order"
CACHE_VICTIM = "test_omega.py::test_cache_starts_empty"
CACHE_POLLUTER = "test_alpha.py::test_warm_cache"
PRICE_VICTIM = "test_checkout.py::test_price_format_is_plain_by_default"
REGION = "test_checkout.py::test_set_region"
CURRENCY = "test_settings.py::test_set_currency"
ALICE = "test_login.py::test_alice_can_log_in"
REGISTER_ALICE = "test_accounts.py::test_register_alice"
PLAIN_FAILURE = "test_login.py::test_plain_failure"

Material = Callable[[str], Path]


@pytest.fixture
def material(pytester: pytest.Pytester) -> Material:
    """Copy a suite of tests/material/order into the pytester directory."""

    def copy(name: str) -> Path:
        for source in sorted((MATERIAL / name).glob("*.py.txt")):
            stem = source.name.removesuffix(".py.txt")
            target = f"{stem}.py" if stem.startswith("support_") else f"test_{stem}.py"
            (pytester.path / target).write_text(source.read_text(encoding="utf-8"))
        return pytester.path

    return copy


def run_in_order(pytester: pytest.Pytester, report: str, *args: str) -> None:
    """Run the inner suite in collection order, writing a timing report."""
    pytester.runpytest_subprocess("-p", "no:randomly", "--testfleet-report", report, *args)
    assert (pytester.path / report).is_file()


def printed(out: str, label: str) -> list[str]:
    """The command printed after ``label``, parsed as a shell would."""
    (line,) = [line for line in out.splitlines() if line.strip().startswith(label)]
    return shlex.split(line.split(label, 1)[1])


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def only_result(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == "testfleet.order/1"
    (result,) = data["results"]
    return result


@pytest.mark.slow
def test_a_polluter_three_hundred_tests_before_its_victim_is_found_in_few_rounds(
    pytester: pytest.Pytester, material: Material, capfd: pytest.CaptureFixture[str]
) -> None:
    material("far_apart")
    run_in_order(pytester, "run.json")
    capfd.readouterr()

    code = main(["bisect", "run.json", "--jobs", "2", "--json", "order.json"])
    out = capfd.readouterr().out

    assert code == 1
    result = only_result(pytester.path / "order.json")
    assert result["victim"] == CACHE_VICTIM
    assert result["verdict"] == "polluted-by"
    assert result["tests"] == [CACHE_POLLUTER]
    assert result["verified"] is True
    assert result["candidates"] == 304
    # Three parts a round: 1 round alone and first parts, 5 more to 1 of 304, 1 check.
    # Halving one part at a time would take 2 + ceil(log2(304)) = 11 rounds.
    assert result["rounds"] == 7
    assert result["rounds"] < 2 + math.ceil(math.log2(304))
    assert "round 4: 12 candidates left" in out

    command = printed(out, "reproduce with:")
    assert command == result["argv"]
    assert command[-2:] == [CACHE_POLLUTER, CACHE_VICTIM]
    failing = run(command)
    assert failing.returncode == 1
    assert f"FAILED {CACHE_VICTIM}" in failing.stdout
    assert "1 failed, 1 passed" in failing.stdout
    passing = run(printed(out, "passes with:"))
    assert passing.returncode == 0, passing.stdout
    assert "1 passed" in passing.stdout


@pytest.mark.slow
def test_a_victim_that_needs_two_polluters_gets_both_and_each_is_needed(
    pytester: pytest.Pytester, material: Material, capfd: pytest.CaptureFixture[str]
) -> None:
    material("two_polluters")
    # Collection order runs the victim before test_set_currency; the order file puts it last.
    collected = pytester.runpytest_subprocess("-p", "no:randomly", "--collect-only", "-q")
    ids = [line for line in collected.outlines if "::" in line and line != PRICE_VICTIM]
    assert len(ids) == 15
    (pytester.path / "order.txt").write_text("\n".join([*ids, PRICE_VICTIM]) + "\n")
    capfd.readouterr()

    code = main(
        ["bisect", "--order-file", "order.txt", "--test", PRICE_VICTIM, "--json", "out.json"]
    )
    out = capfd.readouterr().out

    assert code == 1
    result = only_result(pytester.path / "out.json")
    assert result["verdict"] == "polluted-by"
    assert result["tests"] == [REGION, CURRENCY]
    assert result["minimal"] is True
    assert result["verified"] is True
    command = printed(out, "reproduce with:")
    assert command[-3:] == [REGION, CURRENCY, PRICE_VICTIM]
    assert run(command).returncode == 1
    for needed in (REGION, CURRENCY):
        without = [arg for arg in command if arg != needed]
        assert run(without).returncode == 0, f"fails without {needed}: a polluter too many"


@pytest.mark.slow
def test_a_test_that_needs_an_earlier_one_is_told_which(
    pytester: pytest.Pytester, material: Material, capfd: pytest.CaptureFixture[str]
) -> None:
    material("needs_setup")
    run_in_order(pytester, "run.json")
    capfd.readouterr()

    code = main(["bisect", "--report", "run.json", "--test", ALICE, "--json", "out.json"])
    out = capfd.readouterr().out

    assert code == 1
    result = only_result(pytester.path / "out.json")
    assert result["verdict"] == "depends-on"
    assert result["tests"] == [REGISTER_ALICE]
    assert result["tried"][0] == "alone: failed"
    assert f"{ALICE} fails alone but passes when {REGISTER_ALICE} runs before it" in out
    command = printed(out, "reproduce with:")
    assert command[-2:] == [ALICE, REGISTER_ALICE]
    assert run(command).returncode == 1
    control = printed(out, "passes with:")
    assert control[-2:] == [REGISTER_ALICE, ALICE]
    assert run(control).returncode == 0


@pytest.mark.slow
def test_a_test_that_fails_alone_is_not_called_order_dependent(
    pytester: pytest.Pytester, material: Material, capfd: pytest.CaptureFixture[str]
) -> None:
    material("needs_setup")
    run_in_order(pytester, "run.json")
    capfd.readouterr()

    assert main(["bisect", "--report", "run.json", "--json", "out.json"]) == 1

    # Without --test: every failed test of the report, here only the plain failure.
    result = only_result(pytester.path / "out.json")
    assert result["victim"] == PLAIN_FAILURE
    assert result["verdict"] == "fails-alone"
    assert result["tests"] == []
    # It ran last: the tests before it are all the others.
    assert result["tried"] == ["alone: failed", "after the 13 tests that ran before it: failed"]
    assert run(result["argv"]).returncode == 1


@pytest.mark.slow
def test_a_failure_that_does_not_reproduce_says_what_was_tried(
    pytester: pytest.Pytester, material: Material, capfd: pytest.CaptureFixture[str]
) -> None:
    material("needs_setup")
    victim = "test_accounts.py::test_registry_is_a_set"
    (pytester.path / "order.txt").write_text(f"{REGISTER_ALICE}\n{victim}\n")

    code = main(["bisect", "--order-file", "order.txt", "--test", victim, "--json", "out.json"])

    assert code == 0
    result = only_result(pytester.path / "out.json")
    assert result["verdict"] == "not-reproduced"
    assert result["tried"] == ["alone: passed", "after the 1 test that ran before it: passed"]
    assert result["command"] is None
    assert "no polluter found" in capfd.readouterr().out


@pytest.mark.slow
def test_tests_no_longer_collected_are_left_out_and_named(
    pytester: pytest.Pytester, material: Material, capfd: pytest.CaptureFixture[str]
) -> None:
    material("needs_setup")
    gone = ["test_removed.py::test_old", "test_accounts.py::test_renamed_since"]
    (pytester.path / "order.txt").write_text("\n".join([gone[0], REGISTER_ALICE, gone[1], ALICE]))

    code = main(["bisect", "--order-file", "order.txt", "--test", ALICE, "--json", "out.json"])

    assert code == 1
    result = only_result(pytester.path / "out.json")
    assert result["verdict"] == "depends-on"
    assert result["tests"] == [REGISTER_ALICE]
    assert result["missing"] == gone
    assert "2 tests of the order are not collected any more and were left out" in result["notes"]


@pytest.mark.slow
def test_a_victim_no_longer_collected_cannot_be_diagnosed(
    pytester: pytest.Pytester, material: Material, capfd: pytest.CaptureFixture[str]
) -> None:
    material("needs_setup")
    victim = "test_login.py::test_alice_can_log_in_renamed"
    (pytester.path / "order.txt").write_text(f"{REGISTER_ALICE}\n{victim}\n")

    code = main(["bisect", "--order-file", "order.txt", "--test", victim, "--json", "out.json"])

    assert code == 2
    result = only_result(pytester.path / "out.json")
    assert result["verdict"] == "missing"
    assert result["missing"] == [victim]
    assert "is not collected any more" in capfd.readouterr().out


@pytest.mark.slow
def test_a_test_missing_from_the_order_is_a_usage_error_before_any_run(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    (pytester.path / "order.txt").write_text("test_a.py::test_one\n")

    assert main(["bisect", "--order-file", "order.txt", "--test", "test_a.py::test_two"]) == 2
    assert capsys.readouterr().err == (
        "testfleet: error: test_a.py::test_two is not among the 1 tests of order.txt: "
        "give its node id as listed there\n"
    )
    assert main(["bisect", "--order-file", "order.txt"]) == 2
    assert "--order-file needs the failing test: add --test NODEID" in capsys.readouterr().err


@pytest.mark.slow
def test_pytest_arguments_that_select_tests_are_left_out_of_the_probes_and_listed(
    pytester: pytest.Pytester, material: Material, capfd: pytest.CaptureFixture[str]
) -> None:
    material("needs_setup")
    (pytester.path / "order.txt").write_text(f"{REGISTER_ALICE}\n{ALICE}\n")

    args = ["bisect", "--order-file", "order.txt", "--test", ALICE, "--json", "out.json"]
    code = main([*args, "--", "test_login.py", "-k", "alice", "-x"])

    assert code == 1
    result = only_result(pytester.path / "out.json")
    assert result["verdict"] == "depends-on"
    assert result["tests"] == [REGISTER_ALICE]
    assert result["dropped_args"] == ["-x", "test_login.py", "-k", "alice"]
    out = capfd.readouterr().out
    assert "note: left out of every run: -x" in out
    assert "(the probes give their own node ids): test_login.py -k alice" in out


def test_probe_arguments_sort_into_kept_stopping_and_selecting(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    sorted_args = probes.split_args(
        [
            "-x", "--maxfail", "3", "-k", "not slow", "--maxfail=2", "--lf", "-W", "error",
            "tests", "--tb", "short", "--unknown-flag", "tests/test_a.py::test_b", "-m", "db",
            "--deselect=tests/test_a.py::test_c", "-p", "no:cacheprovider", "--no-header",
        ],
        tmp_path,
    )  # fmt: skip
    assert sorted_args.kept == [
        "-W", "error", "--tb", "short", "--unknown-flag", "-p", "no:cacheprovider", "--no-header"
    ]  # fmt: skip
    assert sorted_args.dropped == ["-x", "--maxfail", "3", "--maxfail=2", "--lf"]
    assert sorted_args.selection == [
        "-k", "not slow", "tests", "tests/test_a.py::test_b", "-m", "db",
        "--deselect=tests/test_a.py::test_c",
    ]  # fmt: skip


@pytest.mark.e2e
def test_randomized_diagnoses_each_failing_test_once_and_reports_it(
    pytester: pytest.Pytester, material: Material, capfd: pytest.CaptureFixture[str]
) -> None:
    material("needs_setup")
    (pytester.path / "summary.md").write_text("# CI\n\nearlier section\n")
    # Seed 1 runs test_alice_can_log_in after test_register_alice, seed 5 before it; the
    # plain failure fails under both (pytest-randomly 3.15 to 5.1).
    args = ["randomized", "--no-reverse", "--seed", "1", "--seed", "5", "--report-dir", "rand"]
    code = main([*args, "--order-report", "out/order.json", "--summary", "summary.md"])
    out = capfd.readouterr().out

    assert code == 1
    data = json.loads((pytester.path / "out" / "order.json").read_text())
    assert data["schema"] == "testfleet.order/1"
    failed = {s["seed"]: s["failed"] for s in data["seeds"]}
    assert failed == {1: [PLAIN_FAILURE], 5: [ALICE, PLAIN_FAILURE]} or failed == {
        1: [PLAIN_FAILURE],
        5: [PLAIN_FAILURE, ALICE],
    }, "pytest-randomly shuffles differently: pick seeds that split the two cases again"
    verdicts = {(r["victim"], r["seed"]): (r["verdict"], r["tests"]) for r in data["results"]}
    assert verdicts == {
        (PLAIN_FAILURE, 1): ("fails-alone", []),
        (ALICE, 5): ("depends-on", [REGISTER_ALICE]),
    }
    assert data["summary"]["verdicts"]["depends-on"] == 1
    assert "testfleet: order dependence: 2 tests diagnosed; out/order.json" in out

    markdown = (pytester.path / "out" / "order.md").read_text()
    assert markdown.startswith(
        "## Order dependence\n\nRuns: seed 1 (exit 1), seed 5 (exit 1); 2 failed."
    )
    assert f"| `{ALICE}` | depends-on | `{REGISTER_ALICE}` | seed 5 |" in markdown
    assert (pytester.path / "summary.md").read_text() == "# CI\n\nearlier section\n" + markdown
    (alice,) = [r for r in data["results"] if r["victim"] == ALICE]
    assert f"```sh\n{alice['command']}\n```" in markdown
    assert run(shlex.split(alice["command"])).returncode == 1


@pytest.mark.e2e
def test_randomized_without_failures_still_replaces_the_order_report(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "order-dependence.json").write_text("stale\n")

    assert main(["randomized", "--seed", "3", "--report-dir", "rand"]) == 0

    data = json.loads((pytester.path / "reports" / "order-dependence.json").read_text())
    assert data["results"] == []
    assert data["summary"]["diagnosed"] == 0
    markdown = (pytester.path / "reports" / "order-dependence.md").read_text()
    assert markdown.endswith("No failing test to diagnose.\n")

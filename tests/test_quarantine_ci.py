"""`invoke ci` with quarantined tests: left out of the run, run apart, listed in the summary."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import MockContext, Result

import testfleet.invoke
from testfleet.runs import quarantine
from testfleet.settings import config

BROKEN = "tests/test_sample.py::test_broken_until_the_parser_is_fixed"
PASSING = "tests/test_sample.py::test_adds"
SUITE = """\
def test_adds():
    assert 1 + 1 == 2


def test_broken_until_the_parser_is_fixed():
    assert "a,b".split(",") == ["a", "b", "c"]
"""
# What the outer run (invoke ci, nox) may have set, which the sample's runs must not see.
OUTER = ("TESTFLEET_", "PYTEST_", "COVERAGE_", "NOX", "GITHUB_STEP_SUMMARY", "VIRTUAL_ENV")
CLOSING = re.compile(r"^=+ .* in [0-9.]+s.* =+$")


def write_project(root: Path) -> None:
    """A project that is no package: a test folder, nox and invoke from testfleet, no coverage."""
    (root / "tests").mkdir()
    (root / "tests" / "test_sample.py").write_text(SUITE)
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n'
        "[tool.testfleet]\ncoverage = false\nworkers = 2\n"
    )
    (root / "noxfile.py").write_text(
        'import nox\nimport testfleet.nox\n\nnox.needs_version = ">=2024.10.9"\n'
        "testfleet.nox.register()\n"
    )
    (root / "tasks.py").write_text("from testfleet.invoke import namespace\n")
    (root / "quarantine.txt").write_text(
        f"# tests run apart until they are fixed\n{BROKEN}  # parser bug 12, failing since May\n"
    )


def invoke_ci(root: Path, wheel: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(OUTER)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(TESTFLEET_REQUIREMENT=str(wheel), TESTFLEET_CLASSIFY_RUNS="1", **extra)
    return subprocess.run(
        ["invoke", "ci"], cwd=root, env=env, capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip


def outcomes(report: Path) -> dict[str, str]:
    data = json.loads(report.read_text())
    return {test["nodeid"]: test["outcome"] for test in data["tests"]}


@pytest.mark.e2e
def test_a_quarantined_failing_test_runs_apart_without_failing_invoke_ci(
    tmp_path: Path, wheel: Path
) -> None:
    write_project(tmp_path)
    summary = tmp_path / "reports" / "ci-summary.md"

    # Without the setting nothing changes: the failing test fails the run.
    plain = invoke_ci(tmp_path, wheel)
    assert plain.returncode == 1, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert outcomes(tmp_path / "reports" / "test-timing.json")[BROKEN] == "failed"
    assert "Quarantined" not in summary.read_text()
    assert not (tmp_path / quarantine.REPORT).exists()

    held = invoke_ci(tmp_path, wheel, TESTFLEET_QUARANTINE="quarantine.txt")
    said = held.stdout + held.stderr
    assert held.returncode == 0, said[-6000:]
    # The main run left it out; the run apart ran it, and it failed there.
    assert outcomes(tmp_path / "reports" / "test-timing.json") == {PASSING: "passed"}
    assert outcomes(tmp_path / quarantine.REPORT) == {BROKEN: "failed"}
    text = summary.read_text()
    assert f"| `{BROKEN}` | parser bug 12, failing since May | failed |" in text.splitlines(), text
    assert "1 quarantined test(s) run apart: 1 failed; they do not fail the run" in said
    # The last closing line of the output is the main run's again, not the run apart's
    # (under xdist pytest's own line does not count the deselected tests either).
    closings = [line for line in held.stdout.splitlines() if CLOSING.match(line)]
    apart = [index for index, line in enumerate(closings) if " 1 failed" in line]
    assert apart, closings
    assert apart[-1] < len(closings) - 1, closings
    assert " 1 passed in " in closings[-1], closings


def test_the_quarantine_file_takes_node_ids_with_reasons_and_skips_comments(
    tmp_path: Path,
) -> None:
    listed = tmp_path / "quarantine.txt"
    listed.write_text(
        "# run apart\n\ntests/test_a.py::test_x  # flaky: 12% of runs\n"
        "tests/test_a.py::test_y[a b]\ntests/test_a.py::test_x  # listed twice\n"
    )
    held = quarantine.read_list(listed)
    assert held == [
        quarantine.Quarantined("tests/test_a.py::test_x", "flaky: 12% of runs"),
        quarantine.Quarantined("tests/test_a.py::test_y[a b]", ""),
    ]
    assert shlex.split(quarantine.deselect_args(held)) == [
        "--deselect",
        "tests/test_a.py::test_x",
        "--deselect",
        "tests/test_a.py::test_y[a b]",
    ]
    with pytest.raises(quarantine.QuarantineError, match="no such file"):
        quarantine.read_list(tmp_path / "missing.txt")


@pytest.mark.parametrize("setting", ["", "quarantine.txt"])
def test_ci_runs_the_same_commands_unless_a_quarantine_file_is_set(
    setting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    (tmp_path / "quarantine.txt").write_text(f"{BROKEN}  # parser bug\n")
    if setting:
        monkeypatch.setenv("TESTFLEET_QUARANTINE", setting)
    else:
        monkeypatch.delenv("TESTFLEET_QUARANTINE", raising=False)
    monkeypatch.setenv("TESTFLEET_COVERAGE", "0")
    report = Path(config.load(tmp_path).get("report"))
    report.parent.mkdir(parents=True)
    report.write_text("{}")
    context = MockContext(run={re.compile(".*"): Result()}, repeat=True)
    testfleet.invoke.ci(context)
    commands = [call.args[0] for call in context.run.call_args_list]  # type: ignore[attr-defined]
    nox = [command for command in commands if command.startswith("nox ")]
    if not setting:
        assert nox == ["nox -s tests_parallel"]
        assert not (tmp_path / "reports" / "ci-summary.md").exists()
        return
    assert nox == [
        f"nox -s tests_parallel -- --deselect {BROKEN}",
        f"nox -r -s tests_parallel -- --testfleet-order-file={quarantine.ORDER_FILE}",
    ]
    assert quarantine.ORDER_FILE.read_text() == f"{BROKEN}\n"
    # The mocked run apart wrote no report: the summary says the test did not run.
    assert f"| `{BROKEN}` | parser bug | not run |" in (
        (tmp_path / "reports" / "ci-summary.md").read_text().splitlines()
    )

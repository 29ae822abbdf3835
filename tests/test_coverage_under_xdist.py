"""Coverage measured with two xdist workers equals coverage measured serially."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

# The same settings as this repository's [tool.coverage.run]: what makes workers count.
COVERAGE_SETTINGS = """
[tool.coverage.run]
branch = true
parallel = true
patch = ["subprocess"]
source_pkgs = ["calc"]
"""

CALC = """
def classify(n):
    if n < 0:
        return "negative"
    if n == 0:
        return "zero"
    if n > 1000:
        return "huge"
    return "positive"


def never_called():
    return 1
"""

TESTS = """
import pytest
from calc import classify

@pytest.mark.parametrize("n, kind", [(-1, "negative"), (0, "zero"), (5, "positive")])
def test_classify(n, kind):
    assert classify(n) == kind

@pytest.mark.parametrize("n", range(20))
def test_positive(n):
    assert classify(n + 1) == "positive"
"""


def measure(project: Path, *pytest_args: str) -> dict[str, Any]:
    # The outer run may itself be under coverage: its variables must not reach this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(project / "src")
    for leftover in project.glob(".coverage*"):
        leftover.unlink()

    def coverage(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "coverage", *args],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
        )

    coverage("run", "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *pytest_args)
    coverage("combine")
    coverage("json", "-o", "coverage.json")
    data: dict[str, Any] = json.loads((project / "coverage.json").read_text())
    return {
        name: {
            "executed": info["executed_lines"],
            "missing": info["missing_lines"],
            "branches": sorted(map(tuple, info["executed_branches"])),
        }
        for name, info in data["files"].items()
    }


def test_coverage_with_two_workers_equals_serial_coverage(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(COVERAGE_SETTINGS)
    (tmp_path / "src" / "calc").mkdir(parents=True)
    (tmp_path / "src" / "calc" / "__init__.py").write_text(CALC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(TESTS)

    serial = measure(tmp_path, "-p", "no:xdist", "tests")
    parallel = measure(tmp_path, "-n", "2", "tests")

    assert parallel == serial
    (calc,) = serial.values()
    # Not vacuous: the "huge" branch and never_called() are missed, the rest is run.
    assert len(calc["missing"]) == 2
    assert len(calc["executed"]) == 8


# A worker that cannot exit in xdist's ten seconds of grace is killed by its controller,
# and coverage saves at exit: here a thread left running (a server a test started), which
# Python joins before the exit handlers run.
SLOW_TO_EXIT = """
import threading
import time

def pytest_sessionstart(session):
    if hasattr(session.config, "workerinput"):
        threading.Thread(target=time.sleep, args=(30,), daemon=False).start()
"""


@pytest.mark.slow
def test_a_worker_killed_after_its_session_keeps_its_coverage(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(COVERAGE_SETTINGS)
    (tmp_path / "src" / "calc").mkdir(parents=True)
    (tmp_path / "src" / "calc" / "__init__.py").write_text(CALC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(TESTS)
    (tmp_path / "tests" / "conftest.py").write_text(textwrap.dedent(SLOW_TO_EXIT))

    parallel = measure(tmp_path, "-n", "2", "tests")

    # The tests ran on the workers only: without the save at the end of their session,
    # calc would not be measured at all.
    (calc,) = parallel.values()
    assert len(calc["executed"]) == 8

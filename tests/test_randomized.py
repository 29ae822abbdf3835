"""`testfleet randomized`: the reversed run first, then the seeds, on suites as users write them."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from testfleet import randomized
from testfleet.cli import main

#: A suite whose addopts switch xdist on, with `xdist_group` under --strict-markers: every
#: one-process run must switch xdist off in a way that keeps both working.
ADDOPTS_PYPROJECT = """
[tool.pytest.ini_options]
addopts = "-n auto --dist loadgroup --strict-markers -p no:randomly"
"""

SUITE = """
import os

import pytest


@pytest.mark.xdist_group("env")
def test_sees_a_clean_environment():
    assert "ORDER_POLLUTED" not in os.environ


@pytest.mark.parametrize("n", range(6))
def test_unrelated(n):
    pass


@pytest.mark.xdist_group("env")
def test_pollutes_the_environment():
    os.environ["ORDER_POLLUTED"] = "1"
"""
VICTIM = "tests/test_order.py::test_sees_a_clean_environment"
POLLUTER = "tests/test_order.py::test_pollutes_the_environment"


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def addopts_suite(pytester: pytest.Pytester) -> Path:
    (pytester.path / "pyproject.toml").write_text(ADDOPTS_PYPROJECT)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_order.py").write_text(SUITE)
    (pytester.path / "tests" / "test_other.py").write_text("def test_elsewhere():\n    pass\n")
    return pytester.path


def test_the_reversed_run_comes_first_and_each_run_has_its_order() -> None:
    runs = randomized.plan([7, 9])
    assert [run.label for run in runs] == ["reversed", "seed 7", "seed 9"]
    reversed_args = runs[0].args(Path("r.json"), ["-k", "x"])
    assert reversed_args[:3] == ["-p", "no:randomly", "--testfleet-reverse"]
    assert reversed_args[-2:] == ["-k", "x"]
    assert runs[1].args(Path("s.json"), [])[:3] == ["-p", "randomly", "--randomly-seed=7"]
    assert [run.label for run in randomized.plan([7], reverse=False)] == ["seed 7"]


@pytest.mark.slow
def test_a_suite_with_xdist_in_addopts_is_reversed_randomized_and_bisected(
    addopts_suite: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The selection after -- chooses the suite of every run; the probes leave it out.
    args = ["randomized", "--seed", "3", "--report-dir", "rand", "--order-report", "o.json"]
    code = main([*args, "--", "tests/test_order.py", "-k", "not elsewhere"])
    out = capfd.readouterr().out

    assert code == 1
    runs = read(addopts_suite / "rand" / "seeds.json")["seeds"]
    assert runs[0]["order"] == "reversed"
    assert runs[0]["exit_status"] == 1, out
    reversed_report = read(addopts_suite / "rand" / "reversed.json")
    assert reversed_report["summary"]["tests"] == 8, "the selection chose the reversed run's suite"
    ran = [t["nodeid"] for t in sorted(reversed_report["tests"], key=lambda t: t["start"])]
    assert ran[0] == POLLUTER
    assert ran[-1] == VICTIM
    data = read(addopts_suite / "o.json")
    (result,) = data["results"]
    assert (result["victim"], result["verdict"]) == (VICTIM, "polluted-by")
    assert result["tests"] == [POLLUTER]
    assert result["order_source"] == "reversed"
    assert result["dropped_args"] == ["tests/test_order.py", "-k", "not elsewhere"]
    command = shlex.split(result["command"])
    assert command[-2:] == [POLLUTER, VICTIM]
    assert "-n" in command, "the printed command switches xdist off as the probes did"
    done = subprocess.run(command, cwd=addopts_suite, capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed" in done.stdout

"""Real shards on two "machines" (two checkouts at different paths), combined: the same
node ids and the same coverage as one full run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testfleet.cli import program as cli

PYPROJECT = """
[tool.pytest.ini_options]
addopts = "--strict-markers"
markers = ["serial: alone", "xdist_group: xdist"]

[tool.coverage.run]
branch = true
parallel = true
source_pkgs = ["calc"]

[tool.coverage.paths]
# Each CI machine checks the project out somewhere else: map them onto this checkout.
source = ["src/calc", "*/machine-*/src/calc"]
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


def double(n):
    if n > 10:
        return n * 2
    return n + n


def never_called():
    return 1
"""

TESTS = """
import pytest
from calc import classify, double

@pytest.mark.parametrize("n, kind", [(-1, "negative"), (0, "zero"), (5, "positive")])
def test_classify(n, kind):
    assert classify(n) == kind

def test_huge():
    assert classify(5000) == "huge"

@pytest.mark.parametrize("n", range(6))
def test_double_small(n):
    assert double(n) == 2 * n

@pytest.mark.xdist_group("big")
def test_double_big():
    assert double(50) == 100

@pytest.mark.serial
def test_double_alone():
    assert double(11) == 22
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src" / "calc").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "src" / "calc" / "__init__.py").write_text(CALC)
    (root / "tests" / "test_calc.py").write_text(TESTS)
    return root


def run_under_coverage(checkout: Path, *pytest_args: str) -> None:
    # The outer run may itself be under coverage: its variables must not reach this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(checkout / "src")
    command = [sys.executable, "-m", "coverage", "run", "-m", "pytest", "-p", "no:randomly"]
    subprocess.run([*command, *pytest_args], cwd=checkout, env=env, check=True, capture_output=True)


def measured(data_files: list[Path], root: Path) -> dict[str, Any]:
    """Lines and arcs per file, named relative to the project's src directory."""
    import coverage

    result: dict[str, Any] = {}
    for data_file in data_files:
        data = coverage.CoverageData(basename=str(data_file))
        data.read()
        for name in data.measured_files():
            key = Path(name).as_posix().split("/src/")[-1].removeprefix("src/")
            lines = result.setdefault(key, [set(), set()])
            lines[0].update(data.lines(name) or [])
            lines[1].update(data.arcs(name) or [])
    return result


def test_combined_shards_equal_one_full_run_in_node_ids_and_coverage(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_under_coverage(project, "--testfleet-report", "full.json")
    full_ids = sorted(t["nodeid"] for t in json.loads((project / "full.json").read_text())["tests"])
    full_coverage = measured(sorted(project.glob(".coverage.*")), project)
    reports, data_files = [], []
    for index in (1, 2):
        machine = tmp_path / f"machine-{index}"
        shutil.copytree(project, machine, ignore=shutil.ignore_patterns(".coverage*", "*.json"))
        run_under_coverage(
            machine, "--testfleet-shard", f"{index}/2", "--testfleet-report", "shard.json"
        )
        reports.append(str(machine / "shard.json"))
        data_files += sorted(machine.glob(".coverage.*"))
    monkeypatch.chdir(project)
    combined = project / "combined.json"
    status = cli.main(
        [
            "combine",
            *reports,
            "--combined",
            str(combined),
            "--coverage",
            *map(str, data_files),
            "--coverage-file",
            str(project / "combined.cov"),
        ]
    )
    assert status == 0
    ids = [t["nodeid"] for t in json.loads(combined.read_text())["tests"]]
    assert ids == full_ids
    assert len(ids) == 12
    combined_coverage = measured([project / "combined.cov"], project)
    assert combined_coverage == full_coverage
    assert set(combined_coverage) == {"calc/__init__.py"}
    import coverage

    raw = coverage.CoverageData(basename=str(project / "combined.cov"))
    raw.read()
    # [paths] mapped both machines' checkouts onto one file of this one.
    assert raw.measured_files() == {str(project / "src" / "calc" / "__init__.py")}
    # Neither shard alone covers everything the full run does.
    for data_file in data_files:
        assert measured([data_file], project) != full_coverage


def test_shard_plan_prints_each_shards_tests_and_predicted_seconds(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("PYTHONPATH", str(project / "src"))
    assert cli.main(["shard", "--plan", "3", "--", "-p", "no:randomly"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "testfleet: 12 tests in 3 shards (no recorded durations)"
    counts = [int(line.split()[1]) for line in lines[2:5]]
    assert sum(counts) == 12
    assert max(counts) - min(counts) <= 1


def test_shard_plan_reports_a_suite_that_does_not_collect(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    (project / "tests" / "test_broken.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.setenv("PYTHONPATH", str(project / "src"))
    assert cli.main(["shard", "--plan", "2"]) == 2
    err = capsys.readouterr().err
    assert "collecting the suite failed (pytest exit status 2)" in err
    assert "not_a_module_anywhere" in err


def test_run_with_a_shard_runs_its_part_in_both_phases(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("PYTHONPATH", str(project / "src"))
    ran: list[str] = []
    for index in (1, 2):
        report = project / f"shard-{index}.json"
        status = cli.main(
            [
                "run",
                "--workers",
                "2",
                "--shard",
                f"{index}/2",
                "--report",
                str(report),
                "--",
                "-p",
                "no:randomly",
            ]
        )
        assert status == 0
        data = json.loads(report.read_text())
        assert sorted(t["nodeid"] for t in data["tests"]) == data["run"]["shard"]["assigned"]
        ran += data["run"]["shard"]["assigned"]
    assert len(ran) == len(set(ran)) == 12
    assert "tests/test_calc.py::test_double_alone" in ran


@pytest.mark.parametrize("value", ["0/2", "3/2", "a/b"])
def test_run_refuses_a_malformed_shard_saying_the_form(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--shard", value])
    assert exit_info.value.code == 2
    assert f"shard '{value}' is not of the form I/N" in capsys.readouterr().err


def test_a_shard_stopped_mid_run_keeps_its_finished_tests_and_lists_the_rest(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(project / "src")
    (project / "tests" / "test_calc.py").write_text(
        TESTS.replace("assert double(n) == 2 * n", "assert n != 2 and double(n) == 2 * n")
    )
    reports = []
    for index in (1, 2):
        report = project / f"shard-{index}.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:randomly",
                "-x",
                "--testfleet-shard",
                f"{index}/2",
                "--testfleet-report",
                str(report),
            ],
            cwd=project,
            env=env,
            capture_output=True,
            check=False,
        )
        reports.append(str(report))
    assert cli.main(["combine", *reports, "--combined", "combined.json"]) == 1
    combined = json.loads((project / "combined.json").read_text())
    missing = combined["run"]["combined"]["missing"]
    ran = [t["nodeid"] for t in combined["tests"]]
    assert missing
    assert not set(missing) & set(ran)
    assert len(missing) + len(ran) == 12
    assert "tests/test_calc.py::test_double_small[2]" in ran
    out = capsys.readouterr().out
    assert f"did not finish {len(missing)} test(s): {', '.join(missing)}" in out

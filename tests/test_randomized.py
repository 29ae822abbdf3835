"""`testfleet randomized`: the reversed run first, then the seeds, on suites as users write them."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testfleet.cli.program import main
from testfleet.runs import randomized

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


@pytest.mark.e2e
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


PLANTED = Path(__file__).parent / "material" / "order" / "planted"
#: Every order-dependent test of the planted suite, and what its diagnosis must say.
PLANTED_CLASSES = {
    "test_a_flags.py::test_flags_start_clear": (
        "polluted-by",
        ["test_z_flags.py::test_sets_a_flag"],
    ),
    "test_a_flags.py::test_counter_starts_at_zero": (
        "polluted-by",
        ["test_z_flags.py::test_counts"],
    ),
    "test_a_price.py::test_price_is_plain": (
        "polluted-by",
        ["test_y_region.py::test_set_region", "test_z_flags.py::test_set_currency"],
    ),
    "test_b_config.py::test_default_is_quiet": (
        "polluted-by",
        ["test_b_config.py::test_turns_verbose_on"],
    ),
    "test_d_login.py::test_alice_logs_in": (
        "depends-on",
        ["test_c_accounts.py::test_register_alice"],
    ),
}


def copy_planted(target: Path) -> Path:
    """The planted suite as a project: NAME.py.txt -> test_NAME.py, support and conftest kept."""
    for source in sorted(PLANTED.glob("*.py.txt")):
        stem = source.name.removesuffix(".py.txt")
        keep = stem.startswith("support_") or stem == "conftest"
        (target / (f"{stem}.py" if keep else f"test_{stem}.py")).write_text(source.read_text())
    return target


@pytest.mark.e2e
def test_randomized_gives_each_planted_defect_its_class_and_accuses_no_healthy_test(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str]
) -> None:
    copy_planted(pytester.path)
    # The collection order passes: only another order shows these defects.
    assert pytester.runpytest_subprocess("-p", "no:randomly").ret == pytest.ExitCode.OK
    args = ["randomized", "--seed", "11", "--report-dir", "rand", "--order-report", "o.json"]
    assert main([*args, "--max-victims", "10"]) == pytest.ExitCode.TESTS_FAILED
    capfd.readouterr()

    data = read(pytester.path / "o.json")
    (reversed_run, seed_run) = data["seeds"]
    assert sorted(reversed_run["failed"]) == sorted(PLANTED_CLASSES), "reversed finds them all"
    # The causes, whatever order the run that showed them had.
    found = {r["victim"]: (r["verdict"], sorted(r["tests"])) for r in data["results"]}
    assert found == PLANTED_CLASSES
    assert all(r["verified"] for r in data["results"])
    assert set(seed_run["failed"]) <= set(PLANTED_CLASSES)


def test_audit_flags_the_root_cause_of_each_planted_defect(tmp_path: Path) -> None:
    from testfleet.diagnose.audit import scan as audit

    copy_planted(tmp_path)
    result = audit.audit_paths([tmp_path], root=tmp_path)
    found = {(item.path, item.rule) for item in result.findings}
    assert found == {
        ("test_z_flags.py", "TF103"),  # state.FLAGS, state.COUNTER, state.SETTINGS
        ("test_y_region.py", "TF103"),  # SETTINGS["region"], imported by name
        ("test_c_accounts.py", "TF103"),  # REGISTRY.append
        ("conftest.py", "TF104"),  # Config(**DEFAULTS), module scope
    }
    assert len([i for i in result.findings if i.path == "test_z_flags.py"]) == 3


OTHER_WORKER_SUITE = """
import pytest

REGISTRY = {}


@pytest.mark.xdist_group("setup")
def test_registers_the_admin():
    REGISTRY["admin"] = "root"


@pytest.mark.xdist_group("login")
def test_finds_the_admin():
    assert REGISTRY.get("admin") == "root"
"""


@pytest.mark.e2e
def test_classify_and_bisect_work_on_a_suite_with_xdist_in_addopts(
    addopts_suite: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (addopts_suite / "tests" / "test_admin.py").write_text(OTHER_WORKER_SUITE)
    # The parallel run as the project runs it: addopts spread it over the workers.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--testfleet-report=run.json", "tests/test_admin.py"],
        cwd=addopts_suite, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout
    assert main(["classify", "run.json", "--runs", "1", "--json", "c.json"]) == 1
    out = capfd.readouterr().out
    data = read(addopts_suite / "c.json")
    (result,) = data["results"]
    assert (result["class"], result["needs_other_worker"]) == ("order-dependent", True)
    assert "it needs a test that ran on another worker" in out
    assert "tests/test_admin.py::test_registers_the_admin" not in out, "counts, not node ids"

    command = shlex.split(result["bisect"])
    assert main([*command[1:], "--json", "b.json"]) == 1
    (found,) = read(addopts_suite / "b.json")["results"]
    assert (found["verdict"], found["tests"]) == (
        "depends-on",
        ["tests/test_admin.py::test_registers_the_admin"],
    )


@pytest.mark.e2e
def test_the_order_section_goes_to_the_summary_and_the_step_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "step.md"))
    args = ["randomized", "--seed", "3", "--report-dir", "rand", "--json", "o.json"]
    assert main([*args, "--summary", "ci.md", "--step-summary"]) == pytest.ExitCode.OK
    section = (pytester.path / "o.md").read_text()
    assert section.startswith("## Order dependence\n\nRuns: reversed (exit 0), seed 3 (exit 0)")
    assert (pytester.path / "ci.md").read_text() == section
    assert (pytester.path / "step.md").read_text() == section

"""The one builder of testfleet's pytest command lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testfleet.runs import commands

STRICT_PROJECT = """
[tool.pytest.ini_options]
addopts = "-n 2 --strict-markers -p no:randomly"
"""

GROUPED_SUITE = """
import os
import pytest

@pytest.mark.xdist_group("db")
def test_grouped():
    assert "PYTEST_XDIST_WORKER" not in os.environ

def test_plain():
    assert "PYTEST_XDIST_WORKER" not in os.environ
"""


def test_one_process_keeps_addopts_n_and_xdist_group_working_under_strict_markers(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml(STRICT_PROJECT)
    pytester.makepyfile(test_grouped=GROUPED_SUITE)
    command = commands.pytest_command([*commands.one_process(), "-q"])
    done = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_the_other_way_of_switching_xdist_off_breaks_such_a_project(
    pytester: pytest.Pytester,
) -> None:
    # Why one_process() says -n 0: this is what it avoids.
    pytester.makepyprojecttoml(STRICT_PROJECT)
    pytester.makepyfile(test_grouped=GROUPED_SUITE)
    command = commands.pytest_command(["-p", "no:xdist", "-q"])
    done = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, check=False)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR


def test_a_phase_puts_the_users_arguments_last_so_they_can_override() -> None:
    command = commands.run_phase(
        ["-k", "fast"], workers=3, dist="worksteal", report=Path("r.json"), serial="defer"
    )
    assert command[:3] == [sys.executable, "-m", "pytest"]
    assert command[3:] == [
        "-n", "3", "--dist", "worksteal", "--testfleet-serial=defer",
        "--testfleet-report=r.json", "-k", "fast",
    ]  # fmt: skip
    single = commands.run_phase([], workers=1, dist="load", report=Path("r.json"))
    assert single[3:] == ["-n", "0", "--testfleet-report=r.json"]


def test_an_unknown_dist_mode_names_the_choices() -> None:
    with pytest.raises(ValueError, match="'fast' is not a scheduling mode: use testfleet "):
        commands.check_dist("fast")
    assert commands.check_dist("worksteal") == "worksteal"


def test_the_exit_statuses_are_pytests_own() -> None:
    ours = {code.name: int(code) for code in commands.ExitCode}
    assert ours == {name: int(pytest.ExitCode[name]) for name in ours}
    assert len(ours) == 6


def test_the_command_line_starts_without_importing_pytest() -> None:
    # Every `testfleet run` and `testfleet report` pays for what its own process imports
    # before the first pytest starts; pytest is a quarter of a second of it.
    # Every command's parser is built and the options that are checked while parsing
    # (a shard, a worker count, a dist) are parsed.
    script = (
        "import sys, testfleet.cli.program as cli, testfleet.diagnose.bisect, "
        "testfleet.diagnose.classify; "
        "cli.build_parser().parse_args(['run', '--shard', '1/2', '--workers', 'auto', "
        "'--dist', 'load']); "
        "print(sorted(m for m in sys.modules if m == 'pytest' or m.startswith('_pytest')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

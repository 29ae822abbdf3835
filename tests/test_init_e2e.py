"""`testfleet init`, then the user's commands, in sample projects of contrasting layouts.

Slow: nox creates each session's environment and pip installs into it (testfleet from
a wheel of this checkout, built once, and its dependencies from the package index).
Nothing that init wrote is edited between init and the runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from init_samples import LOCKED_SIX, lock_sample, make_sample, snapshot

pytestmark = pytest.mark.e2e

# What the outer run (invoke ci, nox) may have set, which the sample's runs must not see.
OUTER = ("TESTFLEET_", "PYTEST_", "COVERAGE_", "NOX", "GITHUB_STEP_SUMMARY", "VIRTUAL_ENV")


def environment(wheel: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(OUTER)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TESTFLEET_REQUIREMENT"] = str(wheel)
    env["PYTEST_WORKERS"] = "2"
    env["TESTFLEET_SEEDS"] = "2"
    return env


def run(
    root: Path, env: dict[str, str], *command: str, status: int = 0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(command), cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    said = f"{command}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == status, said
    return result


def outcomes(report: Path) -> dict[str, str]:
    data = json.loads(report.read_text())
    return {test["nodeid"]: test["outcome"] for test in data["tests"]}


def passes_with_the_locked_six(root: Path, env: dict[str, str], tests: int) -> None:
    """`nox -s tests_parallel` and `invoke ci` pass with the lock's six; init's files unchanged.

    pyproject.toml allows six>=1.15: a fresh resolution takes the newest, the lock 1.16.0.
    """
    written = snapshot(root)
    run(root, env, "nox", "-s", "tests_parallel")
    assert list(outcomes(root / "reports" / "test-timing.json").values()) == ["passed"] * tests
    python = root / ".nox" / "tests_parallel" / "bin" / "python"
    versions = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version as v; print(v('six'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert versions.stdout.strip() == LOCKED_SIX
    run(root, env, "invoke", "ci")
    summary = (root / "reports" / "ci-summary.md").read_text()
    assert f"{tests} tests: {tests} passed" in summary, summary
    after = snapshot(root)
    assert [name for name, data in written.items() if after.get(name) != data] == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # Flat package that is not installed, requirements files, test/.
        ("flat-requirements", 5),
        # src layout, hatchling, tests/, `-n auto` and xdist_group under --strict-markers.
        ("src-hatchling", 7),
    ],
)
def test_the_users_commands_pass_in_a_project_init_set_up(
    tmp_path: Path, wheel: Path, key: str, expected: int
) -> None:
    make_sample(tmp_path, key)
    env = environment(wheel)
    run(tmp_path, env, sys.executable, "-m", "testfleet", "init")
    written = snapshot(tmp_path)

    run(tmp_path, env, "nox", "-s", "tests_parallel")
    report = tmp_path / "reports" / "test-timing.json"
    assert set(outcomes(report).values()) == {"passed"}
    assert len(outcomes(report)) == expected

    randomized = run(tmp_path, env, "nox", "-s", "randomized")
    assert "seed" in randomized.stdout + randomized.stderr
    assert len(list((tmp_path / "reports" / "randomized").glob("*.json"))) >= 2

    run(tmp_path, env, "invoke", "baseline")
    assert len(outcomes(tmp_path / "reports" / "test-timing-baseline.json")) == expected
    run(tmp_path, env, "invoke", "ci")
    summary = (tmp_path / "reports" / "ci-summary.md").read_text()
    assert f"{expected} tests: {expected} passed" in summary, summary
    assert "baseline: serial on 1 worker(s)" in summary, summary
    assert "Against the baseline" in summary, summary

    after = snapshot(tmp_path)
    changed = [name for name, data in written.items() if after.get(name) != data]
    assert changed == []


@pytest.mark.e2e
def test_a_uv_workspace_gets_its_locked_versions_and_every_member_the_tests_import(
    tmp_path: Path, wheel: Path
) -> None:
    make_sample(tmp_path, "uv-workspace")
    lock_sample(tmp_path, str(Path(sys.executable).parent / "uv"))
    # A Python this machine lacks: init takes the running one, and uv must not go to
    # download the named one (from GitHub, out of reach) to check the lock.
    (tmp_path / ".python-version").write_text("3.99\n", encoding="utf-8")
    env = environment(wheel)
    said = run(tmp_path, env, sys.executable, "-m", "testfleet", "init").stdout.splitlines()[0]
    assert "workspace members etl-core, etl-load (the tests import etl-core, etl-load)" in said
    assert "installed by uv from uv.lock" in said
    assert "Neo4j yes (testcontainers[neo4j] in the dependencies" in said
    # test_members imports etl-load, which the root does not depend on: all 6 pass.
    passes_with_the_locked_six(tmp_path, env, 6)

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"six>=1.15"', '"six>=1.15", "idna"'))
    stale = run(tmp_path, env, "nox", "-s", "tests_parallel", status=2)
    assert stale.stderr.splitlines()[-1] == (
        "testfleet: uv.lock does not match pyproject.toml: run `uv lock`, commit uv.lock, "
        "then run the session again"
    )


@pytest.mark.lock_tools
@pytest.mark.parametrize(("key", "tool"), [("poetry-lock", "poetry"), ("pdm-lock", "pdm")])
def test_a_poetry_or_pdm_project_gets_its_locked_versions_from_its_own_tool(
    tmp_path: Path, wheel: Path, key: str, tool: str
) -> None:
    env = environment(wheel)
    found = shutil.which(tool, path=env["PATH"])
    if found is None:
        pytest.skip(f"{tool} is not on PATH: .ci/run installs it (the lock_tools marker)")
    make_sample(tmp_path, key)
    lock_sample(tmp_path, found)
    said = run(tmp_path, env, sys.executable, "-m", "testfleet", "init").stdout.splitlines()[0]
    assert f"installed by {tool} from {tool}.lock" in said
    passes_with_the_locked_six(tmp_path, env, 5)

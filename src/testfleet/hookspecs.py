"""Hooks that testfleet adds to pytest; implement them in a conftest.py or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from testfleet.isolation.services import Service


@pytest.hookspec
def pytest_testfleet_services(config: pytest.Config) -> list[Service] | None:
    """Return the services to start once for this run, or None; all results are concatenated.

    Called once, in the xdist controller or the single process of a serial run, at
    the start of the session, so only in a conftest.py that pytest loads at startup
    (the rootdir's or the test directory's) or in a plugin. Names must be unique.
    """

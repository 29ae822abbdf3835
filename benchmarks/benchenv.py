"""The environment the benchmarks run pytest in: the caller's, less what steers pytest."""

from __future__ import annotations

import os

# Variables that change what an inner pytest run does; the outer shell may set them.
OUTER_VARIABLES = (
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "PYTEST_WORKERS",
    "PYTEST_XDIST_AUTO_NUM_WORKERS",
)


def clean_env() -> dict[str, str]:
    """The current environment without the variables that would steer the inner runs."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in OUTER_VARIABLES and not key.startswith("TESTFLEET_")
    }

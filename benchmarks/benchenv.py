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
    # Set on some CI images and sandboxes: no .pyc files are written, so every process
    # compiles an editable install's modules again (tens of ms each) while the packages pip
    # installed kept theirs. A user's installed testfleet has its bytecode: the warm-up
    # runs write it here too.
    "PYTHONDONTWRITEBYTECODE",
)


def clean_env() -> dict[str, str]:
    """The current environment without the variables that would steer the inner runs."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in OUTER_VARIABLES and not key.startswith("TESTFLEET_")
    }

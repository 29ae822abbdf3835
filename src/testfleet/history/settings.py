"""The history's settings, read through ``[tool.testfleet]`` (testfleet.settings.config).

``history``, ``history_path`` and ``history_keep_runs`` are declared in
``testfleet.settings.table``; precedence: option > environment > pyproject.toml > default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from testfleet.settings import config

ENABLED_ENV = "TESTFLEET_HISTORY"
PATH_ENV = "TESTFLEET_HISTORY_PATH"


def enabled(option: bool | None, root: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `testfleet run` records its run (``history = false`` turns it off)."""
    return bool(config.load(root, environ).get("history", option))


def history_path(option: Path | None, root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where the history file is (``history_path``, default reports/history.sqlite)."""
    return Path(config.load(root, environ).get("history_path", option))


def keep_runs(root: Path, environ: Mapping[str, str] | None = None) -> int:
    """How many runs keep their per-test results (``history_keep_runs``)."""
    return int(config.load(root, environ).get("history_keep_runs"))

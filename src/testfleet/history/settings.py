"""The history's settings: command line > environment > ``[tool.testfleet]`` > default."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from testfleet.history.store import DEFAULT_PATH

ENABLED_ENV = "TESTFLEET_HISTORY"
PATH_ENV = "TESTFLEET_HISTORY_PATH"
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def _table(root: Path) -> Mapping[str, Any]:
    path = root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    table = data.get("tool", {}).get("testfleet", {})
    return table if isinstance(table, dict) else {}


def _flag(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{where}={text!r}: use true or false")


def enabled(option: bool | None, root: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `testfleet run` records its run (``history = false`` turns it off)."""
    if option is not None:
        return option
    env = os.environ if environ is None else environ
    if env.get(ENABLED_ENV, "").strip():
        return _flag(env[ENABLED_ENV], ENABLED_ENV)
    value = _table(root).get("history", True)
    if not isinstance(value, bool):
        raise ValueError(f"[tool.testfleet] history = {value!r}: use true or false")
    return value


def history_path(option: Path | None, root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where the history file is (``history_path``, default reports/history.sqlite)."""
    if option is not None:
        return option
    env = os.environ if environ is None else environ
    if env.get(PATH_ENV, "").strip():
        return Path(env[PATH_ENV].strip())
    value = _table(root).get("history_path")
    if value is None:
        return DEFAULT_PATH
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"[tool.testfleet] history_path = {value!r}: give a file path")
    return Path(value)

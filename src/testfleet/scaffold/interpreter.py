"""The Python the test sessions use, and why: ``.python-version`` where the machine has it.

Without a ``.python-version`` (or when it names a Python this machine lacks) the choice
is the running Python when ``requires-python`` allows it, else the oldest one it allows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

# Pythons init can write a session for, oldest first; the running one is preferred.
KNOWN_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
VERSION = re.compile(r"(?<![\d.])(3\.\d+)")


@dataclass(frozen=True)
class Choice:
    """A Python version (``3.12``) and the reason, as the detection line says it."""

    version: str
    reason: str


def running() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def choose_python(pyproject: dict[str, Any] | None) -> str:
    """The running Python when requires-python allows it, else the oldest one that it allows."""
    return from_requires_python(pyproject).version


def from_requires_python(pyproject: dict[str, Any] | None) -> Choice:
    here = running()
    spec_text = str((pyproject or {}).get("project", {}).get("requires-python", "")).strip()
    if not spec_text:
        return Choice(here, "the running one")
    try:
        spec = SpecifierSet(spec_text)
    except InvalidSpecifier:
        return Choice(here, "the running one; requires-python does not parse")
    allowed = [version for version in KNOWN_PYTHONS if spec.contains(f"{version}.99")]
    if here in allowed or not allowed:
        return Choice(here, f"the running one, which requires-python {spec_text} allows")
    return Choice(allowed[0], f"the oldest that requires-python {spec_text} allows")


def pinned(root: Path) -> str | None:
    """The X.Y that ``.python-version`` names (``3.12``, ``3.12.4``, ``cpython-3.12``)."""
    try:
        text = (root / ".python-version").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        found = VERSION.search(line.split("#", 1)[0])
        if found:
            return found.group(1)
    return None


def installed(version: str) -> bool:
    """Whether ``pythonX.Y`` runs here (a pyenv shim for a version not selected does not)."""
    if version == running():
        return True
    path = shutil.which(f"python{version}")
    if path is None:
        return False
    try:
        probe = subprocess.run([path, "-c", ""], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def choose(
    root: Path, pyproject: dict[str, Any] | None, available: Callable[[str], bool] = installed
) -> Choice:
    """``.python-version``'s Python when this machine has it, else today's choice."""
    usual = from_requires_python(pyproject)
    named = pinned(root)
    if named is None:
        return usual
    if available(named):
        return Choice(named, "named in .python-version")
    return Choice(
        usual.version, f"{usual.reason}; .python-version names {named}, not found on this machine"
    )

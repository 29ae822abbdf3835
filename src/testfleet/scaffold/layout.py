"""Where a project's import packages are: ``src/NAME`` or ``NAME`` at the root.

Apart from detect.py because workspace members (members.py) are read the same way.
"""

from __future__ import annotations

from pathlib import Path

NOT_PACKAGES = frozenset(
    {"tests", "test", "testing", "docs", "doc", "examples", "scripts", "benchmarks", "build"}
)


def _is_package(path: Path) -> bool:
    return path.is_dir() and (path / "__init__.py").is_file()


def find_packages(root: Path) -> tuple[str, list[str]]:
    """The layout and its top-level import packages (tests and docs are not packages)."""
    src = root / "src"
    if src.is_dir():
        found = sorted(p.name for p in src.iterdir() if _is_package(p))
        if found:
            return "src", found
    found = sorted(
        p.name
        for p in root.iterdir()
        if _is_package(p) and p.name not in NOT_PACKAGES and not p.name.startswith(".")
    )
    return ("flat", found) if found else ("none", [])

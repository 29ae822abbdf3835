"""The packages of a uv workspace beside the root one, and which of them the tests import.

A workspace (``[tool.uv.workspace] members``) or path sources (``[tool.uv.sources]`` with
``path``) put several packages in one checkout; tests often import members the root
package does not depend on, so installing the root alone leaves them out. uv installs
every member from the lock (``uv sync --all-packages``, testfleet.runs.install); init
names them and says which ones the tests import.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.scaffold.layout import find_packages

SKIPPED = frozenset({".git", ".venv", "venv", ".nox", ".tox", "node_modules"})


@dataclass(frozen=True)
class Member:
    """One package of the workspace other than the root."""

    name: str
    path: str  # relative to the root, with /
    modules: tuple[str, ...]  # its top-level import packages
    dependencies: tuple[str, ...]  # requirement lines of [project] dependencies


def _member_dirs(root: Path, uv: dict[str, Any]) -> list[Path]:
    workspace = uv.get("workspace", {})
    excluded = {
        path.resolve() for pattern in workspace.get("exclude", []) for path in root.glob(pattern)
    }
    found = [path for pattern in workspace.get("members", []) for path in root.glob(pattern)]
    for source in uv.get("sources", {}).values():
        entries = source if isinstance(source, list) else [source]
        found += [root / str(e["path"]) for e in entries if isinstance(e, dict) and "path" in e]
    unique: dict[Path, Path] = {}
    for path in found:
        resolved = path.resolve()
        if resolved != root.resolve() and resolved not in excluded and resolved not in unique:
            unique[resolved] = path
    return sorted(path for path in unique.values() if (path / "pyproject.toml").is_file())


def find_members(root: Path, pyproject: dict[str, Any] | None) -> list[Member]:
    """The workspace members and path sources of the project at ``root``, by path."""
    uv = (pyproject or {}).get("tool", {}).get("uv", {})
    members = []
    for directory in _member_dirs(root, uv):
        try:
            with (directory / "pyproject.toml").open("rb") as handle:
                data = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError):
            # uv itself reports a broken member; init only reads what it can.
            continue
        project = data.get("project", {})
        members.append(
            Member(
                name=str(project.get("name", directory.name)),
                path=directory.relative_to(root).as_posix(),
                modules=tuple(find_packages(directory)[1]),
                dependencies=tuple(str(item) for item in project.get("dependencies", [])),
            )
        )
    return members


def _top_level_imports(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def imported_by_tests(root: Path, test_dirs: list[str], members: list[Member]) -> list[str]:
    """The names of the members whose packages the tests (and their conftest files) import."""
    if not members:
        return []
    imported: set[str] = set()
    for name in test_dirs:
        for path in (root / name).rglob("*.py"):
            if not SKIPPED & set(path.relative_to(root).parts):
                imported |= _top_level_imports(path)
    return [member.name for member in members if imported & set(member.modules)]

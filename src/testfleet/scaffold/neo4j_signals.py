"""Whether a project uses Neo4j, and what says so.

The driver in the dependencies is the plain sign, but projects show it in other ways: the
driver only in a workspace member, a server started by ``testcontainers[neo4j]``, tests
marked ``neo4j`` or ``requires_neo4j``, a Neo4j service in the project's compose file, or
``NEO4J_URI`` in ``.env.example``. Each found sign is named in init's detection line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# Names of the Neo4j driver on the package index (the old name first went by `neo4j-driver`).
NEO4J_DRIVERS = frozenset({"neo4j", "neo4j-driver"})
COMPOSE_FILES = ("compose.y*ml", "docker-compose*.y*ml")
# An image reference whose last path part is neo4j: neo4j:5, docker.io/library/neo4j@sha...
NEO4J_IMAGE = re.compile(r"^\s*image:\s*[\"']?(?:\S+/)?neo4j(?:[:@\"'\s]|$)", re.MULTILINE)
NEO4J_URI = re.compile(r"^\s*(?:export\s+)?NEO4J_URI\s*=", re.MULTILINE)


def _parsed(lines: Iterable[str]) -> list[Requirement]:
    found = []
    for line in lines:
        try:
            found.append(Requirement(line))
        except InvalidRequirement:
            continue
    return found


def from_requirements(lines: Iterable[str], where: str) -> list[str]:
    """The signs in requirement lines: the driver, or testcontainers with its neo4j extra."""
    signs = []
    for requirement in _parsed(lines):
        name = canonicalize_name(requirement.name)
        if name in NEO4J_DRIVERS:
            signs.append(f"the {name} driver in {where}")
        elif name == "testcontainers" and "neo4j" in requirement.extras:
            signs.append(f"testcontainers[neo4j] in {where}")
    return list(dict.fromkeys(signs))


def marker_names(root: Path, pyproject: dict[str, Any] | None) -> list[str]:
    """The markers registered in pytest's configuration (pyproject.toml or an ini file)."""
    table = (pyproject or {}).get("tool", {}).get("pytest", {})
    entries: list[str] = []
    for options in (table.get("ini_options", {}), table):
        markers = options.get("markers", [])
        entries += markers.splitlines() if isinstance(markers, str) else list(markers)
    for name in ("pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg"):
        path = root / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            block = re.search(r"^markers\s*=\s*\n?((?:[ \t]+.*\n?)+)", text, re.MULTILINE)
            entries += block.group(1).splitlines() if block else []
    return [entry.split(":")[0].split("(")[0].strip() for entry in entries if entry.strip()]


def from_files(root: Path, pyproject: dict[str, Any] | None) -> list[str]:
    """The signs outside the dependencies: markers, a compose service, .env.example."""
    signs = [
        f"a {name} marker" for name in marker_names(root, pyproject) if "neo4j" in name.lower()
    ]
    for pattern in COMPOSE_FILES:
        for path in sorted(root.glob(pattern)):
            if NEO4J_IMAGE.search(path.read_text(encoding="utf-8", errors="replace")):
                signs.append(f"a Neo4j image in {path.name}")
    example = root / ".env.example"
    if example.is_file() and NEO4J_URI.search(example.read_text("utf-8", errors="replace")):
        signs.append("NEO4J_URI in .env.example")
    return signs

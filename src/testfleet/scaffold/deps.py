"""The requirements a project's test image installs before its code is copied.

The Dockerfile that ``testfleet init`` writes runs ``python -m testfleet.scaffold.deps
DIR`` in its dependency stage, where DIR holds only the project's manifests
(pyproject.toml, requirements files). It prints one requirement a line: the build
system, the runtime dependencies, the test extras and dependency groups that
``[tool.testfleet]`` names (extras that name the project itself expanded), the
requirement files it names, and what the test sessions run with. Changing the code
therefore never reinstalls the dependencies. An image whose lock's tool installs the
dependencies (testfleet.scaffold.lockimage) asks for the session tools alone
(``--session-tools``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from testfleet.scaffold.detect import read_requirement_file
from testfleet.settings import config

# What the nox sessions and invoke tasks need beside testfleet and the project.
SESSION_TOOLS = ("nox>=2024.10.9", "invoke>=2.2", "coverage[toml]>=7.10", "pytest-randomly>=3.15")
DEFAULT_BUILD = ("setuptools>=69", "wheel")
CARET = re.compile(r"^\^(\d+)(?:\.(\d+))?(?:\.(\d+))?")
TILDE = re.compile(r"^~(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def _caret(match: re.Match[str]) -> str:
    parts = [int(item) if item is not None else None for item in match.groups()]
    major, minor, patch = int(match.group(1)), parts[1], parts[2]
    low = ".".join(str(p) for p in parts if p is not None)
    if major != 0 or minor is None:
        upper = f"{major + 1}"
    elif minor != 0 or patch is None:
        upper = f"0.{minor + 1}"
    else:
        upper = f"0.0.{patch + 1}"
    return f">={low},<{upper}"


def _tilde(match: re.Match[str]) -> str:
    major, minor, patch = match.groups()
    low = ".".join(item for item in (major, minor, patch) if item is not None)
    upper = f"{int(major) + 1}" if minor is None else f"{major}.{int(minor) + 1}"
    return f">={low},<{upper}"


def poetry_constraint(text: str) -> str:
    """A Poetry version constraint as a PEP 440 specifier (``^1.2`` -> ``>=1.2,<2``)."""
    pieces = []
    for raw in text.split(","):
        piece = raw.strip()
        if piece in ("", "*"):
            continue
        caret = CARET.match(piece)
        tilde = TILDE.match(piece)
        if caret:
            pieces.append(_caret(caret))
        elif tilde:
            pieces.append(_tilde(tilde))
        elif piece[0].isdigit():
            pieces.append(f"=={piece}")
        else:
            pieces.append(piece.replace(" ", ""))
    return ",".join(pieces)


def poetry_requirement(name: str, spec: Any) -> str | None:
    """One ``[tool.poetry.dependencies]`` entry as a requirement; None for python, paths, git."""
    if canonicalize_name(name) == "python":
        return None
    entries = spec if isinstance(spec, list) else [spec]
    for entry in entries:
        if isinstance(entry, str):
            return name + poetry_constraint(entry)
        if isinstance(entry, dict):
            if any(key in entry for key in ("path", "git", "url", "file")):
                return None
            extras = f"[{','.join(entry['extras'])}]" if entry.get("extras") else ""
            markers = []
            if entry.get("python"):
                markers.append(f"python_version {_python_marker(str(entry['python']))}")
            if entry.get("markers"):
                markers.append(f"({entry['markers']})")
            suffix = f"; {' and '.join(markers)}" if markers else ""
            return f"{name}{extras}{poetry_constraint(str(entry.get('version', '*')))}{suffix}"
    return None


def _python_marker(constraint: str) -> str:
    converted = poetry_constraint(constraint).split(",")[0]
    operator = re.match(r"[<>=!~]+", converted)
    if operator is None:
        return f'>= "{converted}"'
    return f'{operator.group(0)} "{converted[operator.end() :]}"'


def _expand_extra(project: dict[str, Any], extra: str, seen: set[str]) -> list[str]:
    """An extra's requirements, with ``name[other]`` (the project itself) expanded."""
    if extra in seen:
        return []
    seen.add(extra)
    own = canonicalize_name(str(project.get("name", "")))
    found = []
    for item in project.get("optional-dependencies", {}).get(extra, []):
        match = re.match(r"^\s*([A-Za-z0-9._-]+)\s*\[([^\]]*)\]\s*$", item)
        if match and own and canonicalize_name(match.group(1)) == own:
            for other in match.group(2).split(","):
                found += _expand_extra(project, other.strip(), seen)
        else:
            found.append(item)
    return found


def _expand_group(groups: dict[str, Any], name: str, seen: set[str]) -> list[str]:
    if name in seen:
        return []
    seen.add(name)
    found: list[str] = []
    for item in groups.get(name, []):
        if isinstance(item, dict) and "include-group" in item:
            found += _expand_group(groups, str(item["include-group"]), seen)
        elif isinstance(item, str):
            found.append(item)
    return found


def _poetry(data: dict[str, Any], extras: list[str]) -> list[str]:
    poetry = data.get("tool", {}).get("poetry", {})
    wanted = {canonicalize_name(n) for e in extras for n in poetry.get("extras", {}).get(e, [])}
    found = []
    for name, spec in poetry.get("dependencies", {}).items():
        optional = isinstance(spec, dict) and spec.get("optional")
        if optional and canonicalize_name(name) not in wanted:
            continue
        requirement = poetry_requirement(name, spec)
        if requirement:
            found.append(requirement)
    return found


def project_requirements(directory: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """What the project's pyproject.toml and requirement files ask for, in order, once each.

    Which extras, groups and files count is read as every testfleet setting is (the
    environment, then ``[tool.testfleet]``), so the image installs what the sessions do.
    """
    path = directory / "pyproject.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    settings = config.load(directory, environ={} if environ is None else environ)
    project = data.get("project", {})
    extras = list(settings.get("extras"))
    found: list[str] = []
    if settings.get("install_project"):
        build = data.get("build-system", {})
        found += build.get("requires", list(DEFAULT_BUILD))
        if "hatchling" in str(build.get("build-backend", "")) and settings.get("editable"):
            # What hatchling asks for an editable install, which the image makes without
            # build isolation (the build system comes from this list).
            found.append("editables")
    found += project.get("dependencies", [])
    for extra in extras:
        found += _expand_extra(project, extra, set())
    groups = data.get("dependency-groups", {})
    for group in settings.get("dependency_groups"):
        found += _expand_group(groups, group, set())
    found += _poetry(data, extras)
    for name in settings.get("requirements"):
        found += read_requirement_file(directory / name)
    found += SESSION_TOOLS
    return list(dict.fromkeys(found))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testfleet.scaffold.deps",
        description="Print the requirements a project's test image needs, one a line.",
    )
    parser.add_argument("directory", type=Path, nargs="?", help="the directory with pyproject.toml")
    parser.add_argument(
        "--session-tools",
        action="store_true",
        help="print only what the sessions run with (an image whose lock's tool installs the rest)",
    )
    args = parser.parse_args(argv)
    if args.session_tools:
        sys.stdout.write("".join(line + "\n" for line in SESSION_TOOLS))
        return 0
    if args.directory is None:
        parser.error("the directory with pyproject.toml is required")
    try:
        lines = project_requirements(args.directory, os.environ)
    except (OSError, tomllib.TOMLDecodeError, config.ConfigError) as exc:
        print(f"testfleet: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

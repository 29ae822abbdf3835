"""What a project is made of: its layout, packaging, test dependencies and test directories.

Everything here reads files and never writes; :func:`detect` raises :class:`InitError`
for input that init cannot work from (a malformed pyproject.toml, no tests at all).
"""

from __future__ import annotations

import configparser
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from testfleet.runs import install as lockfile
from testfleet.scaffold import interpreter, neo4j_signals
from testfleet.scaffold.interpreter import choose_python
from testfleet.scaffold.layout import NOT_PACKAGES, find_packages
from testfleet.scaffold.members import Member, find_members, imported_by_tests

__all__ = ["NOT_PACKAGES", "InitError", "Project", "choose_python", "detect", "find_packages"]

# Preferred first: `dev` often carries linters and task runners the tests do not need.
TEST_EXTRA_NAMES = ("test", "tests", "testing", "dev")
# A `dev` extra or group counts as the tests' only when it holds one of these: many hold
# build, release and lint tools alone (pytest-* plugins count too).
TEST_TOOLS = frozenset({"pytest", "hypothesis", "coverage", "mock", "freezegun"})
SKIPPED_DIRS = frozenset({".git", ".venv", "venv", ".nox", ".tox", "node_modules", "build", "dist"})


class InitError(Exception):
    """Input init cannot work from; the message says what to do. Exit status 2."""


@dataclass
class Project:
    """The facts init writes files from."""

    root: Path
    name: str
    pyproject: dict[str, Any] | None
    backend: str  # setuptools, hatchling, poetry, uv, flit, pdm, other, none
    layout: str  # src, flat, none
    packages: list[str]
    test_dirs: list[str]
    install_project: bool
    extras: list[str]
    dependency_groups: list[str]
    requirements: list[str]
    python: str
    uses_neo4j: bool
    poetry_groups: list[str] = field(default_factory=list)
    #: Why ``python`` was chosen, as the detection line says it.
    python_reason: str = ""
    #: uv, pip, poetry or pdm: what the sessions install with (testfleet.runs.install).
    installer: str = lockfile.PIP
    #: Workspace members and path sources; those the tests import, by name.
    members: list[Member] = field(default_factory=list)
    tested_members: list[str] = field(default_factory=list)
    #: What says the project uses Neo4j; empty: it does not.
    neo4j_signs: list[str] = field(default_factory=list)
    coverage_file: str | None = None
    # pytest imports every module it finds (--doctest-modules, no testpaths): the
    # noxfile and tasks.py too, unless the project tells it not to.
    collects_root_modules: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def source_dirs(self) -> list[str]:
        """Where the packages' code is, relative to the root."""
        prefix = "src/" if self.layout == "src" else ""
        return [prefix + name for name in self.packages]


def load_pyproject(path: Path) -> dict[str, Any] | None:
    """The parsed pyproject.toml, None when there is none; malformed: line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InitError(f"{path} cannot be read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)".
        raise InitError(f"{path} is not valid TOML: {exc}; fix it, then run init again") from None


def backend_of(pyproject: dict[str, Any] | None, root: Path) -> str:
    """The build backend by its usual name, ``uv`` for a uv project without one."""
    if pyproject is None:
        return "setuptools" if (root / "setup.py").exists() else "none"
    build = str(pyproject.get("build-system", {}).get("build-backend", ""))
    for name in ("hatchling", "poetry", "setuptools", "flit", "pdm", "maturin", "uv_build"):
        if name in build:
            return "uv" if name == "uv_build" else name
    tool = pyproject.get("tool", {})
    if "poetry" in tool:
        return "poetry"
    if "uv" in tool or "dependency-groups" in pyproject:
        return "uv"
    if build:
        return "other"
    if "project" in pyproject or (root / "setup.py").exists() or (root / "setup.cfg").exists():
        # PEP 517's fallback for a pyproject.toml without [build-system].
        return "setuptools"
    return "none"


def _has_test_files(directory: Path) -> bool:
    for path in directory.rglob("*.py"):
        parts = path.relative_to(directory).parts
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in parts[:-1]):
            continue
        if path.name.startswith("test_") or path.name.endswith("_test.py"):
            return True
    return False


def configured_testpaths(root: Path, pyproject: dict[str, Any] | None) -> list[str]:
    """pytest's ``testpaths``, from the first config file that pytest itself would read."""
    for name in ("pytest.ini", ".pytest.ini"):
        found = _ini_testpaths(root / name, "pytest")
        if found is not None:
            return found
    table = (pyproject or {}).get("tool", {}).get("pytest", {})
    # pytest 9 reads [tool.pytest] itself; older ones [tool.pytest.ini_options].
    for options in (table.get("ini_options", {}), table):
        configured = options.get("testpaths")
        if configured:
            return configured.split() if isinstance(configured, str) else list(configured)
    for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        found = _ini_testpaths(root / name, section)
        if found is not None:
            return found
    return []


def _ini_testpaths(path: Path, section: str) -> list[str] | None:
    """``testpaths`` of an ini file's section; None when the file has no such section."""
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InitError(f"{path} cannot be read: {exc}") from None
    if not parser.has_section(section):
        return None
    return parser.get(section, "testpaths", fallback="").split()


def collects_root_modules(root: Path, pyproject: dict[str, Any] | None) -> bool:
    """Whether pytest's configuration imports every module from the root (--doctest-modules)."""
    if configured_testpaths(root, pyproject):
        return False
    texts = [str((pyproject or {}).get("tool", {}).get("pytest", {}))]
    for name in ("pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg"):
        path = root / name
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return any("--doctest-modules" in text for text in texts)


def find_test_dirs(root: Path, pyproject: dict[str, Any] | None, sources: list[str]) -> list[str]:
    """Directories that hold tests: pytest's testpaths, else tests/, test/, or the packages."""
    configured = configured_testpaths(root, pyproject)
    candidates = [item.rstrip("/") for item in configured] or ["tests", "test"]
    found = [name for name in candidates if (root / name).is_dir() and _has_test_files(root / name)]
    for source in [] if found else sources:
        inner = [f"{source}/{name}" for name in ("tests", "test")]
        for candidate in [*inner, source]:
            if (root / candidate).is_dir() and _has_test_files(root / candidate):
                found.append(candidate)
                break
    return found


def _requirement_names(lines: list[str]) -> set[str]:
    names: set[str] = set()
    for line in lines:
        try:
            names.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue
    return names


def read_requirement_file(path: Path) -> list[str]:
    """The requirement lines of a pip requirements file (options and includes left out)."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def find_requirement_files(root: Path) -> list[str]:
    """requirements*.txt at the root and in requirements/, test files first."""
    found = [p for p in root.glob("requirements*.txt") if p.is_file()]
    folder = root / "requirements"
    if folder.is_dir():
        found += [p for p in folder.glob("*.txt") if p.is_file()]
    names = sorted(p.relative_to(root).as_posix() for p in found)
    # Lock-ish or docs-only files would install what the tests do not need.
    skip = re.compile(r"(docs?|lint|typing|mypy|release|publish)", re.IGNORECASE)
    return [name for name in names if not skip.search(Path(name).stem)]


def _first_named(available: dict[str, list[str]]) -> list[str]:
    """The test extra or group: the first of TEST_EXTRA_NAMES; `dev` only with a test tool."""
    for name in TEST_EXTRA_NAMES:
        if name not in available:
            continue
        names = _requirement_names(available[name])
        if name != "dev" or names & TEST_TOOLS or any(n.startswith("pytest") for n in names):
            return [name]
    return []


def dependency_lines(pyproject: dict[str, Any] | None, root: Path, files: list[str]) -> list[str]:
    """Every requirement the project declares, as requirement lines (Poetry's tables too)."""
    data = pyproject or {}
    project = data.get("project", {})
    lines: list[str] = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    for group in data.get("dependency-groups", {}).values():
        lines += [item for item in group if isinstance(item, str)]
    poetry = data.get("tool", {}).get("poetry", {})
    tables = [poetry.get("dependencies", {}), poetry.get("dev-dependencies", {})]
    tables += [group.get("dependencies", {}) for group in poetry.get("group", {}).values()]
    for table in tables:
        for name, spec in table.items():
            extras = spec.get("extras", []) if isinstance(spec, dict) else []
            lines.append(name + (f"[{','.join(extras)}]" if extras else ""))
    for name in files:
        lines += read_requirement_file(root / name)
    return lines


def project_name(pyproject: dict[str, Any] | None, root: Path) -> str:
    data = pyproject or {}
    name = data.get("project", {}).get("name") or data.get("tool", {}).get("poetry", {}).get("name")
    return str(name or root.resolve().name)


def test_dependencies(data: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """The test extra, dependency group and Poetry group of a pyproject.toml, each if any."""
    extras = _first_named(data.get("project", {}).get("optional-dependencies", {}))
    poetry = data.get("tool", {}).get("poetry", {})
    if not extras:
        extras = _first_named(poetry.get("extras", {}))
    declared = data.get("dependency-groups", {})
    groups = _first_named(
        {
            name: [item for item in items if isinstance(item, str)]
            for name, items in declared.items()
        }
    )
    poetry_groups = {
        name: list(t.get("dependencies", {})) for name, t in poetry.get("group", {}).items()
    }
    return extras, groups, _first_named(poetry_groups)


def coverage_config_elsewhere(root: Path) -> str | None:
    """A coverage config file that coverage reads before pyproject.toml, if any."""
    if (root / ".coveragerc").is_file():
        return ".coveragerc"
    for name in ("setup.cfg", "tox.ini"):
        path = root / name
        if path.is_file() and re.search(
            r"^\[(tool:)?coverage:", path.read_text(encoding="utf-8"), re.M
        ):
            return name
    return None


def detect(root: Path) -> Project:
    """Read the project at ``root``; raises InitError when init cannot set it up."""
    if not root.is_dir():
        raise InitError(f"{root} is not a directory: give the project's root directory")
    pyproject = load_pyproject(root / "pyproject.toml")
    backend = backend_of(pyproject, root)
    layout, packages = find_packages(root)
    data = pyproject or {}
    install_project = backend != "none"
    uv = data.get("tool", {}).get("uv", {})
    if backend == "uv" and "build-system" not in data:
        # uv installs a project without a build system only when told to (package = true).
        install_project = bool(uv.get("package", False))
    extras, groups, poetry_groups = test_dependencies(data)
    requirement_files = find_requirement_files(root)
    sources = [("src/" if layout == "src" else "") + name for name in packages]
    test_dirs = find_test_dirs(root, pyproject, sources)
    if not test_dirs:
        raise InitError(
            f"no tests found in {root} (test_*.py or *_test.py under tests/, test/, the "
            "packages, or pytest's testpaths): add the first test, then run init again"
        )
    members = find_members(root, pyproject)
    signs = neo4j_signs(root, pyproject, requirement_files, members)
    python = interpreter.choose(root, pyproject)
    found = Project(
        root=root,
        name=project_name(pyproject, root),
        pyproject=pyproject,
        backend=backend,
        layout=layout,
        packages=packages,
        test_dirs=test_dirs,
        install_project=install_project,
        extras=extras,
        dependency_groups=groups,
        requirements=[] if extras or groups else requirement_files,
        python=python.version,
        python_reason=python.reason,
        uses_neo4j=bool(signs),
        poetry_groups=poetry_groups,
        installer=lockfile.detect(root),
        members=members,
        tested_members=imported_by_tests(root, test_dirs, members),
        neo4j_signs=signs,
        coverage_file=coverage_config_elsewhere(root),
        collects_root_modules=collects_root_modules(root, pyproject),
    )
    found.notes += notes(found)
    return found


def neo4j_signs(
    root: Path, pyproject: dict[str, Any] | None, files: list[str], members: list[Member]
) -> list[str]:
    """What says the project uses Neo4j: its and its members' dependencies, then other files."""
    lines = dependency_lines(pyproject, root, files)
    signs = neo4j_signals.from_requirements(lines, "the dependencies")
    for member in members:
        signs += neo4j_signals.from_requirements(member.dependencies, member.name)
    return signs + neo4j_signals.from_files(root, pyproject)


def notes(found: Project) -> list[str]:
    """What the sessions cannot install as detected, and what to do about it."""
    said = []
    if found.installer != lockfile.UV and found.tested_members:
        said.append(
            f"the tests import the workspace members {', '.join(found.tested_members)}, which "
            "pip does not install from [tool.uv.sources]: run `uv lock` and commit uv.lock, so "
            "that the sessions install every member with uv"
        )
    if found.poetry_groups and not found.extras and found.installer != lockfile.POETRY:
        said.append(
            f"the Poetry group {found.poetry_groups[0]!r} cannot be installed by pip, which the "
            "test sessions use: list its packages in an extra ([project.optional-dependencies] "
            "or [tool.poetry.extras]) or in [dependency-groups], and name it in [tool.testfleet]"
        )
    return said

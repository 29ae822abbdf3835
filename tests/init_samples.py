"""Sample projects of the layouts users have, written into a directory for `testfleet init`.

Each sample is a small but real project: a package (or plain modules) with code the
tests import, tests that pass, and the packaging of its kind. The slow end-to-end tests
run their suites; the unit tests read what init makes of them.
"""

from __future__ import annotations

import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

CODE = '''\
"""Arithmetic the sample's tests check."""


def add(a: int, b: int) -> int:
    return a + b
'''

TESTS = """\
import pytest

from {module} import add


def test_add():
    assert add(2, 3) == 5


@pytest.mark.parametrize("n", range(4))
def test_add_zero(n):
    assert add(n, 0) == n
"""

GROUPED_TESTS = """\
import pytest

from {module} import add


@pytest.mark.xdist_group("ledger")
def test_grouped_first():
    assert add(1, 1) == 2


@pytest.mark.xdist_group("ledger")
def test_grouped_second():
    assert add(2, 2) == 4
"""


@dataclass(frozen=True)
class Sample:
    """What a sample is, and what init should find in it."""

    key: str
    layout: str
    backend: str
    test_dir: str
    install_project: bool = True
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    neo4j: bool = False


SAMPLES = {
    "src-hatchling": Sample("src-hatchling", "src", "hatchling", "tests", extras=("test",)),
    "flat-requirements": Sample(
        "flat-requirements",
        "flat",
        "none",
        "test",
        install_project=False,
        requirements=("requirements-dev.txt", "requirements.txt"),
    ),
    "flat-setuptools-inside": Sample(
        "flat-setuptools-inside", "flat", "setuptools", "ledger/tests", extras=("testing",)
    ),
    "poetry": Sample("poetry", "flat", "poetry", "tests", extras=("test",)),
    "uv-groups": Sample("uv-groups", "src", "hatchling", "tests", groups=("dev",)),
    "no-package": Sample("no-package", "none", "none", "tests", install_project=False),
    "neo4j-setuptools": Sample(
        "neo4j-setuptools", "src", "setuptools", "tests", extras=("tests",), neo4j=True
    ),
    "uv-workspace": Sample(
        "uv-workspace", "src", "hatchling", "tests", groups=("dev",), neo4j=True
    ),
    "poetry-lock": Sample("poetry-lock", "flat", "poetry", "tests"),
    "pdm-lock": Sample("pdm-lock", "src", "pdm", "tests", groups=("test",)),
}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def _src_hatchling() -> dict[str, str]:
    return {
        "pyproject.toml": """\
            # The calculator: a src layout built with hatchling.
            [build-system]
            requires = ["hatchling>=1.18"]
            build-backend = "hatchling.build"

            [project]
            name = "calc-src"
            version = "0.1.0"
            requires-python = ">=3.10"
            dependencies = []

            [project.optional-dependencies]
            test = ["pytest>=8"]  # what the tests need

            [tool.hatch.build.targets.wheel]
            packages = ["src/calc"]

            [tool.pytest.ini_options]
            testpaths = ["tests"]
            addopts = "-n auto --strict-markers -ra"
            xfail_strict = true
            """,
        "src/calc/__init__.py": CODE,
        "tests/test_calc.py": TESTS.format(module="calc"),
        "tests/test_groups.py": GROUPED_TESTS.format(module="calc"),
    }


def _flat_requirements() -> dict[str, str]:
    return {
        "requirements.txt": "# runtime\n",
        "requirements-dev.txt": "pytest>=8  # the tests\n",
        "mathutil/__init__.py": CODE,
        # Not installed: a conftest.py at the root puts the checkout on sys.path.
        "conftest.py": "",
        "test/test_mathutil.py": TESTS.format(module="mathutil"),
    }


def _flat_setuptools_inside() -> dict[str, str]:
    return {
        "setup.cfg": "[metadata]\nname = ledger\n",
        "pyproject.toml": """\
            [build-system]
            requires = ["setuptools>=69"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "ledger"
            version = "1.0"

            [project.optional-dependencies]
            testing = ["pytest"]

            [tool.setuptools.packages.find]
            include = ["ledger*"]
            """,
        "ledger/__init__.py": CODE,
        "ledger/tests/__init__.py": "",
        "ledger/tests/test_ledger.py": TESTS.format(module="ledger"),
    }


def _poetry() -> dict[str, str]:
    return {
        "pyproject.toml": """\
            [tool.poetry]
            name = "poems"
            version = "0.3.0"
            description = "A Poetry project"
            authors = ["Ada <ada@example.com>"]

            [tool.poetry.dependencies]
            python = "^3.10"
            pytest = {version = "^8.0", optional = true}

            [tool.poetry.extras]
            test = ["pytest"]

            [tool.poetry.group.test.dependencies]
            pytest = "^8.0"

            [build-system]
            requires = ["poetry-core>=1.0.0"]
            build-backend = "poetry.core.masonry.api"
            """,
        "poems/__init__.py": CODE,
        "tests/test_poems.py": TESTS.format(module="poems"),
    }


def _uv_groups() -> dict[str, str]:
    return {
        "pyproject.toml": """\
            [project]
            name = "uvapp"
            version = "0.1.0"
            requires-python = ">=3.11"
            dependencies = []

            [dependency-groups]
            lint = ["ruff"]
            dev = [{include-group = "lint"}, "pytest>=8"]

            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [tool.uv]
            package = true
            """,
        "src/uvapp/__init__.py": CODE,
        "tests/test_uvapp.py": TESTS.format(module="uvapp"),
    }


MEMBER = """\
    [project]
    name = "{name}"
    version = "0.1.0"
    requires-python = ">=3.11"
    dependencies = [{dependencies}]

    [build-system]
    requires = ["hatchling"]
    build-backend = "hatchling.build"
    """

#: The version uv.lock holds for the pin, while pyproject.toml allows newer ones.
LOCKED_SIX = "1.16.0"


def _uv_workspace() -> dict[str, str]:
    """A uv workspace: the root package, two members (one the root does not depend on), a dev
    group with testcontainers[neo4j], and markers for Neo4j; uv.lock is made by lock_sample."""
    return {
        "pyproject.toml": """\
            [project]
            name = "etl"
            version = "0.1.0"
            requires-python = ">=3.11"
            dependencies = ["etl-core", "six>=1.15"]

            [dependency-groups]
            dev = ["pytest>=8", "testcontainers[neo4j]>=4"]

            [tool.uv.sources]
            etl-core = { workspace = true }
            etl-load = { workspace = true }

            [tool.uv.workspace]
            members = ["packages/*"]

            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [tool.pytest.ini_options]
            markers = ["requires_neo4j: needs a Neo4j server"]
            """,
        "src/etl/__init__.py": CODE,
        "packages/etl-core/pyproject.toml": MEMBER.format(name="etl-core", dependencies=""),
        "packages/etl-core/src/etl_core/__init__.py": CODE,
        "packages/etl-load/pyproject.toml": MEMBER.format(
            name="etl-load", dependencies='"neo4j>=5"'
        ),
        "packages/etl-load/src/etl_load/__init__.py": CODE,
        "tests/test_etl.py": TESTS.format(module="etl"),
        "tests/test_members.py": """\
            import etl_core
            from etl_load import add


            def test_members_are_importable():
                assert etl_core.add(1, 2) == add(2, 1)
            """,
    }


#: The command that writes each tool's lock, keeping what it locked before where it still fits.
LOCK_ARGS = {
    "uv": ("lock", "-q"),
    "poetry": ("lock", "-q"),
    "pdm": ("lock", "-q", "--update-reuse"),
}


def lock_sample(root: Path, tool: str) -> None:
    """Write the lock with ``tool`` (uv, poetry or pdm, by path): six locked at LOCKED_SIX,
    then allowed newer versions.

    Each tool keeps a locked version that still satisfies pyproject.toml, so the lock
    matches the project while a fresh resolution would choose the newest six.
    """
    args = LOCK_ARGS[Path(tool).name]
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace(">=1.15", f"=={LOCKED_SIX}"), encoding="utf-8")
    subprocess.run([tool, *args], cwd=root, check=True, timeout=300, capture_output=True)
    pyproject.write_text(text, encoding="utf-8")
    subprocess.run([tool, *args], cwd=root, check=True, timeout=300, capture_output=True)


def _poetry_lock() -> dict[str, str]:
    """A Poetry project whose tests need its `test` group; poetry.lock is made by lock_sample."""
    return {
        "pyproject.toml": """\
            [tool.poetry]
            name = "stanzas"
            version = "0.2.0"
            description = "A Poetry project with a lock"
            authors = ["Ada <ada@example.com>"]
            package-mode = true

            [tool.poetry.dependencies]
            python = ">=3.10"
            six = ">=1.15"

            [tool.poetry.group.test.dependencies]
            pytest = ">=8"

            [build-system]
            requires = ["poetry-core>=1.0.0"]
            build-backend = "poetry.core.masonry.api"
            """,
        "stanzas/__init__.py": CODE,
        "tests/test_stanzas.py": TESTS.format(module="stanzas"),
    }


def _pdm_lock() -> dict[str, str]:
    """A PDM project (src layout, pdm-backend, a `test` group); pdm.lock by lock_sample."""
    return {
        "pyproject.toml": """\
            [project]
            name = "verses"
            version = "0.2.0"
            requires-python = ">=3.10"
            dependencies = ["six>=1.15"]

            [dependency-groups]
            test = ["pytest>=8"]

            [build-system]
            requires = ["pdm-backend"]
            build-backend = "pdm.backend"
            """,
        "src/verses/__init__.py": CODE,
        "tests/test_verses.py": TESTS.format(module="verses"),
    }


def _no_package() -> dict[str, str]:
    return {
        "pyproject.toml": """\
            [tool.pytest.ini_options]
            pythonpath = ["."]
            """,
        "scripts_math.py": CODE,
        "tests/test_scripts.py": TESTS.format(module="scripts_math"),
    }


def _neo4j_setuptools() -> dict[str, str]:
    return {
        "pyproject.toml": """\
            [build-system]
            requires = ["setuptools>=69"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "graph-etl"
            version = "0.1.0"
            dependencies = ["neo4j>=5.0"]
            authors = [{ name = "Grace", email = "grace@example.com" }]

            [project.optional-dependencies]
            tests = ["pytest"]
            """,
        "src/graph_etl/__init__.py": CODE,
        "tests/test_etl.py": TESTS.format(module="graph_etl"),
    }


BUILDERS = {
    "src-hatchling": _src_hatchling,
    "flat-requirements": _flat_requirements,
    "flat-setuptools-inside": _flat_setuptools_inside,
    "poetry": _poetry,
    "uv-groups": _uv_groups,
    "no-package": _no_package,
    "neo4j-setuptools": _neo4j_setuptools,
    "uv-workspace": _uv_workspace,
    "poetry-lock": _poetry_lock,
    "pdm-lock": _pdm_lock,
}


def make_sample(root: Path, key: str) -> Sample:
    """Write the sample ``key`` into ``root`` (created) and return what it is."""
    root.mkdir(parents=True, exist_ok=True)
    _write(root, BUILDERS[key]())
    return SAMPLES[key]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, to tell whether anything changed."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }

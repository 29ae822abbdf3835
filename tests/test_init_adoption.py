"""What init makes of the projects users adopt it in: workspaces, Neo4j signs, the Python,
a Dockerfile of their own."""

from __future__ import annotations

import io
import os
import textwrap
import tomllib
from pathlib import Path

import pytest

from init_samples import make_sample
from testfleet import scaffold
from testfleet.scaffold import dockerfile, interpreter, neo4j_signals
from testfleet.scaffold.detect import detect, load_pyproject
from testfleet.scaffold.members import find_members


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


# --- workspace members -----------------------------------------------------------------


def test_init_names_the_workspace_members_and_those_the_tests_import(tmp_path: Path) -> None:
    make_sample(tmp_path, "uv-workspace")
    write(tmp_path, {"packages/unused/pyproject.toml": "[project]\nname = 'unused'\n"})
    write(tmp_path, {"packages/unused/unused/__init__.py": ""})
    project = detect(tmp_path)
    assert [member.name for member in project.members] == ["etl-core", "etl-load", "unused"]
    assert [member.modules for member in project.members][:2] == [("etl_core",), ("etl_load",)]
    assert project.tested_members == ["etl-core", "etl-load"]
    line = scaffold.describe(project, True)
    assert "workspace members etl-core, etl-load, unused (the tests import etl-core, etl-load)" in (
        line
    )


def test_path_sources_count_as_members_and_excluded_ones_do_not(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": """\
                [tool.uv.sources]
                shared = { path = "libs/shared", editable = true }
                remote = { git = "https://example.com/remote.git" }

                [tool.uv.workspace]
                members = ["packages/*"]
                exclude = ["packages/old"]
                """,
            "libs/shared/pyproject.toml": "[project]\nname = 'shared'\n",
            "packages/new/pyproject.toml": "[project]\nname = 'new'\n",
            "packages/old/pyproject.toml": "[project]\nname = 'old'\n",
            # A folder the glob matches that is no package.
            "packages/notes/README.md": "",
        },
    )
    members = find_members(tmp_path, load_pyproject(tmp_path / "pyproject.toml"))
    assert [(m.name, m.path) for m in members] == [
        ("shared", "libs/shared"),
        ("new", "packages/new"),
    ]


def test_without_uv_lock_init_says_pip_cannot_install_the_members_the_tests_import(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path, "uv-workspace")
    project = detect(tmp_path)
    assert project.installer == "pip"
    assert any("uv lock" in note and "etl-core, etl-load" in note for note in project.notes)
    (tmp_path / "uv.lock").write_text("version = 1\n", encoding="utf-8")
    locked = detect(tmp_path)
    assert locked.installer == "uv"
    assert locked.notes == []
    assert "installed by uv from uv.lock" in scaffold.describe(locked, True)


def test_init_writes_the_installer_into_tool_testfleet_when_there_is_a_lock(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path, "uv-groups")
    (tmp_path / "uv.lock").write_text("version = 1\n", encoding="utf-8")
    result = scaffold.plan(tmp_path)
    (pyproject,) = [c for c in result.changes if c.path == "pyproject.toml"]
    assert 'installer = "uv"' in (pyproject.proposed or "")


def test_with_poetry_lock_and_poetry_its_group_is_installed_by_poetry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_sample(tmp_path, "poetry")
    pyproject_path = tmp_path / "pyproject.toml"
    # The group alone, without the extra: pip could not install it.
    text = pyproject_path.read_text().replace('[tool.poetry.extras]\ntest = ["pytest"]\n', "")
    pyproject_path.write_text(text)
    assert any("Poetry group" in note for note in detect(tmp_path).notes)
    (tmp_path / "poetry.lock").write_text("# lock\n", encoding="utf-8")
    tools = tmp_path / "bin"
    write(tools, {"poetry": "#!/bin/sh\n"})
    (tools / "poetry").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    result = scaffold.plan(tmp_path)
    assert result.project.installer == "poetry"
    (pyproject,) = [c for c in result.changes if c.path == "pyproject.toml"]
    table = tomllib.loads(pyproject.proposed or "")["tool"]["testfleet"]
    assert (table["installer"], table["dependency_groups"]) == ("poetry", ["test"])
    assert not any("Poetry group" in note for note in result.advice)


# --- Neo4j -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "sign"),
    [
        (
            {"pyproject.toml": "[dependency-groups]\ndev = ['testcontainers[neo4j]>=4']\n"},
            "testcontainers[neo4j] in the dependencies",
        ),
        (
            {
                "pyproject.toml": "[tool.poetry.group.dev.dependencies]\n"
                'testcontainers = { version = "^4", extras = ["neo4j"] }\n'
            },
            "testcontainers[neo4j] in the dependencies",
        ),
        (
            {"pyproject.toml": "[tool.pytest.ini_options]\nmarkers = ['neo4j: needs a server']\n"},
            "a neo4j marker",
        ),
        (
            {"pytest.ini": "[pytest]\nmarkers =\n    slow: slow\n    requires_neo4j: graph\n"},
            "a requires_neo4j marker",
        ),
        (
            {"docker-compose.yml": "services:\n  graph:\n    image: 'neo4j:5.26-community'\n"},
            "a Neo4j image in docker-compose.yml",
        ),
        (
            {".env.example": "DEBUG=1\nNEO4J_URI=bolt://localhost:7687\n"},
            "NEO4J_URI in .env.example",
        ),
    ],
)
def test_neo4j_is_detected_from_each_sign_and_the_sign_is_named(
    tmp_path: Path, files: dict[str, str], sign: str
) -> None:
    write(tmp_path, {**files, "tests/test_x.py": "def test_x():\n    pass\n"})
    project = detect(tmp_path)
    assert project.uses_neo4j
    assert project.neo4j_signs == [sign]
    assert f"Neo4j yes ({sign})" in scaffold.describe(project, True)


def test_testcontainers_without_its_neo4j_extra_and_other_images_are_no_neo4j(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": "[dependency-groups]\ndev = ['testcontainers[postgres]']\n",
            "compose.yaml": "services:\n  db:\n    image: postgres:16\n  x:\n    image: neo4jish\n",
            ".env.example": "# NEO4J_URI is not used any more\n",
            "tests/test_x.py": "def test_x():\n    pass\n",
        },
    )
    assert detect(tmp_path).neo4j_signs == []
    assert neo4j_signals.from_requirements(["neo4j-driver<5"], "x") == [
        "the neo4j-driver driver in x"
    ]


# --- the interpreter ---------------------------------------------------------------------


def test_python_version_wins_where_the_machine_has_that_python(tmp_path: Path) -> None:
    (tmp_path / ".python-version").write_text("3.12.4\n", encoding="utf-8")
    pyproject = {"project": {"requires-python": ">=3.10"}}
    chosen = interpreter.choose(tmp_path, pyproject, available=lambda version: True)
    assert chosen == interpreter.Choice("3.12", "named in .python-version")
    kept = interpreter.choose(tmp_path, pyproject, available=lambda version: False)
    assert kept.version == interpreter.running()
    assert ".python-version names 3.12, not found on this machine" in kept.reason
    assert "the running one, which requires-python >=3.10 allows" in kept.reason


def test_without_python_version_the_choice_is_as_before_and_says_why(tmp_path: Path) -> None:
    chosen = interpreter.choose(tmp_path, {"project": {"requires-python": ">=3.13"}})
    assert chosen == interpreter.Choice("3.13", "the oldest that requires-python >=3.13 allows")
    assert interpreter.choose(tmp_path, None).reason == "the running one"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.12\n", "3.12"),
        ("cpython-3.13.1\n", "3.13"),
        ("# pinned\n3.10\n", "3.10"),
        ("pypy\n", None),
    ],
)
def test_python_version_files_of_each_kind_name_their_version(
    tmp_path: Path, text: str, expected: str | None
) -> None:
    (tmp_path / ".python-version").write_text(text, encoding="utf-8")
    assert interpreter.pinned(tmp_path) == expected


def test_the_running_python_is_installed_and_a_made_up_one_is_not() -> None:
    assert interpreter.installed(interpreter.running())
    assert not interpreter.installed("3.1")


# --- a Dockerfile of the project's own ---------------------------------------------------


def test_stages_are_read_by_name_whatever_the_case_and_platform() -> None:
    text = (
        "FROM --platform=$BUILDPLATFORM python:3.12 as build\nRUN x\nfrom build\nFROM b AS Test\n"
    )
    assert dockerfile.stages(text) == ["build", None, "Test"]


def test_a_kept_dockerfile_without_a_test_stage_gets_a_compose_file_that_builds_its_last(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path, "src-hatchling")
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim AS app\nCOPY . /app\n")
    out = io.StringIO()
    assert scaffold.run(tmp_path, dry_run=True, out=out) == 0
    result = scaffold.plan(tmp_path)
    (compose,) = [c for c in result.changes if c.path == "docker-compose.test.yml"]
    assert "target:" not in (compose.proposed or "").split("volumes:")[0]
    assert "dockerfile: Dockerfile" in (compose.proposed or "")
    assert "has no `test` stage" in out.getvalue()
    assert "builds its last stage `app` instead" in out.getvalue()


def test_a_kept_dockerfile_with_a_test_stage_and_a_forced_one_keep_target_test(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path, "src-hatchling")
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim AS test\n")
    assert dockerfile.compose_target(tmp_path, force=False) == dockerfile.Target()
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n")
    assert dockerfile.compose_target(tmp_path, force=True) == dockerfile.Target()
    without = dockerfile.compose_target(tmp_path, force=False)
    assert without.stage is None
    assert "its last stage instead" in without.advice

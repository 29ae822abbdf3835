"""``[tool.testfleet]`` and the coverage settings parallel runs need, added to pyproject.toml.

tomlkit edits the document in place, so comments, order and formatting stay as they
were; only missing tables and keys are added, a value the project set is never changed
(when it stands in the way, init says what to change).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any

import tomlkit
from tomlkit.items import Table

from testfleet.runs.install import PIP, POETRY
from testfleet.scaffold.detect import Project


@dataclass
class Edit:
    """The new text of pyproject.toml, what was added, and what the project must do itself."""

    text: str
    added: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)


def session_groups(project: Project) -> list[str]:
    """The dependency groups the sessions install: Poetry's own where Poetry installs them
    (``poetry install --with GROUP``)."""
    if project.dependency_groups:
        return project.dependency_groups
    return project.poetry_groups if project.installer == POETRY else []


def testfleet_table(project: Project) -> Table:
    """The ``[tool.testfleet]`` init proposes: how the test sessions install the project."""
    table = tomlkit.table()
    table.add(tomlkit.comment("How the test sessions set up their environment (testfleet init)."))
    table.add("python", project.python)
    table.add("install_project", project.install_project)
    if project.install_project:
        table.add("editable", True)
    if project.extras:
        table.add("extras", project.extras)
    if session_groups(project):
        table.add("dependency_groups", session_groups(project))
    if project.requirements:
        table.add("requirements", project.requirements)
    if project.installer != PIP:
        # Said outright, so that the session's pip fallback is a visible choice.
        table.add("installer", project.installer)
    return table


def coverage_paths(project: Project) -> dict[str, list[str]]:
    """Where the code is here, in the test image (/app) and when installed, per package."""
    if not project.packages:
        return {"source": [".", "/app"]}
    prefix = "src/" if project.layout == "src" else ""
    return {
        ("source" if len(project.packages) == 1 else name): [
            f"{prefix}{name}",
            f"/app/{prefix}{name}",
            f"*/site-packages/{name}",
        ]
        for name in project.packages
    }


def _coverage_advice(project: Project) -> str:
    paths = "".join(
        f"\n    {key} =" + "".join(f"\n        {item}" for item in value)
        for key, value in coverage_paths(project).items()
    )
    return (
        f"coverage reads its settings from {project.coverage_file}, not pyproject.toml: "
        "add `parallel = True` and `patch = subprocess` to its [run] section "
        f"([coverage:run] in setup.cfg or tox.ini), and a [paths] section:{paths}"
    )


def _run_keys(run: dict[str, Any], edit: Edit) -> dict[str, Any]:
    """The keys [tool.coverage.run] lacks; advice where a value it has stands in the way."""
    missing: dict[str, Any] = {}
    if "parallel" not in run:
        missing["parallel"] = True
    elif run["parallel"] is not True:
        edit.advice.append(
            "pyproject.toml sets [tool.coverage.run] parallel = false: parallel runs write "
            "one data file per process and need `parallel = true`; change it"
        )
    if "patch" not in run:
        # xdist workers are subprocesses: without this their coverage is not measured.
        missing["patch"] = ["subprocess"]
    elif "subprocess" not in list(run["patch"]):
        edit.advice.append(
            'add "subprocess" to [tool.coverage.run] patch: xdist workers are subprocesses'
        )
    return missing


def _new_tables(project: Project, data: dict[str, Any], edit: Edit) -> tomlkit.TOMLDocument:
    """The tables pyproject.toml lacks, as a document of their own to append to it."""
    tool = data.get("tool", {})
    extra = tomlkit.document()
    tables = tomlkit.table(is_super_table=True)
    if "testfleet" not in tool:
        tables["testfleet"] = testfleet_table(project)
        edit.added.append("[tool.testfleet]")
    coverage = tool.get("coverage", {})
    if project.coverage_file is None:
        wanted = tomlkit.table(is_super_table=True)
        if "run" not in coverage:
            run = tomlkit.table()
            for key, value in _run_keys({}, edit).items():
                run[key] = value
                edit.added.append(f"[tool.coverage.run] {key}")
            wanted["run"] = run
        if "paths" not in coverage:
            paths = tomlkit.table()
            paths.add(tomlkit.comment("This checkout, the test image (/app), an installed copy."))
            for key, value in coverage_paths(project).items():
                paths[key] = value
            wanted["paths"] = paths
            edit.added.append("[tool.coverage.paths]")
        if wanted:
            tables["coverage"] = wanted
    if tables:
        extra["tool"] = tables
    return extra


def edit_pyproject(text: str | None, project: Project) -> Edit:
    """pyproject.toml (``text``; None: a new one) with what init adds.

    Keys missing from an existing [tool.coverage.run] go into it; whole tables that are
    missing go at the end of the file, so that the file's own text stays as it was
    however its tables are ordered.
    """
    edit = Edit(text="")
    data = tomllib.loads(text) if text is not None else {}
    if project.coverage_file is not None:
        edit.advice.append(_coverage_advice(project))
    body = (
        text
        if text is not None
        else ("# Settings of the test tools; this project is not installed as a package.\n")
    )
    run = data.get("tool", {}).get("coverage", {}).get("run")
    if project.coverage_file is None and run is not None:
        missing = _run_keys(run, edit)
        if missing:
            doc = tomlkit.parse(body)
            table = doc["tool"]["coverage"]["run"]
            for key, value in missing.items():
                table[key] = value
                edit.added.append(f"[tool.coverage.run] {key}")
            body = tomlkit.dumps(doc)
    extra = _new_tables(project, data, edit)
    if extra:
        body = body.rstrip("\n") + "\n\n" + tomlkit.dumps(extra).lstrip("\n")
    edit.text = body if edit.added else (text or "")
    if edit.added:
        _check_kept(text, edit.text)
    return edit


def _check_kept(before: str | None, after: str) -> None:
    """Raise AssertionError unless ``after`` parses and holds every value of ``before``."""
    new = tomllib.loads(after)
    if before is None:
        return
    old = tomllib.loads(before)

    def contains(outer: Any, inner: Any) -> bool:
        if isinstance(inner, dict):
            return isinstance(outer, dict) and all(
                key in outer and contains(outer[key], value) for key, value in inner.items()
            )
        return bool(outer == inner)

    if not contains(new, old):
        raise AssertionError("editing pyproject.toml would have changed a value it had")

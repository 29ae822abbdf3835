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

from testfleet.scaffold.detect import Project


@dataclass
class Edit:
    """The new text of pyproject.toml, what was added, and what the project must do itself."""

    text: str
    added: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)


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
    if project.dependency_groups:
        table.add("dependency_groups", project.dependency_groups)
    if project.requirements:
        table.add("requirements", project.requirements)
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


def _child(parent: Any, name: str, added: list[str], label: str) -> Any:
    if name not in parent:
        parent.add(name, tomlkit.table(is_super_table=label == "tool"))
    return parent[name]


def _coverage(doc: tomlkit.TOMLDocument, project: Project, edit: Edit) -> None:
    if project.coverage_file is not None:
        paths = "".join(
            f"\n    {key} =" + "".join(f"\n        {item}" for item in value)
            for key, value in coverage_paths(project).items()
        )
        edit.advice.append(
            f"coverage reads its settings from {project.coverage_file}, not pyproject.toml: "
            "add `parallel = True` and `patch = subprocess` to its [run] section "
            f"([coverage:run] in setup.cfg or tox.ini), and a [paths] section:{paths}"
        )
        return
    tool = _child(doc, "tool", edit.added, "tool")
    coverage = _child(tool, "coverage", edit.added, "tool")
    run = _child(coverage, "run", edit.added, "tool.coverage.run")
    if "parallel" not in run:
        run.add("parallel", True)
        edit.added.append("[tool.coverage.run] parallel = true")
    elif run["parallel"] is not True:
        edit.advice.append(
            "pyproject.toml sets [tool.coverage.run] parallel = false: parallel runs write "
            "one data file per process and need `parallel = true`; change it"
        )
    if "patch" not in run:
        # xdist workers are subprocesses: without this their coverage is not measured.
        run.add("patch", ["subprocess"])
        edit.added.append('[tool.coverage.run] patch = ["subprocess"]')
    elif "subprocess" not in list(run["patch"]):
        edit.advice.append(
            'add "subprocess" to [tool.coverage.run] patch: xdist workers are subprocesses'
        )
    if "paths" not in coverage:
        table = tomlkit.table()
        table.add(tomlkit.comment("This checkout, the test image (/app), an installed copy."))
        for key, value in coverage_paths(project).items():
            table.add(key, value)
        coverage.add("paths", table)
        edit.added.append("[tool.coverage.paths]")


def edit_pyproject(text: str | None, project: Project) -> Edit:
    """pyproject.toml (``text``; None: a new one) with what init adds."""
    doc = tomlkit.parse(text) if text is not None else tomlkit.document()
    edit = Edit(text="")
    if text is None:
        doc.add(
            tomlkit.comment(
                "Settings of the test tools; this project is not installed as a package."
            )
        )
    tool = _child(doc, "tool", edit.added, "tool")
    if "testfleet" not in tool:
        tool.add("testfleet", testfleet_table(project))
        edit.added.append("[tool.testfleet]")
    _coverage(doc, project, edit)
    edit.text = tomlkit.dumps(doc)
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

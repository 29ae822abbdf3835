"""Fixes inside the polluter: ``monkeypatch`` for what it sets, ``tmp_path`` for its files.

Each rewrite takes the polluter's function (see `edits`) and returns the file's new lines
and a title, or None when the function has no line of the shape it rewrites. The fixture
of a wider scope that the polluter mutates gets a copy in the polluter, or function scope.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

from testfleet.diagnose import edits
from testfleet.diagnose.proposal import Suggestion
from testfleet.diagnose.state import ATTRIBUTE, CWD, ENVIRON, FILE, FIXTURE, Change

#: (pattern, replacement) substitutions of one line of the polluter's body.
Substitutions = Sequence[tuple[re.Pattern[str], str]]

_ENVIRON: Substitutions = (
    (
        re.compile(r"^(\s*)os\.environ\[(.+?)\]\s*=(?!=)\s*(.+?)\s*$"),
        r"\1monkeypatch.setenv(\2, \3)",
    ),
    (re.compile(r"^(\s*)del os\.environ\[(.+?)\]\s*$"), r"\1monkeypatch.delenv(\2)"),
    (re.compile(r"\bos\.environ\.setdefault\("), "monkeypatch.setenv("),
    (
        re.compile(r"\bos\.environ\.pop\(([^,()]+)(,\s*None)?\)"),
        r"monkeypatch.delenv(\1, raising=False)",
    ),
)  # fmt: skip
_CWD: Substitutions = ((re.compile(r"\bos\.chdir\("), "monkeypatch.chdir("),)


def _attribute_substitutions(change: Change) -> Substitutions:
    owner_class, _, attribute = change.name.rpartition(".")
    owner = re.escape(owner_class or change.place.rsplit(".", 1)[-1])
    pattern = rf"^(\s*)((?:[\w.]+\.)?{owner})\.{re.escape(attribute)}\s*=(?!=)\s*(.+?)\s*$"
    return ((re.compile(pattern), rf'\1monkeypatch.setattr(\2, "{attribute}", \3)'),)


def _substitute(function: edits.Function, substitutions: Substitutions) -> edits.Function | None:
    lines = list(function.lines)
    changed = False
    for index in edits.body_lines(function):
        line = lines[index]
        text = line.rstrip("\n")
        for pattern, replacement in substitutions:
            text = pattern.sub(replacement, text)
        if text != line.rstrip("\n"):
            lines[index] = text + line[len(line.rstrip("\n")) :]
            changed = True
    return dataclasses.replace(function, lines=lines) if changed else None


@dataclasses.dataclass(frozen=True)
class Plan:
    """How to rewrite the polluter: lines to substitute, or statements to put first."""

    title: str
    substitutions: Substitutions = ()
    statements: Sequence[str] = ()
    parameters: Sequence[str] = ("monkeypatch",)
    imports: Sequence[str] = ()

    def apply(self, function: edits.Function) -> list[str] | None:
        """The file's new lines, or None when the function has no line to substitute."""
        if self.substitutions:
            found = _substitute(function, self.substitutions)
            if found is None:
                return None
            function = found
        lines = edits.with_parameters(function, list(self.parameters))
        lines = edits.insert_statements(function, lines, list(self.statements))
        return edits.with_imports(lines, list(self.imports))


def _plan(change: Change) -> Plan | None:
    """The rewrite of the polluter that undoes ``change``, if there is one."""
    kind, name = change.kind, change.name
    if kind == ATTRIBUTE and change.how == "rebound":
        return Plan(
            f"monkeypatch.setattr instead of assigning {change.place}.{name} "
            "(undone after the test)",
            _attribute_substitutions(change),
        )
    if kind == ENVIRON:
        return Plan(f"monkeypatch sets ${name} (undone after the test)", _ENVIRON)
    if kind == CWD:
        return Plan("monkeypatch.chdir instead of os.chdir (undone after the test)", _CWD)
    if kind == FILE and change.place == "cwd":
        return Plan(
            f"runs in tmp_path (monkeypatch.chdir), so that {name} is written there",
            statements=["monkeypatch.chdir(tmp_path)"],
            parameters=["monkeypatch", "tmp_path"],
        )
    if kind == FILE:
        return Plan(
            f"the temp directory is tmp_path while it runs, so that {name} is written there",
            statements=['monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))'],
            parameters=["monkeypatch", "tmp_path"],
            imports=["import tempfile"],
        )
    if kind == FIXTURE:
        return Plan(
            f"works on a copy of the shared fixture value {name}",
            statements=[f"{name} = copy.deepcopy({name})"],
            parameters=[],
            imports=["import copy"],
        )
    return None


def in_polluters(root: Path, polluters: Sequence[str], change: Change) -> list[Suggestion]:
    """The rewrites of each polluter that would undo ``change``, one suggestion each."""
    plan = _plan(change)
    if plan is None:
        return []
    found: list[Suggestion] = []
    for polluter in polluters:
        file, name = edits.test_name(polluter)
        function = edits.find_function(root / file, name, edits.test_classes(polluter))
        lines = None if function is None else plan.apply(function)
        if function is not None and lines is not None and lines != function.lines:
            diff = edits.unified_diff(file, function.lines, lines)
            title = f"{file}: {name} {plan.title}"
            found.append(Suggestion(title, {file: "".join(lines)}, diff, [change]))
    return found


def narrower_fixture(root: Path, polluter: str, change: Change) -> list[Suggestion]:
    """The shared fixture the polluter mutates, made afresh for each test (function scope)."""
    file, _ = edits.test_name(polluter)
    directory = (root / file).parent
    paths = [root / file]
    while directory.is_relative_to(root):
        paths.append(directory / "conftest.py")
        if directory == root:
            break
        directory = directory.parent
    fixture = edits.find_fixture(paths, change.name)
    lines = None if fixture is None else edits.without_scope(fixture)
    if fixture is None or lines is None:
        return []
    relative = fixture.path.relative_to(root).as_posix()
    return [
        Suggestion(
            f"{relative}: the fixture {change.name} is made afresh for each test (function scope)",
            {relative: "".join(lines)},
            edits.unified_diff(relative, fixture.lines, lines),
            [change],
        )
    ]

"""Extending a project's own noxfile.py and tasks.py with testfleet's sessions and tasks.

A file that already uses testfleet is left alone. Otherwise the lines are added only
when nothing in the file can clash with them (a session or task of the same name would
be replaced without a word by nox or invoke); when something can, the file is kept as
it is and init prints exactly what to add and what to rename.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from testfleet.scaffold.detect import InitError

NOX_SESSIONS = ("tests", "tests_parallel", "randomized", "coverage")
INVOKE_TASKS = ("ci", "baseline", "report")
NOX_LINES = (
    "import testfleet.nox\n"
    "\n"
    "testfleet.nox.register()  # sessions tests, tests_parallel, randomized, coverage\n"
)
TASKS_WITH_NAMESPACE = """
# testfleet's ci, baseline and report tasks beside this file's own.
from testfleet.invoke import collection as _testfleet_collection  # noqa: E402

for _task in _testfleet_collection().tasks.values():
    {name}.add_task(_task)
"""
TASKS_WITHOUT_NAMESPACE = """
# testfleet's ci, baseline and report tasks beside this file's own: an explicit
# namespace, which invoke uses instead of collecting this module's tasks.
from invoke import Task as _Task  # noqa: E402

from testfleet.invoke import collection as _testfleet_collection  # noqa: E402

namespace = _testfleet_collection()
for _task in [_value for _value in list(globals().values()) if isinstance(_value, _Task)]:
    namespace.add_task(_task)
"""


@dataclass
class Merge:
    """The file's new text (None: keep it as it is) and what the user must do by hand."""

    text: str | None
    advice: str = ""


def _parse(path: str, text: str) -> ast.Module:
    try:
        return ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise InitError(
            f"{path}:{exc.lineno or 0}:{exc.offset or 0}: does not parse ({exc.msg}), so init "
            "cannot extend it: fix it, then run init again"
        ) from None


def _decorator_name(node: ast.expr) -> tuple[str, str | None]:
    """``nox.session(name="x")`` -> ("session", "x"); ``task`` -> ("task", None)."""
    call_name = None
    if isinstance(node, ast.Call):
        for keyword in node.keywords:
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                call_name = str(keyword.value.value)
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr, call_name
    if isinstance(node, ast.Name):
        return node.id, call_name
    return "", call_name


def defined_names(tree: ast.Module, decorator: str) -> list[str]:
    """Names of the module's functions registered with ``decorator`` (session or task)."""
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for item in node.decorator_list:
            kind, name = _decorator_name(item)
            if kind == decorator:
                found.append(name or node.name)
    return found


def _imports_end(tree: ast.Module) -> int:
    """The line after the module's leading docstring and imports (0: the very top)."""
    end = 0
    for index, node in enumerate(tree.body):
        is_doc = index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if is_doc or isinstance(node, ast.Import | ast.ImportFrom):
            end = node.end_lineno or node.lineno
        else:
            break
    return end


def merge_noxfile(text: str) -> Merge:
    """The project's noxfile.py with testfleet's sessions registered, when that is safe."""
    if "testfleet.nox" in text:
        return Merge(None)
    tree = _parse("noxfile.py", text)
    clashes = [name for name in defined_names(tree, "session") if name in NOX_SESSIONS]
    if clashes:
        return Merge(
            None,
            f"noxfile.py defines the session(s) {', '.join(clashes)}, which testfleet's would "
            "replace: rename or remove them, then add after its imports:\n\n" + _indent(NOX_LINES),
        )
    lines = text.splitlines(keepends=True)
    cut = _imports_end(tree)
    before = "".join(lines[:cut])
    if before and not before.endswith("\n"):
        before += "\n"
    merged = before + "\n" + NOX_LINES + "".join(lines[cut:])
    ast.parse(merged)
    return Merge(merged)


def merge_tasks(text: str) -> Merge:
    """The project's tasks.py with testfleet's tasks added, when that is safe."""
    if "testfleet.invoke" in text:
        return Merge(None)
    tree = _parse("tasks.py", text)
    clashes = [name for name in defined_names(tree, "task") if name in INVOKE_TASKS]
    if clashes:
        return Merge(
            None,
            f"tasks.py defines the task(s) {', '.join(clashes)}, which testfleet's would "
            "replace: rename or remove them, then add at its end:\n"
            + _indent(TASKS_WITHOUT_NAMESPACE),
        )
    names = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    explicit = next((name for name in ("namespace", "ns") if name in names), None)
    addition = TASKS_WITH_NAMESPACE.format(name=explicit) if explicit else TASKS_WITHOUT_NAMESPACE
    merged = text + ("" if text.endswith("\n") else "\n") + addition
    ast.parse(merged)
    return Merge(merged)


def _indent(text: str) -> str:
    return "".join(f"    {line}" if line.strip() else line for line in text.splitlines(True))

"""The shape of the package, read from its source: imports run one way, rooms stay small.

Only the syntax tree is read (no import, no subprocess): the whole check takes well
under a second, and a failure names the modules, lines and functions to change.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "testfleet"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
MAX_COMMAND_MODULE_LINES = 300
INSIDE_FUNCTIONS_LIMIT = 10


@dataclass(frozen=True)
class Import:
    """One import of a testfleet module by another."""

    importer: str
    imported: str
    line: int
    in_function: bool
    #: The import statement has a comment on its own line or on the line above.
    explained: bool


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: list[str]


@cache
def modules() -> dict[str, Module]:
    """Every module of the package by its dotted name (a package by its own name)."""
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        text = path.read_text(encoding="utf-8")
        found[".".join(parts)] = Module(
            ".".join(parts), path, ast.parse(text, str(path)), text.splitlines()
        )
    return found


def _targets(module: Module, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The testfleet modules an import statement loads (a name from a module: that module)."""
    known = modules()
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.name.split(".")
            if module.path.name != "__init__.py":
                package.pop()
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
            for alias in node.names
        ]
    for name in names:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known and name != module.name:
            yield name


def _type_checking_only(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _explained(module: Module, node: ast.stmt) -> bool:
    """A comment on the line above the import or on one of its own lines."""
    above = module.lines[node.lineno - 2].strip() if node.lineno > 1 else ""
    own = module.lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
    return above.startswith("#") or any("#" in line for line in own)


def _imports_in(module: Module, node: ast.AST, in_function: bool) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking_only(child):
            # Read by the type checker only: no import at run time, no edge.
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            explained = _explained(module, child)
            for target in _targets(module, child):
                yield Import(module.name, target, child.lineno, in_function, explained)
        function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _imports_in(module, child, in_function or function)


@cache
def imports() -> list[Import]:
    # One statement that names a module twice (`from m import a, b`) is one import of it.
    return list(
        dict.fromkeys(
            found
            for module in modules().values()
            for found in _imports_in(module, module.tree, False)
        )
    )


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_the_cycle_finder_finds_a_circle_and_ignores_a_chain() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_the_import_reader_sees_the_package_and_its_own_imports() -> None:
    # Guards the other checks against passing on a tree they failed to read.
    assert len(modules()) > 50
    edges = {(i.importer, i.imported) for i in imports()}
    assert ("testfleet.timing.recorder", "testfleet.timing.records") in edges
    assert ("testfleet.scheduling.durations", "testfleet.timing.report") in edges


def test_an_import_in_a_function_counts_and_one_for_the_type_checker_does_not() -> None:
    text = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from testfleet.timing import records\n"
        "def f():\n"
        "    # Imported here: a reason.\n"
        "    from testfleet.timing import report\n"
        "    from . import store\n"
    )
    module = Module(
        "testfleet.timing.fake",
        SRC / "testfleet/timing/fake.py",
        ast.parse(text),
        text.splitlines(),
    )
    found = list(_imports_in(module, module.tree, False))
    assert [(i.imported, i.in_function, i.explained) for i in found] == [
        ("testfleet.timing.report", True, True),
        ("testfleet.timing.store", True, False),
    ]


def _listing(title: str, lines: list[str]) -> str:
    return title + ":\n  " + "\n  ".join(lines)


def test_no_testfleet_modules_import_each_other_in_a_circle() -> None:
    edges: dict[str, set[str]] = {}
    for found in imports():
        edges.setdefault(found.importer, set()).add(found.imported)
    circles = [" -> ".join(circle) for circle in cycles(edges)]
    assert not circles, _listing("circles (imports inside functions count too)", circles)


def test_few_imports_sit_inside_functions_and_each_says_why() -> None:
    inner = [i for i in imports() if i.in_function]
    unexplained = [f"{i.importer}:{i.line} imports {i.imported}" for i in inner if not i.explained]
    assert not unexplained, _listing("imports inside functions without a comment", unexplained)
    listed = [f"{i.importer}:{i.line} imports {i.imported}" for i in inner]
    assert len(inner) <= INSIDE_FUNCTIONS_LIMIT, _listing(
        f"{len(inner)} imports inside functions, at most {INSIDE_FUNCTIONS_LIMIT}", listed
    )


def _line_count(node: ast.AST) -> int:
    return (getattr(node, "end_lineno", None) or 0) - getattr(node, "lineno", 0) + 1


def test_no_module_is_over_500_lines() -> None:
    long = [
        f"{m.name} ({len(m.lines)})" for m in modules().values() if len(m.lines) > MAX_MODULE_LINES
    ]
    assert not long, _listing(f"modules over {MAX_MODULE_LINES} lines", long)


def test_no_function_is_over_60_lines() -> None:
    long = [
        f"{module.name}.{function.name} ({_line_count(function)})"
        for module in modules().values()
        for function in _functions(module.tree)
        if _line_count(function) > MAX_FUNCTION_LINES
    ]
    assert not long, _listing(f"functions over {MAX_FUNCTION_LINES} lines", long)


def test_each_command_line_module_is_at_most_300_lines() -> None:
    long = [
        f"{m.name} ({len(m.lines)})"
        for m in modules().values()
        if (m.name + ".").startswith(f"{PACKAGE}.cli.") and len(m.lines) > MAX_COMMAND_MODULE_LINES
    ]
    assert not long, _listing(f"command line modules over {MAX_COMMAND_MODULE_LINES} lines", long)

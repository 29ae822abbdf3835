"""Text edits of a suite's Python files, for the patches `fixes` proposes.

Plain line edits rather than a syntax-tree rewrite: the patch keeps the file's comments and
layout, and every patch is checked by a rerun anyway (`propose`), so an edit that does not
fit a file's shape is dropped there, not trusted here.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_DEF = re.compile(r"^(?P<indent>\s*)(async\s+)?def\s+(?P<name>\w+)\s*\(")
_FIXTURE_DECORATOR = re.compile(r"^\s*@(pytest\.)?fixture\b")
#: A comment at the end of a line (one without quotes: a ``#`` in a string is no comment).
_COMMENT = re.compile(r"\s*#[^'\"]*$")
_SCOPE = re.compile(r"""\s*scope\s*=\s*["'](module|class|package|session)["']\s*,?\s*""")


@dataclass
class Function:
    """Where a function is in a file's lines: its ``def`` line, body and indentation."""

    path: Path
    lines: list[str]
    start: int
    #: The line after the signature (the first line of the body).
    body: int
    indent: str


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_name(nodeid: str) -> tuple[str, str]:
    """The file and the function name of a node id (parameters left out)."""
    path, _, rest = nodeid.partition("::")
    return path, rest.rsplit("::", 1)[-1].split("[", 1)[0]


def test_classes(nodeid: str) -> list[str]:
    """The classes a node id's test is in, outermost first (``TestA::TestNested``)."""
    return nodeid.split("[", 1)[0].split("::")[1:-1]


def find_function(path: Path, name: str, classes: Sequence[str] = ()) -> Function | None:
    """The first function ``name`` of the file inside ``classes`` (nested so), or None.

    A method a class inherits is not in its body: then the file's first of that name.
    """
    if not path.is_file():
        return None
    lines = read_lines(path)
    within = _class_body(lines, classes)
    found = None if within is None else _function(path, lines, name, within)
    return found if found is not None or not classes else find_function(path, name)


def _function(path: Path, lines: list[str], name: str, within: range) -> Function | None:
    for index in within:
        line = lines[index]
        match = _DEF.match(line)
        if match and match["name"] == name:
            end = index
            while end < len(lines) and not _code(lines[end]).endswith(":"):
                end += 1
            body = _first_statement(lines, end + 1)
            return Function(path, lines, index, body, _indent_at(lines, body))
    return None


def _class_body(lines: list[str], classes: Sequence[str]) -> range | None:
    """The lines of the innermost of ``classes`` (the whole file for none), or None.

    Two classes of a file often have methods of the same name (``test_create``): the
    test's own is the one to rewrite.
    """
    start, stop, depth = 0, len(lines), -1
    for name in classes:
        pattern = re.compile(rf"^(\s*)class\s+{re.escape(name)}\b")
        for index in range(start, stop):
            match = pattern.match(lines[index])
            if match and len(match[1]) > depth:
                depth, start = len(match[1]), index + 1
                stop = next(
                    (
                        i
                        for i in range(start, stop)
                        if lines[i].strip() and _depth(lines[i]) <= depth
                    ),
                    stop,
                )
                break
        else:
            return None
    return range(start, stop)


def _depth(line: str) -> int:
    return len(line) - len(line.lstrip())


def _code(line: str) -> str:
    """The line without its end-of-line comment (``def test_x():  # noqa``) and spaces."""
    return _COMMENT.sub("", line.rstrip("\r\n")).rstrip()


def _first_statement(lines: list[str], index: int) -> int:
    """Past blank lines and a one-line docstring: where new statements go."""
    while index < len(lines) and not lines[index].strip():
        index += 1
    text = lines[index].strip() if index < len(lines) else ""
    quote = text[:3]
    if quote not in ('"""', "'''"):
        return index
    if len(text) >= 6 and text.endswith(quote):
        return index + 1
    # A docstring over several lines: past the line that closes it.
    for end in range(index + 1, len(lines)):
        if quote in lines[end]:
            return end + 1
    return index


def _indent_at(lines: list[str], index: int) -> str:
    line = lines[index] if index < len(lines) else ""
    return line[: len(line) - len(line.lstrip())] or "    "


def body_lines(function: Function) -> range:
    """The indices of the function's body lines (up to the next line indented no deeper)."""
    outer = len(function.lines[function.start]) - len(function.lines[function.start].lstrip())
    end = function.body
    while end < len(function.lines):
        line = function.lines[end]
        if line.strip() and len(line) - len(line.lstrip()) <= outer:
            break
        end += 1
    return range(function.body, end)


def with_parameters(function: Function, names: list[str]) -> list[str]:
    """The file's lines with ``names`` added to the function's parameters (if missing)."""
    lines = list(function.lines)
    signature = "".join(lines[function.start : function.body])
    wanted = [n for n in names if not re.search(rf"\b{n}\b", signature.split(")", 1)[0])]
    if not wanted:
        return lines
    # The closing parenthesis of the parameters: the last one before the colon.
    for index in range(function.body - 1, function.start - 1, -1):
        line = lines[index]
        close = line.rfind(")", 0, len(_code(line)))
        if close < 0:
            continue
        before = line[:close].rstrip()
        separator = "" if before.endswith("(") else ", "
        if before.endswith(","):
            separator = " "
        lines[index] = line[:close].rstrip() + separator + ", ".join(wanted) + line[close:]
        return lines
    return lines


def insert_statements(function: Function, lines: list[str], statements: list[str]) -> list[str]:
    """``lines`` (the function's file, parameters already changed) with statements first."""
    shift = len(lines) - len(function.lines)
    at = function.body + shift
    return [*lines[:at], *(f"{function.indent}{s}\n" for s in statements), *lines[at:]]


def with_imports(lines: list[str], imports: list[str]) -> list[str]:
    """``lines`` with the import statements that are not there yet, before the first import."""
    present = {line.strip() for line in lines}
    missing = [statement for statement in imports if statement not in present]
    if not missing:
        return lines
    at = _import_position(lines)
    return [*lines[:at], *(f"{statement}\n" for statement in missing), *lines[at:]]


def _import_position(lines: list[str]) -> int:
    """Where new imports go: before the first one, else after ``__future__`` imports and
    the module docstring. From the syntax tree, so that a docstring's line that starts
    with "from " is not taken for an import (the new one would land inside the string)."""
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        # Not Python as it stands: by the lines' look (the rerun drops a misfit).
        return _import_line(lines)
    position = 0
    for number, node in enumerate(tree.body):
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            position = node.end_lineno or position
        elif isinstance(node, ast.Import | ast.ImportFrom):
            return node.lineno - 1
        elif number == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            position = node.end_lineno or position
    return position


def _import_line(lines: list[str]) -> int:
    after_future = 0
    for index, line in enumerate(lines):
        if line.startswith("from __future__"):
            after_future = index + 1
        elif line.startswith(("import ", "from ")):
            return index
    if after_future:
        return after_future
    if lines and lines[0].lstrip()[:3] in ('"""', "'''"):
        # After the module docstring, so that it stays one.
        quote = lines[0].lstrip()[:3]
        for index, line in enumerate(lines):
            rest = line.lstrip()[3:] if index == 0 else line
            if quote in rest:
                return index + 1
    return 0


def find_fixture(paths: list[Path], name: str) -> Function | None:
    """The fixture ``name`` in the first of ``paths`` that defines it (a decorated def)."""
    for path in paths:
        function = find_function(path, name)
        if function is not None and any(
            _FIXTURE_DECORATOR.match(line)
            for line in function.lines[max(0, function.start - 3) : function.start]
        ):
            return function
    return None


def without_scope(function: Function) -> list[str] | None:
    """The file's lines with the fixture's wider scope taken off (function scope), or None."""
    lines = list(function.lines)
    for index in range(function.start - 1, max(-1, function.start - 4), -1):
        if _FIXTURE_DECORATOR.match(lines[index]) and _SCOPE.search(lines[index]):
            line = _SCOPE.sub("", lines[index], count=1)
            lines[index] = line.replace("(, ", "(").replace(", )", ")").replace("()", "")
            return lines
    return None


def unified_diff(relative: str, old: list[str] | None, new: list[str]) -> str:
    """A diff ``patch -p1`` applies; ``old`` None for a new file."""
    return "".join(
        difflib.unified_diff(
            old or [],
            new,
            fromfile="/dev/null" if old is None else f"a/{relative}",
            tofile=f"b/{relative}",
        )
    )

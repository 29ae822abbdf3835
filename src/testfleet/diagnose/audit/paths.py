"""Checks of paths and files: TF101, TF102, and TF110 for files other tests write"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from testfleet.diagnose.audit.core import AuditBase
from testfleet.diagnose.audit.vocabulary import (
    ISOLATING_CALLS,
    ISOLATING_METHODS,
    PATH_READ_METHODS,
    PATH_WRITE_METHODS,
    READ_PATH_CALLS,
    RESTORING_METHODS,
    SHARED_ABSOLUTE,
    SHARED_RELATIVE,
    SHARED_TEMP_CALLS,
    WRITE_PATH_CALLS,
    node_line,
    text_of,
)


class PathChecks(AuditBase):
    """Checks of paths and files."""

    def isolated_cwd_lines(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
        """Lines in a block whose working directory is the test's own.

        ``with runner.isolated_filesystem():`` (click), ``with tmp_path.as_cwd():``,
        ``with contextlib.chdir(tmp_path):``: relative paths there name private files.
        """
        lines: set[int] = set()
        for node in ast.walk(func):
            if not isinstance(node, ast.With | ast.AsyncWith):
                continue
            for item in node.items:
                call = item.context_expr
                if not isinstance(call, ast.Call):
                    continue
                attr = call.func.attr if isinstance(call.func, ast.Attribute) else ""
                if attr in ISOLATING_METHODS or self.qualified(call.func) in ISOLATING_CALLS:
                    end = node.end_lineno or node.lineno
                    lines.update(range(node.lineno, end + 1))
        return lines

    def restoring_block_lines(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
        """Lines in a block that puts back what is changed in it.

        ``with runner.isolation():`` (click) restores the standard streams and the
        environment; ``isolated_filesystem()`` the working directory.
        """
        lines: set[int] = set()
        for node in ast.walk(func):
            if isinstance(node, ast.With | ast.AsyncWith) and any(
                isinstance(item.context_expr, ast.Call)
                and isinstance(item.context_expr.func, ast.Attribute)
                and item.context_expr.func.attr in RESTORING_METHODS
                for item in node.items
            ):
                lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        return lines

    def _temp_root(self, node: ast.AST) -> str | None:
        """How ``node`` names a directory every test shares: the temp dir, tmp_path's parent."""
        while (
            isinstance(node, ast.Call)
            and self.qualified(node.func) in READ_PATH_CALLS
            and len(node.args) == 1
        ):
            node = node.args[0]
        if isinstance(node, ast.Call) and self.qualified(node.func) in SHARED_TEMP_CALLS:
            return ast.unparse(node)
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "parent"
            and isinstance(node.value, ast.Name)
            and node.value.id in {"tmp_path", "tmpdir"}
        ):
            return ast.unparse(node)
        return None

    def _in_temp_root(self, root: ast.AST, name: ast.AST) -> tuple[str, str] | None:
        """A fixed file name in a shared temp directory: the same file for every test."""
        shown_root = self._temp_root(root)
        text = text_of(name)
        if shown_root is None or text is None or "{}" in text:
            return None
        return f"/tmp/{text}", f"{text!r} in `{shown_root}`"

    def _path_text(self, node: ast.AST, local: frozenset[str]) -> tuple[str, str] | None:
        """The literal path an expression starts with, and how to show it."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self._in_temp_root(node.left, node.right) or self._path_text(node.left, local)
        if (
            isinstance(node, ast.Call)
            and self.qualified(node.func) in READ_PATH_CALLS
            and node.args
        ):
            if len(node.args) >= 2:
                joined = self._in_temp_root(node.args[0], node.args[1])
                if joined is not None:
                    return joined
            return self._path_text(node.args[0], local)
        text = text_of(node)
        if text is not None:
            return text, repr(text)
        if isinstance(node, ast.Name) and node.id not in local and node.id in self.strings:
            return self.strings[node.id], f"{node.id} ({self.strings[node.id]!r})"
        return None

    def _check_path_call(self, call: ast.Call, local: frozenset[str]) -> None:
        name = self.qualified(call.func)
        writes = name in WRITE_PATH_CALLS
        candidates: list[ast.AST] = []
        if name in {"open", "io.open", "builtins.open"} and call.args:
            writes = self._write_mode(call, 1)
            candidates.append(call.args[0])
        elif name in READ_PATH_CALLS and call.args:
            # Only a path under /tmp is shared wherever it is used; a relative one such as
            # "reports/x.json" may be resolved against a test's own directory (a CLI
            # argument, pytester's cwd), so it counts only where a file is touched.
            found = self._path_text(call.args[0], local)
            if found is not None and SHARED_ABSOLUTE.match(found[0]):
                self._hit(call.args[0], "TF101", f"the shared path {found[1]}")
            return
        elif isinstance(call.func, ast.Attribute) and call.func.attr in PATH_READ_METHODS:
            candidates.append(call.func.value)
        elif writes:
            candidates.extend(call.args[:2] if name.startswith("shutil.") else call.args[:1])
        elif isinstance(call.func, ast.Attribute) and (
            call.func.attr in PATH_WRITE_METHODS
            or (call.func.attr == "open" and self._write_mode(call, 0))
        ):
            writes = True
            candidates.append(call.func.value)
        elif name in {"os.getcwd", "pathlib.Path.cwd"}:
            if node_line(call) not in self.isolated_lines:
                self._hit(call, "TF102", f"`{ast.unparse(call)}`")
        elif name == "os.chdir":
            self._hit(call, "TF102", f"`{ast.unparse(call)}` outlives the test")
        if name.startswith("tempfile."):
            candidates.extend(kw.value for kw in call.keywords if kw.arg == "dir")
        for candidate in candidates:
            found = self._path_text(candidate, local)
            if found is None:
                continue
            text, shown = found
            if SHARED_ABSOLUTE.match(text) or SHARED_RELATIVE.match(text):
                self._hit(candidate, "TF101", f"the shared path {shown}")
            elif (
                writes
                and text
                and not text.startswith(("/", "~", ":memory:", "{}"))
                and node_line(candidate) not in self.isolated_lines
            ):
                self._hit(candidate, "TF102", f"the relative path {shown} is written")

    @staticmethod
    def _write_mode(call: ast.Call, position: int) -> bool:
        mode: ast.AST | None = call.args[position] if len(call.args) > position else None
        for keyword in call.keywords:
            if keyword.arg == "mode":
                mode = keyword.value
        text = text_of(mode) if mode is not None else None
        return text is not None and any(flag in text for flag in "wax+")

    def _path_key(self, node: ast.AST) -> str | None:
        """A path expression made only of literals and module-level names, as text."""
        # Path(X) and X name the same file.
        while (
            isinstance(node, ast.Call)
            and self.qualified(node.func) in READ_PATH_CALLS
            and len(node.args) == 1
        ):
            node = node.args[0]
        for part in ast.walk(node):
            if isinstance(part, ast.Name) and part.id not in self.module_names | set(self.aliases):
                return None
        if not any(isinstance(part, ast.Name | ast.Constant) for part in ast.walk(node)):
            return None
        return ast.unparse(node)

    def _file_accesses(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> Iterator[tuple[str, str, ast.AST]]:
        """(``read`` or ``write``, path key, node) for each file access with a fixed path."""
        params = {arg.arg for arg in func.args.args}
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            name = self.qualified(node.func)
            target: ast.AST | None = None
            kind = ""
            if name in {"open", "io.open"} and node.args:
                target, kind = node.args[0], "write" if self._write_mode(node, 1) else "read"
            elif isinstance(node.func, ast.Attribute) and node.func.attr in PATH_WRITE_METHODS:
                target, kind = node.func.value, "write"
            elif isinstance(node.func, ast.Attribute) and node.func.attr in PATH_READ_METHODS:
                target, kind = node.func.value, "read"
            if target is None:
                continue
            if any(isinstance(p, ast.Name) and p.id in params for p in ast.walk(target)):
                continue
            key = self._path_key(target)
            if key is not None:
                yield kind, key, node

    def _check_shared_files(self) -> None:
        tests = [scope.node for scope in self.scopes if scope.kind == "test"]
        accesses = {func.name: list(self._file_accesses(func)) for func in tests}
        written_by: dict[str, set[str]] = {}
        for name, found in accesses.items():
            for kind, key, _ in found:
                if kind == "write":
                    written_by.setdefault(key, set()).add(name)
        for name, found in accesses.items():
            own = {key for kind, key, _ in found if kind == "write"}
            reported: set[str] = set()
            for kind, key, node in found:
                others = written_by.get(key, set()) - {name}
                if kind == "read" and key not in own and others and key not in reported:
                    reported.add(key)
                    writers = ", ".join(f"`{other}`" for other in sorted(others))
                    self._hit(node, "TF110", f"reads `{key}`, which {writers} writes")

"""Checks of paths and files: TF101, TF102, and TF110 for files other tests write.

A fixed name is shared wherever it lives outside the test's own directory: the current
directory (every worker runs in it), the system temp directory and the home directory
(every worker and every run on the machine). Writes through a helper of the same module
count where the test or fixture calls the helper.
"""

from __future__ import annotations

import ast
import re
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
    SHARED_HOME_CALLS,
    SHARED_RELATIVE,
    SHARED_TEMP_CALLS,
    WRITE_PATH_CALLS,
    node_line,
    text_of,
)

#: A path under the home directory, as the audit writes it: every run of the user shares it.
SHARED_HOME = re.compile(r"^~(/|$)")
#: Calls that read the working directory.
CWD_CALLS = {"os.getcwd", "pathlib.Path.cwd"}
#: Path-like calls whose result names the same file as their argument.
SAME_PATH_METHODS = {"expanduser", "resolve", "absolute"}


class PathChecks(AuditBase):
    """Checks of paths and files."""

    #: Module-level helpers (neither test nor fixture) that write a fixed shared path:
    #: name -> (rule, detail, line) of each such write, found by `index_helpers`.
    helper_writes: dict[str, list[tuple[str, str, int]]]

    def index_shared_names(self) -> None:
        """Module-level names bound to a fixed name in the temp or home directory."""
        for stmt in self.tree.body:
            if not isinstance(stmt, ast.Assign):
                continue
            found = self._path_text(stmt.value, frozenset())
            # Only names built on the temp or home directory (`Path(gettempdir()) / "x"`):
            # a literal "/tmp/x" is reported where it is written, not at each use.
            if found is None or not (" in `" in found[1] or SHARED_HOME.match(found[0])):
                continue
            for target in stmt.targets:
                if isinstance(target, ast.Name) and target.id not in self.strings:
                    self.strings[target.id] = found[0]

    def index_helpers(self) -> None:
        """The shared writes of each module-level function that is no test or fixture."""
        scoped = {id(scope.node) for scope in self.scopes}
        helpers = [
            stmt
            for stmt in self.tree.body
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and id(stmt) not in scoped
        ]
        self.helper_writes = {}
        # Twice: a helper that calls a helper defined after it is seen on the second pass.
        for _ in range(2):
            for helper in helpers:
                self.helper_writes[helper.name] = self._writes_in(helper)

    def _writes_in(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> list[tuple[str, str, int]]:
        kept, self.hits = self.hits, []
        try:
            bound = frozenset(self.bound_names(func))
            self.isolated_lines = self.isolated_cwd_lines(func)
            for node in ast.walk(func):
                if isinstance(node, ast.Call):
                    self._check_path_call(node, bound)
                    self.check_helper_call(node)
            return [
                (hit.rule, hit.detail, hit.line)
                for hit in self.hits
                if hit.rule == "TF101"
                or hit.detail.endswith(" is written")
                or hit.detail.startswith("calls ")
            ]
        finally:
            self.hits = kept

    def check_helper_call(self, call: ast.Call) -> None:
        """A call of a helper of this module that writes a fixed shared path."""
        if not isinstance(call.func, ast.Name):
            return
        for rule, detail, line in getattr(self, "helper_writes", {}).get(call.func.id, []):
            if detail.startswith("calls "):
                what = detail
            elif detail.endswith(" is written"):
                what = f"writes {detail.removesuffix(' is written')}"
            else:
                what = f"uses {detail}"
            self._hit(call, rule, f"calls `{call.func.id}()`, which at line {line} {what}")

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
        return lines | self.restored_cwd_lines(func)

    def restored_cwd_lines(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
        """Lines of ``saved = os.getcwd(); os.chdir(d); try: ... finally: os.chdir(saved)``.

        The directory is put back, and ``d`` is computed (a temp dir of the test's), not a
        fixed path: the relative paths in between name the test's own files.
        """
        lines: set[int] = set()
        for node in ast.walk(func):
            body = getattr(node, "body", None)
            if not isinstance(body, list):
                continue
            for index, statement in enumerate(body):
                if not (isinstance(statement, ast.Try) and self._chdirs(statement.finalbody)):
                    continue
                start, targets = statement.lineno, self._chdirs(statement.body)
                for before in reversed(body[:index]):
                    if not (self._chdirs([before]) or self._saves_cwd(before)):
                        break
                    start, targets = before.lineno, targets + self._chdirs([before])
                if targets and not any(isinstance(t, ast.Constant) for t in targets):
                    lines.update(range(start, (statement.end_lineno or statement.lineno) + 1))
        return lines

    def _chdirs(self, statements: list[ast.stmt]) -> list[ast.expr]:
        """The directories the ``os.chdir`` calls in ``statements`` change to."""
        return [
            call.args[0]
            for statement in statements
            for call in ast.walk(statement)
            if isinstance(call, ast.Call) and call.args and self.qualified(call.func) == "os.chdir"
        ]

    def _saves_cwd(self, statement: ast.stmt) -> bool:
        return isinstance(statement, ast.Assign) and any(
            isinstance(call, ast.Call) and self.qualified(call.func) in CWD_CALLS
            for call in ast.walk(statement.value)
        )

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
        if isinstance(node, ast.Call) and self._is_home(node):
            return ast.unparse(node)
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "parent"
            and isinstance(node.value, ast.Name)
            and node.value.id in {"tmp_path", "tmpdir"}
        ):
            return ast.unparse(node)
        return None

    def _is_home(self, call: ast.Call) -> bool:
        name = self.qualified(call.func)
        if name in SHARED_HOME_CALLS:
            return True
        return name == "os.path.expanduser" and bool(call.args) and text_of(call.args[0]) == "~"

    def _in_temp_root(self, root: ast.AST, name: ast.AST) -> tuple[str, str] | None:
        """A fixed file name in a shared temp directory: the same file for every test."""
        shown_root = self._temp_root(root)
        text = text_of(name)
        if shown_root is None or text is None or "{}" in text:
            return None
        where = "~" if isinstance(root, ast.Call) and self._home_rooted(root) else "/tmp"
        return f"{where}/{text}", f"{text!r} in `{shown_root}`"

    def _home_rooted(self, node: ast.Call) -> bool:
        while self.qualified(node.func) in READ_PATH_CALLS and len(node.args) == 1:
            if not isinstance(node.args[0], ast.Call):
                return False
            node = node.args[0]
        return self._is_home(node)

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
        if isinstance(node, ast.Call) and not node.args:
            # Path("~/x").expanduser(), P.resolve(): the same file as P.
            method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if method in SAME_PATH_METHODS and isinstance(node.func, ast.Attribute):
                return self._path_text(node.func.value, local)
        if isinstance(node, ast.Call) and self.qualified(node.func) == "os.path.expanduser":
            return self._path_text(node.args[0], local) if node.args else None
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
        elif name in CWD_CALLS:
            if node_line(call) not in self.isolated_lines:
                self._hit(call, "TF102", f"`{ast.unparse(call)}`")
        elif name == "os.chdir" and node_line(call) not in self.isolated_lines:
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
            elif writes and SHARED_HOME.match(text) and text != "~":
                # Only writes: tests read the user's settings (~/.gitconfig) harmlessly.
                where = "" if " in `" in shown else " in the home directory"
                self._hit(candidate, "TF101", f"the shared path {shown}{where}")
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

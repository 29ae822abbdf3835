"""The walk every audit checker shares: what one module defines, and where tests run."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from testfleet.diagnose.audit.catalogue import Hit
from testfleet.diagnose.audit.vocabulary import (
    MUTABLE_CALLS,
    READ_PATH_CALLS,
    SETUP_NAMES,
    SHARED_ABSOLUTE,
    dotted,
    node_line,
    text_of,
)


@dataclass
class Scope:
    """A function whose body runs as part of a test: a test, a fixture, a setup method."""

    node: ast.FunctionDef | ast.AsyncFunctionDef
    kind: str  # "test", "fixture" or "setup"
    cls: ast.ClassDef | None
    fixture_scope: str = "function"


class AuditBase:
    """What one parsed module defines; the checkers of each rule family build on it."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.hits: list[Hit] = []
        self.aliases: dict[str, str] = {}
        self.imported: set[str] = set()
        self.mutable_globals: dict[str, int] = {}
        self.strings: dict[str, str] = {}
        self.module_names: set[str] = set()
        self.classes: dict[str, ast.ClassDef] = {}
        self.scopes: list[Scope] = []
        self._mutations: list[tuple[ast.AST, str, str]] = []
        #: Names bound by ``from module import NAME``: objects that live in another module.
        self.from_imported: set[str] = set()
        #: In the scope being checked: changes of shared containers (node, name, detail).
        self.state_changes: list[tuple[ast.AST, str, str]] = []
        #: In the scope being checked: local names bound to shared state.
        self.state_aliases: dict[str, str] = {}
        #: In the scope being checked: lines where the working directory is the test's own.
        self.isolated_lines: set[int] = set()
        self._index_module()

    # -- what the module defines ------------------------------------------------------

    def _index_module(self) -> None:
        for stmt in self.tree.body:
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    self.aliases[bound] = alias.name if alias.asname else bound
                    self.imported.add(bound)
            elif isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
                for alias in stmt.names:
                    bound = alias.asname or alias.name
                    self.aliases[bound] = f"{stmt.module}.{alias.name}"
                    self.imported.add(bound)
                    if alias.name[:1].isupper() and alias.name.isupper():
                        # An ALL_CAPS name is a constant or a registry, not a module.
                        self.from_imported.add(bound)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.module_names.add(target.id)
                        if self.is_mutable(stmt.value):
                            self.mutable_globals[target.id] = stmt.lineno
                        value = stmt.value
                        # OUT = Path("/tmp/out") names the same file as OUT = "/tmp/out".
                        if (
                            isinstance(value, ast.Call)
                            and self.qualified(value.func) in READ_PATH_CALLS
                            and len(value.args) == 1
                        ):
                            value = value.args[0]
                        text = text_of(value)
                        if text is not None and value is stmt.value:
                            self.strings[target.id] = text
                        elif text is not None and not SHARED_ABSOLUTE.match(text):
                            # A Path under /tmp is reported where it is built, not at each use.
                            self.strings[target.id] = text
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                self.module_names.add(stmt.name)
                self._add_scope(stmt, None)
            elif isinstance(stmt, ast.ClassDef):
                self.module_names.add(stmt.name)
                self.classes[stmt.name] = stmt
                is_test_class = stmt.name.startswith("Test") or any(
                    (dotted(base) or "").endswith("TestCase") for base in stmt.bases
                )
                for item in stmt.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        self._add_scope(item, stmt if is_test_class else None, in_class=True)

    def _add_scope(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        cls: ast.ClassDef | None,
        *,
        in_class: bool = False,
    ) -> None:
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if self.qualified(target).endswith("fixture"):
                scope = "function"
                if isinstance(decorator, ast.Call):
                    for keyword in decorator.keywords:
                        value = text_of(keyword.value)
                        if keyword.arg == "scope" and value is not None:
                            scope = value
                self.scopes.append(Scope(node, "fixture", cls, scope))
                return
        if in_class and cls is None:
            return
        if node.name.startswith("test"):
            self.scopes.append(Scope(node, "test", cls))
        elif node.name in SETUP_NAMES:
            self.scopes.append(Scope(node, "setup", cls))

    @staticmethod
    def bound_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
        """The names a function binds: its parameters and every name it assigns."""
        params = {
            arg.arg for arg in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)
        }
        stored = {
            node.id
            for node in ast.walk(func)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        }
        return params | stored

    @staticmethod
    def declared_global(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
        return {
            name for node in ast.walk(func) if isinstance(node, ast.Global) for name in node.names
        }

    def qualified(self, node: ast.AST) -> str:
        """The dotted name of ``node``, import aliases resolved: ``sleep`` -> ``time.sleep``."""
        name = dotted(node)
        if name is None:
            return ""
        root, _, rest = name.partition(".")
        base = self.aliases.get(root, root)
        return f"{base}.{rest}" if rest else base

    def is_mutable(self, node: ast.AST) -> bool:
        """A literal or constructor call that builds a mutable container."""
        if isinstance(
            node, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp
        ):
            return True
        return isinstance(node, ast.Call) and self.qualified(node.func) in MUTABLE_CALLS

    def _hit(self, node: ast.AST, rule: str, detail: str) -> None:
        self.hits.append(Hit(node_line(node), rule, detail))

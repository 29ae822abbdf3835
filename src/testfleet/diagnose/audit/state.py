"""Checks of shared state: TF103, TF104, TF107"""

from __future__ import annotations

import ast

from testfleet.diagnose.audit.core import AuditBase, Scope
from testfleet.diagnose.audit.vocabulary import (
    MUTATORS,
    dotted,
    walk_shallow,
)


class StateChecks(AuditBase):
    """Checks of shared state."""

    # -- TF103, TF107: shared state --------------------------------------------------------

    def _shared_container(self, node: ast.AST, scope: Scope, local: frozenset[str]) -> str | None:
        """The name of the module- or class-level mutable object ``node`` refers to.

        Followed through imports (``state.FLAGS``, ``from state import FLAGS``) and through
        names the scope binds to such an object (``flags = state.FLAGS``).
        """
        if isinstance(node, ast.Name):
            if node.id in self.state_aliases:
                return self.state_aliases[node.id]
            if node.id in self.mutable_globals and node.id not in local:
                return node.id
            if node.id in self.from_imported and node.id not in local:
                return self.qualified(node)
            return None
        imported = self._imported_state(node, local)
        if imported is not None:
            return imported
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = node.value.id
            cls = scope.cls if owner in {"self", "cls"} else self.classes.get(owner)
            if cls is not None and node.attr in self._class_mutables(cls):
                return f"{cls.name}.{node.attr}"
        return None

    def _imported_state(self, node: ast.AST, local: frozenset[str]) -> str | None:
        """``state.FLAGS``: an attribute of an imported module, which every test shares."""
        name = dotted(node)
        if name is None or "." not in name:
            return None
        root = name.split(".")[0]
        if root in local or root not in self.imported:
            return None
        qualified = self.qualified(node)
        # The environment has a rule of its own (TF107), with its own fix.
        return None if qualified.startswith("os.environ") else qualified

    def bind_state_aliases(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope, local: frozenset[str]
    ) -> None:
        """Names the scope binds to shared state (``flags = state.FLAGS``), not to copies."""
        self.state_aliases = {}
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    shared = self._shared_container(node.value, scope, local)
                    if shared is not None:
                        self.state_aliases[target.id] = shared

    def _class_mutables(self, cls: ast.ClassDef) -> set[str]:
        names: set[str] = set()
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and self.is_mutable(stmt.value):
                names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
            elif (
                isinstance(stmt, ast.AnnAssign)
                and stmt.value is not None
                and self.is_mutable(stmt.value)
                and isinstance(stmt.target, ast.Name)
            ):
                names.add(stmt.target.id)
        return names

    def _class_attributes(self, cls: ast.ClassDef) -> set[str]:
        names: set[str] = set()
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign):
                names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                names.add(stmt.target.id)
        return names

    def _check_state(
        self, node: ast.AST, scope: Scope, local: frozenset[str], declared_global: set[str]
    ) -> None:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
        ):
            name = self._shared_container(node.func.value, scope, local)
            if name:
                self.state_changes.append((node, name, f"`{name}.{node.func.attr}(...)`"))
            return
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Subscript):
                name = self._shared_container(target.value, scope, local)
                if name:
                    self.state_changes.append((target, name, f"`{ast.unparse(target)}` changed"))
            elif isinstance(target, ast.Name) and target.id in declared_global:
                self._hit(target, "TF103", f"module-level `{target.id}` rebound (`global`)")
            elif (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and not isinstance(node, ast.Delete)
            ):
                owner = target.value.id
                cls = scope.cls if owner == "cls" else self.classes.get(owner)
                if (
                    owner not in local - {"cls"}
                    and cls is not None
                    and (target.attr in self._class_attributes(cls))
                ):
                    self._hit(target, "TF103", f"class attribute `{cls.name}.{target.attr}` set")

    @staticmethod
    def _restored_lines(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
        """Lines that run at teardown: after a fixture's ``yield``, or in a ``finally``."""
        lines: set[int] = set()
        yields = [
            node.lineno
            for node in walk_shallow(func)
            if isinstance(node, ast.Yield | ast.YieldFrom)
        ]
        if yields:
            first = min(yields)
            end = func.end_lineno or first
            lines.update(range(first + 1, end + 1))
        for node in ast.walk(func):
            if isinstance(node, ast.Try) and node.finalbody:
                for stmt in node.finalbody:
                    lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
        return lines

    def _settings_target(self, target: ast.AST, local: frozenset[str]) -> str | None:
        """``settings.debug`` when ``settings`` was imported (not a local object)."""
        name = dotted(target)
        if name is None or "." not in name:
            return None
        root = name.split(".")[0]
        if root in local or root not in self.imported:
            return None
        return name

    def _env_target(self, node: ast.AST) -> bool:
        return self.qualified(node) == "os.environ"

    def _check_settings(self, node: ast.AST, local: frozenset[str]) -> None:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Subscript) and self._env_target(target.value):
                self._report_mutation(node, "os.environ", f"`{ast.unparse(target)}` set")
            elif isinstance(target, ast.Attribute):
                name = self._settings_target(target, local)
                if name:
                    self._report_mutation(node, name, f"`{name}` set")

    def _check_env_call(self, call: ast.Call) -> None:
        name = self.qualified(call.func)
        if name in {"os.putenv", "os.unsetenv"} or (
            isinstance(call.func, ast.Attribute)
            and call.func.attr in {"update", "pop", "setdefault", "clear", "popitem"}
            and self._env_target(call.func.value)
        ):
            self._report_mutation(call, "os.environ", f"`{ast.unparse(call.func)}(...)`")
        elif name == "setattr" and len(call.args) >= 2:
            owner = dotted(call.args[0])
            if owner and owner.split(".")[0] in self.imported:
                self._report_mutation(call, owner, f"`setattr({owner}, ...)`")

    def _report_mutation(self, node: ast.AST, key: str, detail: str) -> None:
        self._mutations.append((node, key, detail))

    # -- TF104: fixtures ------------------------------------------------------------------

    def _check_fixture_value(self, scope: Scope) -> None:
        func = scope.node
        bound = {
            target.id: stmt.value
            for stmt in walk_shallow(func)
            if isinstance(stmt, ast.Assign)
            for target in stmt.targets
            if isinstance(target, ast.Name)
        }
        for node in walk_shallow(func):
            value: ast.AST | None = None
            if isinstance(node, ast.Return | ast.Yield):
                value = node.value
            if value is None:
                continue
            # Follow the name back to what it was built from, through several assignments.
            seen: set[str] = set()
            while isinstance(value, ast.Name) and value.id in bound and value.id not in seen:
                seen.add(value.id)
                value = bound[value.id]
            if self.is_mutable(value) or self._mutable_instance(value):
                shown = ast.unparse(value)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                self._hit(
                    node, "TF104", f"`{func.name}` (scope {scope.fixture_scope!r}) gives `{shown}`"
                )

    def _mutable_instance(self, value: ast.AST) -> bool:
        """An object built from a mapping (``Config(**defaults)``) or a mutable local class.

        Fields filled from a dict are meant to be read and changed like one; a class of
        this module counts unless it is a frozen dataclass or a named tuple.
        """
        if not isinstance(value, ast.Call):
            return False
        name = dotted(value.func) or ""
        last = name.rsplit(".", 1)[-1]
        if not last[:1].isupper():
            return False
        cls = self.classes.get(name)
        if cls is not None:
            return not _immutable_class(cls)
        from_mapping = any(keyword.arg is None for keyword in value.keywords)
        return from_mapping or any(isinstance(arg, ast.Dict | ast.DictComp) for arg in value.args)


def _immutable_class(cls: ast.ClassDef) -> bool:
    for decorator in cls.decorator_list:
        if isinstance(decorator, ast.Call) and any(
            keyword.arg == "frozen"
            and isinstance(keyword.value, ast.Constant)
            and keyword.value.value
            for keyword in decorator.keywords
        ):
            return True
    bases = {(dotted(base) or "").rsplit(".", 1)[-1] for base in cls.bases}
    return bool(bases & {"NamedTuple", "Enum", "IntEnum", "StrEnum"})

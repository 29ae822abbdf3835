"""The rules of the static isolation audit, and the walk that applies them to one module.

The rules are described in `audit_catalogue`, the names they recognise in
`audit_vocabulary`; each family of rules has a checker of its own (`audit_paths`,
`audit_state`, `audit_data`, `audit_sleep`), and `ModuleAudit` runs them all.
"""

from __future__ import annotations

import ast

from testfleet.diagnose.audit.catalogue import (
    HIGH,
    LOW,
    MEDIUM,
    RULES,
    SEVERITIES,
    Hit,
    Rule,
    rule_ids,
)
from testfleet.diagnose.audit.core import Scope
from testfleet.diagnose.audit.data import DataChecks
from testfleet.diagnose.audit.paths import PathChecks
from testfleet.diagnose.audit.sleep import SleepChecks
from testfleet.diagnose.audit.state import StateChecks
from testfleet.diagnose.audit.vocabulary import (
    FIXTURE_SCOPES_SHARED,
    SETUP_ONLY_NAMES,
    TEARDOWN_NAMES,
    is_port,
    names_a_port,
    node_line,
)

__all__ = [
    "HIGH",
    "LOW",
    "MEDIUM",
    "RULES",
    "SEVERITIES",
    "Hit",
    "ModuleAudit",
    "Rule",
    "audit_module",
    "rule_ids",
]


class ModuleAudit(PathChecks, DataChecks, StateChecks, SleepChecks):
    """Apply every rule to one parsed module."""

    # -- the walk ---------------------------------------------------------------------

    def run(self) -> list[Hit]:
        """Every rule's hits in this module, in no particular order."""
        self.index_shared_names()
        self.index_helpers()
        if self.scopes:
            # Module-level statements of a test module run for its tests too.
            top = [
                stmt
                for stmt in self.tree.body
                if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            ]
            for stmt in top:
                self._check_module_statement(stmt)
        for scope in self.scopes:
            self._check_scope(scope)
        self._check_shared_files()
        return self.hits

    def _check_module_statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign) and is_port(stmt.value):
            for target in stmt.targets:
                if isinstance(target, ast.Name) and names_a_port(target.id):
                    self._hit(stmt, "TF105", f"`{target.id} = {ast.unparse(stmt.value)}`")
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call):
                self._check_path_call(node, frozenset())
                self._check_port_call(node)

    def _check_scope(self, scope: Scope) -> None:
        func = scope.node
        params = {
            arg.arg for arg in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)
        }
        local = self._locals(func)
        declared_global = self.declared_global(func)
        restored = self._restored_lines(func) | self.restoring_block_lines(func)
        self._mutations = []
        self.state_changes = []
        self.bind_state_aliases(func, scope, local)
        self.isolated_lines = self.isolated_cwd_lines(func)
        for node in ast.walk(func):
            if isinstance(node, ast.Call):
                self._check_path_call(node, local)
                self.check_helper_call(node)
                self._check_port_call(node)
                self._check_db_call(node)
                self._check_query(node)
                self._check_env_call(node)
            self._check_state(node, scope, local, declared_global)
            self._check_settings(node, local)
            if isinstance(node, ast.For):
                self._check_pattern_cleanup(node)
        # A change undone at teardown (after a fixture's yield, in a finally) is the
        # hand-written form of monkeypatch: neither it nor the lines that undo it count.
        in_teardown = self._teardown_keys(scope)
        for rule, changes in (("TF107", self._mutations), ("TF103", self.state_changes)):
            undone = {key for node, key, _ in changes if node_line(node) in restored}
            undone |= in_teardown
            for node, key, detail in changes:
                if key not in undone:
                    self._hit(node, rule, detail)
        self._check_sleep(func)
        if scope.kind == "fixture" and scope.fixture_scope in FIXTURE_SCOPES_SHARED:
            self._check_fixture_value(scope)
        if scope.kind == "test":
            self._check_unseeded_read(func, params)

    # -- TF101, TF102: paths ------------------------------------------------------------

    def _locals(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
        return frozenset(self.bound_names(func) - self.declared_global(func))

    def _teardown_keys(self, scope: Scope) -> set[str]:
        """What a class's teardown changes back: a change of it in setUp or a test is undone.

        Seen from the teardown, what setUp changed: the teardown's change is the undoing.
        """
        if scope.cls is None:
            return set()
        partners = SETUP_ONLY_NAMES if scope.node.name in TEARDOWN_NAMES else TEARDOWN_NAMES
        kept = (self.hits, self._mutations, self.state_changes, dict(self.state_aliases))
        keys: set[str] = set()
        try:
            for stmt in scope.cls.body:
                if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                if stmt.name not in partners:
                    continue
                self.hits, self._mutations, self.state_changes = [], [], []
                local, declared_global = self._locals(stmt), self.declared_global(stmt)
                self.bind_state_aliases(stmt, scope, local)
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Call):
                        self._check_env_call(node)
                    self._check_state(node, scope, local, declared_global)
                    self._check_settings(node, local)
                keys |= {key for _, key, _ in [*self._mutations, *self.state_changes]}
        finally:
            self.hits, self._mutations, self.state_changes, self.state_aliases = kept
        return keys


def audit_module(tree: ast.Module) -> list[Hit]:
    """The rules' hits in one module, sorted by line and rule."""
    hits = ModuleAudit(tree).run()
    return sorted(set(hits), key=lambda hit: (hit.line, hit.rule, hit.detail))

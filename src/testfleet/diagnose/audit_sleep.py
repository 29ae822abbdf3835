"""Checks of waiting: TF108"""

from __future__ import annotations

import ast

from testfleet.diagnose.audit_core import AuditBase


class SleepChecks(AuditBase):
    """Checks of waiting."""

    # -- TF108: sleep ---------------------------------------------------------------------

    def _check_sleep(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # A sleep inside a loop polls for a condition; one on its own waits a fixed time.
        def visit(node: ast.AST, in_loop: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                    continue
                if isinstance(child, ast.Call) and not in_loop:
                    name = self.qualified(child.func)
                    if name in {"time.sleep", "asyncio.sleep"}:
                        self._hit(child, "TF108", f"`{ast.unparse(child)}` outside a polling loop")
                visit(child, in_loop or isinstance(child, ast.While | ast.For | ast.AsyncFor))

        visit(func, False)

"""Checks of waiting: TF108."""

from __future__ import annotations

import ast

from testfleet.diagnose.audit.core import AuditBase
from testfleet.diagnose.audit.vocabulary import LOCK_WORDS


class SleepChecks(AuditBase):
    """Checks of waiting: a fixed sleep that stands for waiting on something else."""

    def _check_sleep(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # A sleep inside a loop polls for a condition; one on its own waits a fixed time.
        # A sleep in a block that holds a lock is work done while others are kept out.
        def visit(node: ast.AST, in_loop: bool, holding: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                    continue
                if isinstance(child, ast.Call) and not (in_loop or holding):
                    name = self.qualified(child.func)
                    # sleep(0) waits for nothing: it lets other threads or tasks run.
                    if name in {"time.sleep", "asyncio.sleep"} and not _zero(child):
                        self._hit(child, "TF108", f"`{ast.unparse(child)}` outside a polling loop")
                visit(
                    child,
                    in_loop or isinstance(child, ast.While | ast.For | ast.AsyncFor),
                    holding or _holds_lock(child),
                )

        visit(func, False, False)


def _holds_lock(node: ast.AST) -> bool:
    if not isinstance(node, ast.With | ast.AsyncWith):
        return False
    text = " ".join(ast.unparse(item.context_expr).lower() for item in node.items)
    return any(word in text for word in LOCK_WORDS)


def _zero(call: ast.Call) -> bool:
    return bool(call.args) and isinstance(call.args[0], ast.Constant) and call.args[0].value == 0

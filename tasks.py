"""invoke tasks: testfleet's CI pipeline (testfleet.invoke), as any project uses it.

`invoke ci` is what CI runs; `PYTEST_WORKERS=1 invoke ci` (or `invoke ci --workers 1`)
is the rollback to a serial run. docs/rollback.md explains both.
"""

from __future__ import annotations

from testfleet.invoke import namespace

__all__ = ["namespace"]

"""The ``testfleet`` command line: one module per command, the shared output options apart.

``main`` (the command table) is in :mod:`testfleet.cli.program`; each command's options, work
and output in its own module, imported only when that command runs.
"""

from __future__ import annotations

from testfleet.cli.program import console, main

__all__ = ["console", "main"]

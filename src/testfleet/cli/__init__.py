"""The ``testfleet`` command line: one module per command, shared output options apart."""

from __future__ import annotations

from testfleet.cli.app import console, main

__all__ = ["console", "main"]

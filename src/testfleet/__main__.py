"""Allow ``python -m testfleet``."""

from __future__ import annotations

from testfleet.cli import console

raise SystemExit(console())

"""Allow ``python -m testfleet.cli``."""

from __future__ import annotations

from testfleet.cli import console

raise SystemExit(console())

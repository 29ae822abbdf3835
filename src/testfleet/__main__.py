"""Allow ``python -m testfleet``."""

from __future__ import annotations

from testfleet.cli import main

raise SystemExit(main())

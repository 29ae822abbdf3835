"""The pytest side of ``--testfleet-replay-file``: the barrier, then each test at its start.

The file and the barrier are in `barrier`; the plugin registers these hooks only when the
option is given.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from testfleet.diagnose.barrier import Side


class ReplayHooks:
    """Registered by the plugin only when ``--testfleet-replay-file`` is given."""

    def __init__(self, path: Path) -> None:
        try:
            self.side = Side.read(path)
        except ValueError as exc:
            raise pytest.UsageError(f"--testfleet-replay-file: {exc}") from None
        #: When this process left the barrier (monotonic seconds); None before.
        self.left: float | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        # tryfirst: before the timing recorder notes the start, so that it records the
        # start the replay lined up.
        if self.left is None:
            self.side.meet()
            self.left = time.monotonic()
            time.sleep(self.side.delay)
        self.side.start_at(self.left, item.nodeid)

"""The pytest side of ``--testfleet-replay-file``: start the first test together with others.

A replay of `testfleet classify` starts one pytest process per worker of the failing run;
each reads its side of the replay from the file (a JSON object): the barrier directory
shared by the processes, its own name and the others', and the seconds it waits after
the barrier before its first test. Collection and imports take different times in each
process, so the barrier, not the process start, lines the tests up as they ran.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Seconds a process waits for the others at the barrier before it runs anyway: one that
#: failed to collect must not hang the replay.
BARRIER_TIMEOUT = 60.0
#: Seconds between two looks at the barrier: a millisecond keeps the starts within one.
POLL = 0.001


@dataclass(frozen=True)
class Side:
    """One process of a replay, as its file describes it."""

    barrier: Path
    name: str
    parties: tuple[str, ...]
    delay: float
    timeout: float = BARRIER_TIMEOUT

    @classmethod
    def read(cls, path: Path) -> Side:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                Path(data["barrier"]),
                str(data["name"]),
                tuple(str(p) for p in data["parties"]),
                float(data["delay"]),
                float(data.get("timeout", BARRIER_TIMEOUT)),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise pytest.UsageError(f"--testfleet-replay-file: {path}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "barrier": str(self.barrier),
            "name": self.name,
            "parties": list(self.parties),
            "delay": self.delay,
            "timeout": self.timeout,
        }

    def wait(self) -> bool:
        """Arrive at the barrier, wait for the others, then the delay; False on timeout."""
        self.barrier.mkdir(parents=True, exist_ok=True)
        (self.barrier / f"{self.name}.ready").touch()
        deadline = time.monotonic() + self.timeout
        arrived = False
        while time.monotonic() < deadline:
            if all((self.barrier / f"{p}.ready").exists() for p in self.parties):
                arrived = True
                break
            time.sleep(POLL)
        if self.delay > 0:
            time.sleep(self.delay)
        return arrived


class ReplayHooks:
    """Registered by the plugin only when ``--testfleet-replay-file`` is given."""

    def __init__(self, path: Path) -> None:
        self.side = Side.read(path)
        self.waited = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        # tryfirst: before the timing recorder notes the start, so that it records the
        # start the replay lined up.
        if not self.waited:
            self.waited = True
            self.side.wait()

"""The barrier of a replay: processes that start their first test together.

A replay of `testfleet classify` starts one pytest process per worker of the failing run.
Each reads its `Side` from a replay file (``--testfleet-replay-file``, see `replay_hooks`):
the barrier directory the processes share, its own name and the others', and the seconds
it waits after the barrier before its first test, and when each later test starts. Collection
and imports take different times in each process, so the barrier, not the process start,
lines the tests up as they ran; the later tests' starts keep a side from drifting when its
tests run faster than in the run (a collision of tests of a few milliseconds needs that).
Kept apart from the pytest hooks: `collide` writes the files without importing pytest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    #: Seconds after the barrier at which each test starts (the later tests of a side):
    #: a test that would come early waits; one that comes late starts at once.
    starts: dict[str, float] = field(default_factory=dict)

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
                {str(k): float(v) for k, v in data.get("starts", {}).items()},
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "barrier": str(self.barrier),
            "name": self.name,
            "parties": list(self.parties),
            "delay": self.delay,
            "timeout": self.timeout,
            "starts": dict(self.starts),
        }

    def wait(self) -> bool:
        """Arrive at the barrier, wait for the others, then the delay; False on timeout."""
        arrived = self.meet()
        if self.delay > 0:
            time.sleep(self.delay)
        return arrived

    def start_at(self, left: float, nodeid: str) -> None:
        """Wait until ``nodeid``'s start, counted from ``left`` (when the barrier was left)."""
        if nodeid in self.starts:
            time.sleep(max(0.0, left + self.starts[nodeid] - time.monotonic()))

    def meet(self) -> bool:
        """Arrive at the barrier and wait for the others; False on timeout."""
        self.barrier.mkdir(parents=True, exist_ok=True)
        (self.barrier / f"{self.name}.ready").touch()
        deadline = time.monotonic() + self.timeout
        arrived = False
        while time.monotonic() < deadline:
            if all((self.barrier / f"{p}.ready").exists() for p in self.parties):
                arrived = True
                break
            time.sleep(POLL)
        return arrived

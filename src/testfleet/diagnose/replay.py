"""Replaying a parallel-only failure: which tests overlapped it, and which one collides.

A test that failed on an xdist worker and passes every serial rerun either failed by
chance or collided with a test that ran *at the same moment* on another worker (a fixed
file in the current directory, a fixed name in the temp directory, a port). An ordinary
rerun rarely lines the two up again; the timing report says which tests overlapped the
failure and when each started, so `collide` starts them again together, offsets kept.

This module is the pure part: the overlapping tests from a report, the offsets of each
replay, and the search for the smallest set of partners that still collides, given an
oracle that replays a set and says whether the failure came back. `collide` answers the
oracle with real pytest processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

#: Offsets of the replays after the first, as fractions of the failed test's duration:
#: the first lines the starts up as they were, the next ones move the partners a little
#: later and earlier, in case the run's own timing was not the one that collides.
JITTER = (0.0, 0.25, -0.25, 0.5, -0.5, 0.1, -0.1, 0.75)
#: Smallest spread of the jitter, in seconds: a test measured at 0 s still moves a little.
MIN_SPREAD = 0.02


@dataclass(frozen=True)
class Partner:
    """A test that ran on another worker while the failed test ran."""

    nodeid: str
    worker: str
    #: Seconds its start came after the failed test's start (negative: before it).
    offset: float


@dataclass(frozen=True)
class Collision:
    """What the replays of one failed test found."""

    #: The tests that overlapped it on other workers in the run.
    overlapping: tuple[Partner, ...] = ()
    #: The smallest set of them that made it fail again; empty when none did.
    partners: tuple[Partner, ...] = ()
    #: How many replays ran in all (each one: the test and some partners, together).
    replays: int = 0
    #: The plan file `python -m testfleet.diagnose.collide` reads to reproduce it.
    plan: Path | None = None
    #: Seconds the failed test took in the run: the spread of the replays' jitter.
    duration: float = 0.0

    @property
    def found(self) -> bool:
        return bool(self.partners)

    @property
    def names(self) -> list[str]:
        return [p.nodeid for p in self.partners]

    def to_json(self) -> dict[str, Any]:
        """The keys of a classification result this adds."""
        return {
            "collides_with": self.names,
            "replays": self.replays,
            "overlapping": len(self.overlapping),
        }


class Open(Protocol):
    """A failed test as `testfleet classify` holds it (its ``Verdict``)."""

    nodeid: str
    worker: str
    cls: str
    collision: Collision

    @property
    def parallel(self) -> bool: ...


#: Replays the failed test beside these partners; True when it failed again.
Oracle = Callable[[tuple[Partner, ...]], bool]
#: Replays one failed test of a report (node id, worker) and says what it found.
Collide = Callable[[Mapping[str, Any], str, str], Collision]
#: Makes the `Collide` of a classification: (pytest args, runs, scratch dir, output).
ColliderFactory = Callable[[Sequence[str], int, Path, Path], Collide]


def _first_attempts(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in report["tests"] if t.get("attempt", 1) == 1 and "start" in t]


def overlapping(report: Mapping[str, Any], nodeid: str) -> tuple[list[Partner], float]:
    """The tests of other workers that ran while ``nodeid`` ran, and its duration.

    A test overlaps when its interval [start, stop] meets the failed test's; they come
    in the order they started.
    """
    tests = _first_attempts(report)
    victim = next((t for t in tests if t["nodeid"] == nodeid), None)
    if victim is None:
        return [], 0.0
    start = float(victim["start"])
    stop = float(victim.get("stop", start))
    found = [
        Partner(str(t["nodeid"]), str(t["worker"]), round(float(t["start"]) - start, 6))
        for t in tests
        if t["worker"] != victim["worker"]
        and float(t["start"]) <= stop
        and float(t.get("stop", t["start"])) >= start
    ]
    return sorted(found, key=lambda p: (p.offset, p.nodeid)), max(0.0, stop - start)


def by_worker(partners: Sequence[Partner]) -> dict[str, list[Partner]]:
    """The partners of each worker, in the order they started: one process each."""
    sides: dict[str, list[Partner]] = {}
    for partner in sorted(partners, key=lambda p: (p.offset, p.nodeid)):
        sides.setdefault(partner.worker, []).append(partner)
    return sides


def delays(partners: Sequence[Partner], shift: float = 0.0) -> tuple[float, dict[str, float]]:
    """How long the failed test's process and each partner process wait after the barrier.

    Each partner process starts its first test ``offset + shift`` seconds after the failed
    test starts; whichever starts first waits for nothing.
    """
    firsts = {worker: tests[0].offset + shift for worker, tests in by_worker(partners).items()}
    earliest = min([0.0, *firsts.values()])
    # Rounded to the microsecond: a sleep is no finer, and the plans stay readable.
    waits = {worker: round(first - earliest, 6) for worker, first in firsts.items()}
    return round(-earliest, 6), waits


def starts(partners: Sequence[Partner], shift: float = 0.0) -> dict[str, float]:
    """Seconds after the barrier at which each partner starts, on the clock of `delays`."""
    victim_wait, _ = delays(partners, shift) if partners else (0.0, {})
    return {p.nodeid: round(p.offset + shift + victim_wait, 6) for p in partners}


def shift_of(attempt: int, duration: float) -> float:
    """The shift of replay ``attempt`` (from 0): none first, then around it."""
    spread = max(duration, MIN_SPREAD)
    return JITTER[attempt % len(JITTER)] * spread


def smallest_collision(partners: Sequence[Partner], collides: Oracle) -> tuple[Partner, ...]:
    """The smallest set of ``partners`` with which the failed test still fails; () if none.

    Halves first (a collision usually needs one partner), then, where both halves are
    needed, each partner left out in turn. Every call to ``collides`` is one round of
    replays, so the search keeps them few: about log2(n) rounds for one partner.
    """
    current = tuple(partners)
    if not current or not collides(current):
        return ()
    while len(current) > 1:
        half = len(current) // 2
        for part in (current[:half], current[half:]):
            if collides(part):
                current = part
                break
        else:
            break
    for partner in list(current):
        rest = tuple(p for p in current if p != partner)
        if partner in current and rest and collides(rest):
            current = rest
    return current


def replay_open(
    report: Mapping[str, Any],
    verdicts: Sequence[Open],
    collides: Collide,
    echo: Callable[[str], None],
) -> None:
    """Replay each parallel failure that passed every serial rerun beside its overlap."""
    for verdict in verdicts:
        if verdict.parallel and verdict.cls in ("parallel-only", "undecided"):
            verdict.collision = found = collides(report, verdict.nodeid, verdict.worker)
            if found.found:
                verdict.cls = "parallel-only"
            echo(
                f"testfleet: {found.replays} replays beside the {len(found.overlapping)} tests "
                f"that overlapped {verdict.nodeid}: "
                + (f"collides with {', '.join(found.names)}" if found.found else "no failure")
            )

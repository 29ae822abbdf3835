"""Replays with real pytest processes: the failed test and its partners, started together.

Each replay starts one pytest process per worker of the failing run: the failed test's
worker runs the failed test alone, each other worker runs its overlapping tests in the
order they ran. Each process gets its worker's environment (``PYTEST_XDIST_WORKER``,
``PYTEST_XDIST_WORKER_COUNT``, one ``PYTEST_XDIST_TESTRUNUID`` for all), its tests in an
order file and its side of the barrier in a replay file (``--testfleet-replay-file``), so
that the tests start with the offsets they had in the run. `replay` decides which sets
to replay; this module only runs them.

``python -m testfleet.diagnose.collide PLAN`` replays a collision `testfleet classify`
found (the plan file it wrote), and exits 1 when the failure comes back.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from testfleet.core.atomic import write_json_atomic
from testfleet.diagnose import replay
from testfleet.diagnose.barrier import Side
from testfleet.diagnose.probes import fixed_order_args, split_args
from testfleet.diagnose.replay import Collision, Partner
from testfleet.runs import commands
from testfleet.scheduling import ordering
from testfleet.timing import report as reports

SCHEMA = "testfleet.collision/1"
#: Seconds a replay's processes may take before they are stopped (the replay then counts
#: as not failing: a hang is not the collision the run showed).
PROCESS_TIMEOUT = 300.0
#: Replays `python -m testfleet.diagnose.collide` runs unless told.
DEFAULT_TIMES = 5
FAILING = ("failed", "error")

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """A failed test, the tests to replay beside it, and how the run ran them."""

    victim: str
    worker: str
    workers: int
    pytest_args: list[str]
    partners: tuple[Partner, ...]
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "victim": self.victim,
            "worker": self.worker,
            "workers": self.workers,
            "duration": self.duration,
            "pytest_args": self.pytest_args,
            "partners": [
                {"nodeid": p.nodeid, "worker": p.worker, "offset": p.offset} for p in self.partners
            ],
        }

    @classmethod
    def read(cls, path: Path) -> Plan:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            raise ValueError(f"{path}: not a collision plan ({SCHEMA})")
        partners = tuple(
            Partner(str(p["nodeid"]), str(p["worker"]), float(p["offset"]))
            for p in data["partners"]
        )
        return cls(
            str(data["victim"]),
            str(data["worker"]),
            int(data["workers"]),
            [str(a) for a in data["pytest_args"]],
            partners,
            float(data.get("duration", 0.0)),
        )


def worker_env(worker: str, workers: int, uid: str) -> dict[str, str]:
    """The variables xdist sets in a worker (a combined report names the shard first)."""
    return {
        "PYTEST_XDIST_WORKER": worker.rsplit("-", 1)[-1],
        "PYTEST_XDIST_WORKER_COUNT": str(workers),
        "PYTEST_XDIST_TESTRUNUID": uid,
    }


def side_command(nodeids: Sequence[str], options: Sequence[str], directory: Path) -> list[str]:
    """One process of a replay: its tests, report and replay file are in ``directory``."""
    files = ordering.unique(nodeid.split("::", 1)[0] for nodeid in nodeids)
    return commands.pytest_command(
        [
            # One process, the given order, no cache: the processes of a replay must not
            # race on .pytest_cache, nor leave its "last failed" pointing at a replay.
            *fixed_order_args(None, options),
            f"--testfleet-order-file={directory / 'order.txt'}",
            f"--testfleet-report={directory / 'report.json'}",
            f"--testfleet-replay-file={directory / 'side.json'}",
            # Each its own temporary directory, as xdist gives each worker one.
            f"--basetemp={directory / 'tmp'}",
            *files,
        ]
    )


class Replayer:
    """The oracle of `replay.smallest_collision`: up to ``replays`` replays of a set."""

    def __init__(self, plan: Plan, scratch: Path, replays: int, cwd: Path | None = None) -> None:
        self.plan = plan
        self.scratch = scratch
        self.replays = replays
        self.cwd = cwd
        self.options = split_args(plan.pytest_args, cwd).kept
        #: Replays run so far, and the victim's outcome in each.
        self.outcomes: list[str] = []
        #: The shift of the replay in which each set that collided made the victim fail.
        self.shifts: dict[tuple[Partner, ...], float] = {}

    def __call__(self, partners: tuple[Partner, ...]) -> bool:
        # Stops at the first failure: one is enough to tell a collision from chance.
        for attempt in range(self.replays):
            if self.once(partners, attempt) in FAILING:
                self.shifts[partners] = replay.shift_of(attempt, self.plan.duration)
                return True
        return False

    def once(self, partners: Sequence[Partner], attempt: int, shift: float | None = None) -> str:
        """One replay: every process started, lined up at the barrier; the victim's outcome."""
        base = self.scratch / f"replay-{len(self.outcomes) + 1}"
        if shift is None:
            shift = replay.shift_of(attempt, self.plan.duration)
        wait, waits = replay.delays(partners, shift)
        lined_up = replay.starts(partners, shift)
        sides = [(self.plan.worker, [self.plan.victim], wait)] + [
            (worker, [p.nodeid for p in tests], waits[worker])
            for worker, tests in replay.by_worker(partners).items()
        ]
        names = tuple(f"side{index}" for index in range(len(sides)))
        uid = uuid.uuid4().hex
        running = []
        for name, (worker, nodeids, delay) in zip(names, sides, strict=True):
            directory = base / name
            directory.mkdir(parents=True)
            ordering.write_order_file(directory / "order.txt", nodeids)
            side = Side(base / "barrier", name, names, delay, starts=lined_up)
            write_json_atomic(directory / "side.json", side.to_json())
            env = {**os.environ, **worker_env(worker, self.plan.workers, uid)}
            with (directory / "output.log").open("w", encoding="utf-8") as log:
                command = side_command(nodeids, self.options, directory)
                running.append(
                    subprocess.Popen(
                        command, cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        for process in running:
            try:
                process.wait(timeout=PROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        outcome = victim_outcome(base / names[0] / "report.json", self.plan.victim)
        self.outcomes.append(outcome)
        return outcome


def victim_outcome(report: Path, nodeid: str) -> str:
    """The victim's outcome in its process's report; ``missing`` when it did not run."""
    if not report.is_file():
        return "missing"
    records = reports.load(report)["tests"]
    return next((str(t["outcome"]) for t in records if t["nodeid"] == nodeid), "missing")


def find(
    report: Mapping[str, Any],
    nodeid: str,
    worker: str,
    pytest_args: Sequence[str],
    replays: int,
    scratch: Path,
    plan_path: Path,
) -> Collision:
    """Replay ``nodeid`` beside the tests that overlapped it; the smallest set that collides.

    The plan of a collision found goes to ``plan_path``, for the reproduce command.
    """
    partners, duration = replay.overlapping(report, nodeid)
    if not partners:
        return Collision(duration=duration)
    workers = int(report["run"].get("workers") or len(replay.by_worker(partners)) + 1)
    plan = Plan(nodeid, worker, workers, list(pytest_args), tuple(partners), duration)
    replayer = Replayer(plan, scratch, replays)
    found = replay.smallest_collision(partners, replayer)
    if found:
        # The offsets of the replay that collided: the reproduce command starts there.
        shift = replayer.shifts.get(found, 0.0)
        lined_up = tuple(replace(p, offset=round(p.offset + shift, 6)) for p in found)
        write_json_atomic(plan_path, replace(plan, partners=lined_up).to_json())
    return Collision(
        tuple(partners), found, len(replayer.outcomes), plan_path if found else None, duration
    )


def replays_for(runs: int) -> int:
    """Replays of each set: as many as the reruns (``--runs``), at least three."""
    return max(3, runs)


class Collider:
    """What `testfleet classify` calls for each failure left open: `find`, files named."""

    def __init__(self, pytest_args: Sequence[str], runs: int, scratch: Path, output: Path) -> None:
        self.pytest_args = list(pytest_args)
        self.replays = replays_for(runs)
        self.scratch = scratch
        self.output = output
        self.count = 0

    def __call__(self, report: Mapping[str, Any], nodeid: str, worker: str) -> Collision:
        self.count += 1
        scratch = self.scratch / f"collide-{self.count}"
        plan = self.output.parent / f"{self.output.stem}-collide-{self.count}.json"
        return find(report, nodeid, worker, self.pytest_args, self.replays, scratch, plan)


def reproduce_command(plan: Path) -> list[str]:
    """The command that replays a collision from its plan file."""
    return [sys.executable, "-m", "testfleet.diagnose.collide", str(plan)]


def main(argv: Sequence[str] | None = None) -> int:
    """Replay a collision plan; exit 1 when the failure came back, 0 when it did not."""
    parser = argparse.ArgumentParser(
        prog="python -m testfleet.diagnose.collide",
        description="Replay a failed test beside the tests it collided with, as "
        "`testfleet classify` found them: one pytest process per worker, started together.",
    )
    parser.add_argument("plan", type=Path, help="the plan file testfleet classify wrote")
    parser.add_argument(
        "--times", type=int, default=DEFAULT_TIMES, help=f"replays (default {DEFAULT_TIMES})"
    )
    args = parser.parse_args(argv)
    try:
        plan = Plan.read(args.plan)
    except (OSError, ValueError, KeyError) as exc:
        parser.error(str(exc))
    with tempfile.TemporaryDirectory(prefix="testfleet-collide-") as tmp:
        replayer = Replayer(plan, Path(tmp), 1)
        for attempt in range(args.times):
            # The plan's offsets are those that collided: each replay starts there, unshifted.
            outcome = replayer.once(plan.partners, attempt, shift=0.0)
            print(
                f"testfleet: replay {attempt + 1}/{args.times}: {plan.victim} {outcome} beside "
                + ", ".join(p.nodeid for p in plan.partners)
            )
    failures = sum(o in FAILING for o in replayer.outcomes)
    print(
        f"testfleet: {plan.victim} failed in {failures} of {args.times} replays"
        + (": the collision is reproduced" if failures else "")
        + f" ({shlex.join(reproduce_command(args.plan))})"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

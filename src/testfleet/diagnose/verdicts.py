"""A classified run as data: each failed test's verdict, and the whole run's classification.

:mod:`testfleet.diagnose.classify` reruns the tests and fills these in;
:mod:`testfleet.diagnose.classify_render` says what they mean and what to do next.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testfleet.core import paths
from testfleet.core.workers import MAIN_WORKER
from testfleet.diagnose import collide, replay
from testfleet.diagnose.reruns import failed, rerun_command

SCHEMA = "testfleet.classification/1"
CLASSES = ("failure", "parallel-only", "flaky", "order-dependent", "undecided")
#: Classes that fail the run whatever the threshold; flaky tests fail it above the threshold.
#: An undecided test may be parallel-only: it fails the run until it is told apart.
FAILING_CLASSES = ("failure", "parallel-only", "order-dependent", "undecided")
DEFAULT_OUTPUT = paths.CLASSIFICATION
#: Exit status when the report has no failed test: nothing to classify, as pytest's 5.
EXIT_NOTHING = 5
#: The variable of the flaky threshold, named in the advice when the run goes over it.
THRESHOLD_ENV = "TESTFLEET_FLAKY_THRESHOLD"


@dataclass
class Verdict:
    """One failed test of the run, its reruns and its class."""

    nodeid: str
    worker: str
    outcome: str
    #: Node ids that ran before it on its worker, in the order they ran.
    context: list[str]
    in_context: list[str] = field(default_factory=list)
    alone: list[str] = field(default_factory=list)
    cls: str = ""
    #: Tests of any worker that started before it ended: its neighbours in the run.
    neighbours: list[str] = field(default_factory=list)
    #: Outcome in the suite's serial order, and the node ids that ran before it there.
    in_suite: list[str] = field(default_factory=list)
    suite_context: list[str] = field(default_factory=list)
    #: Outcomes under xdist beside its neighbours.
    beside: list[str] = field(default_factory=list)
    #: What replaying it beside the tests that overlapped it found (see `replay`).
    collision: replay.Collision = field(default_factory=replay.Collision)

    @property
    def parallel(self) -> bool:
        # A combined report of CI shards names the shard first: shard2-main ran serially.
        return self.worker.rsplit("-", 1)[-1] != MAIN_WORKER

    @property
    def needs_other_worker(self) -> bool:
        """Order-dependent on a test that ran on another worker (found in suite order)."""
        return (
            self.cls == "order-dependent"
            and bool(self.in_suite)
            and all(failed(o) for o in self.in_context)
        )


def order_file(output: Path, worker: str) -> Path:
    """Where the order of ``worker``'s tests goes, for `testfleet bisect --order-file`."""
    return output.parent / f"{output.stem}-order-{worker}.txt"


def bisect_command(verdict: Verdict, order: Path, pytest_args: Sequence[str]) -> list[str]:
    """The `testfleet bisect` command that looks for the test that breaks ``verdict``."""
    # The order of its worker alone, not the report's: tests of other workers that ran
    # meanwhile did not run before it in its process, and would only slow the search.
    command = ["testfleet", "bisect", "--order-file", str(order), "--test", verdict.nodeid]
    return [*command, "--", *pytest_args] if pytest_args else command


@dataclass
class Classification:
    """The result of classifying one run's failed tests."""

    run_id: str | None
    report: Path
    tests: int
    runs: int
    threshold: float
    pytest_args: list[str]
    verdicts: list[Verdict]
    output: Path = DEFAULT_OUTPUT
    #: The rollback switch of this project (see `classify_render.rollback_command`).
    rollback_command: str = "testfleet run --workers 1"

    def order_of(self, verdict: Verdict) -> tuple[Path, list[str]]:
        """The order file `testfleet bisect` reads for ``verdict``, and what goes in it."""
        if verdict.needs_other_worker:
            path = order_file(self.output, f"suite-{verdict.worker}")
            return path, [*verdict.suite_context, verdict.nodeid]
        return order_file(self.output, verdict.worker), [*verdict.context, verdict.nodeid]

    def bisect(self, verdict: Verdict) -> list[str]:
        """The `testfleet bisect` command for an order-dependent test."""
        return bisect_command(verdict, self.order_of(verdict)[0], self.pytest_args)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CLASSES, 0)
        for verdict in self.verdicts:
            counts[verdict.cls] += 1
        return counts

    def of(self, cls: str) -> list[Verdict]:
        return [v for v in self.verdicts if v.cls == cls]

    @property
    def flaky_percent(self) -> float:
        return round(100 * len(self.of("flaky")) / self.tests, 2) if self.tests else 0.0

    @property
    def over_threshold(self) -> bool:
        return self.flaky_percent > self.threshold

    @property
    def exit_status(self) -> int:
        if not self.verdicts:
            return EXIT_NOTHING
        failing = any(v.cls in FAILING_CLASSES for v in self.verdicts)
        return 1 if failing or self.over_threshold else 0

    @property
    def suggest_rollback(self) -> bool:
        return self.over_threshold or bool(self.of("parallel-only"))

    def reproduce(self, verdict: Verdict) -> list[str]:
        """The command that shows the test's outcome: its collision, its context, or alone."""
        if verdict.collision.plan is not None:
            return collide.reproduce_command(verdict.collision.plan)
        if verdict.cls == "order-dependent":
            return rerun_command(self.order_of(verdict)[1], self.pytest_args)
        return rerun_command([verdict.nodeid], self.pytest_args)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "report": str(self.report),
            "tests": self.tests,
            "runs": self.runs,
            "threshold_percent": self.threshold,
            "counts": self.counts(),
            "flaky_percent": self.flaky_percent,
            "over_threshold": self.over_threshold,
            "exit_status": self.exit_status,
            "rollback": self.rollback_command if self.suggest_rollback else None,
            "results": [self._result(v) for v in self.verdicts],
        }

    def _result(self, v: Verdict) -> dict[str, Any]:
        return {
            "nodeid": v.nodeid,
            "class": v.cls,
            "worker": v.worker,
            "outcome": v.outcome,
            "context": v.context,
            "reruns": {
                "context": v.in_context,
                "alone": v.alone,
                "suite": v.in_suite,
                "beside": v.beside,
            },
            "needs_other_worker": v.needs_other_worker,
            **v.collision.to_json(),
            "reproduce": shlex.join(self.reproduce(v)),
            "bisect": (shlex.join(self.bisect(v)) if v.cls == "order-dependent" else None),
        }

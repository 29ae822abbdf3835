"""Tell why the tests of a run failed: failure, parallel-only, flaky, order-dependent, undecided.

Each failed test runs again, ``runs`` times, serially in its order context (the tests that
ran before it on its worker, in one process) and alone; where those leave the class open,
once in the suite's serial order, ``runs`` times under xdist beside its neighbours (see
`reruns`), and replayed beside the tests that overlapped it on other workers (see `replay`).
The outcomes decide its class:

- ``flaky``: both outcomes in one mode;
- ``failure``: fails in every mode;
- ``order-dependent``: fails in its order context and passes alone, or (parallel run)
  fails in its worker's order and alone but passes in the suite's serial order: it needs
  a test that ran on another worker;
- ``parallel-only``: failed on an xdist worker, passes every serial rerun, and failed
  again under xdist beside its neighbours or replayed beside a test it collides with;
- ``undecided``: failed on an xdist worker and passed every rerun and replay.

The reruns go into the timing report as attempts 2, 3, ... of the failed tests.
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testfleet.core.atomic import write_json_atomic
from testfleet.core.workers import MAIN_WORKER
from testfleet.diagnose import collide, replay, reruns
from testfleet.diagnose.probes import xdist_off
from testfleet.diagnose.reruns import (
    MISSING,
    RerunError,
    Runner,
    failed,
    rerun_command,
    run_quietly,
)
from testfleet.scheduling import ordering
from testfleet.timing import report as reports
from testfleet.timing.records import summarize

__all__ = ["MISSING", "RerunError", "Runner", "rerun_command", "run_quietly"]

SCHEMA = "testfleet.classification/1"
CLASSES = ("failure", "parallel-only", "flaky", "order-dependent", "undecided")
#: Classes that fail the run whatever the threshold; flaky tests fail it above the threshold.
#: An undecided test may be parallel-only: it fails the run until it is told apart.
FAILING_CLASSES = ("failure", "parallel-only", "order-dependent", "undecided")
FAILED_OUTCOMES = reruns.FAILED_OUTCOMES
RUNS_ENV = "TESTFLEET_CLASSIFY_RUNS"
THRESHOLD_ENV = "TESTFLEET_FLAKY_THRESHOLD"
DEFAULT_RUNS = 3
DEFAULT_THRESHOLD = 5.0
DEFAULT_OUTPUT = Path("reports/classification.json")
#: Exit status when the report has no failed test: nothing to classify, as pytest's 5.
EXIT_NOTHING = 5

Echo = Callable[[str], None]


def runs_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The ``classify_runs`` setting: ``TESTFLEET_CLASSIFY_RUNS``, [tool.testfleet], else 3."""
    from testfleet.settings import config

    return int(config.load(environ=environ).get("classify_runs"))


def parse_threshold(text: str) -> float:
    """A percentage of the run's tests, ``5``, ``2.5`` or ``5%``, from 0 to 100."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ValueError(f"threshold {text!r} is not a percentage such as 5 or 2.5%") from None
    if not 0 <= value <= 100:
        raise ValueError(f"threshold {text!r} is not a percentage from 0 to 100")
    return value


def threshold_from_env(environ: Mapping[str, str] | None = None) -> float:
    """The ``flaky_threshold`` setting: ``TESTFLEET_FLAKY_THRESHOLD``, [tool.testfleet], else 5
    (per cent of the run's tests)."""
    from testfleet.settings import config

    return float(config.load(environ=environ).get("flaky_threshold"))


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


def classify_outcomes(
    in_context: Sequence[str],
    alone: Sequence[str],
    parallel: bool,
    in_suite: Sequence[str] = (),
    beside: Sequence[str] = (),
) -> str:
    """The class of a test that failed in the run, from the outcomes of its reruns."""
    # A test that failed in a serial run (or the serial phase) failed in its order
    # context: that failure is one more outcome of that mode.
    context = [str(o) for o in in_context] if parallel else ["failed", *in_context]
    if len({failed(o) for o in context}) > 1 or len({failed(o) for o in alone}) > 1:
        return "flaky"
    if all(failed(o) for o in context):
        if not all(failed(o) for o in alone):
            return "order-dependent"
        if parallel and in_suite and not any(failed(o) for o in in_suite):
            return "order-dependent"
        return "failure"
    # Passes serially in its context: the run's failure came from running in parallel,
    # or by chance. Only failing again under xdist tells which.
    return "parallel-only" if any(failed(o) for o in beside) else "undecided"


def failed_tests(report: Mapping[str, Any]) -> list[Verdict]:
    """The failed tests of the run, each with the tests that ran before it on its worker."""
    first = sorted(
        (t for t in report["tests"] if t.get("attempt", 1) == 1),
        key=lambda t: (float(t["start"]), t["nodeid"]),
    )
    by_worker: dict[str, list[Mapping[str, Any]]] = {}
    for test in first:
        by_worker.setdefault(test["worker"], []).append(test)
    verdicts = []
    for worker, tests in by_worker.items():
        for index, test in enumerate(tests):
            if test["outcome"] in FAILED_OUTCOMES:
                context = [t["nodeid"] for t in tests[:index]]
                verdict = Verdict(test["nodeid"], worker, test["outcome"], context)
                stop = float(test.get("stop", test["start"]))
                verdict.neighbours = [
                    t["nodeid"]
                    for t in first
                    if float(t["start"]) < stop and t["nodeid"] != test["nodeid"]
                ]
                verdicts.append(verdict)
    return sorted(verdicts, key=lambda v: v.nodeid)


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


def rerun(
    verdicts: Sequence[Verdict],
    pytest_args: Sequence[str],
    runs: int,
    scratch: Path,
    echo: Echo = print,
    runner: Runner = run_quietly,
) -> list[dict[str, Any]]:
    """Run the failed tests again, fill in their outcomes and return their new records."""
    records: list[dict[str, Any]] = []
    # One run per worker covers every failed test of that worker: its context is the
    # worker's tests up to the last failed one, exactly as they ran in the parallel run.
    last_on_worker = _last_per_worker(verdicts)
    for attempt in range(1, runs + 1):
        # The command lines are the same in every round: show them once.
        show = echo if attempt == 1 else None
        for worker, last in sorted(last_on_worker.items()):
            nodeids = [*last.context, last.nodeid]
            base = scratch / f"{worker}-{attempt}"
            command = reruns.order_file_command(
                nodeids, pytest_args, base.with_suffix(".json"), base.with_suffix(".txt")
            )
            got = reruns.run_report(command, base.with_suffix(".json"), len(nodeids), show, runner)
            mine = [v for v in verdicts if v.worker == worker]
            for verdict in mine:
                verdict.in_context.append(
                    reruns.outcome_of(got, verdict.nodeid, "context", records)
                )
            echo(
                f"testfleet: rerun {attempt}/{runs} in order context of {worker} "
                f"({len(nodeids)} tests): "
                + ", ".join(f"{v.nodeid} {v.in_context[-1]}" for v in mine)
            )
        for index, verdict in enumerate(verdicts):
            path = scratch / f"alone-{index}-{attempt}.json"
            command = rerun_command([verdict.nodeid], pytest_args, path)
            got = reruns.run_report(command, path, 1, show, runner)
            verdict.alone.append(reruns.outcome_of(got, verdict.nodeid, "alone", records))
            echo(f"testfleet: rerun {attempt}/{runs} alone: {verdict.nodeid} {verdict.alone[-1]}")
    _in_suite_order(verdicts, pytest_args, scratch, echo, runner, records)
    _beside_neighbours(verdicts, pytest_args, runs, scratch, echo, runner, records)
    for verdict in verdicts:
        verdict.cls = classify_outcomes(
            verdict.in_context, verdict.alone, verdict.parallel, verdict.in_suite, verdict.beside
        )
    return records


def _in_suite_order(
    verdicts: Sequence[Verdict],
    pytest_args: Sequence[str],
    scratch: Path,
    echo: Echo,
    runner: Runner,
    records: list[dict[str, Any]],
) -> None:
    """One serial run of the suite for the parallel failures that fail in context and alone."""
    open_ = [
        v for v in verdicts if v.parallel and all(failed(o) for o in [*v.in_context, *v.alone])
    ]
    if not open_:
        return
    echo(
        f"testfleet: {len(open_)} failed tests fail in their worker's order and alone: the "
        "whole suite runs once serially, in its own order, in case they need a test that "
        "ran on another worker"
    )
    path = scratch / "suite.json"
    got = reruns.run_report(reruns.suite_command(pytest_args, path), path, 0, echo, runner)
    order = [str(t["nodeid"]) for t in sorted(got, key=lambda t: float(t["start"]))]
    for verdict in open_:
        verdict.in_suite.append(reruns.outcome_of(got, verdict.nodeid, "suite", records))
        if verdict.nodeid in order:
            verdict.suite_context = order[: order.index(verdict.nodeid)]
        echo(f"testfleet: rerun in suite order: {verdict.nodeid} {verdict.in_suite[-1]}")


def _beside_neighbours(
    verdicts: Sequence[Verdict],
    pytest_args: Sequence[str],
    runs: int,
    scratch: Path,
    echo: Echo,
    runner: Runner,
    records: list[dict[str, Any]],
) -> None:
    """Rerun under xdist the parallel failures that passed every serial rerun."""
    open_ = [
        v for v in verdicts if v.parallel and not any(failed(o) for o in [*v.in_context, *v.alone])
    ]
    if not open_ or not xdist_off(pytest_args):
        # Without xdist (not installed, or -p no:xdist) they stay undecided.
        return
    for index, verdict in enumerate(open_):
        nodeids = ordering.unique([*verdict.neighbours, verdict.nodeid])
        for attempt in range(1, runs + 1):
            base = scratch / f"beside-{index}-{attempt}"
            command = reruns.order_file_command(
                nodeids,
                pytest_args,
                base.with_suffix(".json"),
                base.with_suffix(".txt"),
                workers=reruns.BESIDE_WORKERS,
            )
            show = echo if attempt == 1 else None
            got = reruns.run_report(command, base.with_suffix(".json"), len(nodeids), show, runner)
            verdict.beside.append(reruns.outcome_of(got, verdict.nodeid, "beside", records))
            echo(
                f"testfleet: rerun {attempt}/{runs} under xdist beside its "
                f"{len(nodeids) - 1} neighbours: {verdict.nodeid} {verdict.beside[-1]}"
            )


def _last_per_worker(verdicts: Sequence[Verdict]) -> dict[str, Verdict]:
    """The failed test of each worker that ran last: its context holds the others'."""
    last: dict[str, Verdict] = {}
    for verdict in verdicts:
        known = last.get(verdict.worker)
        if known is None or len(verdict.context) > len(known.context):
            last[verdict.worker] = verdict
    return last


def _check_unclassified(report: Mapping[str, Any]) -> None:
    if "classification" in report.get("summary", {}):
        raise reports.ReportError(
            "the report is classified already (its reruns are in it): classify a new run's report"
        )


def add_reruns(
    report: Mapping[str, Any], records: Sequence[Mapping[str, Any]], counts: Mapping[str, int]
) -> dict[str, Any]:
    """The report with the reruns as attempts 2, 3, ... and the classes in its summary.

    The summary keeps counting the run's own outcomes (attempt 1): the reruns are a
    diagnosis, counted apart under ``reruns``.
    """
    _check_unclassified(report)
    tests = [dict(t) for t in report["tests"]]
    attempts: dict[str, int] = {}
    for test in tests:
        attempts[test["nodeid"]] = max(attempts.get(test["nodeid"], 0), test.get("attempt", 1))
    for record in records:
        nodeid = record["nodeid"]
        attempts[nodeid] = attempts.get(nodeid, 0) + 1
        tests.append({**record, "attempt": attempts[nodeid]})
    tests.sort(key=lambda t: (t["nodeid"], t.get("attempt", 1)))
    summary = summarize([t for t in tests if t.get("attempt", 1) == 1])
    summary["reruns"] = summarize([t for t in tests if t.get("attempt", 1) > 1])
    summary["classification"] = dict(counts)
    return {**report, "tests": tests, "summary": summary}


def classify(
    report_path: Path,
    pytest_args: Sequence[str],
    runs: int,
    threshold: float,
    output: Path = DEFAULT_OUTPUT,
    run_id: str | None = None,
    echo: Echo = print,
    runner: Runner = run_quietly,
    collider: replay.ColliderFactory = collide.Collider,
) -> Classification:
    """Classify the failed tests of the run in ``report_path``; update it, write ``output``."""
    # Imported here: the rendering needs this module's classes.
    from testfleet.diagnose import classify_render

    report = reports.load(report_path, run_id=run_id)
    _check_unclassified(report)
    first = [t for t in report["tests"] if t.get("attempt", 1) == 1]
    verdicts = failed_tests(report)
    result = Classification(
        run_id=report["run"].get("id"),
        report=report_path,
        tests=len(first),
        runs=runs,
        threshold=threshold,
        pytest_args=list(pytest_args),
        verdicts=verdicts,
        output=output,
        rollback_command=classify_render.rollback_command(Path.cwd()),
    )
    if not verdicts:
        echo(f"testfleet: no test failed in {report_path}: nothing to classify")
        write_json_atomic(output, result.to_json())
        return result
    run = report["run"]
    echo(
        f"testfleet: {len(verdicts)} failed tests of run {run.get('id')} "
        f"({run.get('mode')}, {run.get('workers')} workers): each runs again {runs} times "
        "in its order context and alone"
    )
    report_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".testfleet-classify-", dir=report_path.parent) as tmp:
        records = rerun(verdicts, pytest_args, runs, Path(tmp), echo, runner)
        replay.replay_open(report, verdicts, collider(pytest_args, runs, Path(tmp), output), echo)
    # Both files are replaced in one rename each: a reader never sees half of either.
    write_json_atomic(report_path, add_reruns(report, records, result.counts()))
    write_json_atomic(output, result.to_json())
    orders: dict[Path, list[str]] = {}
    for verdict in result.of("order-dependent"):
        path, nodeids = result.order_of(verdict)
        # One file per worker: the longest order holds every shorter one of that worker.
        if len(nodeids) > len(orders.get(path, [])):
            orders[path] = nodeids
    for path, nodeids in orders.items():
        ordering.write_order_file(path, nodeids)
    for line in classify_render.render_text(result):
        echo(line)
    return result

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

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from testfleet.core.atomic import write_json_atomic
from testfleet.diagnose import collide, replay, reruns
from testfleet.diagnose.classify_render import render_text, rollback_command
from testfleet.diagnose.probes import xdist_off
from testfleet.diagnose.reruns import (
    MISSING,
    RerunError,
    Runner,
    failed,
    rerun_command,
    run_quietly,
)
from testfleet.diagnose.verdicts import (
    CLASSES,
    DEFAULT_OUTPUT,
    EXIT_NOTHING,
    FAILING_CLASSES,
    SCHEMA,
    THRESHOLD_ENV,
    Classification,
    Verdict,
    bisect_command,
    order_file,
)
from testfleet.scheduling import ordering
from testfleet.settings import config
from testfleet.settings.argtypes import parse_threshold
from testfleet.timing import report as reports
from testfleet.timing.records import summarize

__all__ = [
    "CLASSES",
    "DEFAULT_OUTPUT",
    "EXIT_NOTHING",
    "FAILING_CLASSES",
    "MISSING",
    "SCHEMA",
    "THRESHOLD_ENV",
    "Classification",
    "RerunError",
    "Runner",
    "Verdict",
    "bisect_command",
    "order_file",
    "parse_threshold",
    "rerun_command",
    "run_quietly",
]

FAILED_OUTCOMES = reruns.FAILED_OUTCOMES
RUNS_ENV = "TESTFLEET_CLASSIFY_RUNS"
DEFAULT_RUNS = 3
DEFAULT_THRESHOLD = 5.0

Echo = Callable[[str], None]


def runs_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The ``classify_runs`` setting: ``TESTFLEET_CLASSIFY_RUNS``, [tool.testfleet], else 3."""
    return int(config.load(environ=environ).get("classify_runs"))


def threshold_from_env(environ: Mapping[str, str] | None = None) -> float:
    """The ``flaky_threshold`` setting: ``TESTFLEET_FLAKY_THRESHOLD``, [tool.testfleet], else 5
    (per cent of the run's tests)."""
    return float(config.load(environ=environ).get("flaky_threshold"))


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
        rollback_command=rollback_command(Path.cwd()),
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
    for line in render_text(result):
        echo(line)
    return result

"""Tell why the tests of a run failed: failure, parallel-only, flaky or order-dependent.

Each failed test runs again, ``runs`` times, in two modes: serially in its order
context (the tests that ran before it on its worker, in the same order, in one
process) and alone (a process of its own). The outcomes decide its class:

- ``flaky``: both outcomes in one mode;
- ``failure``: fails in both modes;
- ``order-dependent``: fails in its order context, passes alone;
- ``parallel-only``: failed on an xdist worker, passes serially in its order context.

The reruns go into the timing report as attempts 2, 3, ... of the failed tests.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testfleet import report as reports
from testfleet.timing import append_text_atomic, summarize, write_json_atomic, write_text_atomic
from testfleet.workers import MAIN_WORKER, WORKERS_ENV

SCHEMA = "testfleet.classification/1"
CLASSES = ("failure", "parallel-only", "flaky", "order-dependent")
#: Classes that fail the run whatever the threshold; flaky tests fail it above the threshold.
FAILING_CLASSES = ("failure", "parallel-only", "order-dependent")
FAILED_OUTCOMES = ("failed", "error")
RUNS_ENV = "TESTFLEET_CLASSIFY_RUNS"
THRESHOLD_ENV = "TESTFLEET_FLAKY_THRESHOLD"
DEFAULT_RUNS = 3
DEFAULT_THRESHOLD = 5.0
DEFAULT_OUTPUT = Path("reports/classification.json")
#: The rollback switch of docs/rollback.md; `invoke ci --workers 1` is the same.
ROLLBACK_COMMAND = f"{WORKERS_ENV}=1 invoke ci"
#: Exit status when the report has no failed test: nothing to classify, as pytest's 5.
EXIT_NOTHING = 5
#: pytest exit statuses after which a rerun's outcomes cannot be trusted.
BROKEN_EXITS = (2, 3, 4)
#: What a rerun that did not list the test counts as (collection differed): a failure.
MISSING = "missing"

Echo = Callable[[str], None]
#: Runs one pytest command line and returns its exit status and output.
Runner = Callable[[list[str]], tuple[int, str]]


class RerunError(Exception):
    """A rerun that could not run its tests (usage or internal error, interrupted)."""


def run_quietly(command: list[str]) -> tuple[int, str]:
    """Run ``command``, keeping its output for the error message of a broken rerun."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def runs_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``TESTFLEET_CLASSIFY_RUNS``, else 3."""
    env = os.environ if environ is None else environ
    text = env.get(RUNS_ENV, "").strip()
    if not text:
        return DEFAULT_RUNS
    try:
        runs = int(text)
    except ValueError:
        raise ValueError(f"{RUNS_ENV}={text!r} is not a whole number of runs, such as 3") from None
    if runs < 1:
        raise ValueError(f"{RUNS_ENV}={text!r}: use 1 or more runs")
    return runs


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
    """``TESTFLEET_FLAKY_THRESHOLD``, else 5 (per cent of the run's tests)."""
    env = os.environ if environ is None else environ
    text = env.get(THRESHOLD_ENV, "").strip()
    if not text:
        return DEFAULT_THRESHOLD
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise ValueError(f"{THRESHOLD_ENV}: {exc}") from None


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

    @property
    def parallel(self) -> bool:
        # A combined report of CI shards names the shard first: shard2-main ran serially.
        return self.worker.rsplit("-", 1)[-1] != MAIN_WORKER


def _failed(outcome: str) -> bool:
    return outcome in (*FAILED_OUTCOMES, MISSING)


def classify_outcomes(in_context: Sequence[str], alone: Sequence[str], parallel: bool) -> str:
    """The class of a test that failed in the run, from the outcomes of its reruns."""
    # A test that failed in a serial run (or the serial phase) failed in its order
    # context: that failure is one more outcome of that mode.
    context = [str(o) for o in in_context] if parallel else ["failed", *in_context]
    if len({_failed(o) for o in context}) > 1 or len({_failed(o) for o in alone}) > 1:
        return "flaky"
    if not all(_failed(o) for o in context):
        return "parallel-only"
    if all(_failed(o) for o in alone):
        return "failure"
    return "order-dependent"


def failed_tests(report: Mapping[str, Any]) -> list[Verdict]:
    """The failed tests of the run, each with the tests that ran before it on its worker."""
    first = [t for t in report["tests"] if t.get("attempt", 1) == 1]
    by_worker: dict[str, list[Mapping[str, Any]]] = {}
    for test in sorted(first, key=lambda t: (float(t["start"]), t["nodeid"])):
        by_worker.setdefault(test["worker"], []).append(test)
    verdicts = []
    for worker, tests in by_worker.items():
        for index, test in enumerate(tests):
            if test["outcome"] in FAILED_OUTCOMES:
                context = [t["nodeid"] for t in tests[:index]]
                verdicts.append(Verdict(test["nodeid"], worker, test["outcome"], context))
    return sorted(verdicts, key=lambda v: v.nodeid)


def rerun_command(
    nodeids: Sequence[str], pytest_args: Sequence[str], report: Path | None = None
) -> list[str]:
    """One serial pytest run of ``nodeids`` in that order (no xdist, no random order)."""
    # -n 0 rather than -p no:xdist: xdist stays loaded, so its markers and fixtures
    # (xdist_group, worker_id) work as in the parallel run.
    return [
        sys.executable,
        "-m",
        "pytest",
        "-n",
        "0",
        "-p",
        "no:randomly",
        *(["--testfleet-report", str(report)] if report is not None else []),
        *pytest_args,
        *nodeids,
    ]


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

    def bisect(self, verdict: Verdict) -> list[str]:
        """The `testfleet bisect` command for an order-dependent test."""
        return bisect_command(verdict, order_file(self.output, verdict.worker), self.pytest_args)

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
        """The serial command that shows the test's outcome: in its context, or alone."""
        if verdict.cls == "order-dependent":
            return rerun_command([*verdict.context, verdict.nodeid], self.pytest_args)
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
            "rollback": ROLLBACK_COMMAND if self.suggest_rollback else None,
            "results": [
                {
                    "nodeid": v.nodeid,
                    "class": v.cls,
                    "worker": v.worker,
                    "outcome": v.outcome,
                    "context": v.context,
                    "reruns": {"context": v.in_context, "alone": v.alone},
                    "reproduce": shlex.join(self.reproduce(v)),
                    "bisect": (shlex.join(self.bisect(v)) if v.cls == "order-dependent" else None),
                }
                for v in self.verdicts
            ],
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
            mine = [v for v in verdicts if v.worker == worker]
            got = _run(nodeids, pytest_args, scratch / f"{worker}-{attempt}.json", show, runner)
            for verdict in mine:
                verdict.in_context.append(_record(got, verdict.nodeid, "context", records))
            echo(
                f"testfleet: rerun {attempt}/{runs} in order context of {worker} "
                f"({len(nodeids)} tests): "
                + ", ".join(f"{v.nodeid} {v.in_context[-1]}" for v in mine)
            )
        for index, verdict in enumerate(verdicts):
            path = scratch / f"alone-{index}-{attempt}.json"
            got = _run([verdict.nodeid], pytest_args, path, show, runner)
            verdict.alone.append(_record(got, verdict.nodeid, "alone", records))
            echo(f"testfleet: rerun {attempt}/{runs} alone: {verdict.nodeid} {verdict.alone[-1]}")
    for verdict in verdicts:
        verdict.cls = classify_outcomes(verdict.in_context, verdict.alone, verdict.parallel)
    return records


def _last_per_worker(verdicts: Sequence[Verdict]) -> dict[str, Verdict]:
    """The failed test of each worker that ran last: its context holds the others'."""
    last: dict[str, Verdict] = {}
    for verdict in verdicts:
        known = last.get(verdict.worker)
        if known is None or len(verdict.context) > len(known.context):
            last[verdict.worker] = verdict
    return last


def _run(
    nodeids: list[str], pytest_args: Sequence[str], path: Path, echo: Echo | None, runner: Runner
) -> dict[str, dict[str, Any]]:
    command = rerun_command(nodeids, pytest_args, path)
    if echo is not None:
        echo(f"testfleet: {shlex.join(command)}")
    status, output = runner(command)
    if status in BROKEN_EXITS or not path.exists():
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise RerunError(
            f"a rerun ended with exit status {status} without running its tests; "
            f"run it yourself to see why: {shlex.join(command)}\n{tail}"
        )
    return {t["nodeid"]: t for t in reports.load(path)["tests"]}


def _record(
    got: Mapping[str, dict[str, Any]], nodeid: str, mode: str, records: list[dict[str, Any]]
) -> str:
    record = got.get(nodeid)
    if record is None:
        return MISSING
    records.append({**record, "rerun": mode})
    return str(record["outcome"])


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
    # Both files are replaced in one rename each: a reader never sees half of either.
    write_json_atomic(report_path, add_reruns(report, records, result.counts()))
    write_json_atomic(output, result.to_json())
    for worker, last in _last_per_worker(result.of("order-dependent")).items():
        write_text_atomic(
            order_file(output, worker), "\n".join([*last.context, last.nodeid]) + "\n"
        )
    for line in render_text(result):
        echo(line)
    return result


def _tally(outcomes: Sequence[str]) -> str:
    passed = sum(not _failed(o) for o in outcomes)
    return f"{passed}/{len(outcomes)} passed"


def _advice(result: Classification) -> list[tuple[str, str | None]]:
    """What to do next: (text, command to run or None)."""
    advice: list[tuple[str, str | None]] = []
    if result.of("parallel-only"):
        advice.append(
            (
                "parallel-only tests pass serially: an isolation bug, they share something "
                "(a file, rows, a variable, a service) with a test on another worker. Fix it "
                "with the helpers of docs/isolation.md, or mark the test `serial`; "
                "docs/rollback.md tells how to find the cause",
                None,
            )
        )
    for verdict in result.of("order-dependent"):
        advice.append(
            (
                f"order-dependent: {verdict.nodeid} passes alone but fails after the "
                f"{len(verdict.context)} tests before it on {verdict.worker}; find the test "
                "that breaks it with",
                shlex.join(result.bisect(verdict)),
            )
        )
    flaky = len(result.of("flaky"))
    if flaky:
        share = (
            f"{flaky} flaky of {result.tests} tests ({result.flaky_percent:g}%), threshold "
            f"{result.threshold:g}% (--threshold, ${THRESHOLD_ENV})"
        )
        if result.over_threshold:
            advice.append((f"{share}: above it, the run fails: the run cannot be trusted", None))
        else:
            advice.append((f"{share}: reported, they do not fail the run", None))
    if result.suggest_rollback:
        advice.append(
            (
                "to go back to serial runs until this is fixed (docs/rollback.md), "
                "use the rollback switch",
                ROLLBACK_COMMAND,
            )
        )
    return advice


def render_text(result: Classification) -> list[str]:
    """The lines `testfleet classify` prints after the reruns."""
    counts = result.counts()
    lines = ["testfleet: " + ", ".join(f"{counts[c]} {c}" for c in CLASSES)]
    for verdict in sorted(result.verdicts, key=lambda v: (CLASSES.index(v.cls), v.nodeid)):
        lines.append(
            f"testfleet: {verdict.cls:<15} {verdict.nodeid} ({verdict.outcome} on "
            f"{verdict.worker}; in order context {_tally(verdict.in_context)}, "
            f"alone {_tally(verdict.alone)})"
        )
    lines += [
        f"testfleet: {text}: {command}" if command else f"testfleet: {text}"
        for text, command in _advice(result)
    ]
    return lines


def render_markdown(result: Classification) -> str:
    """The section `testfleet classify --summary` appends to the CI summary."""
    out = ["## Parallel-only and flaky failures", ""]
    if not result.verdicts:
        return "\n".join([*out, "No test failed: nothing to classify.", ""])
    counts = result.counts()
    out += [
        f"{len(result.verdicts)} of {result.tests} tests failed in run `{result.run_id}`; "
        f"each ran again {result.runs} times serially in its order context (the tests before "
        "it on its worker) and alone.",
        "",
        "| " + " | ".join(CLASSES) + " |",
        "|" + "---|" * len(CLASSES),
        "| " + " | ".join(str(counts[c]) for c in CLASSES) + " |",
        "",
        "| class | test | worker | in order context | alone |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {v.cls} | `{v.nodeid}` | {v.worker} | {_tally(v.in_context)} | {_tally(v.alone)} |"
        for v in sorted(result.verdicts, key=lambda v: (CLASSES.index(v.cls), v.nodeid))
    ]
    out.append("")
    out += [
        f"- {text}: `{command}`" if command else f"- {text}." for text, command in _advice(result)
    ]
    return "\n".join(out) + "\n"


def append_summary(result: Classification, path: Path) -> None:
    """Append the markdown section to ``path`` in one rename."""
    append_text_atomic(path, "\n" + render_markdown(result))

"""The timing report's contents: one record per test, the ``testfleet.timing`` schema, its text.

Nothing here imports pytest: the command line reads and writes reports without paying
for pytest's import (a quarter of a second) before it starts one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from math import isfinite
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

SCHEMA_NAME = "testfleet.timing"
SCHEMA_VERSION = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
PHASES = ("setup", "call", "teardown")


try:
    from resource import RUSAGE_CHILDREN, getrusage
except ImportError:  # Windows

    def cpu_seconds() -> float:
        """CPU seconds of this process and of the children it waited for, user and system."""
        times = os.times()
        return time.process_time() + times.children_user + times.children_system

else:

    def cpu_seconds() -> float:
        """CPU seconds of this process and of the children it waited for, user and system.

        This process's part from ``time.process_time()``: ``os.times()`` counts in clock
        ticks (10 ms on Linux), and a millisecond test would read 0 or 0.01; the per-test
        guesses of `--workers auto` need better than that. The children's part from
        ``getrusage``: microseconds, and half the cost of ``os.times()`` (read after
        every test).
        """
        usage = getrusage(RUSAGE_CHILDREN)
        return time.process_time() + usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    """CPU seconds of this process alone (every thread), user and system."""
    times = os.times()
    return times.user + times.system


#: Linux's scheduler statistics of the calling thread: nanoseconds on a CPU, nanoseconds
#: runnable but waiting for one, time slices.
SCHEDSTAT = "/proc/thread-self/schedstat"


def core_seconds() -> tuple[float, float] | None:
    """Seconds this thread has run on a CPU and waited for one, or None off Linux.

    A test's CPU time does not show how long it waited for a core while other processes
    had them, yet that wait is in its wall time; :mod:`testfleet.scheduling.workercount` must not
    take it for a sleep that more workers would overlap.
    """
    try:
        with open(SCHEDSTAT, "rb") as handle:
            fields = handle.read().split()
        return int(fields[0]) / 1e9, int(fields[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def cpu_stretch(on_cpu: float, waited: float) -> float | None:
    """How much longer CPU work took than its CPU time, for lack of a free core, or None.

    None below a tenth of a CPU second: too little work to tell.
    """
    if on_cpu < 0.1:
        return None
    return round((on_cpu + max(waited, 0.0)) / on_cpu, 3)


@dataclass(slots=True)
class TimingRecord:
    """One run of one test: its outcome and where its time went."""

    nodeid: str
    worker: str
    outcome: str = "passed"
    #: ``setup`` or ``teardown`` when the test errored outside its call.
    error_phase: str | None = None
    setup: float = 0.0
    call: float = 0.0
    teardown: float = 0.0
    markers: list[str] = field(default_factory=list)
    start: float = 0.0
    stop: float = 0.0
    attempt: int = 1
    #: CPU seconds of the test's process and its waited-for children; None when unknown.
    cpu: float | None = None

    @property
    def duration(self) -> float:
        return self.setup + self.call + self.teardown

    def add_report(self, report: pytest.TestReport) -> None:
        """Fold one phase report (setup, call or teardown) into the record."""
        # Three calls per test at the end of every run with a report: the report's
        # attributes are read once each, and ``wasxfail`` (set on the report by pytest's
        # skipping plugin) is looked up in its __dict__, not by a failing getattr.
        when = report.when
        outcome = report.outcome
        start = report.start
        if start and (not self.start or start < self.start):
            self.start = start
        if report.stop > self.stop:
            self.stop = report.stop
        if when == "setup":
            self.setup += report.duration
            if outcome == "failed":
                self.outcome, self.error_phase = "error", "setup"
            elif outcome == "skipped":
                self.outcome = "xfailed" if "wasxfail" in report.__dict__ else "skipped"
        elif when == "teardown":
            self.teardown += report.duration
            if outcome == "failed":
                # pytest counts a failing teardown as an error unless the test already failed.
                self.error_phase = self.error_phase or "teardown"
                if self.outcome not in ("failed", "error"):
                    self.outcome = "error"
        else:
            # "call", or "???" for the report xdist makes up when a worker crashed.
            self.call += report.duration
            if outcome == "failed":
                self.outcome = "failed"
            elif outcome == "skipped":
                self.outcome = "xfailed" if "wasxfail" in report.__dict__ else "skipped"
            else:
                self.outcome = "xpassed" if "wasxfail" in report.__dict__ else "passed"

    def to_json(self) -> dict[str, Any]:
        data = {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "error_phase": self.error_phase,
            "duration": round(self.duration, 6),
            "durations": {
                "setup": round(self.setup, 6),
                "call": round(self.call, 6),
                "teardown": round(self.teardown, 6),
            },
            "markers": self.markers,
            "worker": self.worker,
            "start": round(self.start, 6),
            "stop": round(self.stop, 6),
            "attempt": self.attempt,
        }
        if self.cpu is not None:
            data["cpu"] = round(self.cpu, 6)
        return data

    def to_wire(self) -> list[Any]:
        """The record for its trip from an xdist worker to the controller: the fields in
        order, unrounded (rounding is for the report, done once, by the controller)."""
        return [
            self.nodeid,
            self.worker,
            self.outcome,
            self.error_phase,
            self.setup,
            self.call,
            self.teardown,
            self.markers,
            self.start,
            self.stop,
            self.attempt,
            self.cpu,
        ]

    @classmethod
    def from_wire(cls, row: Sequence[Any]) -> TimingRecord:
        return cls(*row)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TimingRecord:
        durations = data["durations"]
        return cls(
            nodeid=str(data["nodeid"]),
            worker=str(data["worker"]),
            outcome=str(data["outcome"]),
            error_phase=data.get("error_phase"),
            setup=float(durations["setup"]),
            call=float(durations["call"]),
            teardown=float(durations["teardown"]),
            markers=[str(m) for m in data.get("markers", [])],
            start=float(data["start"]),
            stop=float(data["stop"]),
            attempt=int(data.get("attempt", 1)),
            cpu=None if data.get("cpu") is None else float(data["cpu"]),
        )


def number_attempts(records: Iterable[TimingRecord]) -> list[TimingRecord]:
    """Sort records by node id and number repeated runs of a test 1, 2, ... by start time."""
    # Sorted on the node id alone first: string keys are compared by the sort's fast
    # path. Only a run with repeated tests needs the start time and worker to order them.
    ordered = sorted(records, key=attrgetter("nodeid"))
    nodeids = list(map(attrgetter("nodeid"), ordered))
    if len(set(nodeids)) == len(nodeids):
        for record in ordered:
            record.attempt = 1
        return ordered
    ordered.sort(key=attrgetter("nodeid", "start", "worker"))
    previous = None
    attempt = 0
    for record in ordered:
        attempt = attempt + 1 if record.nodeid == previous else 1
        record.attempt = attempt
        previous = record.nodeid
    return ordered


def summarize(tests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``summary`` block of a report: counts per outcome and the sum of durations."""
    # Counter and map run their loops in C: a 100,000-test report is summed in
    # milliseconds. Outcomes not in OUTCOMES follow, in the order first seen.
    outcomes = dict.fromkeys(OUTCOMES, 0)
    outcomes.update(Counter(map(itemgetter("outcome"), tests)))
    return {
        "tests": len(tests),
        "outcomes": outcomes,
        "duration_sum": round(sum(map(float, map(itemgetter("duration"), tests))), 6),
    }


def build_report(records: Iterable[TimingRecord], run: Mapping[str, Any]) -> dict[str, Any]:
    """Assemble a report that follows the ``testfleet.timing/1`` contract."""
    tests = [record.to_json() for record in number_attempts(records)]
    return {"schema": SCHEMA, "run": dict(run), "tests": tests, "summary": summarize(tests)}


#: A test's line in a run's report. Its seven numbers are written with six decimals
#: by this one ``%``, in C: formatting each in Python as ``repr(round(x, 6))`` was two
#: thirds of the cost of a report's text. A reader gets the same floats either way:
#: ``round`` and ``%.6f`` both take the correctly rounded six-decimal digits.
_TEST_LINE = (
    '    {"nodeid": %s, "outcome": %s, "error_phase": %s, "duration": %.6f, "durations": '
    '{"setup": %.6f, "call": %.6f, "teardown": %.6f}, "markers": %s, "worker": %s, '
    '"start": %.6f, "stop": %.6f, "attempt": %d'
)
_TEST_LINE_CPU = _TEST_LINE + ', "cpu": %.6f}'
#: The same for a test of unknown CPU time: ``%.0s`` takes the None and writes nothing.
_TEST_LINE_NO_CPU = _TEST_LINE + "%.0s}"


def _test_line_of_any_numbers(record: TimingRecord, encode: Callable[[Any], str]) -> str:
    """A test's line when a number is not finite, which ``%.6f`` would write as ``nan``.

    The numbers are written as ``dumps_report`` writes them (``NaN``, ``Infinity``),
    which Python's ``json`` reads back.
    """
    return "    " + encode(record.to_json())


def report_text(records: Iterable[TimingRecord], run: Mapping[str, Any]) -> str:
    """The text of ``build_report(records, run)``, written straight from the records.

    What every run with ``--testfleet-report`` pays at its end: no dict per test and no
    second pass to encode them. The layout is ``dumps_report``'s, one line per test;
    the numbers of a test have six decimals (``0.000030``, not ``3e-05``). A test
    checks that the text reads back as the report of the records.
    """
    encode = json.JSONEncoder(ensure_ascii=False).encode
    # Outcomes, workers and marker lists repeat from test to test: each encoded once.
    strings: dict[str, str] = {}
    marker_lists: dict[tuple[str, ...], str] = {}
    lines = []
    outcomes = dict.fromkeys(OUTCOMES, 0)
    # 0, not 0.0: summarize() sums with sum(), whose empty sum is the int 0.
    duration_sum: float = 0
    for r in number_attempts(records):
        setup, call, teardown, cpu = r.setup, r.call, r.teardown, r.cpu
        duration = setup + call + teardown
        duration_sum += duration
        outcome, worker = r.outcome, r.worker
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if (outcome_text := strings.get(outcome)) is None:
            outcome_text = strings[outcome] = encode_basestring(outcome)
        if (worker_text := strings.get(worker)) is None:
            worker_text = strings[worker] = encode_basestring(worker)
        if names := r.markers:
            key = tuple(names)
            if (markers_text := marker_lists.get(key)) is None:
                markers_text = marker_lists[key] = encode(names)
        else:
            markers_text = "[]"
        error_phase = "null" if r.error_phase is None else encode_basestring(r.error_phase)
        if not isfinite(duration + r.start + r.stop + (cpu or 0.0)):
            lines.append(_test_line_of_any_numbers(r, encode))
            continue
        # fmt: off
        lines.append(
            (_TEST_LINE_NO_CPU if cpu is None else _TEST_LINE_CPU) % (
                encode_basestring(r.nodeid), outcome_text, error_phase, duration,
                setup, call, teardown, markers_text, worker_text, r.start, r.stop, r.attempt,
                cpu,
            )
        )
        # fmt: on
    summary = {"tests": len(lines), "outcomes": outcomes, "duration_sum": round(duration_sum, 6)}
    tests = ['  "tests": [', ",\n".join(lines), "  ],"] if lines else ['  "tests": [],']
    return (
        "\n".join(
            [
                "{",
                f'  "schema": {encode(SCHEMA)},',
                f'  "run": {encode(dict(run))},',
                *tests,
                f'  "summary": {encode(summary)}',
                "}",
            ]
        )
        + "\n"
    )


_BETWEEN_TESTS = '}, {"nodeid": '
_BETWEEN_LINES = '},\n    {"nodeid": '


def dumps_report(data: Mapping[str, Any]) -> str:
    """JSON text of a report: one line per test, so that diffs of a baseline stay readable.

    ``indent=`` would switch ``json`` to its pure-Python encoder, several times slower
    on large reports. The tests go through the C encoder in one call, then each gets a
    line of its own: the separator of two tests, ``}, {"nodeid": `` with its quotes
    unescaped, cannot occur inside a JSON string.
    """
    encode = json.JSONEncoder(ensure_ascii=False).encode
    lines = ["{"]
    last = len(data) - 1
    for index, (key, value) in enumerate(data.items()):
        comma = "," if index < last else ""
        if key == "tests" and isinstance(value, list) and value:
            lines.append(f"  {encode(key)}: [")
            body = encode(value)[1:-1].replace(_BETWEEN_TESTS, _BETWEEN_LINES)
            lines.append("    " + body)
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {encode(key)}: {encode(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def platform_name() -> str:
    """``platform.platform()``: on Linux ("Linux-6.1.0-x86_64-with-glibc2.36") without its cost.

    ``platform.platform()`` reads the processor field of ``platform.uname()``, which on
    Linux starts ``uname -p`` (25 ms, every run with a report). Elsewhere it is asked
    itself: its answer there (``macOS-14.2-arm64-arm-64bit``) is built otherwise.
    """
    import platform

    if not sys.platform.startswith("linux"):
        return platform.platform()
    uname = platform.uname()
    parts = [uname.system, uname.release, uname.machine]
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        libc = None
    if libc:
        parts += ["with", libc.replace(" ", "")]
    return "-".join(part.replace(" ", "_") for part in parts if part)


def git_commit(cwd: Path) -> str | None:
    """The checked-out commit of the repository at ``cwd``, or None when unknown."""
    # Reading .git directly costs far less than starting git; anything unusual
    # (worktrees, packed refs) is left to git itself.
    for directory in (cwd, *cwd.parents):
        dot_git = directory / ".git"
        if not dot_git.exists():
            continue
        head_file = dot_git / "HEAD"
        if head_file.is_file():
            try:
                head = head_file.read_text(encoding="utf-8").strip()
                if not head.startswith("ref: "):
                    return head or None
                ref = dot_git / head[5:]
                if ref.is_file():
                    return ref.read_text(encoding="utf-8").strip() or None
            except OSError:
                pass
        break
    else:
        # No repository above cwd: starting git (a process, every run) would only say so,
        # unless GIT_DIR points somewhere else.
        if "GIT_DIR" not in os.environ:
            return None
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None

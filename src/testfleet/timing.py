"""Per-test timing records, their trip from xdist workers to the controller, and the report file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testfleet import __version__, workers

SCHEMA_NAME = "testfleet.timing"
SCHEMA_VERSION = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
PHASES = ("setup", "call", "teardown")

#: Key of the records in ``config.workeroutput``.
WORKEROUTPUT_KEY = "testfleet_records"
#: Exit statuses after which the run's report is complete enough to replace the old one.
REPORTABLE_EXITS = (
    pytest.ExitCode.OK,
    pytest.ExitCode.TESTS_FAILED,
    pytest.ExitCode.NO_TESTS_COLLECTED,
)


@dataclass
class TimingRecord:
    """One run of one test: its outcome and where its time went."""

    nodeid: str
    worker: str
    outcome: str = "passed"
    #: ``setup`` or ``teardown`` when the test errored outside its call.
    error_phase: str | None = None
    durations: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    markers: list[str] = field(default_factory=list)
    start: float = 0.0
    stop: float = 0.0
    attempt: int = 1

    @property
    def duration(self) -> float:
        return sum(self.durations.values())

    def add_report(self, report: pytest.TestReport) -> None:
        """Fold one phase report (setup, call or teardown) into the record."""
        when: str = report.when
        if when in self.durations:
            self.durations[when] += report.duration
        else:
            # xdist reports a worker crash with when="???": count it as the call.
            self.durations["call"] += report.duration
            when = "call"
        if report.start and (not self.start or report.start < self.start):
            self.start = report.start
        self.stop = max(self.stop, report.stop)
        xfail = hasattr(report, "wasxfail")
        if when == "setup":
            if report.failed:
                self.outcome, self.error_phase = "error", "setup"
            elif report.skipped:
                self.outcome = "xfailed" if xfail else "skipped"
        elif when == "call":
            if report.failed:
                self.outcome = "failed"
            elif report.skipped:
                self.outcome = "xfailed" if xfail else "skipped"
            else:
                self.outcome = "xpassed" if xfail else "passed"
        elif report.failed:
            # A failing teardown: pytest counts the test as an error unless it already failed.
            self.error_phase = self.error_phase or "teardown"
            if self.outcome not in ("failed", "error"):
                self.outcome = "error"

    def to_json(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "error_phase": self.error_phase,
            "duration": round(self.duration, 6),
            "durations": {phase: round(self.durations[phase], 6) for phase in PHASES},
            "markers": list(self.markers),
            "worker": self.worker,
            "start": round(self.start, 6),
            "stop": round(self.stop, 6),
            "attempt": self.attempt,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TimingRecord:
        return cls(
            nodeid=str(data["nodeid"]),
            worker=str(data["worker"]),
            outcome=str(data["outcome"]),
            error_phase=data.get("error_phase"),
            durations={phase: float(data["durations"][phase]) for phase in PHASES},
            markers=[str(m) for m in data.get("markers", [])],
            start=float(data["start"]),
            stop=float(data["stop"]),
            attempt=int(data.get("attempt", 1)),
        )


def number_attempts(records: Iterable[TimingRecord]) -> list[TimingRecord]:
    """Sort records by node id and number repeated runs of a test 1, 2, ... by start time."""
    ordered = sorted(records, key=lambda r: (r.nodeid, r.start, r.worker))
    previous = None
    attempt = 0
    for record in ordered:
        attempt = attempt + 1 if record.nodeid == previous else 1
        record.attempt = attempt
        previous = record.nodeid
    return ordered


def summarize(tests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``summary`` block of a report: counts per outcome and the sum of durations."""
    outcomes = dict.fromkeys(OUTCOMES, 0)
    for test in tests:
        outcomes[test["outcome"]] = outcomes.get(test["outcome"], 0) + 1
    return {
        "tests": len(tests),
        "outcomes": outcomes,
        "duration_sum": round(sum(float(t["duration"]) for t in tests), 6),
    }


def build_report(records: Iterable[TimingRecord], run: Mapping[str, Any]) -> dict[str, Any]:
    """Assemble a report that follows the ``testfleet.timing/1`` contract."""
    tests = [record.to_json() for record in number_attempts(records)]
    return {"schema": SCHEMA, "run": dict(run), "tests": tests, "summary": summarize(tests)}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so that ``path`` holds either the old file or the whole new one.

    The text goes to a temporary file in the same directory, is flushed to disk and
    then renamed over ``path``; a failure at any point removes the temporary file.
    """
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (see :func:`write_json_atomic`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file as 0600; a report is an ordinary file.
        tmp.chmod(0o644)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def git_commit(cwd: Path) -> str | None:
    """The checked-out commit of the repository at ``cwd``, or None when unknown."""
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


def canonical_nodeid(item: pytest.Item) -> str:
    """The node id without the ``@group`` that ``--dist loadgroup`` appends on workers.

    Without this, a test in an ``xdist_group`` would have another id in a parallel run
    than in a serial one, and comparisons with a serial baseline would lose it.
    """
    groups = sorted(
        {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
    )
    suffix = "@" + "_".join(groups)
    if groups and item.nodeid.endswith(suffix):
        return item.nodeid[: -len(suffix)]
    return item.nodeid


class TimingRecorder:
    """Records every test of the run and writes one report from the controller.

    Every process builds records from the reports it sees. Workers send theirs to the
    controller through ``workeroutput``; the controller also keeps what it saw itself,
    so that the tests of a worker that crashed (and sent nothing) are not lost.
    """

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.started = time.time()
        self.written: Path | None = None
        self.skipped_reason: str | None = None
        self._me = workers.worker_id(config)
        self._open: dict[str, TimingRecord] = {}
        self._done: list[TimingRecord] = []
        self._markers: dict[str, list[str]] = {}
        self._ids: dict[str, str] = {}
        self._from_workers: list[TimingRecord] = []
        self._workers_seen: set[str] = set()
        self._reported_workers: set[str] = set()
        self._known_markers = {
            line.split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")
        }

    # -- every process -------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        self._markers[item.nodeid] = sorted({mark.name for mark in item.iter_markers()})
        self._ids[item.nodeid] = canonical_nodeid(item)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = report.nodeid
        record = self._open.get(nodeid)
        if record is None or report.when == "setup":
            if record is not None:
                self._done.append(record)
            record = TimingRecord(
                nodeid=self._ids.pop(nodeid, nodeid),
                worker=self._worker_of(report),
                markers=self._markers.pop(nodeid, []) or self._markers_from_keywords(report),
            )
            self._open[nodeid] = record
        record.add_report(report)
        if report.when not in ("setup", "call"):
            self._done.append(self._open.pop(nodeid))

    def _worker_of(self, report: pytest.TestReport) -> str:
        node = getattr(report, "node", None)
        if node is not None:
            return str(node.workerinput["workerid"])
        return self._me

    def _markers_from_keywords(self, report: pytest.TestReport) -> list[str]:
        return sorted(k for k in report.keywords if k in self._known_markers)

    def records(self) -> list[TimingRecord]:
        return [*self._done, *self._open.values()]

    # -- workers -----------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if workers.is_worker(self.config):
            self.config.workeroutput[WORKEROUTPUT_KEY] = [  # type: ignore[attr-defined]
                record.to_json() for record in self.records()
            ]
            return
        if self.config.option.collectonly:
            self.skipped_reason = "collection only"
            return
        if exitstatus not in REPORTABLE_EXITS:
            self.skipped_reason = f"the run ended with exit status {int(exitstatus)}"
            return
        write_json_atomic(
            self.path, build_report(self.final_records(), self.run_metadata(exitstatus))
        )
        self.written = self.path

    # -- controller ----------------------------------------------------------------

    def node_ready(self, worker: str) -> None:
        self._workers_seen.add(worker)

    def node_down(self, worker: str, workeroutput: Mapping[str, Any] | None) -> None:
        self._workers_seen.add(worker)
        if workeroutput is None or WORKEROUTPUT_KEY not in workeroutput:
            return
        self._reported_workers.add(worker)
        for data in workeroutput[WORKEROUTPUT_KEY]:
            self._from_workers.append(TimingRecord.from_json(data))

    def final_records(self) -> list[TimingRecord]:
        # What a worker sent is the primary copy. What only the controller saw is used
        # for workers that went down without sending anything (a crash).
        missing = [r for r in self.records() if r.worker not in self._reported_workers]
        return [*self._from_workers, *missing]

    def run_metadata(self, exitstatus: int) -> dict[str, Any]:
        config = self.config
        finished = time.time()
        workers_used = len(self._workers_seen) or workers.worker_count(config)
        randomly = config.pluginmanager.hasplugin("randomly")
        seed = config.getoption("randomly_seed", None) if randomly else None
        reordered = randomly and bool(config.getoption("randomly_reorganize", True))
        if reordered:
            mode = "randomized"
        elif workers_used > 1:
            mode = "parallel"
        else:
            mode = "serial"
        return {
            "id": workers.run_id(config),
            "mode": mode,
            "workers": workers_used,
            "dist": str(config.getoption("dist", "no")) if workers_used > 1 else "no",
            "seed": seed if isinstance(seed, int) else None,
            "start": round(self.started, 6),
            "end": round(finished, 6),
            "wall_seconds": round(finished - self.started, 6),
            "exit_status": int(exitstatus),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "pytest": pytest.__version__,
            "testfleet": __version__,
            "git_commit": git_commit(config.rootpath),
            "args": [str(arg) for arg in config.invocation_params.args],
        }

"""Recording per-test timing in a pytest run, and the records' trip from xdist workers.

What a report holds and how it is written are in :mod:`testfleet.timing.records` and
:mod:`testfleet.core.atomic`, which the command line uses without importing pytest.
"""

from __future__ import annotations

import contextlib
import gc
import json
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest

from testfleet import __version__
from testfleet.core import workers
from testfleet.core.atomic import write_text_atomic
from testfleet.timing import store
from testfleet.timing.closing import counts_from_stats
from testfleet.timing.records import (
    TimingRecord,
    core_seconds,
    cpu_seconds,
    cpu_stretch,
    git_commit,
    own_cpu_seconds,
    platform_name,
    report_text,
)

#: Key of the records in ``config.workeroutput``.
WORKEROUTPUT_KEY = "testfleet_records"
#: More ``run`` fields from other parts of the plugin (the shard of a CI matrix run).
RUN_EXTRA_KEY = pytest.StashKey[dict[str, Any]]()
#: Key of the number of `serial` tests a worker deferred, in ``config.workeroutput``.
DEFERRED_KEY = "testfleet_serial_deferred"
#: Key of a worker's seconds on a CPU and waiting for one while it ran tests.
CORES_KEY = "testfleet_core_seconds"
#: How many collected tests testfleet itself left out of this session (``--testfleet-serial``):
#: they run in another phase of the same run, so they are not "deselected" by the user.
OWN_DESELECTED_KEY = pytest.StashKey[int]()
#: Exit statuses after which the run's report is complete enough to replace the old one.
REPORTABLE_EXITS = (
    pytest.ExitCode.OK,
    pytest.ExitCode.TESTS_FAILED,
    pytest.ExitCode.NO_TESTS_COLLECTED,
)


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


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Hold off the cyclic garbage collector while the report is built.

    Building a report allocates a few objects per test, none of them cyclic, and at the
    end of a session that is often enough to set off a full collection over
    everything pytest holds: measured at three quarters of the report's cost.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class TimingRecorder:
    """Records every test of the run and writes one report from the controller.

    Every process that runs tests builds one record per test from its reports. Workers
    send theirs to the controller through ``workeroutput``. The controller keeps the
    reports xdist forwards to it only until the worker that ran them has sent its
    records: they are the fallback for a worker that crashed and sent nothing.
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
        #: Each report kept by pytest_runtest_logreport, followed by its CPU reading.
        self._pending: list[pytest.TestReport | float] = []
        self._from_workers: list[TimingRecord] = []
        self._forwarded: dict[str, list[pytest.TestReport]] = {}
        self._workers_seen: set[str] = set()
        self._cpu_mark = cpu_seconds()
        self._collected_at: float | None = None
        self._worker_ready: dict[str, float] = {}
        self._worker_collected: dict[str, float] = {}
        self._deferred_by_workers = 0
        self._core_mark: tuple[float, float] | None = None
        #: Seconds on a CPU and waiting for one, summed over the workers that told them.
        self._workers_cores: list[float] | None = None
        #: The controller's CPU seconds when the first worker was ready.
        self._controller_mark: float | None = None
        self._known_markers = {
            line.split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")
        }

    # -- processes that run tests ----------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Three calls per test: only kept here, folded into records at the end in one
        # tight loop (see _fold_pending), which costs a third of folding as they come.
        # The report's fields are read from its __dict__, as in _fold_pending.
        fields = report.__dict__
        if "node" in fields and fields["node"] is not None:
            # The controller of an xdist run: the worker's own record is on its way.
            worker = str(fields["node"].workerinput["workerid"])
            self._forwarded.setdefault(worker, []).append(report)
            return
        when = fields["when"]
        # CPU time is read once per test, when its last report arrives: the difference
        # from the previous test's is this test's, with no hook of its own. The report
        # and its reading go into one flat list: a tuple per report would be one more
        # object for every garbage collection of the run to go through.
        self._pending += (report, cpu_seconds() if when != "setup" and when != "call" else 0.0)

    def _fold_pending(self) -> None:
        """Fold the reports kept by pytest_runtest_logreport into records, in their order."""
        pending, self._pending = iter(self._pending), []
        open_records, done, me, cpu_mark = self._open, self._done, self._me, self._cpu_mark
        report: pytest.TestReport
        cpu: float
        for report, cpu in zip(pending, pending, strict=False):  # type: ignore[assignment]
            # A report's fields are read from its __dict__: attribute access on a
            # TestReport takes the interpreter's slow path, several times the cost.
            fields = report.__dict__
            nodeid, when = fields["nodeid"], fields["when"]
            record = open_records.get(nodeid)
            # Most reports are passed phases in order, with no xfail: folded here, which
            # costs half of TimingRecord.add_report's general case.
            if fields["outcome"] == "passed" and "wasxfail" not in fields:
                if when == "setup":
                    # A stop time of 0 or less is not taken, as add_report does not.
                    if fields["stop"] > 0.0:
                        if record is not None:
                            done.append(record)
                        # fmt: off
                        open_records[nodeid] = TimingRecord(
                            nodeid, me, "passed", None, fields["duration"], 0.0, 0.0, [],
                            fields["start"], fields["stop"],
                        )
                        # fmt: on
                        continue
                elif record is not None and 0 < record.start <= fields["start"]:
                    duration, stop = fields["duration"], fields["stop"]
                    if stop > record.stop:
                        record.stop = stop
                    if when == "call":
                        record.call += duration
                        record.outcome = "passed"
                        continue
                    if when == "teardown":
                        record.teardown += duration
                        record.cpu = cpu - cpu_mark
                        cpu_mark = cpu
                        done.append(open_records.pop(nodeid))
                        continue
            if record is None or when == "setup":
                self._fold(report, me, open_records, done, None)
                continue
            record.add_report(report)
            if when != "call":
                record.cpu = cpu - cpu_mark
                cpu_mark = cpu
                done.append(open_records.pop(nodeid))
        self._cpu_mark = cpu_mark

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._collected_at = time.time()
        self._cpu_mark = cpu_seconds()
        self._core_mark = core_seconds()

    def _fold(
        self,
        report: pytest.TestReport,
        worker: str,
        open_records: dict[str, TimingRecord],
        done: list[TimingRecord],
        known_markers: set[str] | None,
    ) -> None:
        nodeid = report.nodeid
        record = open_records.get(nodeid)
        if record is None or report.when == "setup":
            if record is not None:
                done.append(record)
            record = TimingRecord(nodeid=nodeid, worker=worker)
            if known_markers is not None:
                record.markers = sorted(k for k in report.keywords if k in known_markers)
            open_records[nodeid] = record
        record.add_report(report)
        if report.when not in ("setup", "call"):
            done.append(open_records.pop(nodeid))

    def records(self) -> list[TimingRecord]:
        self._fold_pending()
        return [*self._done, *self._open.values()]

    def _describe_from_items(self, items: Sequence[pytest.Item]) -> None:
        """Give our records their markers and serial node ids, from the collected items.

        Done once at the end rather than in a per-test hook: it is the same work, without
        a hook call per test.
        """
        by_id = {item.nodeid: item for item in items}
        # Markers of modules and classes are shared by many tests: looked up once per
        # parent, and a test with no marks of its own shares its parent's sorted list.
        # Parents are told apart by id(): a node's own __hash__ is Python code.
        inherited: dict[int, tuple[frozenset[str], list[str]]] = {}
        no_parent: tuple[frozenset[str], list[str]] = (frozenset(), [])
        one_mark: dict[tuple[int, str], list[str]] = {}
        for record in self.records():
            item = by_id.get(record.nodeid)
            if item is None:
                continue
            parent = item.parent
            if parent is None:
                from_parents = no_parent
            elif (found := inherited.get(id(parent))) is not None:
                from_parents = found
            else:
                names = frozenset(mark.name for mark in parent.iter_markers())
                from_parents = inherited[id(parent)] = (names, sorted(names))
            own = item.own_markers
            if not own:
                record.markers = from_parents[1]
            elif len(own) == 1:
                # Most often `parametrize` alone: one sorted list per parent and name.
                key = (id(parent), own[0].name)
                if (shared := one_mark.get(key)) is None:
                    shared = one_mark[key] = sorted(from_parents[0].union((own[0].name,)))
                record.markers = shared
            else:
                record.markers = sorted(from_parents[0].union(mark.name for mark in own))
            if "@" in record.nodeid:
                record.nodeid = canonical_nodeid(item)

    # -- workers and serial runs -----------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        with _no_gc_pauses():
            try:
                self._finish(session, exitstatus)
            finally:
                # Written or sent, the records are let go here, while the collector is
                # off: pytest's own gc.collect() at the end of the run would otherwise go
                # through every one of them.
                self._pending, self._open, self._done = [], {}, []
                self._from_workers, self._forwarded = [], {}

    def _finish(self, session: pytest.Session, exitstatus: int) -> None:
        """Send a worker's records to the controller, or write the run's report."""
        self._describe_from_items(getattr(session, "items", []))
        if workers.is_worker(self.config):
            # One JSON string crosses execnet far faster than a list of dicts.
            output = self.config.workeroutput  # type: ignore[attr-defined]
            output[WORKEROUTPUT_KEY] = json.dumps([r.to_wire() for r in self.records()])
            output[DEFERRED_KEY] = self.serial_deferred()
            output[CORES_KEY] = self._own_cores()
            return
        if self.config.option.collectonly:
            self.skipped_reason = "collection only"
            return
        if exitstatus not in REPORTABLE_EXITS:
            self.skipped_reason = f"the run ended with exit status {int(exitstatus)}"
            return
        records = self.final_records()
        run = self.run_metadata(exitstatus, records)
        write_text_atomic(self.path, report_text(records, run))
        self._update_duration_store(records, run)
        self.written = self.path

    def _update_duration_store(
        self, records: Sequence[TimingRecord], run: Mapping[str, Any]
    ) -> None:
        """Keep this run's durations for the next run's scheduler and worker count."""
        cache = getattr(self.config, "cache", None)
        if cache is None:
            # -p no:cacheprovider
            return
        try:
            path = store.store_for(cache)
            # A phase of `serial` tests alone speaks for a few tests, not for its mode.
            alone = self.config.getoption("testfleet_serial", "run") == "only"
            measured = ((r.nodeid, r.duration, r.cpu) for r in records)
            store.update_store(path, measured, None if alone else run)
        except OSError:
            # A read-only cache costs the next run its history, not this run its result.
            pass

    def _own_cores(self) -> list[float] | None:
        """Seconds this process's test thread ran on a CPU and waited for one, since collection."""
        now = core_seconds()
        if now is None or self._core_mark is None:
            return None
        return [now[0] - self._core_mark[0], now[1] - self._core_mark[1]]

    def _cpu_stretch(self) -> float | None:
        """The run's tests' wait for a free core, as a factor of their time on one."""
        cores = self._workers_cores if self._workers_seen else self._own_cores()
        return None if cores is None else cpu_stretch(*cores)

    def schedule_facts(self) -> dict[str, Any]:
        """What the report needs to judge the schedule: collection and worker start-up."""
        facts: dict[str, Any] = {}
        ready, collected = self._worker_ready, self._worker_collected
        if ready:
            facts["worker_startup"] = {
                worker: {
                    "ready": round(ready[worker], 6),
                    "collected": round(collected[worker], 6) if worker in collected else None,
                }
                for worker in sorted(ready)
            }
            spans = [collected[w] - ready[w] for w in ready if w in collected]
            facts["collection_seconds"] = round(max(spans), 6) if spans else None
        elif self._collected_at is not None:
            facts["collection_seconds"] = round(self._collected_at - self.started, 6)
        return facts

    def serial_deferred(self) -> int:
        """How many `serial` tests this process left out for a later phase."""
        if self.config.getoption("testfleet_serial", "run") != "defer":
            return 0
        return self.config.stash.get(OWN_DESELECTED_KEY, 0)

    def outcome_counts(self) -> dict[str, int] | None:
        """The counts of pytest's closing line, without the tests testfleet deferred."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        stats = getattr(terminal, "stats", None)
        if stats is None:
            return None
        return counts_from_stats(stats, self.config.stash.get(OWN_DESELECTED_KEY, 0))

    # -- the controller of an xdist run --------------------------------------------------

    def node_ready(self, worker: str) -> None:
        if self._controller_mark is None:
            self._controller_mark = own_cpu_seconds()
        self._workers_seen.add(worker)
        self._worker_ready[worker] = time.time() - self.started

    def node_collected(self, worker: str) -> None:
        self._worker_collected[worker] = time.time() - self.started

    def node_down(self, worker: str, workeroutput: Mapping[str, Any] | None) -> None:
        self._workers_seen.add(worker)
        if workeroutput is None or WORKEROUTPUT_KEY not in workeroutput:
            return
        # Every worker collects the whole suite, so each deferred the same tests.
        self._deferred_by_workers = max(
            self._deferred_by_workers, int(workeroutput.get(DEFERRED_KEY, 0))
        )
        self._forwarded.pop(worker, None)
        cores = workeroutput.get(CORES_KEY)
        if isinstance(cores, list) and len(cores) == 2:
            totals = self._workers_cores or [0.0, 0.0]
            self._workers_cores = [totals[0] + float(cores[0]), totals[1] + float(cores[1])]
        self._from_workers.extend(
            TimingRecord.from_wire(row) for row in json.loads(workeroutput[WORKEROUTPUT_KEY])
        )

    def final_records(self) -> list[TimingRecord]:
        """The workers' records, the controller's fallback for crashed ones, or our own."""
        records = [*self._from_workers, *self.records()]
        for worker, reports in self._forwarded.items():
            open_records: dict[str, TimingRecord] = {}
            for report in reports:
                self._fold(report, worker, open_records, records, self._known_markers)
            records.extend(open_records.values())
        return records

    def overhead_facts(self, records: Sequence[TimingRecord], finished: float) -> dict[str, Any]:
        """What the run cost beyond its tests, for `--workers auto` to weigh xdist by.

        ``controller_cpu_per_test``: the xdist controller's CPU seconds per test (it takes
        in every report a worker sends, on a core the workers also need); None without
        xdist. ``after_tests_seconds``: from the last test's end to the end of the session
        (under xdist the controller catching up on reports, the workers finishing).
        """
        facts: dict[str, Any] = {"controller_cpu_per_test": None, "after_tests_seconds": None}
        if not records:
            return facts
        if self._workers_seen and self._controller_mark is not None:
            spent = own_cpu_seconds() - self._controller_mark
            facts["controller_cpu_per_test"] = round(max(spent, 0.0) / len(records), 7)
        last_stop = max(map(attrgetter("stop"), records))
        if last_stop:
            facts["after_tests_seconds"] = round(max(finished - last_stop, 0.0), 6)
        return facts

    def run_metadata(self, exitstatus: int, records: Sequence[TimingRecord] = ()) -> dict[str, Any]:
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
        meta: dict[str, Any] = {
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
            "platform": platform_name(),
            "pytest": pytest.__version__,
            "testfleet": __version__,
            "git_commit": git_commit(config.rootpath),
            "args": [str(arg) for arg in config.invocation_params.args],
            "counts": self.outcome_counts(),
            "serial_deferred": max(self.serial_deferred(), self._deferred_by_workers),
            "cpu_stretch": self._cpu_stretch(),
            **self.schedule_facts(),
            **self.overhead_facts(records, finished),
        }
        extra: dict[str, Any] = config.stash.get(RUN_EXTRA_KEY, {})
        meta.update(extra)
        return meta

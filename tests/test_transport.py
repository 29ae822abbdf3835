"""A test's xdist messages batched into one, in runs testfleet schedules: same output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
import xdist

from testfleet.scheduling import running, transport, window, wire

SUITE = """
import os
import warnings
import pytest

@pytest.mark.parametrize("n", range(6))
def test_quick(n):
    pass

def test_prints():
    print("some output")

def test_property(record_property):
    record_property("answer", 42)

def test_warns():
    warnings.warn(UserWarning("careful"))

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known")
def test_xfails():
    assert False

@pytest.mark.xfail(reason="fixed since")
def test_xpasses():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("set-up fails")

def test_error_in_setup(broken):
    pass

@pytest.mark.serial
def test_alone():
    pass
"""

#: An inner test that says whether its worker batches its messages.
BATCHING_SEEN = """
def test_batching(request):
    interactor = next(
        plugin for plugin in request.config.pluginmanager.get_plugins()
        if type(plugin).__name__ == "WorkerInteractor"
    )
    batching = "sendevent" in vars(interactor)
    assert batching == ("testfleet_batch" in request.config.workerinput)
    print("BATCHING", batching)
    assert batching == {expected}
"""

#: The inner suite's warning is shown, not raised as the outer run's settings would.
INI = """
[tool.pytest.ini_options]
filterwarnings = ["default::UserWarning"]
"""

SCHEDULED = ("-p", "no:randomly", "-n", "2", "--testfleet-scheduler")


def normalized(text: str) -> list[str]:
    """The lines of an output, sorted, with what varies between two runs taken out.

    With two workers, which worker runs a test and the order reports arrive in change
    from run to run, batched or not: the lines are compared as a multiset.
    """
    text = re.sub(r"\d+\.\d+s?", "T", text)
    text = re.sub(r"\[ *\d+%\]", "[P%]", text)
    text = re.sub(r"\bgw\d\b", "gwN", text)
    text = re.sub(r'(timestamp|hostname)="[^"]*"', r'\1=""', text)
    text = text.replace("><", ">\n<")
    # pytest centres its section lines in `=`: a longer time takes some of the padding.
    return sorted(line.strip("= ").rstrip() for line in text.splitlines())


def report_contents(path: Path) -> tuple[list[tuple[object, ...]], list[str], list[str]]:
    """What the timing report says of each test, and which facts of the run it holds."""
    data = json.loads(path.read_text(encoding="utf-8"))
    tests = sorted(
        (t["nodeid"], t["outcome"], t["error_phase"], t["markers"], sorted(t["durations"]))
        for t in data["tests"]
    )
    return tests, sorted(data["run"]), sorted(data["summary"])


def unbatched(monkeypatch: pytest.MonkeyPatch) -> None:
    # The controller runs in this process: with no release supported it offers nothing,
    # so the workers send xdist's plain messages.
    monkeypatch.setattr(transport, "SUPPORTED", ((0, 0), (0, 0)))


def test_only_the_xdist_releases_it_was_tested_with_are_supported() -> None:
    assert transport.version_supported("3.5.0")
    assert transport.version_supported("3.8.0")
    assert transport.version_supported("3.6.1")
    assert not transport.version_supported("3.4.1")
    assert not transport.version_supported("3.9.0")
    assert not transport.version_supported("4.0")
    assert not transport.version_supported("3")
    assert not transport.version_supported("dev")
    assert transport.version_supported(xdist.__version__)


def phase_reports(pytester: pytest.Pytester) -> tuple[pytest.Config, list[pytest.TestReport]]:
    pytester.makepyprojecttoml(INI)
    pytester.makepyfile(SUITE)
    recorded = pytester.inline_run("-p", "no:randomly", "-p", "no:cacheprovider")
    reports = recorded.getreports("pytest_runtest_logreport")
    return pytester.parseconfigure(), [r for r in reports if isinstance(r, pytest.TestReport)]


def serialised(config: pytest.Config, report: pytest.TestReport) -> dict[str, object]:
    data: dict[str, object] = config.hook.pytest_report_to_serializable(
        config=config, report=report
    )
    # What xdist's worker adds before it sends a report.
    data.update(item_index=3, worker_id="gw1", testrun_uid="abc")
    return data


@pytest.mark.parametrize("test", ["test_quick[2]", "test_prints", "test_skipped", "test_xpasses"])
def test_a_passed_or_skipped_phase_crosses_as_a_tuple_and_comes_back_as_the_same_report(
    pytester: pytest.Pytester, test: str
) -> None:
    config, reports = phase_reports(pytester)
    phases = [r for r in reports if r.nodeid.endswith(f"::{test}")]
    assert len(phases) >= 2
    for report in phases:
        data = serialised(config, report)
        compact = wire.compact_phase(data)
        assert compact is not None
        # As the controller reads it: through JSON, in a folded test.
        (decoded,) = json.loads(json.dumps([compact]))
        assert wire.phase_report(tuple(decoded)).outcome == report.outcome
        plain = config.hook.pytest_report_from_serializable(config=config, data=data)
        assert vars(wire.phase_report(compact)) == vars(plain)


def a_passed_tests_events(pytester: pytest.Pytester) -> list[tuple[str, Any]]:
    """The events a batching worker holds for test_quick[1], as it holds them."""
    config, reports = phase_reports(pytester)
    phases = [r for r in reports if r.nodeid.endswith("test_quick[1]")]
    where = {"nodeid": phases[0].nodeid, "location": phases[0].location}
    compact = [wire.compact_phase(serialised(config, report)) for report in phases]
    return [
        ("logstart", where),
        *((wire.PHASE_EVENT, fields) for fields in compact),
        ("logfinish", dict(where)),
        ("runtest_protocol_complete", {"item_index": 3, "duration": 0.25}),
    ]


def test_a_passed_test_crosses_as_one_string_and_unfolds_into_its_six_events(
    pytester: pytest.Pytester,
) -> None:
    events = a_passed_tests_events(pytester)
    folded = wire.fold_test(events)
    assert folded is not None
    text = wire.encode_test(folded)
    assert text is not None
    # The node id crosses once, not five times.
    assert text.count(events[0][1]["nodeid"]) == 1
    assert wire.decode_tests(f"[{text}]") == [folded]
    assert wire.unfold_test(folded) == events
    # The controller hands the six to xdist's session as one event.
    node = QueueSeen()
    transport.Unbatcher(node, node.plain.append, direct=True)(
        (wire.TEST_EVENT, {"json": f"[{text}]"})
    )
    ((name, kwargs),) = node.queued
    assert name == wire.BATCH_EVENT
    assert [call for call, _ in kwargs["calls"]] == [
        "logstart",
        "testreport",
        "testreport",
        "testreport",
        "logfinish",
        "runtest_protocol_complete",
    ]


def test_a_value_json_cannot_carry_exactly_sends_the_events_as_they_are() -> None:
    assert wire.encode_test(("t.py::t", ("t.py", 1, "t"), float("nan"))) is None
    assert wire.encode_test(("t.py::t", object())) is None


def test_a_test_whose_events_differ_from_the_plain_pattern_is_not_folded(
    pytester: pytest.Pytester,
) -> None:
    events = a_passed_tests_events(pytester)
    assert wire.fold_test(events[:-1]) is None
    # A marker added while the test ran: its phases do not share their keywords.
    call = events[2][1]
    changed = [
        *events[:2],
        (events[2][0], (*call[:10], (*call[10], "added"), *call[11:])),
        *events[3:],
    ]
    assert wire.fold_test(changed) is None
    other_index = [*events[:-1], ("runtest_protocol_complete", {"item_index": 4, "duration": 0.25})]
    assert wire.fold_test(other_index) is None


def test_a_phase_with_output_properties_or_a_failure_crosses_whole(
    pytester: pytest.Pytester,
) -> None:
    config, reports = phase_reports(pytester)
    whole = {
        report.nodeid.split("::")[1]
        for report in reports
        if wire.compact_phase(serialised(config, report)) is None
    }
    # Captured output, a skip's reason and an xpass's reason cross in the tuple.
    assert whole == {"test_property", "test_fails", "test_xfails", "test_error_in_setup"}
    passed = next(r for r in reports if r.nodeid.endswith("test_quick[0]"))
    data = serialised(config, passed)
    data["a_plugins_attribute"] = 1
    assert wire.compact_phase(data) is None


#: A line of progress characters: with two workers their order changes from run to run.
PROGRESS = re.compile(r"^[.FEsxX]+ *(\[P%\])?$")


@pytest.mark.parametrize(
    "verbosity",
    # -v: a test's events go when it ends; quiet: in windows of many tests.
    ["-v", "-q"],
)
def test_a_scheduled_run_prints_and_writes_the_same_with_and_without_batching(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, verbosity: str
) -> None:
    pytester.makepyprojecttoml(INI)
    pytester.makepyfile(test_suite=SUITE)
    options = (*SCHEDULED, verbosity, "-rA", "--junitxml=out.xml", "--testfleet-report=r.json")
    outputs = []
    for batch in (True, False):
        if not batch:
            unbatched(monkeypatch)
        result = pytester.runpytest_inprocess(*options)
        result.assert_outcomes(
            passed=10, failed=1, skipped=1, xfailed=1, xpassed=1, errors=1, warnings=1
        )
        report = report_contents(pytester.path / "r.json")
        junit = normalized((pytester.path / "out.xml").read_text(encoding="utf-8"))
        lines = [line for line in normalized(str(result.stdout)) if not PROGRESS.match(line)]
        outputs.append((lines, junit, report))
    assert outputs[0] == outputs[1]
    # -rA shows each passed test, its captured output, and the skip's reason.
    assert any(line.endswith("PASSED test_suite.py::test_alone") for line in outputs[0][0])
    assert any("some output" in line for line in outputs[0][0])
    assert any("not today" in line for line in outputs[0][0])


@pytest.mark.parametrize(
    ("options", "expected"),
    [(SCHEDULED, True), (("-p", "no:randomly", "-n", "2"), False)],
    ids=["scheduled", "plain-xdist"],
)
def test_workers_batch_only_in_runs_testfleet_schedules(
    pytester: pytest.Pytester, options: tuple[str, ...], expected: bool
) -> None:
    pytester.makepyfile(BATCHING_SEEN.format(expected=expected))
    result = pytester.runpytest_subprocess(*options, "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"BATCHING {expected}"])


def test_an_xdist_release_not_tested_with_is_left_unbatched(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xdist, "__version__", "3.9.0")
    pytester.makepyfile(BATCHING_SEEN.format(expected=False))
    pytester.runpytest_inprocess(*SCHEDULED, "-rA").assert_outcomes(passed=1)


def test_a_failed_report_leaves_the_worker_before_its_test_ends() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    def send(name: str, **kwargs: Any) -> None:
        sent.append((name, kwargs))

    def run_one_test() -> None:
        batcher.sendevent("logstart", nodeid="t", location=("t.py", 1, "t"))
        batcher.sendevent("testreport", data={"outcome": "failed", "when": "call"})
        # -x and --maxfail: the controller must know now, not after the teardown.
        assert [name for name, _ in sent] == [wire.BATCH_EVENT]
        batcher.sendevent("logfinish", nodeid="t", location=("t.py", 1, "t"))
        batcher.sendevent("unscheduled", indices=[4])
        assert [name for name, _ in sent] == [wire.BATCH_EVENT, "unscheduled"]

    batcher = window.WorkerBatcher(send, run_one_test, verbose=False)
    batcher.run_one_test()
    assert [name for name, _ in sent] == [wire.BATCH_EVENT, "unscheduled", "testfleet_batch"]
    batches = [kwargs["events"] for name, kwargs in sent if name == wire.BATCH_EVENT]
    assert [[name for name, _ in events] for events in batches] == [
        ["logstart", "testreport"],
        ["logfinish"],
    ]
    batcher.sendevent("workerfinished", workeroutput={})
    assert sent[-1][0] == "workerfinished"


class Sent:
    """What a batching worker sends, by event name, as ``WorkerInteractor.sendevent`` would."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, **kwargs: Any) -> None:
        self.events.append((name, kwargs))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def window_sizes(self) -> list[int]:
        return [
            len(wire.decode_tests(kwargs["json"]))
            for name, kwargs in self.events
            if name == wire.TEST_EVENT
        ]


class Worker:
    """A batching worker's run of tests: the events a folded test makes, from a queue."""

    def __init__(self, events: list[tuple[str, Any]], tmp_path: Path, **options: Any) -> None:
        self.events = events
        self.queued = 10
        self.sent = Sent()
        self.slot_file = tmp_path / "gw0.running"
        self.running_seen: list[int | None] = []
        slot = running.Slot.offered({running.WORKERINPUT_KEY: str(self.slot_file)})
        self.next_index = 5
        self.batcher = window.WorkerBatcher(
            self.sent,
            self.run_one_test,
            slot=slot,
            queue_length=lambda: self.queued,
            next_index=lambda: self.next_index,
            **{"verbose": False, **options},
        )

    def run_one_test(self) -> None:
        self.running_seen.append(running.read(self.node()))
        for name, payload in self.events:
            if name == wire.PHASE_EVENT:
                self.batcher.held.append((name, payload))  # type: ignore[union-attr]
            else:
                self.batcher.sendevent(name, **payload)

    def node(self) -> Any:
        return types.SimpleNamespace(workerinput={running.WORKERINPUT_KEY: str(self.slot_file)})

    def run(self, count: int) -> None:
        for _ in range(count):
            self.batcher.run_one_test()


def test_passed_tests_cross_in_windows_of_the_size_set(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    events = a_passed_tests_events(pytester)
    worker = Worker(events, tmp_path, window_tests=4)
    worker.run(10)
    assert worker.sent.window_sizes() == [4, 4]
    # The rest goes before anything else the worker sends: the session's end here.
    worker.batcher.sendevent("workerfinished", workeroutput={})
    assert worker.sent.window_sizes() == [4, 4, 2]
    assert worker.sent.names()[-1] == "workerfinished"
    (first, *_) = wire.decode_tests(worker.sent.events[0][1]["json"])
    assert wire.unfold_test(first) == events


def test_a_window_goes_when_its_oldest_test_is_too_old(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    worker = Worker(a_passed_tests_events(pytester), tmp_path, window_seconds=0.0)
    worker.run(3)
    assert worker.sent.window_sizes() == [1, 1, 1]


def test_a_worker_about_to_wait_for_work_holds_no_results(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    # The controller sends more work when it hears tests end: a worker whose queue runs
    # short sends what it holds, or both would wait for each other.
    worker = Worker(a_passed_tests_events(pytester), tmp_path)
    worker.run(3)
    assert worker.sent.window_sizes() == []
    worker.queued = window.WINDOW_LOW_QUEUE
    worker.run(1)
    assert worker.sent.window_sizes() == [4]


def test_a_steal_answered_from_the_receiving_thread_sends_the_window_first(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    worker = Worker(a_passed_tests_events(pytester), tmp_path)
    worker.run(3)
    answer = threading.Thread(
        target=worker.batcher.sendevent, args=("unscheduled",), kwargs={"indices": [7]}
    )
    answer.start()
    answer.join()
    assert worker.sent.names() == [wire.TEST_EVENT, "unscheduled"]
    assert worker.sent.window_sizes() == [3]


def test_with_verbose_output_each_test_is_sent_when_it_ends(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    worker = Worker(a_passed_tests_events(pytester), tmp_path, verbose=True)
    worker.run(3)
    # The line of a test's start goes at once; its reports when it ends.
    assert worker.sent.names() == ["logstart", wire.BATCH_EVENT] * 3


def test_the_running_tests_index_is_in_its_workers_file_while_it_runs(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    worker = Worker(a_passed_tests_events(pytester), tmp_path)
    worker.run(1)
    worker.next_index = 0
    worker.run(1)
    assert worker.running_seen == [5, 0]
    assert running.read(worker.node()) == running.BETWEEN_TESTS
    # Not offered, or a worker that never wrote it: unknown, and xdist's rule holds.
    assert running.read(object()) is None
    worker.slot_file.unlink()
    assert running.read(worker.node()) is None


def test_a_window_goes_when_its_oldest_test_is_old_even_while_no_test_ends(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    # While a long test runs, the tests before it are heard of within the window's age.
    worker = Worker(a_passed_tests_events(pytester), tmp_path, window_seconds=0.05)
    worker.run(2)
    deadline = time.monotonic() + 10
    while not worker.sent.window_sizes() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.sent.window_sizes() == [2]


def test_a_test_that_ended_is_cleared_from_the_file_before_its_results_are_kept(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    worker = Worker(a_passed_tests_events(pytester), tmp_path)
    seen: list[int | None] = []
    plain_end = worker.batcher.end_test

    def end_test() -> None:
        seen.append(running.read(worker.node()))
        plain_end()

    worker.batcher.end_test = end_test  # type: ignore[method-assign]
    worker.run(1)
    assert seen == [running.BETWEEN_TESTS]


def test_a_slot_that_cannot_be_mapped_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object) -> None:
        raise OSError("no mapping here")

    monkeypatch.setattr(running.mmap, "mmap", refused)
    path = tmp_path / "gw0.running"
    assert running.Slot.offered({running.WORKERINPUT_KEY: str(path)}) is None
    # A file left behind would read "between tests" and hide the next crash's test.
    assert list(tmp_path.iterdir()) == []


SLOT_SEEN = """
def test_slot(request):
    print("SLOT", "testfleet_running" in request.config.workerinput)
"""


@pytest.mark.parametrize(("restarts", "expected"), [("0", False), ("2", True)])
def test_no_windows_when_no_worker_may_be_restarted(
    pytester: pytest.Pytester, restarts: str, expected: bool
) -> None:
    # With no restart, results a dead worker held would never be run again.
    pytester.makepyfile(SLOT_SEEN)
    result = pytester.runpytest_subprocess(*SCHEDULED, "-rA", f"--max-worker-restart={restarts}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*SLOT {expected}*"])


def test_a_test_interrupted_stays_named_in_its_workers_file(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    worker = Worker(a_passed_tests_events(pytester), tmp_path)

    def interrupted() -> None:
        raise KeyboardInterrupt

    worker.batcher.plain_run_one_test = interrupted
    with pytest.raises(KeyboardInterrupt):
        worker.batcher.run_one_test()
    # xdist's rule names the test that was running when its worker went down: so does
    # the scheduler, from the file.
    assert running.read(worker.node()) == worker.next_index


PASSED_CALL = (
    "t.py::t",
    "call",
    0.5,
    1.0,
    1.5,
    ("t.py", 1, "t"),
    "TestReport",
    3,
    "gw0",
    "u",
    ("t",),
    "passed",
    None,
    [],
    None,
)
START = {"nodeid": "t.py::t", "location": ("t.py", 1, "t")}
FAILED = {"data": {"outcome": "failed", "when": "teardown"}}


class QueueSeen:
    """A stand-in for xdist's node: what it queues for the session, and the plain path."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, dict[str, Any]]] = []
        self.plain: list[object] = []

    def notify_inproc(self, name: str, **kwargs: Any) -> None:
        self.queued.append((name, kwargs))


def a_batch() -> tuple[str, dict[str, Any]]:
    return (
        wire.BATCH_EVENT,
        {
            "events": [
                ("logstart", START),
                (wire.PHASE_EVENT, PASSED_CALL),
                ("testreport", FAILED),
                ("logfinish", START),
                ("runtest_protocol_complete", {"item_index": 3, "duration": 0.6}),
            ]
        },
    )


def test_a_batch_reaches_the_session_as_one_event_cut_where_an_event_goes_alone() -> None:
    node = QueueSeen()
    transport.Unbatcher(node, node.plain.append, direct=True)(a_batch())
    assert [name for name, _ in node.queued] == [wire.BATCH_EVENT, wire.BATCH_EVENT]
    first, second = (kwargs["calls"] for _, kwargs in node.queued)
    assert [name for name, _ in first] == ["logstart", "testreport"]
    assert first[0][1] == {"node": node, **START}
    report = first[1][1]["rep"]
    assert (report.nodeid, report.when, report.outcome, report.item_index) == (
        "t.py::t",
        "call",
        "passed",
        3,
    )
    # The failed report with its output goes xdist's own way, between the two.
    assert node.plain == [("testreport", FAILED)]
    assert second == [
        ("logfinish", {"node": node, **START}),
        ("runtest_protocol_complete", {"node": node, "item_index": 3, "duration": 0.6}),
    ]
    # Anything that is not a batch is xdist's.
    transport.Unbatcher(node, node.plain.append, direct=True)(("workerfinished", {}))
    assert node.plain[-1] == ("workerfinished", {})


def test_without_the_sessions_methods_a_batch_is_queued_event_by_event() -> None:
    node = QueueSeen()
    transport.Unbatcher(node, node.plain.append, direct=False)(a_batch())
    assert [name for name, _ in node.queued] == ["testreport"]
    assert [event[0] for event in node.plain] == [  # type: ignore[index]
        "logstart",
        "testreport",
        "logfinish",
        "runtest_protocol_complete",
    ]


def test_the_session_makes_a_batchs_calls_in_order(pytester: pytest.Pytester) -> None:
    made: list[tuple[str, dict[str, Any]]] = []

    class Session:
        def __getattr__(self, name: str) -> Any:
            return lambda **kwargs: made.append((name, kwargs))

    calls = [("logstart", {"nodeid": "a"}), ("testreport", {"rep": 1}), ("logfinish", {})]
    transport.SessionCalls(Session())(calls)
    assert made == [
        ("worker_logstart", {"nodeid": "a"}),
        ("worker_testreport", {"rep": 1}),
        ("worker_logfinish", {}),
    ]
    config = pytester.parseconfig()
    # No xdist session in this run: nothing to hand batches to.
    assert not transport.direct_calls(config)


DIRECT_SEEN = """
import pytest

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        dsession = session.config.pluginmanager.get_plugin("dsession")
        print("DIRECT", type(getattr(dsession, "worker_testfleet_batch", None)).__name__)
    return (yield)
"""


def test_a_scheduled_run_hands_its_batches_to_xdists_session_whole(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(DIRECT_SEEN)
    pytester.makepyfile("def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    result = pytester.runpytest_subprocess(*SCHEDULED, "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*DIRECT SessionCalls"])


class BrokenNode(QueueSeen):
    """A node whose configuration and shutdown record what xdist's error path does."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[pytest.ExceptionInfo[BaseException]] = []
        self.shut = False
        self.config = self

    def notify_exception(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.shown.append(excinfo)

    def shutdown(self) -> None:
        self.shut = True


def test_a_message_that_cannot_be_unpacked_takes_its_worker_down_as_xdist_would() -> None:
    node = BrokenNode()
    transport.Unbatcher(node, node.plain.append, direct=True)(
        (wire.TEST_EVENT, {"json": "[not json"})
    )
    # Shown, and the worker reported down with the error, not as a crash of its test.
    assert [excinfo.typename for excinfo in node.shown] == ["JSONDecodeError"]
    assert node.shut
    assert [name for name, _ in node.queued] == ["errordown"]
    assert node.queued[0][1]["error"] is node.shown[0]


UNSERIALISER = """
def pytest_report_from_serializable(config, data):
    return None
"""


def test_a_plugin_that_unserialises_reports_itself_gets_xdists_plain_messages(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(UNSERIALISER)
    pytester.makepyfile(BATCHING_SEEN.format(expected=False))
    result = pytester.runpytest_subprocess(*SCHEDULED, "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["BATCHING False"])


def test_maxfail_stops_a_batched_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "def test_fails_first():\n    assert False\n"
        + "".join(f"\ndef test_later_{n}():\n    pass\n" for n in range(4))
    )
    result = pytester.runpytest_subprocess(*SCHEDULED, "--maxfail=1")
    assert result.parseoutcomes()["failed"] == 1
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    # As plain xdist: the controller interrupts the session.
    assert result.ret == pytest.ExitCode.INTERRUPTED


CRASH_SUITE = """
import os

def test_before():
    pass

def test_crashes():
    os._exit(3)

def test_after():
    pass
"""


def test_a_crashed_worker_is_reported_the_same_with_and_without_batching(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_crash=CRASH_SUITE)
    outputs = []
    for batch in (True, False):
        if not batch:
            unbatched(monkeypatch)
        # -v shows a line when a test starts, also for the one that crashes its worker.
        result = pytester.runpytest_inprocess(*SCHEDULED, "-v")
        result.assert_outcomes(passed=2, failed=1)
        outputs.append(normalized(str(result.stdout)))
    assert outputs[0] == outputs[1]


#: A crash after many quick tests: the worker holds some of their results when it dies.
WINDOW_CRASH_SUITE = """
import os
import pytest

@pytest.mark.parametrize("n", range(200))
def test_before(n):
    pass

def test_crashes():
    os._exit(3)

@pytest.mark.parametrize("n", range(200))
def test_after(n):
    pass
"""


def test_a_worker_that_crashes_holding_a_window_is_blamed_on_the_right_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_crash=WINDOW_CRASH_SUITE)
    for batch in (True, False):
        if not batch:
            unbatched(monkeypatch)
        result = pytester.runpytest_inprocess(*SCHEDULED, "-rf")
        # The held results are lost with the worker: those tests run again elsewhere,
        # and each test is reported once.
        result.assert_outcomes(passed=400, failed=1)
        result.stdout.fnmatch_lines(["FAILED test_crash.py::test_crashes*"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "release",
    # 3.5 and 3.6 name the function that counts the workers otherwise (parse_spec_config).
    ["3.7.0", "3.6.1", "3.5.0"],
)
def test_an_older_supported_xdist_batches_and_runs_the_suite(
    pytester: pytest.Pytester,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    release: str,
) -> None:
    target = tmp_path_factory.mktemp(f"xdist-{release}")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            f"pytest-xdist=={release}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if install.returncode != 0:
        pytest.skip(f"pytest-xdist {release} could not be installed: {install.stderr[-300:]}")
    pytester.makepyprojecttoml(INI)
    pytester.makepyfile(test_suite=SUITE, test_batching=BATCHING_SEEN.format(expected=True))
    # The older release shadows the installed one in the controller and in its workers.
    monkeypatch.setenv("PYTHONPATH", str(target))
    result = pytester.runpytest_subprocess(*SCHEDULED, "-rA")
    result.assert_outcomes(
        passed=11, failed=1, skipped=1, xfailed=1, xpassed=1, errors=1, warnings=1
    )
    result.stdout.fnmatch_lines(["BATCHING True"])
    version = subprocess.run(
        [sys.executable, "-c", "import xdist; print(xdist.__version__)"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(target), "PATH": str(Path(sys.executable).parent)},
    )
    assert version.stdout.strip() == release

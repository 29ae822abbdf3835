"""Few execnet messages between an xdist worker and its controller: one per window of tests.

Why: a worker sends six messages per test (``logstart``, three phase reports,
``logfinish``, ``runtest_protocol_complete``), and both processes pay per message, not
per byte (a pipe write, a thread wake-up, a queue hand-off, an unserialisation): 1.42 ms
of the controller's CPU per test on a suite of 8,623 short tests, on a core the workers
need too (benchmarks/README.md). Here a worker keeps a test's events until it ends; a
phase that passed or was skipped crosses as a tuple instead of a report's dict; a test
made only of such phases is folded into one JSON value, and such tests go together, up
to ``WINDOW_TESTS`` per message (``WorkerBatcher``). A worker that dies holding a window
leaves the index of the test it was running for the scheduler
(:mod:`testfleet.scheduling.running`).

Negotiated, so that a worker never sends what its controller cannot read: the controller
sets ``WORKERINPUT_KEY`` in ``workerinput`` and unpacks batches into the events xdist
already handles, in their order; a worker batches only when it finds the key. A failed
report goes out at once, so that ``-x`` and ``--maxfail`` stop as early as before.

Active only when testfleet schedules the run (``testfleet run``, ``--testfleet-scheduler``):
plain ``pytest -n`` with the plugin installed stays xdist's. It wraps methods of xdist's
``WorkerController`` and ``WorkerInteractor`` instances (never their classes), so it is
guarded by xdist's version (the releases it was tested with) and by the attributes being
there; otherwise nothing is changed.
"""

from __future__ import annotations

import collections
import functools
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import xdist

from testfleet.core import workers
from testfleet.scheduling import running, worker_exit

#: The pytest-xdist releases (major, minor) whose event names and methods this was tested
#: against, both ends included; tests/test_transport.py runs the oldest in a slow test.
SUPPORTED = ((3, 5), (3, 8))
#: pytest's own plugins that turn a report's dict back into a report. A passed phase
#: crossing as a tuple is rebuilt without this hook: with any other plugin implementing
#: it, the controller offers no batching and each report goes through the hook as before.
OWN_UNSERIALISERS = frozenset(("reports", "subtests"))
#: Key in ``workerinput``: the controller reads batches.
WORKERINPUT_KEY = "testfleet_batch"
#: The name a batch crosses under, as an xdist event.
BATCH_EVENT = "testfleet_batch"
#: A phase that passed or was skipped, sent as a tuple inside a batch (``compact_phase``).
PHASE_EVENT = "testfleet_phase"
#: Tests whose phases all passed or were skipped, each test's events folded into one
#: tuple (``fold_test``), as one JSON list.
TEST_EVENT = "testfleet_tests"
#: A window of such tests is sent when it holds this many tests, when its oldest ended
#: this many seconds ago, or when the worker has this few tests left in its queue
#: (``WorkerBatcher``). 64 quick tests make a message of about 25 kB; a tenth of a
#: second keeps the controller's progress live.
WINDOW_TESTS = 64
WINDOW_SECONDS = 0.1
WINDOW_LOW_QUEUE = 2
#: The phases a folded test can have: all three, or a set-up that skipped it.
PHASE_RUNS = (("setup", "call", "teardown"), ("setup", "teardown"))
CONTROLLER_NAME = "testfleet-transport"
#: The events of one test, held until it ends; anything else goes out at once.
PER_TEST = frozenset(
    ("logstart", "testreport", "logfinish", "runtest_protocol_complete", "warning_recorded")
)
#: The fields of a compact phase's tuple, in order, then its keywords' names and
#: ``PHASE_EXTRA``.
TUPLE_FIELDS = (
    "nodeid",
    "when",
    "duration",
    "start",
    "stop",
    "location",
    "$report_type",
    "item_index",
    "worker_id",
    "testrun_uid",
)
#: After the keywords: the outcome, the skip's (path, line, reason) or None, the captured
#: sections as (title, text) pairs, and an xfail's reason (None: the report has none).
PHASE_EXTRA = ("outcome", "longrepr", "sections", "wasxfail")
#: Every key of a plain phase report as pytest and xdist serialise it, and the one an
#: xfail marker adds. A report with any other key (a plugin's attribute) or a pytest
#: that writes others goes the general way.
PLAIN_KEYS = frozenset(
    (*TUPLE_FIELDS, "keywords", "outcome", "longrepr", "sections", "user_properties")
)
OPTIONAL_KEYS = frozenset(("wasxfail",))

Event = tuple[str, Any]


def version_supported(version: str) -> bool:
    """Whether pytest-xdist ``version`` (e.g. "3.8.0") is one this was tested with."""
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return len(major_minor) == 2 and SUPPORTED[0] <= major_minor <= SUPPORTED[1]


def register(config: pytest.Config) -> None:
    """Batch this run's messages, when testfleet schedules it on a supported xdist."""
    if (
        not config.getoption("testfleet_scheduler", False)
        or not config.pluginmanager.hasplugin("xdist")
        or not version_supported(xdist.__version__)
    ):
        return
    if workers.is_worker(config):
        if config.workerinput.get(WORKERINPUT_KEY):  # type: ignore[attr-defined]
            batch_worker(config)
    elif workers.worker_count(config) > 1:
        config.pluginmanager.register(ControllerHooks(), CONTROLLER_NAME)


def unregister(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(CONTROLLER_NAME)
    if plugin is not None:
        config.pluginmanager.unregister(plugin, CONTROLLER_NAME)


# -- the worker's side ----------------------------------------------------------------------


def _skip_location(longrepr: object) -> bool:
    """Whether a skipped report's ``longrepr`` is pytest's (path, line, reason)."""
    return (
        type(longrepr) is tuple
        and len(longrepr) == 3
        and type(longrepr[0]) is str
        and type(longrepr[1]) is int
        and type(longrepr[2]) is str
    )


def compact_phase(data: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A phase that passed or was skipped as a tuple, or None to send ``data`` as it is.

    Captured output and a skip's reason are plain strings and cross in the tuple; a
    failure, an xfail's traceback, user properties or a plugin's attribute do not.
    """
    outcome = data["outcome"]
    if outcome != "passed" and outcome != "skipped":
        return None
    longrepr = data["longrepr"]
    keys = data.keys()
    if (
        (longrepr is not None if outcome == "passed" else not _skip_location(longrepr))
        or data["user_properties"]
        or not (keys == PLAIN_KEYS or (keys - OPTIONAL_KEYS == PLAIN_KEYS))
        or any(value != 1 for value in data["keywords"].values())
    ):
        return None
    sections = data["sections"]
    for section in sections:
        if type(section) is not tuple or len(section) != 2:
            return None
    wasxfail = data.get("wasxfail")
    if "wasxfail" in keys and type(wasxfail) is not str:
        return None
    return (
        *(data[field] for field in TUPLE_FIELDS),
        tuple(data["keywords"]),
        outcome,
        longrepr,
        sections,
        wasxfail,
    )


def fold_test(events: list[Event]) -> tuple[Any, ...] | None:
    """A test's events as one tuple of plain values, or None for anything else.

    The test's phases passed or were skipped (``compact_phase``). Its node id, location,
    keywords and indices go once instead of five times. The tuple crosses as JSON
    (``encode_test``): execnet's serialiser is written in Python and pays per value, the
    json module's is not (measured: a test's message unserialised in a quarter of the
    time of the same tuple given to execnet). Its fields: node id, location, report
    type, item index, worker id, run id, keywords, the protocol's duration, then per
    phase (when, outcome, duration, start, stop, longrepr, sections, wasxfail).
    """
    if len(events) < 4 or events[0][0] != "logstart":
        return None
    (finish_name, finish), (complete_name, complete) = events[-2], events[-1]
    if finish_name != "logfinish" or complete_name != "runtest_protocol_complete":
        return None
    phases = []
    for name, payload in events[1:-2]:
        if name != PHASE_EVENT:
            return None
        phases.append(payload)
    first = phases[0]
    shared = (first[0], first[5], *first[6:11])
    if (
        tuple(phase[1] for phase in phases) not in PHASE_RUNS
        or any((phase[0], phase[5], *phase[6:11]) != shared for phase in phases)
        or events[0][1] != finish
        or finish != {"nodeid": first[0], "location": first[5]}
        or complete.keys() != {"item_index", "duration"}
        or complete["item_index"] != first[7]
    ):
        return None
    return (
        *shared,
        complete["duration"],
        [[phase[1], *phase[2:5], *phase[11:]] for phase in phases],
    )


def encode_test(fields: tuple[Any, ...]) -> str | None:
    """``fold_test``'s tuple as JSON, or None if a value has no exact JSON form."""
    try:
        return json.dumps(fields, allow_nan=False)
    except (TypeError, ValueError):
        return None


def decode_test(fields: list[Any]) -> tuple[Any, ...]:
    """A tuple ``encode_test`` wrote, once read: JSON made its tuples lists."""
    fields[1] = tuple(fields[1])
    fields[6] = tuple(fields[6])
    # Each phase: when, duration, start, stop, outcome, longrepr, sections, wasxfail.
    for phase in fields[8]:
        if phase[5] is not None:
            phase[5] = tuple(phase[5])
        phase[6] = [tuple(section) for section in phase[6]]
    return tuple(fields)


def decode_tests(text: str) -> list[tuple[Any, ...]]:
    """The tests of a window: a JSON list of ``encode_test``'s texts."""
    return [decode_test(fields) for fields in json.loads(text)]


class WorkerBatcher:
    """Worker side: keep a test's events while it runs, and passed tests in a window.

    A test's events go out together when it ends. A passed test with nothing to show is
    folded into one JSON text and kept in a window, sent as one message when it holds
    ``window_tests`` tests, when its oldest is ``window_seconds`` old, when the worker's
    queue of tests runs short (the controller tops a worker up when it hears tests end:
    a worker about to wait for work has nothing held), or before any other event (a test
    with output, a failure, the end of the session, a steal's answer). Each message
    costs both processes a write, a read and a wake-up: a window cuts those to one per
    window instead of one per test.

    A window needs ``slot`` (which test is running, for the scheduler if the worker
    dies) and ``queue_length``; without either, or with ``-v`` (whose lines follow each
    test as it runs), every test is sent when it ends.
    """

    def __init__(
        self,
        send: Callable[..., None],
        run_one_test: Callable[..., object],
        *,
        verbose: bool,
        slot: running.Slot | None = None,
        queue_length: Callable[[], int | None] | None = None,
        next_index: Callable[[], object] | None = None,
        window_tests: int = WINDOW_TESTS,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        self.plain_send = send
        self.plain_run_one_test = run_one_test
        self.held: list[Event] | None = None
        # With -v the controller prints a line when a test starts; if the test then
        # crashes its worker, a held logstart would be lost with it, and so would the line.
        self.per_test = PER_TEST - {"logstart"} if verbose else PER_TEST
        windowed = not verbose and slot is not None and queue_length is not None
        self.window_tests = window_tests if windowed else 1
        self.window_seconds = window_seconds
        self.slot = slot if windowed else None
        self.queue_length = queue_length
        self.next_index = next_index
        #: Passed tests as JSON texts, oldest first, and when the oldest ended.
        self.window: list[str] = []
        self.window_since = 0.0
        # The window is filled by the main thread and may be sent by execnet's receiving
        # thread (a steal's answer): one lock keeps the messages in order.
        self.lock = threading.Lock()
        self.main_thread = threading.get_ident()

    def sendevent(self, name: str, **kwargs: Any) -> None:
        held = self.held
        if held is None or name not in self.per_test:
            # Outside a test, or an event of its own (a steal's answer, which comes from
            # execnet's receiver thread, or an internal error): sent as xdist would,
            # after the window. The held events are left alone, so only the main thread
            # ever touches them.
            with self.lock:
                self._send_window()
                self.plain_send(name, **kwargs)
            return
        if name == "testreport":
            data = kwargs["data"]
            compact = compact_phase(data)
            if compact is not None:
                held.append((PHASE_EVENT, compact))
                return
            held.append((name, kwargs))
            if data["outcome"] == "failed":
                # -x and --maxfail: the controller must know now, not after the teardown.
                events, self.held = held, []
                with self.lock:
                    self._send_window()
                    self.plain_send(BATCH_EVENT, events=events)
            return
        held.append((name, kwargs))

    def _send_window(self) -> None:
        """Send the window's tests as one message; the caller holds ``lock``."""
        if self.window:
            texts, self.window = self.window, []
            self.plain_send(TEST_EVENT, json="[" + ",".join(texts) + "]")

    def end_test(self) -> None:
        """The running test has ended: keep it in the window or send it, in order."""
        events, self.held = self.held, None
        if not events:
            return
        folded = fold_test(events)
        text = None if folded is None else encode_test(folded)
        with self.lock:
            if text is None:
                self._send_window()
                self.plain_send(BATCH_EVENT, events=events)
                return
            window = self.window
            window.append(text)
            now = time.monotonic()
            if len(window) == 1:
                self.window_since = now
            if (
                len(window) >= self.window_tests
                or now - self.window_since >= self.window_seconds
                or self._queue_short()
            ):
                self._send_window()

    def _queue_short(self) -> bool:
        # Only the main thread takes tests from the queue, and a steal (the other way it
        # shrinks) sends the window: a worker never waits for work with tests held.
        length = self.queue_length() if self.queue_length is not None else None
        return length is None or length <= WINDOW_LOW_QUEUE

    def run_one_test(self, *args: Any, **kwargs: Any) -> object:
        slot = self.slot
        if slot is not None and self.next_index is not None:
            index = self.next_index()
            if type(index) is int:
                slot.running(index)
        self.held = []
        try:
            result = self.plain_run_one_test(*args, **kwargs)
        finally:
            self.end_test()
        # Not on the way out of an interrupted test: the slot still names it, as xdist's
        # rule would (the first test the controller has not heard of).
        if slot is not None:
            slot.idle()
        return result


def queue_length_of(interactor: Any) -> Callable[[], int | None] | None:
    """How many tests wait in the worker's queue, read the way its xdist release keeps it.

    xdist 3.5 and 3.6 hold a ``queue.Queue`` (replaced by a steal: looked up each time),
    3.7 and later their own ``TestQueue`` around a deque. None: neither is there.
    """
    torun = getattr(interactor, "torun", None)
    if callable(getattr(torun, "qsize", None)):
        return lambda: interactor.torun.qsize()
    if isinstance(getattr(torun, "_items", None), collections.deque):
        return lambda: len(interactor.torun._items)
    return None


def batch_worker(config: pytest.Config) -> WorkerBatcher | None:
    """Wrap the methods of this worker's ``WorkerInteractor``, if it has the expected ones."""
    # xdist runs its worker module through execnet's remote_exec, so the interactor's
    # class is not importable as xdist.remote.WorkerInteractor: it is found by name.
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor":
            send = getattr(plugin, "sendevent", None)
            run_one_test = getattr(plugin, "run_one_test", None)
            if not callable(send) or not callable(run_one_test):
                return None
            verbose = config.get_verbosity() > 0
            queue_length = queue_length_of(plugin)
            slot = None
            if not verbose and queue_length is not None:
                slot = running.Slot.offered(config.workerinput)  # type: ignore[attr-defined]
            batcher = WorkerBatcher(
                send,
                run_one_test,
                verbose=verbose,
                slot=slot,
                queue_length=queue_length,
                next_index=functools.partial(getattr, plugin, "nextitem_index", None),
            )
            plugin.sendevent = batcher.sendevent
            plugin.run_one_test = batcher.run_one_test
            return batcher
    return None


# -- the controller's side ------------------------------------------------------------------


def phase_report(fields: tuple[Any, ...]) -> pytest.TestReport:
    """The report that ``compact_phase`` made a tuple of, as pytest's unserialising makes it."""
    values = dict(zip(TUPLE_FIELDS, fields, strict=False))
    keywords, outcome, longrepr, sections, wasxfail = fields[len(TUPLE_FIELDS) :]
    extra = {key: values[key] for key in ("$report_type", "item_index", "worker_id", "testrun_uid")}
    phase = (values["when"], outcome, values["duration"], values["start"], values["stop"])
    return _report(
        values["nodeid"],
        tuple(values["location"]),
        keywords,
        extra,
        phase,
        longrepr,
        sections,
        wasxfail,
    )


def _report(
    nodeid: str,
    location: tuple[Any, ...],
    keywords: tuple[str, ...],
    extra: dict[str, Any],
    phase: tuple[Any, ...],
    longrepr: Any,
    sections: list[tuple[str, str]],
    wasxfail: str | None,
) -> pytest.TestReport:
    when, outcome, duration, start, stop = phase
    if wasxfail is not None:
        extra = {**extra, "wasxfail": wasxfail}
    return pytest.TestReport(
        nodeid,
        location,
        dict.fromkeys(keywords, 1),
        outcome,
        longrepr,
        when,
        list(sections),
        duration,
        start,
        stop,
        [],
        **extra,
    )


#: The events a batch hands to xdist's ``DSession`` as calls of its ``worker_<name>``
#: methods, with the node: the same keyword arguments ``process_from_remote`` passes.
DIRECT = frozenset(("logstart", "logfinish", "runtest_protocol_complete"))
#: The ``DSession`` methods a batch calls; without them each event is queued alone.
DSESSION_METHODS = tuple(f"worker_{name}" for name in (*DIRECT, "testreport"))

Call = tuple[str, dict[str, Any]]


def unfold_test(fields: tuple[Any, ...]) -> list[Event]:
    """The events that ``fold_test`` folded, as a batching worker holds them."""
    nodeid, location, report_type, item_index, worker_id, run_uid, keywords = fields[:7]
    where = {"nodeid": nodeid, "location": location}
    events: list[Event] = [("logstart", where)]
    for when, duration, start, stop, *extra in fields[8]:
        head = (nodeid, when, duration, start, stop, location, report_type, item_index)
        events.append((PHASE_EVENT, (*head, worker_id, run_uid, keywords, *extra)))
    events.append(("logfinish", dict(where)))
    events.append(("runtest_protocol_complete", {"item_index": item_index, "duration": fields[7]}))
    return events


def test_calls(node: Any, fields: tuple[Any, ...]) -> list[Call]:
    """The session calls of a folded test: what ``unfold_test``'s events would make."""
    nodeid, location, report_type, item_index, worker_id, run_uid, keywords = fields[:7]
    extra = {
        "$report_type": report_type,
        "item_index": item_index,
        "worker_id": worker_id,
        "testrun_uid": run_uid,
    }
    calls: list[Call] = [("logstart", {"node": node, "nodeid": nodeid, "location": location})]
    for when, duration, start, stop, outcome, longrepr, sections, wasxfail in fields[8]:
        phase = (when, outcome, duration, start, stop)
        report = _report(nodeid, location, keywords, extra, phase, longrepr, sections, wasxfail)
        calls.append(("testreport", {"node": node, "rep": report}))
    calls.append(("logfinish", {"node": node, "nodeid": nodeid, "location": location}))
    calls.append(
        (
            "runtest_protocol_complete",
            {"node": node, "item_index": item_index, "duration": fields[7]},
        )
    )
    return calls


class Unbatcher:
    """Controller side, per worker: unpack a batch into the events xdist handles.

    With ``direct`` (xdist's ``DSession`` has the methods), the plain phases and the
    start, finish and completion of a batch reach the session's loop as one queued event
    whose calls run in order: xdist's loop wakes once per queued event, and that hand-off
    between the receiving thread and the main one was most of what the controller still
    paid per test. Anything else (a report with output, a warning) is queued alone, as
    xdist would, after the calls before it.
    """

    def __init__(self, node: Any, plain: Callable[[object], None], *, direct: bool) -> None:
        self.node = node
        self.plain = plain
        self.direct = direct

    def __call__(self, eventcall: object) -> None:
        name = eventcall[0] if type(eventcall) is tuple else None
        if name != TEST_EVENT and name != BATCH_EVENT:
            self.plain(eventcall)
            return
        # Called in execnet's receiving thread, as xdist's process_from_remote is: an
        # error is shown and takes the worker down the way xdist's would, instead of
        # closing the channel and passing for a crash of the test it was running.
        try:
            self.unpack(eventcall)  # type: ignore[arg-type]
        except KeyboardInterrupt:
            raise
        except BaseException:
            excinfo = pytest.ExceptionInfo.from_current()
            self.node.config.notify_exception(excinfo)
            self.node.shutdown()
            self.node.notify_inproc("errordown", node=self.node, error=excinfo)

    def unpack(self, eventcall: tuple[str, dict[str, Any]]) -> None:
        node = self.node
        if eventcall[0] == TEST_EVENT:
            tests = decode_tests(eventcall[1]["json"])
            if self.direct:
                node.notify_inproc(
                    BATCH_EVENT, calls=[c for fields in tests for c in test_calls(node, fields)]
                )
                return
            events = [event for fields in tests for event in unfold_test(fields)]
        else:
            events = eventcall[1]["events"]
        if not self.direct:
            for name, payload in events:
                if name == PHASE_EVENT:
                    node.notify_inproc("testreport", node=node, rep=phase_report(payload))
                else:
                    self.plain((name, payload))
            return
        calls: list[Call] = []
        for name, payload in events:
            if name == PHASE_EVENT:
                calls.append(("testreport", {"node": node, "rep": phase_report(payload)}))
            elif name in DIRECT:
                calls.append((name, {"node": node, **payload}))
            else:
                if calls:
                    node.notify_inproc(BATCH_EVENT, calls=calls)
                    calls = []
                self.plain((name, payload))
        if calls:
            node.notify_inproc(BATCH_EVENT, calls=calls)


class SessionCalls:
    """``DSession.worker_testfleet_batch``: a batch's calls, made in the session's loop."""

    def __init__(self, dsession: Any) -> None:
        self.dsession = dsession

    def __call__(self, calls: list[Call]) -> None:
        dsession = self.dsession
        for name, kwargs in calls:
            getattr(dsession, "worker_" + name)(**kwargs)


def direct_calls(config: pytest.Config) -> bool:
    """Give xdist's ``DSession`` a method for batches, if it has the ones a batch calls."""
    dsession = config.pluginmanager.get_plugin("dsession")
    if dsession is None or not all(callable(getattr(dsession, m, None)) for m in DSESSION_METHODS):
        return False
    if not isinstance(getattr(dsession, "worker_" + BATCH_EVENT, None), SessionCalls):
        setattr(dsession, "worker_" + BATCH_EVENT, SessionCalls(dsession))
    return True


class ControllerHooks:
    """Controller side: offer batching to each worker that can be read back."""

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        # Called before xdist hands node.process_from_remote to the channel as its
        # callback, so the wrapper set on the instance here is the one that receives.
        plain = getattr(node, "process_from_remote", None)
        if not callable(plain) or not callable(getattr(node, "notify_inproc", None)):
            return
        unserialisers = node.config.hook.pytest_report_from_serializable.get_hookimpls()
        if not {impl.plugin_name for impl in unserialisers} <= OWN_UNSERIALISERS:
            return
        node.process_from_remote = Unbatcher(node, plain, direct=direct_calls(node.config))
        node.workerinput[WORKERINPUT_KEY] = 1
        worker_exit.offer(node)

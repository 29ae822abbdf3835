"""One execnet message per test between an xdist worker and its controller.

Why: a worker sends six messages per test (``logstart``, three phase reports,
``logfinish``, ``runtest_protocol_complete``), and xdist's controller pays per message,
not per byte (a thread wake-up, a queue hand-off, an unserialisation): 1.42 ms of CPU per
test on a suite of 8,623 short tests, on a core the workers need too (benchmarks/README.md).
Here a worker keeps a test's events and sends them as one message when the test ends,
and a passed phase with nothing to show crosses as a tuple instead of a report's dict.

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

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import xdist

from testfleet.core import workers
from testfleet.scheduling import worker_exit

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
#: A passed phase sent as a tuple, inside a batch.
PASSED_EVENT = "testfleet_passed"
#: A whole passed test, its six events folded into one tuple (``fold_test``).
TEST_EVENT = "testfleet_test"
#: The events of a passed test with nothing to show, in the order a worker sends them.
TEST_PATTERN = (
    "logstart",
    PASSED_EVENT,
    PASSED_EVENT,
    PASSED_EVENT,
    "logfinish",
    "runtest_protocol_complete",
)
PHASES = ("setup", "call", "teardown")
CONTROLLER_NAME = "testfleet-transport"
#: The events of one test, held until it ends; anything else goes out at once.
PER_TEST = frozenset(
    ("logstart", "testreport", "logfinish", "runtest_protocol_complete", "warning_recorded")
)
#: The fields of a passed phase that cross as a tuple, in order; the report's other
#: keys (``PLAIN_KEYS``) are the same for every such phase or added by xdist.
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
#: Every key of a plain phase report as pytest and xdist serialise it. A report with any
#: other key (a plugin's attribute) or a pytest that writes others goes the general way.
PLAIN_KEYS = frozenset(
    (*TUPLE_FIELDS, "keywords", "outcome", "longrepr", "sections", "user_properties")
)

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


def compact_passed(data: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A passed phase with no output as a tuple, or None to send ``data`` as it is."""
    if (
        data["outcome"] != "passed"
        or data["longrepr"] is not None
        or data["sections"]
        or data["user_properties"]
        or data.keys() != PLAIN_KEYS
        or any(value != 1 for value in data["keywords"].values())
    ):
        return None
    return (*(data[field] for field in TUPLE_FIELDS), tuple(data["keywords"]))


def fold_test(events: list[Event]) -> tuple[Any, ...] | None:
    """A passed test's six events as one tuple of plain values, or None for anything else.

    Its node id, location, keywords and indices go once instead of five times. The tuple
    crosses as one JSON string (``encode_test``): execnet's serialiser is written in
    Python and pays per value, the json module's is not (measured: a test's message
    unserialised in a quarter of the time of the same tuple given to execnet).
    """
    if tuple(name for name, _ in events) != TEST_PATTERN:
        return None
    start, setup, call, teardown, finish, complete = (payload for _, payload in events)
    shared = (setup[0], setup[5], *setup[6:])
    if (
        (setup[1], call[1], teardown[1]) != PHASES
        or (call[0], call[5], *call[6:]) != shared
        or (teardown[0], teardown[5], *teardown[6:]) != shared
        or start != finish
        or start != {"nodeid": setup[0], "location": setup[5]}
        or complete.keys() != {"item_index", "duration"}
        or complete["item_index"] != setup[7]
    ):
        return None
    times = (*setup[2:5], *call[2:5], *teardown[2:5])
    return (*shared, *times, complete["duration"])


def encode_test(fields: tuple[Any, ...]) -> str | None:
    """``fold_test``'s tuple as JSON, or None if a value has no exact JSON form."""
    try:
        return json.dumps(fields, allow_nan=False)
    except (TypeError, ValueError):
        return None


def decode_test(text: str) -> tuple[Any, ...]:
    """The tuple ``encode_test`` wrote; JSON has no tuples: location and keywords made so."""
    fields = json.loads(text)
    fields[1] = tuple(fields[1])
    fields[6] = tuple(fields[6])
    return tuple(fields)


class WorkerBatcher:
    """Worker side: keep a test's events and send them as one message when it ends."""

    def __init__(
        self, send: Callable[..., None], run_one_test: Callable[..., object], *, verbose: bool
    ) -> None:
        self.plain_send = send
        self.plain_run_one_test = run_one_test
        self.held: list[Event] | None = None
        # With -v the controller prints a line when a test starts; if the test then
        # crashes its worker, a held logstart would be lost with it, and so would the line.
        self.per_test = PER_TEST - {"logstart"} if verbose else PER_TEST

    def sendevent(self, name: str, **kwargs: Any) -> None:
        held = self.held
        if held is None or name not in self.per_test:
            # Outside a test, or an event of its own (a steal's answer, which comes from
            # execnet's receiver thread, or an internal error): sent as xdist would. The
            # held events are left alone, so only the main thread ever touches them.
            self.plain_send(name, **kwargs)
            return
        if name == "testreport":
            data = kwargs["data"]
            compact = compact_passed(data)
            if compact is not None:
                held.append((PASSED_EVENT, compact))
                return
            held.append((name, kwargs))
            if data["outcome"] == "failed":
                self.flush()
            return
        held.append((name, kwargs))

    def flush(self) -> None:
        if self.held:
            events, self.held = self.held, []
            folded = fold_test(events) if len(events) == len(TEST_PATTERN) else None
            text = None if folded is None else encode_test(folded)
            if text is not None:
                self.plain_send(TEST_EVENT, json=text)
            else:
                self.plain_send(BATCH_EVENT, events=events)

    def run_one_test(self, *args: Any, **kwargs: Any) -> object:
        self.held = []
        try:
            return self.plain_run_one_test(*args, **kwargs)
        finally:
            self.flush()
            self.held = None


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
            batcher = WorkerBatcher(send, run_one_test, verbose=verbose)
            plugin.sendevent = batcher.sendevent
            plugin.run_one_test = batcher.run_one_test
            return batcher
    return None


# -- the controller's side ------------------------------------------------------------------


def passed_report(fields: tuple[Any, ...]) -> pytest.TestReport:
    """The report that ``compact_passed`` folded, as pytest's own unserialising makes it."""
    values = dict(zip(TUPLE_FIELDS, fields, strict=False))
    keywords = fields[len(TUPLE_FIELDS)]
    extra = {key: values[key] for key in ("$report_type", "item_index", "worker_id", "testrun_uid")}
    return pytest.TestReport(
        values["nodeid"],
        tuple(values["location"]),
        dict.fromkeys(keywords, 1),
        "passed",
        None,
        values["when"],
        [],
        values["duration"],
        values["start"],
        values["stop"],
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
    """The six events that ``fold_test`` folded, as xdist's controller receives them."""
    nodeid, location, report_type, item_index, worker_id, run_uid, keywords = fields[:7]
    where = {"nodeid": nodeid, "location": location}
    events: list[Event] = [("logstart", where)]
    for number, when in enumerate(PHASES):
        duration, start, stop = fields[7 + 3 * number : 10 + 3 * number]
        phase = (nodeid, when, duration, start, stop, location, report_type, item_index)
        events.append((PASSED_EVENT, (*phase, worker_id, run_uid, keywords)))
    events.append(("logfinish", dict(where)))
    events.append(("runtest_protocol_complete", {"item_index": item_index, "duration": fields[16]}))
    return events


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
        if eventcall[0] == TEST_EVENT:
            events = unfold_test(decode_test(eventcall[1]["json"]))
        else:
            events = eventcall[1]["events"]
        node = self.node
        if not self.direct:
            for name, payload in events:
                if name == PASSED_EVENT:
                    node.notify_inproc("testreport", node=node, rep=passed_report(payload))
                else:
                    self.plain((name, payload))
            return
        calls: list[Call] = []
        for name, payload in events:
            if name == PASSED_EVENT:
                calls.append(("testreport", {"node": node, "rep": passed_report(payload)}))
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

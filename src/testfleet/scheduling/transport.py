"""Few execnet messages between an xdist worker and its controller: one per window of tests.

Why: a worker sends six messages per test (``logstart``, three phase reports,
``logfinish``, ``runtest_protocol_complete``), and both processes pay per message, not
per byte (a pipe write, a thread wake-up, a queue hand-off, an unserialisation): 1.42 ms
of the controller's CPU per test on a suite of 8,623 short tests, on a core the workers
need too (benchmarks/README.md). Here a worker keeps a test's events until it ends; a
phase that passed or was skipped crosses as a tuple instead of a report's dict; a test
made only of such phases is folded into one JSON value, and such tests go together, up
to ``WINDOW_TESTS`` per message. A worker that dies holding a window leaves the index
of the test it was running for the scheduler (:mod:`testfleet.scheduling.running`).
The messages are made and read in :mod:`testfleet.scheduling.wire`, the worker's side
is :mod:`testfleet.scheduling.window`, the controller's is here.

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

from collections.abc import Callable
from typing import Any

import pytest
import xdist

from testfleet.core import workers
from testfleet.scheduling import worker_exit
from testfleet.scheduling.window import batch_worker
from testfleet.scheduling.wire import (
    BATCH_EVENT,
    PHASE_EVENT,
    TEST_EVENT,
    decode_tests,
    make_report,
    phase_report,
    unfold_test,
)

#: The pytest-xdist releases (major, minor) whose event names and methods this was tested
#: against, both ends included; tests/test_transport.py runs the oldest in a slow test.
SUPPORTED = ((3, 5), (3, 8))
#: pytest's own plugins that turn a report's dict back into a report. A passed phase
#: crossing as a tuple is rebuilt without this hook: with any other plugin implementing
#: it, the controller offers no batching and each report goes through the hook as before.
OWN_UNSERIALISERS = frozenset(("reports", "subtests"))
#: Key in ``workerinput``: the controller reads batches.
WORKERINPUT_KEY = "testfleet_batch"
CONTROLLER_NAME = "testfleet-transport"


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


# -- the controller's side ------------------------------------------------------------------


#: The events a batch hands to xdist's ``DSession`` as calls of its ``worker_<name>``
#: methods, with the node: the same keyword arguments ``process_from_remote`` passes.
DIRECT = frozenset(("logstart", "logfinish", "runtest_protocol_complete"))
#: The ``DSession`` methods a batch calls; without them each event is queued alone.
DSESSION_METHODS = tuple(f"worker_{name}" for name in (*DIRECT, "testreport"))

Call = tuple[str, dict[str, Any]]


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
        report = make_report(nodeid, location, keywords, extra, phase, longrepr, sections, wasxfail)
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

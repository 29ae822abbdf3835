"""The worker's side of a batched run: a test's events held, passed tests sent in windows.

See :mod:`testfleet.scheduling.transport` for why and when; this module wraps the
methods of one xdist ``WorkerInteractor`` instance (``batch_worker``).
"""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from testfleet.scheduling import running
from testfleet.scheduling.wire import (
    BATCH_EVENT,
    PHASE_EVENT,
    TEST_EVENT,
    Event,
    compact_phase,
    encode_test,
    fold_test,
)

#: A window of such tests is sent when it holds this many tests, when its oldest ended
#: this many seconds ago, or when the worker has this few tests left in its queue
#: (``WorkerBatcher``). 64 quick tests make a message of about 25 kB; a tenth of a
#: second keeps the controller's progress live.
WINDOW_TESTS = 64
WINDOW_SECONDS = 0.1
WINDOW_LOW_QUEUE = 2
#: The events of one test, held until it ends; anything else goes out at once.
PER_TEST = frozenset(
    ("logstart", "testreport", "logfinish", "runtest_protocol_complete", "warning_recorded")
)


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
        #: Set while the window holds tests; the thread that sends an old window waits on it.
        self.filled = threading.Event()
        self.watcher: threading.Thread | None = None
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
            # Emptied once sent: an interrupt in between leaves them to the next send.
            self.plain_send(TEST_EVENT, json="[" + ",".join(self.window) + "]")
            self.window = []

    def _watch(self) -> None:
        """Send a window whose oldest test is ``window_seconds`` old, while a test runs.

        A test's end sends a window that old too; this thread covers a long test, during
        which the tests before it would otherwise wait for its end to be heard of.
        """
        while True:
            self.filled.wait()
            with self.lock:
                if not self.window:
                    self.filled.clear()
                    continue
                due = self.window_since + self.window_seconds - time.monotonic()
                if due <= 0:
                    self._send_window()
                    self.filled.clear()
                    continue
            time.sleep(due)

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
            if len(window) == 1 and self.window_tests > 1:
                self.window_since = now
                if self.watcher is None:
                    self.watcher = threading.Thread(
                        target=self._watch, name="testfleet-window", daemon=True
                    )
                    self.watcher.start()
                self.filled.set()
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
        except BaseException:
            # An interrupted test: the slot still names it, as xdist's rule would (the
            # first test the controller has not heard of).
            self.end_test()
            raise
        # The test ended: cleared before its results go into the window, so that a worker
        # killed in between is not taken to have crashed in a test that passed.
        if slot is not None:
            slot.idle()
        self.end_test()
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

"""Warm probes: one process imports the suite once, then forks a child per probe.

A probe started as a new interpreter pays for pytest, its plugins and the suite's imports
every time; on a suite with heavy imports that is most of its cost. The server here
collects the probe files once (``--collect-only``: conftests and test modules are
imported, no test runs), then, for each request, forks: the child runs ``pytest.main``
on the probe's arguments and finds every module already imported, in the state import
left it in, exactly as a fresh process would after its own import. The parent never runs
a test, so no test's side effect reaches another probe.

Where the platform has no ``fork``, or the preload fails (a conftest that refuses to
import twice, say), `bisect` falls back to a new process per probe.

Protocol, one JSON object per line: the client sends ``{"preload": [args]}``, the server
answers ``{"ready": true}`` or ``{"ready": false, "error": text}``; then each request
``{"id": n, "args": [...], "log": path, "timeout": seconds|null}`` is answered with
``{"id": n, "status": exit status or null when killed at the timeout, "cpu": seconds}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

TIMED_OUT = None


def available() -> bool:
    return hasattr(os, "fork")


# -- server side (runs in its own interpreter: python -m testfleet.diagnose.warm) ----------


def _write(out: IO[bytes], message: dict[str, Any]) -> None:
    out.write((json.dumps(message) + "\n").encode())
    out.flush()


def _preload(args: Sequence[str]) -> str | None:
    """Import what the probes will import; the error text, or None when it worked."""
    # pytest is imported here, in the server: the client side of this module runs in the
    # command line's own process, which never needs pytest.
    import pytest

    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            status = pytest.main([*args, "--collect-only", "-q"])
    except BaseException as exc:  # any failure means: no warm probes, fall back
        return f"{type(exc).__name__}: {exc}"
    if status not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        return f"collection ended with exit status {int(status)}:\n{sink.getvalue()[-2000:]}"
    return None


def _child(args: list[str], log: str) -> None:
    """In the forked child: run one probe with its output in ``log``; never returns."""
    import pytest

    status = 70  # EX_SOFTWARE, should pytest.main itself raise
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        # New file objects: the parent's may hold buffered bytes or locks of its own.
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        signal.signal(signal.SIGINT, signal.default_int_handler)
        status = int(pytest.main(args))
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def serve(stdin: int = 0, out: IO[bytes] | None = None) -> int:
    """The server loop: preload, then fork one child per request until stdin closes."""
    out = out if out is not None else sys.stdout.buffer
    buffer = b""
    pending: dict[int, tuple[int, float | None]] = {}
    preloaded = False
    open_input = True
    while open_input or pending:
        # Block on the next request while no child runs; poll for ended children otherwise.
        wait = 0.005 if pending else None
        ready, _, _ = select.select([stdin] if open_input else [], [], [], wait)
        if ready:
            chunk = os.read(stdin, 65536)
            open_input = bool(chunk)
            buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            if not preloaded:
                error = _preload(request["preload"])
                _write(out, {"ready": error is None, "error": error})
                preloaded = True
                continue
            timeout = request.get("timeout")
            pid = os.fork()
            if pid == 0:
                _child(list(request["args"]), str(request["log"]))
            pending[pid] = (int(request["id"]), time.monotonic() + timeout if timeout else None)
        _reap(pending, out)
    return 0


def _reap(pending: dict[int, tuple[int, float | None]], out: IO[bytes]) -> None:
    now = time.monotonic()
    for pid, (_, deadline) in list(pending.items()):
        if deadline is not None and now > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    while pending:
        try:
            pid, wait_status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        request_id, deadline = pending.pop(pid)
        killed = os.WIFSIGNALED(wait_status)
        timed_out = killed and deadline is not None and time.monotonic() > deadline
        status = TIMED_OUT if timed_out else os.waitstatus_to_exitcode(wait_status)
        cpu = usage.ru_utime + usage.ru_stime
        _write(out, {"id": request_id, "status": status, "cpu": round(cpu, 4)})


# -- client side ----------------------------------------------------------------------------


class WarmError(Exception):
    """The server could not preload the suite, or stopped."""


class Server:
    """A running server; ``run`` may be called from several threads at once."""

    def __init__(self, preload: Sequence[str], cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "testfleet.diagnose.warm"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._lock = threading.Lock()
        self._next = 0
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._reader: threading.Thread | None = None
        self._send({"preload": list(preload)})
        assert self.process.stdout is not None
        answer = self.process.stdout.readline()
        if not answer:
            self.close()
            raise WarmError("the warm probe server stopped while importing the suite")
        hello = json.loads(answer)
        if not hello.get("ready"):
            self.close()
            raise WarmError(str(hello.get("error")))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            answer = json.loads(line)
            with self._lock:
                event, box = self._waiting.pop(int(answer["id"]))
            box.append(answer)
            event.set()
        with self._lock:
            # The server is gone: wake every waiter with no answer.
            for event, _ in self._waiting.values():
                event.set()
            self._waiting.clear()

    def run(
        self, args: Sequence[str], log: Path, timeout: float | None
    ) -> tuple[int | None, float]:
        """Run pytest with ``args`` in a fork; (exit status or None at timeout, CPU seconds)."""
        event = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            self._next += 1
            request_id = self._next
            self._waiting[request_id] = (event, box)
            self._send({"id": request_id, "args": list(args), "log": str(log), "timeout": timeout})
        event.wait()
        if not box:
            raise WarmError("the warm probe server stopped")
        return box[0]["status"], float(box[0]["cpu"])

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    raise SystemExit(serve())

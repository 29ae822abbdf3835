"""Keeps `serial` tests alone when they run under xdist: a run-wide readers-writer lock.

``testfleet run`` runs `serial` tests in a phase of their own. A plain ``pytest -n N``
runs them with the others; there every test holds a shared lock for its whole
protocol (setup, call, teardown) and a `serial` test an exclusive one, so a `serial`
test starts only when no other test runs, and no test starts until it has ended.
A second lock, the turnstile, gives the `serial` test precedence: once it waits, no
new test starts, so it is not starved by workers that keep starting tests.

The locks are ``flock`` locks on two files named after the run id, in the lock
directory of :mod:`testfleet.isolation.pools`; the kernel drops them when a worker dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from testfleet.isolation.names import run_token
from testfleet.isolation.pools import make_lock_dir, open_lock_file


def lock_paths(directory: Path, run_id: str) -> tuple[Path, Path]:
    """The turnstile and the main lock file of the run ``run_id``."""
    stem = f"serial-{run_token(run_id)}"
    return directory / f"{stem}.turnstile.lock", directory / f"{stem}.lock"


class SerialGate:
    """One worker's handle on the run's readers-writer lock."""

    def __init__(self, directory: Path, run_id: str, *, shared_directory: bool = False) -> None:
        make_lock_dir(directory, shared_directory)
        self.paths = lock_paths(directory, run_id)
        self._turnstile = open_lock_file(self.paths[0], shared=False)
        self._main = open_lock_file(self.paths[1], shared=False)

    @contextlib.contextmanager
    def hold(self, serial: bool) -> Iterator[None]:
        """Hold the lock for one test: exclusively for a `serial` test, shared otherwise."""
        if serial:
            fcntl.flock(self._turnstile, fcntl.LOCK_EX)
            try:
                fcntl.flock(self._main, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(self._main, fcntl.LOCK_UN)
            finally:
                fcntl.flock(self._turnstile, fcntl.LOCK_UN)
            return
        # Passing through the turnstile waits while a `serial` test waits or runs.
        fcntl.flock(self._turnstile, fcntl.LOCK_SH)
        try:
            fcntl.flock(self._main, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._main, fcntl.LOCK_UN)

    def close(self) -> None:
        for fd in (self._turnstile, self._main):
            with contextlib.suppress(OSError):
                os.close(fd)


def remove_lock_files(directory: Path, run_id: str) -> None:
    """Delete the run's lock files; only once every worker of the run has ended."""
    for path in lock_paths(directory, run_id):
        with contextlib.suppress(OSError):
            path.unlink()

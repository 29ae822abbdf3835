"""Resource pools: N named slots, each held by one process at a time, freed when it dies.

Each slot is a lock file, ``<lock dir>/<pool>/<slot>.lock``, locked with ``flock``.
The kernel drops a ``flock`` lock when the process that holds it ends, however it
ends, so a crashed holder never keeps a slot. The holder writes who it is into the
file, so that a process that waits in vain can say who holds what.

Where the lock files live decides who shares a pool. The default is machine-wide,
``$TMPDIR/testfleet-locks`` (usually ``/tmp/testfleet-locks``): two runs on one
machine that use one real server (a database with ten collections, say) then share
its slots too, instead of clearing each other's collections. Point ``lock_dir`` (or
``--testfleet-lock-dir``, or ``TESTFLEET_LOCK_DIR``) elsewhere to share a pool more
narrowly (one run or one checkout) or more widely (a directory on a shared file
system with working ``flock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testfleet.settings import config

LOCK_DIR_ENV = "TESTFLEET_LOCK_DIR"
DEFAULT_TIMEOUT = 60.0
POLL_INTERVAL = 0.05

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class PoolError(Exception):
    """A pool that cannot work as configured: a bad name, or a lock directory it cannot use."""


class PoolTimeout(TimeoutError):
    """No slot of the pool became free in time."""


def default_lock_dir() -> Path:
    """The machine-wide lock directory: ``testfleet-locks`` in the system's temp directory."""
    return Path(tempfile.gettempdir()) / "testfleet-locks"


def configured_lock_dir(
    option: str | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The lock directory: ``option``, else the ``lock_dir`` setting (``TESTFLEET_LOCK_DIR``,
    [tool.testfleet]); None means the default."""
    chosen = config.load(environ=environ).get("lock_dir", option or None)
    return Path(chosen).expanduser().absolute() if chosen else None


def check_name(kind: str, name: str) -> str:
    """``name`` when it is a safe file name: letters, digits, ``. _ -``, a letter or digit first."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PoolError(
            f"{kind} name {name!r} is not usable as a file name: use 1-100 ASCII letters, "
            "digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def make_lock_dir(path: Path, shared: bool) -> None:
    """Create ``path`` if missing; ``shared`` makes a new one writable by every user, like /tmp."""
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        pass
    else:
        if shared:
            # Sticky and world-writable like /tmp: every user's runs can add lock files,
            # none can delete another's.
            path.chmod(0o1777)
    if not path.is_dir():
        raise PoolError(
            f"lock directory {path} is not a directory: point {LOCK_DIR_ENV} or "
            "--testfleet-lock-dir at a directory"
        )


def open_lock_file(path: Path, shared: bool) -> int:
    """Open (creating if needed) a lock file without following symlinks."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        # Open first without O_CREAT: Linux's fs.protected_regular refuses O_CREAT on
        # another user's file in a sticky directory, even when it exists.
        with contextlib.suppress(FileNotFoundError):
            return os.open(path, flags)
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if shared:
            os.fchmod(fd, 0o666)
        return fd


def _is_current(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (not deleted or replaced meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fd), path.lstat())
    except FileNotFoundError:
        return False


def describe_holder(text: str) -> str:
    """A holder record, as written by :meth:`Pool.acquire`, in words."""
    try:
        data = json.loads(text)
    except ValueError:
        return "an unknown holder"
    if not isinstance(data, dict):
        return "an unknown holder"
    parts = [
        f"{key} {data[key]}" for key in ("worker", "test", "pid", "run", "host") if key in data
    ]
    since = data.get("since")
    if isinstance(since, int | float):
        parts.append(f"for {max(0.0, time.time() - since):.1f} s")
    return ", ".join(parts) or "an unknown holder"


@dataclass
class Lease:
    """One held slot; :meth:`release` (or leaving the ``with`` block) frees it."""

    pool: str
    slot: str
    path: Path
    _fd: int | None = field(default=None, repr=False)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Free the slot; a second call does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Erase the holder record while still holding the lock, so that no one
            # reads a stale name next to a free slot.
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def __enter__(self) -> str:
        return self.slot

    def __exit__(self, *exc: object) -> None:
        self.release()


class Pool:
    """N named slots shared by every process that uses the same pool name and lock directory.

    ``slots`` is a list of names (``["c0", "c1"]``) or a count (``3`` gives ``"0"``,
    ``"1"``, ``"2"``). :meth:`acquire` waits, up to ``timeout`` seconds, for a free
    slot; a process can hold several slots of one pool at once.
    """

    def __init__(
        self,
        name: str,
        slots: int | Sequence[str],
        *,
        lock_dir: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.name = check_name("pool", name)
        if isinstance(slots, int):
            if slots < 1:
                raise PoolError(f"pool {name!r} needs at least one slot, not {slots}")
            names = [str(i) for i in range(slots)]
        else:
            if isinstance(slots, str):
                raise PoolError(f"pool {name!r}: give the slots as a list of names, not a str")
            names = [check_name("slot", slot) for slot in slots]
            if not names:
                raise PoolError(f"pool {name!r} needs at least one slot")
            duplicates = sorted({slot for slot in names if names.count(slot) > 1})
            if duplicates:
                raise PoolError(f"pool {name!r} names slots twice: {', '.join(duplicates)}")
        if timeout < 0:
            raise PoolError(f"pool {name!r}: the timeout must not be negative, not {timeout}")
        self.slots: tuple[str, ...] = tuple(names)
        self.shared = lock_dir is None
        self.lock_dir = default_lock_dir() if lock_dir is None else lock_dir
        self.directory = self.lock_dir / self.name
        self.timeout = timeout
        self.poll_interval = poll_interval

    def path(self, slot: str) -> Path:
        return self.directory / f"{slot}.lock"

    def _try(self, slot: str, holder: Mapping[str, object]) -> Lease | None:
        path = self.path(slot)
        while True:
            try:
                fd = open_lock_file(path, self.shared)
            except FileNotFoundError:
                # remove_unused() in another process took the directory away after we
                # made it: make it again and retry.
                make_lock_dir(self.directory, self.shared)
                continue
            except PermissionError as exc:
                raise PoolError(
                    f"pool {self.name!r}: cannot open {path} ({exc.strerror}): point "
                    f"{LOCK_DIR_ENV} or --testfleet-lock-dir at a directory you can write"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            if _is_current(fd, path):
                break
            # remove_unused() deleted the file between our open and our lock, and a
            # newcomer may hold the new one: the lock on the old file guards nothing.
            os.close(fd)
        record = {**holder, "pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
        except BaseException:
            os.close(fd)
            raise
        return Lease(self.name, slot, path, fd)

    def remove_unused(self) -> list[str]:
        """Delete the lock files of the slots no one holds, then the pool's directory if empty.

        For pools whose name is used once (per run, per server): their files would
        otherwise stay in the lock directory. Returns the slots whose files went.
        """
        removed: list[str] = []
        for slot in self.slots:
            path = self.path(slot)
            try:
                fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _is_current(fd, path):
                    path.unlink()
                    removed.append(slot)
            except OSError:
                # Held (BlockingIOError), or another user's file in a sticky directory.
                pass
            finally:
                os.close(fd)
        with contextlib.suppress(OSError):
            self.directory.rmdir()
        return removed

    def acquire(
        self,
        holder: Mapping[str, object] | None = None,
        *,
        timeout: float | None = None,
        prefer: int = 0,
    ) -> Lease:
        """Hold a free slot, waiting up to ``timeout`` (default: the pool's) seconds.

        ``holder`` says who asks (worker, test...), for the error another waiter gets;
        ``prefer`` is where the search starts, so that workers tend to keep one slot each.
        """
        make_lock_dir(self.directory.parent, self.shared)
        make_lock_dir(self.directory, self.shared)
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        start = prefer % len(self.slots)
        order = self.slots[start:] + self.slots[:start]
        while True:
            for slot in order:
                lease = self._try(slot, holder or {})
                if lease is not None:
                    return lease
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolTimeout(self._timeout_message(limit))
            time.sleep(min(self.poll_interval, remaining))

    @contextlib.contextmanager
    def slot(
        self,
        holder: Mapping[str, object] | None = None,
        *,
        timeout: float | None = None,
        prefer: int = 0,
    ) -> Iterator[str]:
        """Hold a slot for the ``with`` block and give its name."""
        lease = self.acquire(holder, timeout=timeout, prefer=prefer)
        try:
            yield lease.slot
        finally:
            lease.release()

    def holders(self) -> dict[str, str]:
        """Who holds each slot that is held now, in words (best effort: read without locking)."""
        held: dict[str, str] = {}
        for slot in self.slots:
            path = self.path(slot)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    held[slot] = describe_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return held

    def _timeout_message(self, waited: float) -> str:
        held = self.holders()
        if held:
            who = "; ".join(f"{slot!r} by {text}" for slot, text in held.items())
        else:
            who = "none is held any more: they were freed just now"
        return (
            f"pool {self.name!r}: no slot became free within {waited:g} s "
            f"({len(self.slots)} slots, lock files in {self.directory}); held: {who}. "
            "A slot is held by one test at a time: give the pool more slots, run fewer "
            "workers (-n), or raise the timeout (timeout=, or --testfleet-pool-timeout)."
        )

"""Leaving a process whose work is done without tearing its heap down object by object.

Why: when a Python process ends, the interpreter frees every object it holds, one by
one. After a large pytest session that is most of what is left to do: an xdist worker
of a suite of 8,623 tests took 2 to 3 s to exit after its last message, and xdist's
controller waits for every worker to exit before it ends its session; the controller
then does the same with its own heap (benchmarks/README.md).

``leave`` does what a normal exit does that anyone can observe, then ends the process
at once: the functions registered with :mod:`atexit` run (coverage saves its data
there, logging flushes its handlers, ``weakref.finalize`` callbacks run), every file
still open for writing is flushed (a file a test left open and unflushed would otherwise
lose what it buffered), every other file object still open is closed (a compressed
writer writes its trailer then), and the standard streams are flushed. It does nothing,
and the process exits the ordinary way, when a thread that is not a daemon is still
running (an ordinary exit would wait for it), or when a tracer or profiler is set:
``coverage run`` and ``python -m cProfile`` write their results after the program
returns, not in an exit handler.

Not done, as an ordinary exit would: finalisers of other objects the process still
holds (a ``zipfile.ZipFile`` or a ``tempfile.NamedTemporaryFile`` left open).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import os
import sys
import threading


def other_threads_running() -> bool:
    """Whether a non-daemon thread besides the main one is alive (exit would wait for it)."""
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def standard_streams() -> set[int]:
    """The ids of the standard streams and the buffers under them: flushed, never closed."""
    kept: set[int] = set()
    for stream in (
        sys.stdin,
        sys.stdout,
        sys.stderr,
        sys.__stdin__,
        sys.__stdout__,
        sys.__stderr__,
    ):
        while stream is not None:
            kept.add(id(stream))
            stream = getattr(stream, "buffer", None) or getattr(stream, "raw", None)
    return kept


#: Where a file object keeps the one it writes through (text, buffered, compressed files).
WRAPPED = ("buffer", "raw", "fileobj", "myfileobj", "_fp", "fp")


def _inner(obj: object) -> list[int]:
    inner = []
    for name in WRAPPED:
        try:
            inner.append(id(getattr(obj, name)))
        except (AttributeError, ValueError):
            continue
    return inner


def _is_open(obj: io.IOBase) -> bool:
    try:
        return not obj.closed
    except (AttributeError, ValueError, OSError):
        # A file object half made (its __init__ failed), or a subclass's own property.
        return False


def close_open_files() -> int:
    """Close every file object still open but the standard streams; how many were closed.

    Closing flushes what a writer buffered, and a compressed writer (gzip, bz2, lzma)
    writes its trailer, as freeing it at an ordinary exit would. Outer files go first: a
    text file is closed before the buffer under it, a gzip writer before its file.
    """
    kept = standard_streams()
    pending = [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, io.IOBase) and id(obj) not in kept and _is_open(obj)
    ]
    closed = 0
    while pending:
        inner = {number for obj in pending for number in _inner(obj)}
        # Files no other open file writes through; all of them if they refer in a circle.
        outer = [obj for obj in pending if id(obj) not in inner] or pending
        for obj in outer:
            try:
                obj.close()
                closed += 1
            except (OSError, ValueError):
                # A pipe whose reader has gone, a file closed meanwhile: as at exit, the
                # data cannot be written and nothing more is to be done.
                pass
        done = {id(obj) for obj in outer}
        pending = [obj for obj in pending if id(obj) not in done and _is_open(obj)]
    return closed


def traced() -> bool:
    """Whether a tracer or profiler watches this process (coverage, cProfile, a debugger)."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12 and later
    return monitoring is not None and any(
        monitoring.get_tool(tool) is not None for tool in range(6)
    )


def leave(status: int) -> None:
    """End the process with ``status`` once its exit handlers ran; returns if it can't yet.

    The caller continues with an ordinary exit when this returns (a thread is running).
    """
    if other_threads_running() or traced():
        return
    # CPython's own exit runs these after joining threads and before freeing objects;
    # it is the module's documented way of registering them, run here at the same point.
    atexit._run_exitfuncs()
    close_open_files()
    for stream in (sys.stdout, sys.stderr):
        # A closed or replaced stream, or a pipe whose reader has gone: nothing to keep.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(status)

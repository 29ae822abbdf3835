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
lose what it buffered), and so are the standard streams. It does nothing, and the
process exits the ordinary way, when a thread that is not a daemon is still running:
an ordinary exit would wait for it.
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


def flush_open_files() -> int:
    """Flush every file object still open for writing; how many were flushed."""
    flushed = 0
    for obj in gc.get_objects():
        # Buffered binary writers and text files hold data until flushed; raw files
        # (FileIO) write through and need nothing.
        if isinstance(obj, (io.BufferedWriter, io.BufferedRandom, io.TextIOWrapper)):
            try:
                if not obj.closed and obj.writable():
                    obj.flush()
                    flushed += 1
            except (OSError, ValueError):
                # A pipe whose reader has gone, a file closed meanwhile: as at exit, the
                # data cannot be written and nothing more is to be done.
                pass
    return flushed


def leave(status: int) -> None:
    """End the process with ``status`` once its exit handlers ran; returns if it can't yet.

    The caller continues with an ordinary exit when this returns (a thread is running).
    """
    if other_threads_running():
        return
    # CPython's own exit runs these after joining threads and before freeing objects;
    # it is the module's documented way of registering them, run here at the same point.
    atexit._run_exitfuncs()
    flush_open_files()
    for stream in (sys.stdout, sys.stderr):
        # A closed or replaced stream, or a pipe whose reader has gone: nothing to keep.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(status)

"""Which test an xdist worker is running, readable after the worker has died.

A worker that sends its passed tests in windows (:mod:`testfleet.scheduling.transport`)
holds the results of tests that have ended while it runs the next one. If it dies then,
xdist's rule for naming the test that crashed it (the first test the controller has not
heard of) would blame a test that passed. So the worker writes the index of the test it
is running into a small file mapped into its memory (no system call per test, and the
write survives the process), and the scheduler reads it once the worker is gone.

The controller names the file in ``workerinput``; a worker that sends no windows does
not create it, and the scheduler then keeps xdist's rule.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from pathlib import Path
from typing import Any

#: Key in ``workerinput``: the path of this worker's file.
WORKERINPUT_KEY = "testfleet_running"
#: The file holds one little-endian 64-bit number: 0 between tests, index + 1 during one.
FORMAT = struct.Struct("<q")
#: What ``read`` returns for a worker that was between two tests.
BETWEEN_TESTS = -1


def offer(node: Any, directory: Path) -> None:
    """Controller side (``pytest_configure_node``): name the file of this worker."""
    worker = str(node.workerinput["workerid"])
    node.workerinput[WORKERINPUT_KEY] = str(directory / f"{worker}.running")


def read(node: Any) -> int | None:
    """The index of the test ``node`` was running, ``BETWEEN_TESTS``, or None if unknown."""
    path = getattr(node, "workerinput", {}).get(WORKERINPUT_KEY)
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if len(data) != FORMAT.size:
        return None
    (value,) = FORMAT.unpack(data)
    return value - 1 if value > 0 else BETWEEN_TESTS


class Slot:
    """Worker side: the file, mapped; ``running(index)`` before a test, ``idle()`` after."""

    def __init__(self, path: Path) -> None:
        # Made under another name and renamed once mapped: a file the scheduler finds
        # always belongs to a worker that writes it (one that could not map it sends no
        # windows, and an unknown slot keeps xdist's rule).
        partial = path.with_name(path.name + ".partial")
        try:
            with partial.open("w+b") as file:
                file.write(bytes(FORMAT.size))
                file.flush()
                # The mapping keeps the file's pages; the file object is not needed after.
                self.map = mmap.mmap(file.fileno(), FORMAT.size)
            partial.replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise

    @classmethod
    def offered(cls, workerinput: dict[str, Any]) -> Slot | None:
        """The slot the controller offered, or None (not offered, or not writable)."""
        path = workerinput.get(WORKERINPUT_KEY)
        if not path:
            return None
        try:
            return cls(Path(path))
        except (OSError, ValueError):
            return None

    def running(self, index: int) -> None:
        FORMAT.pack_into(self.map, 0, index + 1)

    def idle(self) -> None:
        FORMAT.pack_into(self.map, 0, 0)

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self.map.close()

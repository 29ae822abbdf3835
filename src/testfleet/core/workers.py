"""Who is running: the run id, this process's worker id and the worker count."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    # Only for annotations: the command line imports this module, and pytest's import
    # would add a quarter of a second to every `testfleet` command.
    import pytest

WORKERS_ENV = "PYTEST_WORKERS"
RUN_ID_ENV = "TESTFLEET_RUN_ID"
#: The worker id of a process that is not an xdist worker (a serial run or the controller).
MAIN_WORKER = "main"

Workers = int | Literal["auto"]


@functools.cache
def _run_id_key() -> pytest.StashKey[str]:
    import pytest

    return pytest.StashKey[str]()


def parse_workers(text: str) -> Workers:
    """Parse a worker count: a positive whole number or ``auto``.

    ``1`` means no xdist at all: the run stays in one process.
    """
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    try:
        count = int(value)
    except ValueError:
        raise ValueError(
            f"worker count {text!r} is not a number: use a whole number such as 4, "
            "'auto' for one worker per CPU, or 1 for a serial run without xdist"
        ) from None
    if count < 1:
        raise ValueError(f"worker count {text!r} is below 1: use 1 for a serial run without xdist")
    return count


def new_run_id() -> str:
    """A fresh run id: 12 lowercase hex digits, safe in names, labels and paths."""
    return os.urandom(6).hex()


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is an xdist worker."""
    return hasattr(config, "workerinput")


def worker_id(config: pytest.Config) -> str:
    """``gw0``, ``gw1``... on xdist workers, ``main`` everywhere else."""
    if is_worker(config):
        return str(config.workerinput["workerid"])  # type: ignore[attr-defined]
    return MAIN_WORKER


def worker_count(config: pytest.Config) -> int:
    """How many processes run tests in this run (1 for a serial run)."""
    if is_worker(config):
        return int(config.workerinput["workercount"])  # type: ignore[attr-defined]
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    if isinstance(numprocesses, int) and numprocesses > 0 and dist != "no":
        return numprocesses
    return 1


def run_id(config: pytest.Config) -> str:
    """The id shared by every process of this run.

    The controller (or a serial run) makes it, or takes ``TESTFLEET_RUN_ID``; workers
    receive it from the controller, so all of them agree.
    """
    if is_worker(config):
        received = config.workerinput.get("testfleet_run_id")  # type: ignore[attr-defined]
        if received:
            return str(received)
    existing = config.stash.get(_run_id_key(), None)
    if existing is None:
        existing = os.environ.get(RUN_ID_ENV, "").strip() or new_run_id()
        config.stash[_run_id_key()] = existing
    return existing

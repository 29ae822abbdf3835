"""An xdist worker of a run testfleet schedules leaves as soon as its session is over.

xdist's controller ends its session only when every worker process has exited, and a
worker that has sent its last result still spends seconds freeing its heap (see
:mod:`testfleet.core.leave`). Offered by the controller in ``workerinput``, under the
same xdist releases as the batched messages (:mod:`testfleet.scheduling.transport`):
it relies on the controller taking a worker's pipe closing after ``workerfinished`` as
an ordinary end, which those releases do.
"""

from __future__ import annotations

from typing import Any

import pytest

from testfleet.core import leave

#: Key in ``workerinput``: the worker may leave without the interpreter's teardown.
WORKERINPUT_KEY = "testfleet_leave"


def offer(node: Any) -> None:
    """Controller side: tell this worker it may leave at once (``pytest_configure_node``)."""
    node.workerinput[WORKERINPUT_KEY] = 1


def after_session(config: pytest.Config) -> None:
    """Worker side, after pytest's whole session and clean-up: leave, if offered."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get(WORKERINPUT_KEY):
        # A worker's exit status means nothing to xdist; an ordinary end gives 0 too.
        leave.leave(0)

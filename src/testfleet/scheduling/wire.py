"""The messages of batched runs: a test's phases as tuples, a test folded into JSON.

What crosses between a batching xdist worker (:mod:`testfleet.scheduling.window`) and
its controller (:mod:`testfleet.scheduling.transport`), and how each side makes and
reads it. execnet's serialiser is written in Python and pays per value; a test folded
into one JSON value (node id, location and keywords once, then each phase) costs a
quarter of that to read back. Pure functions: no pytest session is needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

#: The name a batch crosses under, as an xdist event.
BATCH_EVENT = "testfleet_batch"
#: A phase that passed or was skipped, sent as a tuple inside a batch (``compact_phase``).
PHASE_EVENT = "testfleet_phase"
#: Tests whose phases all passed or were skipped, each test's events folded into one
#: tuple (``fold_test``), as one JSON list.
TEST_EVENT = "testfleet_tests"
#: The phases a folded test can have: all three, or a set-up that skipped it.
PHASE_RUNS = (("setup", "call", "teardown"), ("setup", "teardown"))
#: The fields of a compact phase's tuple, in order, then its keywords' names and
#: ``PHASE_EXTRA``.
TUPLE_FIELDS = (
    "nodeid",
    "when",
    "duration",
    "start",
    "stop",
    "location",
    "$report_type",
    "item_index",
    "worker_id",
    "testrun_uid",
)
#: After the keywords: the outcome, the skip's (path, line, reason) or None, the captured
#: sections as (title, text) pairs, and an xfail's reason (None: the report has none).
PHASE_EXTRA = ("outcome", "longrepr", "sections", "wasxfail")
#: Every key of a plain phase report as pytest and xdist serialise it, and the one an
#: xfail marker adds. A report with any other key (a plugin's attribute) or a pytest
#: that writes others goes the general way.
PLAIN_KEYS = frozenset(
    (*TUPLE_FIELDS, "keywords", "outcome", "longrepr", "sections", "user_properties")
)
OPTIONAL_KEYS = frozenset(("wasxfail",))

Event = tuple[str, Any]


def _skip_location(longrepr: object) -> bool:
    """Whether a skipped report's ``longrepr`` is pytest's (path, line, reason)."""
    return (
        type(longrepr) is tuple
        and len(longrepr) == 3
        and type(longrepr[0]) is str
        and type(longrepr[1]) is int
        and type(longrepr[2]) is str
    )


def compact_phase(data: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A phase that passed or was skipped as a tuple, or None to send ``data`` as it is.

    Captured output and a skip's reason are plain strings and cross in the tuple; a
    failure, an xfail's traceback, user properties or a plugin's attribute do not.
    """
    outcome = data["outcome"]
    if outcome != "passed" and outcome != "skipped":
        return None
    longrepr = data["longrepr"]
    keys = data.keys()
    if (
        (longrepr is not None if outcome == "passed" else not _skip_location(longrepr))
        or data["user_properties"]
        or not (keys == PLAIN_KEYS or (keys - OPTIONAL_KEYS == PLAIN_KEYS))
        or any(value != 1 for value in data["keywords"].values())
    ):
        return None
    sections = data["sections"]
    for section in sections:
        if type(section) is not tuple or len(section) != 2:
            return None
    wasxfail = data.get("wasxfail")
    if "wasxfail" in keys and type(wasxfail) is not str:
        return None
    return (
        *(data[field] for field in TUPLE_FIELDS),
        tuple(data["keywords"]),
        outcome,
        longrepr,
        sections,
        wasxfail,
    )


def fold_test(events: list[Event]) -> tuple[Any, ...] | None:
    """A test's events as one tuple of plain values, or None for anything else.

    The test's phases passed or were skipped (``compact_phase``). Its node id, location,
    keywords and indices go once instead of five times. The tuple crosses as JSON
    (``encode_test``): execnet's serialiser is written in Python and pays per value, the
    json module's is not (measured: a test's message unserialised in a quarter of the
    time of the same tuple given to execnet). Its fields: node id, location, report
    type, item index, worker id, run id, keywords, the protocol's duration, then per
    phase (when, outcome, duration, start, stop, longrepr, sections, wasxfail).
    """
    if len(events) < 4 or events[0][0] != "logstart":
        return None
    (finish_name, finish), (complete_name, complete) = events[-2], events[-1]
    if finish_name != "logfinish" or complete_name != "runtest_protocol_complete":
        return None
    phases = []
    for name, payload in events[1:-2]:
        if name != PHASE_EVENT:
            return None
        phases.append(payload)
    first = phases[0]
    shared = (first[0], first[5], *first[6:11])
    if (
        tuple(phase[1] for phase in phases) not in PHASE_RUNS
        or any((phase[0], phase[5], *phase[6:11]) != shared for phase in phases)
        or events[0][1] != finish
        or finish != {"nodeid": first[0], "location": first[5]}
        or complete.keys() != {"item_index", "duration"}
        or complete["item_index"] != first[7]
    ):
        return None
    return (
        *shared,
        complete["duration"],
        [[phase[1], *phase[2:5], *phase[11:]] for phase in phases],
    )


def encode_test(fields: tuple[Any, ...]) -> str | None:
    """``fold_test``'s tuple as JSON, or None if a value has no exact JSON form."""
    try:
        return json.dumps(fields, allow_nan=False)
    except (TypeError, ValueError):
        return None


def decode_test(fields: list[Any]) -> tuple[Any, ...]:
    """A tuple ``encode_test`` wrote, once read: JSON made its tuples lists."""
    fields[1] = tuple(fields[1])
    fields[6] = tuple(fields[6])
    # Each phase: when, duration, start, stop, outcome, longrepr, sections, wasxfail.
    for phase in fields[8]:
        if phase[5] is not None:
            phase[5] = tuple(phase[5])
        phase[6] = [tuple(section) for section in phase[6]]
    return tuple(fields)


def decode_tests(text: str) -> list[tuple[Any, ...]]:
    """The tests of a window: a JSON list of ``encode_test``'s texts."""
    return [decode_test(fields) for fields in json.loads(text)]


def phase_report(fields: tuple[Any, ...]) -> pytest.TestReport:
    """The report that ``compact_phase`` made a tuple of, as pytest's unserialising makes it."""
    values = dict(zip(TUPLE_FIELDS, fields, strict=False))
    keywords, outcome, longrepr, sections, wasxfail = fields[len(TUPLE_FIELDS) :]
    extra = {key: values[key] for key in ("$report_type", "item_index", "worker_id", "testrun_uid")}
    phase = (values["when"], outcome, values["duration"], values["start"], values["stop"])
    return make_report(
        values["nodeid"],
        tuple(values["location"]),
        keywords,
        extra,
        phase,
        longrepr,
        sections,
        wasxfail,
    )


def make_report(
    nodeid: str,
    location: tuple[Any, ...],
    keywords: tuple[str, ...],
    extra: dict[str, Any],
    phase: tuple[Any, ...],
    longrepr: Any,
    sections: list[tuple[str, str]],
    wasxfail: str | None,
) -> pytest.TestReport:
    when, outcome, duration, start, stop = phase
    if wasxfail is not None:
        extra = {**extra, "wasxfail": wasxfail}
    return pytest.TestReport(
        nodeid,
        location,
        dict.fromkeys(keywords, 1),
        outcome,
        longrepr,
        when,
        list(sections),
        duration,
        start,
        stop,
        [],
        **extra,
    )


def unfold_test(fields: tuple[Any, ...]) -> list[Event]:
    """The events that ``fold_test`` folded, as a batching worker holds them."""
    nodeid, location, report_type, item_index, worker_id, run_uid, keywords = fields[:7]
    where = {"nodeid": nodeid, "location": location}
    events: list[Event] = [("logstart", where)]
    for when, duration, start, stop, *extra in fields[8]:
        head = (nodeid, when, duration, start, stop, location, report_type, item_index)
        events.append((PHASE_EVENT, (*head, worker_id, run_uid, keywords, *extra)))
    events.append(("logfinish", dict(where)))
    events.append(("runtest_protocol_complete", {"item_index": item_index, "duration": fields[7]}))
    return events

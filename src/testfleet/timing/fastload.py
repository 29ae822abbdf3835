"""Parsing a large timing report with msgspec: a third of the standard library's time.

Imported by :func:`testfleet.timing.report.load` only for a report of a megabyte or more:
msgspec's import (about 25 ms) costs more than it saves on the report of a run of a few
thousand tests, which every ``testfleet run`` reads back.

With ``fields``, each test is checked as it is parsed (what ``report._sound`` checks:
msgspec's ``float`` takes whole numbers too, and no booleans) and keeps only the keys
asked for. Whatever this parser refuses, the standard library's path parses again, to
accept it as before (``NaN``, a ``markers`` that is not a list of strings) or to say
what is wrong with it. One difference: bytes that are not UTF-8 inside a key that is
skipped (one no reader asked for) are not seen, where the standard library refuses the
whole file.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, Required, TypedDict

import msgspec

from testfleet.timing.records import OUTCOMES


class _Phases(msgspec.Struct, gc=False):
    """A test's ``durations``: checked, then dropped unless asked for."""

    setup: float
    call: float
    teardown: float


#: What every test must hold.
CHECKED: dict[str, Any] = {
    "nodeid": str,
    "outcome": Literal[OUTCOMES],
    "duration": float,
    "durations": _Phases,
    "worker": str,
    "start": float,
    "stop": float,
}
#: The optional keys a reader may ask for, typed as the analysis uses them.
OPTIONAL: dict[str, Any] = {"markers": list[str], "cpu": float | None, "attempt": int}


def parse(raw: bytes, keep: tuple[str, ...] | None) -> tuple[Any, bool] | None:
    """The report's JSON and whether its tests were checked; None when msgspec refuses it.

    ``keep``: the keys each test keeps (None: the whole report, unchecked).
    """
    try:
        if keep is None:
            return msgspec.json.decode(raw), False
        data = _decoder(keep).decode(raw)
    except msgspec.DecodeError:
        return None
    _slim(data.get("tests", ()), keep)
    return data, True


@functools.cache
def _decoder(keep: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    """Reports whose tests hold the checked keys and ``keep`` (others are skipped)."""
    test_fields: dict[str, Any] = {key: Required[kind] for key, kind in CHECKED.items()}
    for key in keep:
        test_fields.setdefault(key, OPTIONAL.get(key, Any))
    test: Any = TypedDict("test", test_fields, total=False)  # type: ignore[misc]
    top: Any = TypedDict("top", {"schema": Any, "run": Any, "tests": list[test]}, total=False)
    return msgspec.json.Decoder(top)


def _slim(tests: list[dict[str, Any]], keep: tuple[str, ...]) -> None:
    """Drop the keys only checked; one object for the workers and marker lists that repeat."""
    drop = [key for key in CHECKED if key not in keep]
    workers: dict[str, str] = {}
    marker_lists: dict[tuple[str, ...], list[str]] = {}
    no_markers: list[str] = []
    share_workers, share_markers = "worker" in keep, "markers" in keep
    keep_phases = "durations" in keep
    for test in tests:
        for key in drop:
            del test[key]
        if keep_phases:
            # Asked for: a dict, as the standard library's path gives it.
            phases = test["durations"]
            test["durations"] = {
                "setup": phases.setup,
                "call": phases.call,
                "teardown": phases.teardown,
            }
        if share_workers:
            worker = test["worker"]
            test["worker"] = workers.setdefault(worker, worker)
        if share_markers:
            markers = test.get("markers")
            if markers:
                test["markers"] = marker_lists.setdefault(tuple(markers), markers)
            elif markers is not None:
                test["markers"] = no_markers

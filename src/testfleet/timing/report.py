"""Read, check and merge timing reports.

This is the reading side of the report format. The writing side is one path: the text
of a report comes from :mod:`testfleet.timing.records` (``report_text`` for a run's
records, ``dumps_report`` for a report held as data, such as a merged or combined one),
and it reaches the disk through :mod:`testfleet.core.atomic` (``write_text_atomic``,
``write_json_atomic``), so that a reader sees the old file or the whole new one. What
``testfleet report`` makes of a report, its analysis and renderings, is in
:mod:`testfleet.reporting`.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from testfleet.timing.records import (
    OUTCOMES,
    PHASES,
    SCHEMA,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    summarize,
)


class ReportError(Exception):
    """A report that cannot be used; the message says which file and why."""


#: The fields of each test that ``testfleet report`` reads in the report it shows ...
SHOWN_FIELDS = ("nodeid", "outcome", "duration", "markers", "worker", "start", "stop", "cpu")
#: ... and in the baseline it compares with.
COMPARED_FIELDS = ("nodeid", "outcome", "duration", "attempt")


def load(
    path: Path, run_id: str | None = None, *, fields: Sequence[str] | None = None
) -> dict[str, Any]:
    """Read and check a timing report, or raise :class:`ReportError` saying what is wrong.

    With ``run_id``, a report written by another run (a stale one) is refused too. With
    ``fields``, each test keeps only those keys (and ``attempt``): a reader that needs a
    few fields of a 100,000-test report holds a fraction of it in memory.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot be read ({exc})") from None
    try:
        data, checked = _parse(raw, fields)
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    del raw
    report = validate(data, str(path), tests_checked=checked)
    if run_id is not None and report["run"].get("id") != run_id:
        raise ReportError(
            f"{path} is from run {report['run'].get('id')!r}, not from run {run_id!r}: "
            "that run did not write its report; read its output above"
        )
    return report


class _UnsoundTest(Exception):
    """A test entry that fails the quick check; the full check says why."""


#: From this size on, a report is parsed with msgspec (:mod:`testfleet.timing.fastload`).
BIG_REPORT_BYTES = 1_000_000


def _parse(raw: bytes, fields: Sequence[str] | None) -> tuple[Any, bool]:
    """The report's JSON, and whether its tests were checked while it was parsed.

    With ``fields``, each test is checked and cut down as it is parsed. A test that
    fails the quick check has the whole report parsed again in full, for
    :func:`validate` to say what is wrong.
    """
    # Parsing makes a few objects per test and none of them is cyclic: the cyclic garbage
    # collector would only walk them again and again as they pile up.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        # What each test keeps: the fields asked for, and its attempt.
        keep = None if fields is None else tuple(dict.fromkeys([*fields, "attempt"]))
        if len(raw) >= BIG_REPORT_BYTES:
            # Imported here: fastload brings in msgspec, an optional dependency that only
            # a report of a megabyte or more is worth its import time.
            from testfleet.timing import fastload as bigreport

            parsed = bigreport.parse(raw, keep)
            if parsed is not None:
                return parsed
        text = raw.decode("utf-8")
        if keep is None:
            return json.loads(text), False
        try:
            data = json.loads(text, object_hook=_slimmer(keep))
        except _UnsoundTest:
            return json.loads(text), False
        # The hook checked the objects with a node id: not an entry that is no object,
        # or that has none. Parsed again in full, such a report gets its message.
        tests = data.get("tests") if isinstance(data, dict) else None
        if isinstance(tests, list) and not all(
            type(test) is dict and "nodeid" in test for test in tests
        ):
            return json.loads(text), False
        return data, True
    finally:
        if was_enabled:
            gc.enable()


#: The numbers of a test that msgspec reads as floats (whole numbers too).
_FLOAT_FIELDS = ("duration", "start", "stop", "cpu")


def _slimmer(keep: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The ``object_hook`` that checks each test and keeps only the keys in ``keep``."""
    strings: dict[str, str] = {}
    marker_lists: dict[tuple[str, ...], list[str]] = {}

    def slim(obj: dict[str, Any]) -> dict[str, Any]:
        if "nodeid" not in obj:
            return obj
        if not _sound(obj):
            raise _UnsoundTest
        test = {key: obj[key] for key in keep if key in obj}
        # Whole numbers as floats, as msgspec reads them from a large report: a reader
        # sees one type whichever parser read the file.
        for key in _FLOAT_FIELDS:
            if type(test.get(key)) is int:
                test[key] = float(test[key])
        phases = test.get("durations")
        if phases is not None:
            test["durations"] = {phase: float(phases[phase]) for phase in PHASES}
        # Outcomes, workers and markers repeat: one string (and list) each.
        for key in ("outcome", "worker"):
            if key in test:
                test[key] = strings.setdefault(test[key], test[key])
        markers = test.get("markers")
        if type(markers) is list:
            # Names that are lists or objects cannot be a key: kept as they are, not shared.
            with contextlib.suppress(TypeError):
                test["markers"] = marker_lists.setdefault(tuple(markers), markers)
        return test

    return slim


_NUMBER_TYPES = (int, float)
_OUTCOME_SET = frozenset(OUTCOMES)


def _sound(test: Mapping[str, Any]) -> bool:
    """The checks of :func:`_check_test`, at a fraction of their cost, without the message."""
    numbers = _NUMBER_TYPES
    try:
        durations = test["durations"]
        return (
            type(test["nodeid"]) is str
            and test["outcome"] in _OUTCOME_SET
            and type(test["worker"]) is str
            and type(test["duration"]) in numbers
            and type(test["start"]) in numbers
            and type(test["stop"]) in numbers
            and type(durations["setup"]) in numbers
            and type(durations["call"]) in numbers
            and type(durations["teardown"]) in numbers
        )
    except (KeyError, TypeError):
        return False


def validate(data: Any, source: str, *, tests_checked: bool = False) -> dict[str, Any]:
    """Check the shape of a report that was parsed from ``source``."""
    if not isinstance(data, dict):
        raise ReportError(f"{source}: not a testfleet timing report (top level is not an object)")
    schema = data.get("schema")
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_NAME + "/"):
        raise ReportError(
            f"{source}: not a testfleet timing report (schema is {schema!r}, expected {SCHEMA!r})"
        )
    try:
        version = int(schema.split("/", 1)[1])
    except ValueError:
        raise ReportError(f"{source}: unknown schema {schema!r}") from None
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"{source}: written by a newer testfleet (schema {schema}); this testfleet reads "
            f"up to {SCHEMA}: upgrade testfleet, or record a new report with this one"
        )
    if version < 1:
        raise ReportError(f"{source}: unknown schema {schema!r}")
    run = data.get("run")
    tests = data.get("tests")
    if not isinstance(run, dict):
        raise ReportError(f"{source}: 'run' is missing or not an object")
    if not isinstance(tests, list):
        raise ReportError(f"{source}: 'tests' is missing or not a list")
    for key in ("wall_seconds", "workers"):
        if not isinstance(run.get(key), int | float) or isinstance(run.get(key), bool):
            raise ReportError(f"{source}: run.{key} is missing or not a number")
    if not tests_checked:
        for index, test in enumerate(tests):
            if not (type(test) is dict and _sound(test)):
                _check_test(test, f"{source}: tests[{index}]")
    return data


def _check_test(test: Any, where: str) -> None:
    if not isinstance(test, dict):
        raise ReportError(f"{where} is not an object")
    if not isinstance(test.get("nodeid"), str):
        raise ReportError(f"{where}: 'nodeid' is missing or not a string")
    if test.get("outcome") not in OUTCOMES:
        raise ReportError(
            f"{where} ({test['nodeid']}): outcome {test.get('outcome')!r} is not one of "
            f"{', '.join(OUTCOMES)}"
        )
    numbers: list[Any] = [test.get("duration"), test.get("start"), test.get("stop")]
    durations = test.get("durations")
    if not isinstance(durations, dict):
        raise ReportError(f"{where} ({test['nodeid']}): 'durations' is missing or not an object")
    numbers += [durations.get(phase) for phase in PHASES]
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        raise ReportError(f"{where} ({test['nodeid']}): a duration or time is not a number")
    if not isinstance(test.get("worker"), str):
        raise ReportError(f"{where} ({test['nodeid']}): 'worker' is missing or not a string")


def merge(reports: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Join the reports of consecutive phases of one run (parallel, then serial) into one.

    The phases must hold different tests; the merged run's wall time is the sum of theirs.
    """
    if not reports:
        raise ReportError("nothing to merge: give at least one report")
    seen: dict[str, str] = {}
    tests: list[dict[str, Any]] = []
    for report, name in zip(reports, names, strict=True):
        for test in report["tests"]:
            key = f"{test['nodeid']}#{test.get('attempt', 1)}"
            if key in seen:
                raise ReportError(
                    f"{test['nodeid']} is in both {seen[key]} and {name}: merge joins phases "
                    "that ran different tests"
                )
            seen[key] = name
            tests.append(dict(test))
    tests.sort(key=lambda t: (t["nodeid"], t.get("attempt", 1)))
    runs = [dict(report["run"]) for report in reports]
    first = runs[0]
    busiest = max(runs, key=lambda r: r["workers"])
    run = dict(first)
    run.update(
        mode=busiest.get("mode", first.get("mode")),
        workers=busiest["workers"],
        dist=busiest.get("dist", "no"),
        start=min(r.get("start", 0.0) for r in runs),
        end=max(r.get("end", 0.0) for r in runs),
        wall_seconds=round(sum(float(r["wall_seconds"]) for r in runs), 6),
        exit_status=combine_exit_statuses([int(r.get("exit_status", 0)) for r in runs]),
        phases=runs,
    )
    return {"schema": SCHEMA, "run": run, "tests": tests, "summary": summarize(tests)}


def combine_exit_statuses(statuses: Sequence[int]) -> int:
    """One pytest exit status for consecutive phases of a run.

    A phase that collected nothing (5) does not spoil the others; any other non-zero
    status wins, failed tests (1) before the rest.
    """
    significant = [s for s in statuses if s != 5]
    if not significant:
        return 5 if statuses else 0
    if 1 in significant:
        return 1
    return max(significant)

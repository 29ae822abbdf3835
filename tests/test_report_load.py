"""Reading a report cut down to the fields a command needs, with the same checks.

Reports from a megabyte on are parsed with msgspec (testfleet.timing.fastload), smaller ones
with the standard library: each test here runs with both, and they must read alike.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from testfleet.timing import fastload as bigreport
from testfleet.timing import report
from testfleet.timing.records import SCHEMA

FIELD_SETS = [
    None,
    report.SHOWN_FIELDS,
    report.COMPARED_FIELDS,
    ("nodeid", "duration", "cpu"),
    ("nodeid", "durations", "markers"),
]


@pytest.fixture(params=["standard library", "msgspec"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Which parser reads every report of the test; the list says, per read, whether
    msgspec took the report (False: it refused it, and the standard library read it)."""
    big = request.param == "msgspec"
    monkeypatch.setattr(report, "BIG_REPORT_BYTES", 0 if big else 10**12)
    taken: list[bool] = []
    parse = bigreport.parse

    def spy(raw: bytes, keep: Any) -> Any:
        parsed = parse(raw, keep)
        taken.append(parsed is not None)
        return parsed

    monkeypatch.setattr(bigreport, "parse", spy)
    return taken


def write(path: Path, tests: list[Any]) -> Path:
    run = {"id": "r", "wall_seconds": 1.0, "workers": 1}
    path.write_text(json.dumps({"schema": SCHEMA, "run": run, "tests": tests}))
    return path


def entry(nodeid: str, **changes: Any) -> dict[str, Any]:
    test: dict[str, Any] = {
        "nodeid": nodeid,
        "outcome": "passed",
        "error_phase": None,
        "duration": 0.5,
        "durations": {"setup": 0.1, "call": 0.3, "teardown": 0.1},
        "markers": ["slow"],
        "worker": "gw0",
        "start": 1.0,
        "stop": 1.5,
        "attempt": 1,
        "cpu": 0.2,
    }
    test.update(changes)
    return test


def test_a_cut_down_report_keeps_only_the_fields_asked_for(
    tmp_path: Path, parser: list[bool]
) -> None:
    path = write(tmp_path / "r.json", [entry("t.py::a"), entry("t.py::b", attempt=2)])
    tests = report.load(path, fields=report.COMPARED_FIELDS)["tests"]
    assert tests == [
        {"nodeid": "t.py::a", "outcome": "passed", "duration": 0.5, "attempt": 1},
        {"nodeid": "t.py::b", "outcome": "passed", "duration": 0.5, "attempt": 2},
    ]
    full = report.load(path)["tests"]
    assert full[0]["durations"] == {"setup": 0.1, "call": 0.3, "teardown": 0.1}
    assert full[0]["error_phase"] is None
    assert parser in ([], [True, True])  # msgspec took both reports, or was not asked


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outcome": "fine"}, "outcome 'fine' is not one of"),
        ({"start": "soon"}, "a duration or time is not a number"),
        ({"duration": True}, "a duration or time is not a number"),
        ({"durations": None}, "'durations' is missing or not an object"),
        ({"durations": {"setup": 0.1, "call": 0.3}}, "a duration or time is not a number"),
        ({"worker": 3}, "'worker' is missing or not a string"),
    ],
)
def test_a_malformed_test_gets_the_same_message_cut_down_or_not(
    tmp_path: Path, change: dict[str, Any], message: str, parser: list[bool]
) -> None:
    path = write(tmp_path / "r.json", [entry("t.py::a"), entry("t.py::b", **change)])
    with pytest.raises(report.ReportError) as full:
        report.load(path)
    with pytest.raises(report.ReportError) as cut:
        report.load(path, fields=report.SHOWN_FIELDS)
    assert str(cut.value) == str(full.value)
    assert "tests[1] (t.py::b)" in str(full.value)
    assert message in str(full.value)


@pytest.mark.parametrize(
    ("bad", "message"),
    [(42, "tests[1] is not an object"), ({"outcome": "passed"}, "'nodeid' is missing")],
)
@pytest.mark.parametrize("fields", FIELD_SETS)
def test_an_entry_that_is_no_test_is_refused_however_the_report_is_read(
    tmp_path: Path, bad: Any, message: str, fields: Any, parser: list[bool]
) -> None:
    path = write(tmp_path / "r.json", [entry("t.py::a"), bad])
    with pytest.raises(report.ReportError, match=re.escape(message)):
        report.load(path, fields=fields)


def realistic_tests() -> list[dict[str, Any]]:
    """Reruns, whole numbers, a test with no CPU time, an old test with no optional keys."""
    tests = [
        entry(f"tests/test_{i % 3}.py::test_{i}", worker=f"gw{i % 2}", cpu=i / 100)
        for i in range(40)
    ]
    tests[3].update(markers=["slow", "parametrize"], duration=2, start=3, stop=5)
    tests[4].update(markers=["slow", "parametrize"], outcome="failed", error_phase="call")
    tests[5].update(cpu=None, markers=[])
    tests.append(entry("tests/test_1.py::test_4", attempt=2, outcome="passed"))
    old = entry("tests/test_old.py::test_old")
    for key in ("markers", "cpu", "attempt", "error_phase"):
        del old[key]
    return [*tests, old]


@pytest.mark.parametrize("fields", FIELD_SETS)
def test_both_parsers_read_a_report_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: Any
) -> None:
    path = write(tmp_path / "r.json", realistic_tests())
    monkeypatch.setattr(report, "BIG_REPORT_BYTES", 10**12)
    standard = report.load(path, fields=fields)
    monkeypatch.setattr(report, "BIG_REPORT_BYTES", 0)
    keep = None if fields is None else (*fields, "attempt")
    assert bigreport.parse(path.read_bytes(), keep) is not None
    # json.dumps: the same types too (2 and 2.0 are equal, but not the same output).
    loaded = report.load(path, fields=fields)
    assert json.dumps(loaded, sort_keys=True) == json.dumps(standard, sort_keys=True)
    if fields is not None:
        assert all(set(test) <= {*fields, "attempt"} for test in standard["tests"])
    assert "durations" not in standard["tests"][0] or fields is None or "durations" in fields


def test_repeated_workers_and_marker_lists_are_one_object(
    tmp_path: Path, parser: list[bool]
) -> None:
    path = write(tmp_path / "r.json", realistic_tests())
    tests = report.load(path, fields=report.SHOWN_FIELDS)["tests"]
    assert tests[3]["markers"] is tests[4]["markers"]
    assert tests[0]["worker"] is tests[2]["worker"]
    tests[3]["markers"].append("changed")
    assert tests[4]["markers"][-1] == "changed"  # one list, as the analysis expects
    assert tests[0]["markers"] == ["slow"]


@pytest.mark.parametrize(
    "change",
    [{"duration": math.nan}, {"markers": None}, {"markers": "slow"}, {"cpu": "n/a"}],
    ids=["NaN", "markers null", "markers a string", "cpu a string"],
)
def test_what_msgspec_refuses_the_standard_library_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any]
) -> None:
    path = write(tmp_path / "r.json", [entry("t.py::a"), entry("t.py::b", **change)])
    monkeypatch.setattr(report, "BIG_REPORT_BYTES", 10**12)
    standard = report.load(path, fields=report.SHOWN_FIELDS)
    assert bigreport.parse(path.read_bytes(), (*report.SHOWN_FIELDS, "attempt")) is None
    monkeypatch.setattr(report, "BIG_REPORT_BYTES", 0)
    loaded = report.load(path, fields=report.SHOWN_FIELDS)
    assert json.dumps(loaded) == json.dumps(standard)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"schema": "testfleet.timing/1", "run": {', "not valid JSON (line 1, column 42"),
        (b'{"schema": "\xff"}', "cannot be read"),
        (b"[1, 2]", "top level is not an object"),
        (b'{"schema": "testfleet.timing/1", "run": {"wall_seconds": 1, "workers": 1}}', "'tests'"),
    ],
)
@pytest.mark.parametrize("fields", FIELD_SETS)
def test_a_file_that_is_no_report_gets_its_message_from_either_parser(
    tmp_path: Path, content: bytes, message: str, fields: Any, parser: list[bool]
) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(report.ReportError, match=re.escape(message)):
        report.load(path, fields=fields)

"""Reading a report cut down to the fields a command needs, with the same checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testfleet import report
from testfleet.records import SCHEMA


def write(path: Path, tests: list[dict[str, Any]]) -> Path:
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


def test_a_cut_down_report_keeps_only_the_fields_asked_for(tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", [entry("t.py::a"), entry("t.py::b", attempt=2)])
    tests = report.load(path, fields=report.COMPARED_FIELDS)["tests"]
    assert tests == [
        {"nodeid": "t.py::a", "outcome": "passed", "duration": 0.5, "attempt": 1},
        {"nodeid": "t.py::b", "outcome": "passed", "duration": 0.5, "attempt": 2},
    ]
    full = report.load(path)["tests"]
    assert full[0]["durations"] == {"setup": 0.1, "call": 0.3, "teardown": 0.1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outcome": "fine"}, "outcome 'fine' is not one of"),
        ({"start": "soon"}, "a duration or time is not a number"),
        ({"durations": None}, "'durations' is missing or not an object"),
        ({"worker": 3}, "'worker' is missing or not a string"),
    ],
)
def test_a_malformed_test_gets_the_same_message_cut_down_or_not(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write(tmp_path / "r.json", [entry("t.py::a"), entry("t.py::b", **change)])
    with pytest.raises(report.ReportError) as full:
        report.load(path)
    with pytest.raises(report.ReportError) as cut:
        report.load(path, fields=report.SHOWN_FIELDS)
    assert str(cut.value) == str(full.value)
    assert "tests[1] (t.py::b)" in str(full.value)
    assert message in str(full.value)

"""`testfleet report` and `testfleet merge`: analysis, formats and clear refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testfleet.cli.program import main
from testfleet.timing.records import SCHEMA, summarize


def make_test(
    nodeid: str,
    duration: float,
    worker: str = "gw0",
    outcome: str = "passed",
    markers: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "error_phase": None,
        "duration": duration,
        "durations": {"setup": 0.0, "call": duration, "teardown": 0.0},
        "markers": list(markers),
        "worker": worker,
        "start": 100.0,
        "stop": 100.0 + duration,
        "attempt": 1,
    }


def make_report(
    tests: list[dict[str, Any]], wall: float, workers: int, mode: str, run_id: str = "r1"
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "run": {
            "id": run_id,
            "mode": mode,
            "workers": workers,
            "dist": "load" if workers > 1 else "no",
            "seed": None,
            "start": 100.0,
            "end": 100.0 + wall,
            "wall_seconds": wall,
            "exit_status": 0,
            "git_commit": None,
            "args": [],
        },
        "tests": tests,
        "summary": summarize(tests),
    }


@pytest.fixture
def baseline_file(tmp_path: Path) -> Path:
    tests = [
        make_test("tests/test_a.py::test_fast", 0.1, "main"),
        make_test("tests/test_a.py::test_slow", 2.0, "main", markers=("slow",)),
        make_test("tests/test_b.py::test_regresses", 0.5, "main"),
        make_test("tests/test_b.py::test_removed", 0.3, "main"),
        make_test("tests/test_b.py::test_noise", 0.01, "main"),
    ]
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(make_report(tests, wall=3.0, workers=1, mode="serial")))
    return path


@pytest.fixture
def current_file(tmp_path: Path) -> Path:
    tests = [
        make_test("tests/test_a.py::test_fast", 0.1, "gw0"),
        make_test("tests/test_a.py::test_slow", 2.2, "gw1", markers=("slow",)),
        make_test("tests/test_b.py::test_regresses", 1.5, "gw0"),
        make_test("tests/test_b.py::test_noise", 0.05, "gw0", outcome="failed"),
        make_test("tests/test_c.py::test_added", 0.2, "gw1"),
    ]
    path = tmp_path / "current.json"
    path.write_text(
        json.dumps(make_report(tests, wall=2.0, workers=2, mode="parallel", run_id="r2"))
    )
    return path


def test_json_report_gives_speedup_slower_added_and_removed(
    baseline_file: Path, current_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["report", str(current_file), "--baseline", str(baseline_file), "--format", "json"])
        == 0
    )
    analysis = json.loads(capsys.readouterr().out)
    base = analysis["baseline"]
    assert base["speedup"] == 1.5
    # test_noise got 5x slower but only by 0.04 s: under the absolute threshold.
    # test_slow got 0.2 s slower but only x1.1: under the relative threshold.
    assert [s["nodeid"] for s in base["slower"]] == ["tests/test_b.py::test_regresses"]
    assert base["slower"][0]["ratio"] == 3.0
    assert base["added"] == ["tests/test_c.py::test_added"]
    assert base["removed"] == ["tests/test_b.py::test_removed"]
    assert base["changed"] == [
        {"nodeid": "tests/test_b.py::test_noise", "baseline": "passed", "current": "failed"}
    ]
    assert analysis["duration_sum"] == pytest.approx(4.05)
    assert analysis["concurrency"] == pytest.approx(2.025, abs=1e-3)
    assert analysis["parallel_efficiency"] == pytest.approx(1.012, abs=1e-3)
    assert analysis["workers"] == [
        {"worker": "gw0", "tests": 3, "busy_seconds": 1.65, "utilisation": 0.825},
        {"worker": "gw1", "tests": 2, "busy_seconds": 2.4, "utilisation": 1.2},
    ]
    assert analysis["markers"][0] == {"name": "slow", "tests": 1, "seconds": 2.2}
    assert [f["name"] for f in analysis["files"]] == [
        "tests/test_a.py",
        "tests/test_b.py",
        "tests/test_c.py",
    ]
    assert [t["nodeid"] for t in analysis["slowest"]][:2] == [
        "tests/test_a.py::test_slow",
        "tests/test_b.py::test_regresses",
    ]


def test_thresholds_are_options(
    baseline_file: Path, current_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["report", str(current_file), "--baseline", str(baseline_file), "--format", "json"]
    assert main([*args, "--slower-ratio", "1.05", "--slower-seconds", "0.01"]) == 0
    slower = {s["nodeid"] for s in json.loads(capsys.readouterr().out)["baseline"]["slower"]}
    assert slower == {
        "tests/test_b.py::test_regresses",
        "tests/test_a.py::test_slow",
        "tests/test_b.py::test_noise",
    }


def test_fail_on_slower_exits_1_only_when_a_test_got_slower(
    baseline_file: Path, current_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["report", str(current_file), "--baseline", str(baseline_file), "--fail-on-slower"])
        == 1
    )
    assert (
        main(["report", str(baseline_file), "--baseline", str(baseline_file), "--fail-on-slower"])
        == 0
    )


def test_text_report_lists_the_slowest_tests_first(
    current_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(current_file), "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "5 tests: 4 passed, 1 failed"
    assert out[1] == "run r2: parallel, 2 worker(s), dist load"
    start = out.index("slowest 2:")
    assert "tests/test_a.py::test_slow" in out[start + 1]
    assert "tests/test_b.py::test_regresses" in out[start + 2]
    assert out[start + 3] == "workers:"


def test_markdown_report_has_tables_for_a_ci_summary(
    baseline_file: Path,
    current_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    out = tmp_path / "summary.md"
    code = main(
        [
            "report",
            str(current_file),
            "--baseline",
            str(baseline_file),
            "--format",
            "markdown",
            "--output",
            str(out),
            "--step-summary",
        ]
    )
    assert code == 0
    assert capsys.readouterr().out == ""
    text = out.read_text()
    assert text.startswith("## Test timing\n")
    assert "| seconds | outcome | worker | test |" in text
    assert "Speedup of the whole run: **x1.5**" in text
    assert "| 0.500 | 1.500 | 3.0 | `tests/test_b.py::test_regresses` |" in text
    assert "| passed | failed | `tests/test_b.py::test_noise` |" in text
    assert step_summary.read_text() == "# earlier step\n" + text


def test_markdown_escapes_pipes_in_test_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(make_report([make_test("t.py::test[a|b]", 0.1)], 1.0, 1, "serial")))
    assert main(["report", str(path), "--format", "markdown"]) == 0
    assert "`t.py::test[a\\|b]`" in capsys.readouterr().out


def test_markdown_shortens_a_test_id_that_prints_a_huge_parameter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A multipart parser's fuzz test ids hold a 10 MB body; the summary must stay small.
    nodeid = "t.py::test_preamble[" + "rn" * 500_000 + "boundary]"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(make_report([make_test(nodeid, 0.1)], 1.0, 1, "serial")))
    assert main(["report", str(path), "--format", "markdown"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "test_preamble" in line]
    assert rows
    assert max(len(line) for line in rows) < 400
    (row,) = [line for line in rows if line.startswith("| 0.100 |")]
    assert "`t.py::test_preamble[rnrn" in row
    assert row.endswith("rnboundary]` |")


BAD_REPORTS = {
    "missing.json": (None, "no such file"),
    "truncated.json": ('{"schema": "testfleet.timing/1", "run": {', "not valid JSON (line 1"),
    "list.json": ("[]", "top level is not an object"),
    "other.json": (
        '{"schema": "coverage/1"}',
        "not a testfleet timing report (schema is 'coverage/1'",
    ),
    "newer.json": (
        '{"schema": "testfleet.timing/2", "run": {}, "tests": []}',
        "written by a newer testfleet",
    ),
    "notests.json": (
        '{"schema": "testfleet.timing/1", "run": {"wall_seconds": 1, "workers": 1}}',
        "'tests' is missing",
    ),
    "badoutcome.json": (
        json.dumps(
            make_report([{**make_test("t.py::x", 1.0), "outcome": "exploded"}], 1.0, 1, "serial")
        ),
        "tests[0] (t.py::x): outcome 'exploded' is not one of",
    ),
    "badnumber.json": (
        json.dumps(
            {
                **make_report([], 1.0, 1, "serial"),
                "tests": [{**make_test("t.py::x", 1.0), "duration": "slow"}],
            }
        ),
        "tests[0] (t.py::x): a duration or time is not a number",
    ),
    "notatest.json": (
        json.dumps({**make_report([], 1.0, 1, "serial"), "tests": [make_test("t.py::x", 1.0), 42]}),
        "tests[1] is not an object",
    ),
    "nonodeid.json": (
        json.dumps(
            {
                **make_report([], 1.0, 1, "serial"),
                "tests": [make_test("t.py::x", 1.0), {"outcome": "passed"}],
            }
        ),
        "tests[1]: 'nodeid' is missing or not a string",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_REPORTS))
@pytest.mark.parametrize("as_baseline", [False, True])
def test_a_bad_report_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path,
    current_file: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    as_baseline: bool,
) -> None:
    content, message = BAD_REPORTS[name]
    bad = tmp_path / name
    if content is not None:
        bad.write_text(content)
    out = tmp_path / "summary.md"
    out.write_text("previous summary\n")
    args = (
        ["report", str(current_file), "--baseline", str(bad)]
        if as_baseline
        else ["report", str(bad)]
    )
    assert main([*args, "--output", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"testfleet: error: {bad}")
    assert message in lines[0]
    assert out.read_text() == "previous summary\n"


def test_a_stale_report_from_another_run_is_refused(
    current_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(current_file), "--run-id", "r2"]) == 0
    capsys.readouterr()
    assert main(["report", str(current_file), "--run-id", "fresh"]) == 2
    assert "is from run 'r2', not from run 'fresh'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "x.json", "--format", "pdf"], "invalid choice: 'pdf'"),
        (["report", "x.json", "--top", "0"], "'0' must be 1 or more"),
        (["report", "x.json", "--slower-ratio", "fast"], "'fast' is not a number"),
        (["run", "--workers", "none"], "is not a number: use a whole number such as 4"),
        (["randomized", "--seeds", "-1"], "'-1' must be 1 or more"),
    ],
)
def test_unknown_option_values_exit_2_saying_what_is_expected(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_merge_joins_phases_into_one_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parallel = tmp_path / "parallel.json"
    serial = tmp_path / "serial.json"
    parallel.write_text(
        json.dumps(
            make_report(
                [make_test("t.py::b", 1.0, "gw0"), make_test("t.py::a", 1.0, "gw1")],
                1.2,
                2,
                "parallel",
                "run",
            )
        )
    )
    serial_report = make_report(
        [make_test("t.py::s", 0.5, "main", markers=("serial",))], 0.6, 1, "serial", "run"
    )
    serial_report["run"]["exit_status"] = 1
    serial.write_text(json.dumps(serial_report))
    out = tmp_path / "merged.json"
    assert main(["merge", str(out), str(parallel), str(serial)]) == 0
    merged = json.loads(out.read_text())
    assert [t["nodeid"] for t in merged["tests"]] == ["t.py::a", "t.py::b", "t.py::s"]
    assert merged["run"]["wall_seconds"] == pytest.approx(1.8)
    assert merged["run"]["workers"] == 2
    assert merged["run"]["mode"] == "parallel"
    assert merged["run"]["exit_status"] == 1
    assert len(merged["run"]["phases"]) == 2
    assert merged["summary"]["tests"] == 3
    assert "merged 2 reports (3 tests)" in capsys.readouterr().out


def test_merge_refuses_a_test_present_in_two_phases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps(make_report([make_test("t.py::a", 1.0)], 1.0, 1, "serial")))
    out = tmp_path / "merged.json"
    assert main(["merge", str(out), str(one), str(one)]) == 2
    assert "t.py::a is in both" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("statuses", "combined"),
    [([0, 5], 0), ([5, 5], 5), ([1, 0], 1), ([0, 1], 1), ([0, 3], 3), ([5, 1], 1), ([], 0)],
)
def test_phase_exit_statuses_combine_like_one_pytest_run(
    statuses: list[int], combined: int
) -> None:
    from testfleet.timing.report import combine_exit_statuses

    assert combine_exit_statuses(statuses) == combined


def test_an_output_path_that_is_a_directory_exits_2_with_one_line(
    current_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(current_file), "--output", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("testfleet: error: ")
    assert str(tmp_path) in lines[0]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_whole_numbers_in_a_report_come_out_as_seconds_like_any_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # JSON has one number type: a report written by another tool may say 3 for 3.0, and
    # the analysis must not change its own output's types because of it.
    def whole(nodeid: str, seconds: int) -> dict[str, Any]:
        test = make_test(nodeid, seconds)
        test.update(start=100, stop=100 + seconds, cpu=seconds)
        test["durations"] = {"setup": 0, "call": seconds, "teardown": 0}
        return test

    before = tmp_path / "before.json"
    after = tmp_path / "after.json"
    before.write_text(json.dumps(make_report([whole("t.py::a", 1)], 2, 1, "serial")))
    after.write_text(json.dumps(make_report([whole("t.py::a", 3)], 4, 1, "serial")))
    assert main(["report", str(after), "--baseline", str(before), "--format", "json"]) == 0
    analysis = json.loads(capsys.readouterr().out)
    [slower] = analysis["baseline"]["slower"]
    assert (slower["baseline"], slower["current"]) == (1.0, 3.0)
    assert all(isinstance(slower[key], float) for key in ("baseline", "current"))
    schedule = analysis["schedule"]
    assert isinstance(schedule["test_span"], float)
    assert isinstance(schedule["workers"][0]["busy"], float)

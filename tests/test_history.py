"""The run history: recording runs, flake rates and trends, and files that must be kept."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from testfleet.cli.program import main
from testfleet.core.atomic import write_json_atomic
from testfleet.history import analysis, render, schema, settings
from testfleet.history.record import append, record_after_run
from testfleet.history.store import HistoryError, open_history
from testfleet.timing.records import TimingRecord, build_report

HISTORY = "reports/history.sqlite"
REPORT = "reports/test-timing.json"

Row = tuple[str, str, float]  # node id, outcome, duration


def make_report(
    run_id: str,
    rows: Sequence[Row],
    *,
    commit: str | None = "c0ffee",
    start: float = 1_700_000_000.0,
    workers: int = 2,
    wall: float = 10.0,
    reruns: Sequence[Row] = (),
) -> dict[str, Any]:
    """A timing report as `testfleet run` writes it; ``reruns`` become attempts 2, 3, ..."""
    records = []
    for index, (nodeid, outcome, duration) in enumerate([*rows, *reruns]):
        begin = start + index
        records.append(
            TimingRecord(
                nodeid=nodeid,
                worker=f"gw{index % workers}" if workers > 1 else "main",
                outcome=outcome,
                call=duration,
                start=begin,
                stop=begin + duration,
            )
        )
    run = {
        "id": run_id,
        "mode": "parallel" if workers > 1 else "serial",
        "workers": workers,
        "dist": "loadgroup" if workers > 1 else "no",
        "start": start,
        "end": start + wall,
        "wall_seconds": wall,
        "exit_status": 0,
        "git_commit": commit,
    }
    return build_report(records, run)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite"


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection, committed and closed at the end (WAL checkpointed)."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def analyze(path: Path, **window: Any) -> dict[str, Any]:
    with open_history(path, create=False) as conn:
        return analysis.analyze(conn, analysis.Window(**window))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


SAMPLE_SUITE = """
from pathlib import Path

MARK = Path(__file__).parent / "ran-once"


def test_fails_the_first_time_only():
    first = not MARK.exists()
    MARK.write_text("x")
    assert not first


def test_steady():
    pass
"""


def test_a_test_that_failed_then_passed_on_rerun_gets_a_flake_rate_and_fails_the_check(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_sample=SAMPLE_SUITE)
    run = ["run", "--workers", "1", "--report", REPORT, "--", "-p", "no:randomly"]
    # First run: the test fails; classify reruns it (it passes) and adds the reruns.
    assert main(run) == 1
    assert main(["classify", REPORT, "--runs", "1", "--threshold", "100"]) == 0
    capsys.readouterr()
    status, out, _ = run_cli(
        capsys,
        "history",
        "import",
        REPORT,
        "--classification",
        "reports/classification.json",
        "--history-path",
        HISTORY,
    )
    assert status == 0, out
    assert "1 run(s), 4 test results recorded" in out
    # Second run: everything passes.
    assert main(run) == 0
    capsys.readouterr()
    assert run_cli(capsys, "history", "import", REPORT, "--history-path", HISTORY)[0] == 0

    status, out, _ = run_cli(capsys, "history", "--history-path", HISTORY)
    assert status == 0
    assert "2 of 2 recorded runs" in out
    assert "flaky tests: 1, newly flaky: 1, above 5%: 1" in out
    assert "  50%   1/2   new  test_sample.py::test_fails_the_first_time_only" in out

    status, _, err = run_cli(capsys, "history", "--history-path", HISTORY, "--check")
    assert status == 1
    assert "newly flaky above 5%: test_sample.py::test_fails_the_first_time_only (50%)" in err
    # At a threshold above its rate, the same history passes the check.
    assert (
        run_cli(capsys, "history", "--history-path", HISTORY, "--check", "--threshold", "60")[0]
        == 0
    )
    with connect(pytester.path / HISTORY) as conn:
        classes = conn.execute(
            "SELECT attempt, classification FROM results JOIN tests ON tests.id = test "
            "WHERE nodeid LIKE '%first_time_only' ORDER BY run, attempt"
        ).fetchall()
    assert classes[0] == (1, "flaky")
    assert len(classes) == 4  # the first run and its two reruns, the second run


def test_old_reports_are_imported_in_one_go_and_a_bad_one_imports_none(
    tmp_path: Path, history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = []
    for number in range(3):
        path = tmp_path / f"old-{number}.json"
        rows = [("t.py::a", "passed", 0.1), ("t.py::b", "passed", 0.2 + number)]
        write_json_atomic(path, make_report(f"run{number}", rows, start=1e9 + number * 100))
        paths.append(str(path))
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "testfleet.timing/1", "run": {}}')
    status, _, err = run_cli(
        capsys, "history", "import", *paths, str(bad), "--history-path", str(history)
    )
    assert status == 2
    assert f"{bad}: 'tests' is missing or not a list" in err
    assert not history.exists()

    status, out, _ = run_cli(
        capsys, "history", "import", *paths, "--history-path", str(history), "--branch", "main"
    )
    assert status == 0
    assert "3 run(s), 6 test results recorded" in out
    result = analyze(history)
    assert [r["run_id"] for r in result["runs"]] == ["run0", "run1", "run2"]
    assert {r["branch"] for r in result["runs"]} == {"main"}
    # Importing a report again replaces its run instead of adding one.
    assert main(["history", "import", paths[0], "--history-path", str(history)]) == 0
    assert analyze(history)["recorded_runs"] == 3


def test_a_shard_is_recorded_as_its_index_and_total(history: Path) -> None:
    data = make_report("s2", [("t.py::a", "passed", 0.1)])
    data["run"]["shard"] = {"index": 2, "total": 4, "assigned": ["t.py::a"] * 500}
    append(history, [data], {})
    assert analyze(history)["runs"][0]["shard"] == "2/4"


def test_a_test_failing_and_passing_on_one_commit_is_flaky_but_a_fix_on_a_new_commit_is_not(
    history: Path,
) -> None:
    reports = [
        make_report(
            "r1",
            [("t.py::same", "failed", 0.1), ("t.py::fixed", "failed", 0.1)],
            commit="aaa",
            start=1,
        ),
        make_report(
            "r2",
            [("t.py::same", "passed", 0.1), ("t.py::fixed", "failed", 0.1)],
            commit="aaa",
            start=2,
        ),
        make_report(
            "r3",
            [("t.py::same", "passed", 0.1), ("t.py::fixed", "passed", 0.1)],
            commit="bbb",
            start=3,
        ),
    ]
    append(history, reports, {})
    result = analyze(history)
    assert [(r["nodeid"], r["flaky_runs"], r["runs"]) for r in result["flaky"]] == [
        ("t.py::same", 1, 3)
    ]
    assert result["flaky"][0]["flake_rate"] == pytest.approx(33.33)


def test_flakiness_seen_before_the_recent_runs_is_not_new(history: Path) -> None:
    flaky = [("t.py::old", "failed", 0.1)]
    reports = [
        make_report("r0", [("t.py::old", "passed", 0.1)], reruns=[], start=0, commit=None),
        make_report("r1", flaky, reruns=[("t.py::old", "passed", 0.1)], start=1, commit=None),
    ]
    reports += [
        make_report(f"r{n}", [("t.py::old", "passed", 0.1)], start=n, commit=None)
        for n in range(2, 6)
    ]
    reports.append(
        make_report("r6", flaky, reruns=[("t.py::old", "passed", 0.1)], start=6, commit=None)
    )
    append(history, reports, {})
    recent = analyze(history, recent=3)
    assert recent["flaky"][0]["flaky_runs"] == 2
    assert recent["newly_flaky"] == []
    assert not analysis.check_failed(recent)
    # Seen from the newest two runs only, the same test is newly flaky.
    assert analyze(history, runs=2, recent=2)["newly_flaky"][0]["nodeid"] == "t.py::old"


def test_a_test_whose_recent_median_duration_rose_is_listed_with_both_medians(
    history: Path,
) -> None:
    reports = [
        make_report(
            f"r{n}",
            [("t.py::grows", "passed", 0.2 if n < 4 else 1.0), ("t.py::flat", "passed", 0.5)],
            start=n,
        )
        for n in range(6)
    ]
    append(history, reports, {})
    slower = analyze(history, recent=2)["slower"]
    assert slower == [{"nodeid": "t.py::grows", "earlier": 0.2, "recent": 1.0, "ratio": 5.0}]


def test_runs_show_wall_time_and_speedup_against_the_latest_serial_run(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [("t.py::a", "passed", 3.0), ("t.py::b", "failed", 3.0)]
    append(
        history,
        [
            make_report("serial1", rows, workers=1, wall=12.0, start=1),
            make_report("par1", rows, workers=4, wall=4.0, start=2),
        ],
        {},
    )
    runs = analyze(history)["runs"]
    assert [(r["run_id"], r["speedup"], r["concurrency"], r["failed"]) for r in runs] == [
        ("serial1", None, 0.5, 1),
        ("par1", 3.0, 1.5, 1),
    ]
    status, out, _ = run_cli(capsys, "history", "--history-path", str(history), "--format", "json")
    assert status == 0
    assert json.loads(out)["serial_reference"] == {"run_id": "serial1", "wall_seconds": 12.0}
    status, out, _ = run_cli(
        capsys, "history", "--history-path", str(history), "--format", "markdown"
    )
    assert "## Test history" in out
    assert "| par1 | c0ffee | - | parallel/4 | 4.0s | x3 | x1.5 | 2 | 1 |" in out


def test_the_markdown_section_is_appended_and_the_output_written_atomically(
    tmp_path: Path, history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append(history, [make_report("r1", [("t.py::a", "passed", 0.1)])], {})
    summary = tmp_path / "summary.md"
    summary.write_text("# CI\n")
    output = tmp_path / "out" / "history.txt"
    status, out, _ = run_cli(
        capsys, "history", "--history-path", str(history), "--summary", str(summary),
        "--output", str(output), "--json", str(tmp_path / "history.json"),
    )  # fmt: skip
    assert status == 0
    assert out == ""
    assert output.read_text().startswith("1 of 1 recorded runs")
    assert summary.read_text().startswith("# CI\n## Test history\n")
    assert json.loads((tmp_path / "history.json").read_text())["recorded_runs"] == 1


# -- files that must be kept ----------------------------------------------------------


def first_version_file(path: Path) -> None:
    """A history as the first schema version wrote it, with one run."""
    conn = sqlite3.connect(path)
    conn.executescript(schema.V1)
    conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO runs (id, run_id, started, wall_seconds, workers, mode, git_commit, "
        "exit_status, tests, failed, outcomes, duration_sum) "
        "VALUES (1, 'v1run', 5.0, 8.0, 2, 'parallel', 'abc', 1, 1, 1, '{}', 0.4)"
    )
    conn.execute("INSERT INTO tests (id, nodeid) VALUES (1, 't.py::flaky')")
    conn.executemany(
        "INSERT INTO results (run, test, attempt, outcome, duration, worker) "
        "VALUES (1, 1, ?, ?, 0.2, 'gw0')",
        [(1, 1), (2, 0)],
    )
    conn.commit()
    conn.close()


def test_a_history_of_the_first_schema_version_is_migrated_and_keeps_its_runs(
    history: Path,
) -> None:
    first_version_file(history)
    append(history, [make_report("new", [("t.py::flaky", "passed", 0.1)], start=10)], {})
    with connect(history) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert conn.execute("SELECT run_id, detail, branch FROM runs ORDER BY id").fetchall() == [
            ("v1run", 1, None),
            ("new", 1, None),
        ]
    result = analyze(history)
    assert result["flaky"][0]["nodeid"] == "t.py::flaky"
    assert result["flaky"][0]["flaky_runs"] == 1


def test_a_failed_migration_leaves_the_first_version_file_as_it_was(
    history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_version_file(history)
    before = history.read_bytes()
    monkeypatch.setattr(schema, "MIGRATIONS", (schema.V1, schema.V2 + "\nNOT SQL;"))
    with pytest.raises(HistoryError, match="syntax error; the file is left as it is"):
        append(history, [make_report("new", [("t.py::a", "passed", 0.1)])], {})
    with connect(history) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT run_id FROM runs").fetchall() == [("v1run",)]
        assert "branch" not in [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
    assert len(history.read_bytes()) == len(before)


def newer_file(path: Path) -> None:
    append(path, [make_report("r1", [("t.py::a", "passed", 0.1)])], {})
    with connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")


def corrupt_file(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 200)


def other_program_file(path: Path) -> None:
    with connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (corrupt_file, "is not a readable history (file is not a database); it is left as it is"),
        (newer_file, "was written by a newer testfleet (history schema 3; this one knows up to 2)"),
        (other_program_file, "is an SQLite database but not a testfleet history"),
    ],
)
def test_a_file_that_is_not_our_current_history_is_refused_and_kept_byte_for_byte(
    pytester: pytest.Pytester,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], None],
    message: str,
) -> None:
    pytester.makepyfile(test_sample="def test_one():\n    pass\n")
    history = pytester.path / HISTORY
    history.parent.mkdir()
    make(history)
    before = history.read_bytes()
    for argv in (["history", "import", "x.json"], ["history"], ["history", "prune"]):
        if argv[-1] == "x.json":
            write_json_atomic(
                pytester.path / "x.json", make_report("x", [("t.py::a", "passed", 0.1)])
            )
        status, _, err = run_cli(capsys, *argv)
        assert status == 2, argv
        assert message in err
    # A run still writes its report and passes; the history is told about, not touched.
    assert record_after_run(pytester.path / "x.json", history, echo=print) is False
    out = capsys.readouterr().out
    assert "testfleet: warning: run not recorded in the history" in out
    assert "record it later with `testfleet history import" in out
    assert history.read_bytes() == before


def test_a_locked_history_is_reported_after_the_timeout_and_keeps_its_runs(
    history: Path,
) -> None:
    append(history, [make_report("r1", [("t.py::a", "passed", 0.1)])], {})
    holder = sqlite3.connect(history, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match="is locked by another process"):
            append(history, [make_report("r2", [("t.py::a", "passed", 0.1)])], {}, timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [r["run_id"] for r in analyze(history)["runs"]] == ["r1"]


def test_parallel_jobs_append_to_one_history_without_losing_a_run(history: Path) -> None:
    append(history, [make_report("first", [("t.py::a", "passed", 0.1)])], {})
    errors: list[BaseException] = []

    def job(number: int) -> None:
        try:
            for index in range(5):
                rows = [(f"t.py::test_{n}", "passed", 0.01) for n in range(50)]
                append(history, [make_report(f"j{number}-{index}", rows, start=index)], {})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with connect(history) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 21
        assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 1 + 20 * 50
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_pruning_folds_old_results_into_totals_and_keeps_every_run(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = [
        make_report(
            f"r{n}",
            [("t.py::a", "failed" if n == 0 else "passed", 1.0), ("t.py::b", "passed", 2.0)],
            reruns=[("t.py::a", "passed", 1.0)] if n == 0 else [],
            start=n,
        )
        for n in range(5)
    ]
    append(history, reports, {}, keep_runs=0)
    status, out, _ = run_cli(
        capsys, "history", "prune", "--keep-runs", "2", "--history-path", str(history)
    )
    assert status == 0
    assert "results of 3 old run(s) folded" in out
    with connect(history) as conn:
        totals = conn.execute(
            "SELECT nodeid, runs, failed_runs, flaky_runs, duration_sum, last_started "
            "FROM test_totals JOIN tests ON tests.id = test ORDER BY nodeid"
        ).fetchall()
        assert totals == [("t.py::a", 3, 1, 1, 4.0, 2.0), ("t.py::b", 3, 0, 0, 6.0, 2.0)]
        assert conn.execute("SELECT count(DISTINCT run) FROM results").fetchone()[0] == 2
    result = analyze(history)
    assert len(result["runs"]) == 5
    assert result["flaky"] == []
    # `append` prunes as it goes: the default keeps the newest 1000 runs' results.
    append(history, [make_report("r9", [("t.py::a", "passed", 1.0)], start=9)], {}, keep_runs=1)
    with connect(history) as conn:
        assert conn.execute("SELECT count(DISTINCT run) FROM results").fetchone()[0] == 1


def test_pruning_gives_the_space_of_the_deleted_results_back_to_the_disk(history: Path) -> None:
    rows = [(f"tests/test_{n}.py::test_with_a_long_name_{n}", "passed", 0.1) for n in range(400)]
    append(history, [make_report(f"r{n}", rows, start=n) for n in range(8)], {}, keep_runs=0)
    size = history.stat().st_size
    append(history, [make_report("r9", rows, start=9)], {}, keep_runs=1)
    with connect(history) as conn:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert history.stat().st_size < size * 0.75


def test_no_history_yet_is_a_usage_error_that_says_how_to_get_one(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_cli(capsys, "history", "--history-path", str(history))
    assert status == 2
    assert "no history yet: `testfleet run` records one" in err
    assert not history.exists()


@pytest.mark.parametrize("value", ["-1", "abc", "101"])
def test_a_bad_threshold_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["history", "--threshold", value])
    assert exit_info.value.code == 2
    assert "--threshold" in capsys.readouterr().err


def test_settings_come_from_the_option_then_the_environment_then_pyproject(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.testfleet]\nhistory = false\nhistory_path = "ci/history.db"\n'
    )
    # A path in pyproject.toml is relative to the project, wherever the command runs.
    found = settings.history_path(None, tmp_path, {})
    assert found.resolve() == (tmp_path / "ci" / "history.db").resolve()
    assert settings.history_path(None, tmp_path, {settings.PATH_ENV: "e.db"}) == Path("e.db")
    option = settings.history_path(Path("o.db"), tmp_path, {settings.PATH_ENV: "e.db"})
    assert option == Path("o.db")
    assert settings.enabled(None, tmp_path, {}) is False
    assert settings.enabled(None, tmp_path, {settings.ENABLED_ENV: "yes"}) is True
    assert settings.enabled(False, tmp_path, {settings.ENABLED_ENV: "yes"}) is False
    assert settings.keep_runs(tmp_path, {}) == 1000
    assert settings.keep_runs(tmp_path, {"TESTFLEET_HISTORY_KEEP_RUNS": "20"}) == 20
    with pytest.raises(ValueError, match="TESTFLEET_HISTORY='maybe'"):
        settings.enabled(None, tmp_path, {settings.ENABLED_ENV: "maybe"})
    (tmp_path / "pyproject.toml").write_text("[tool.testfleet]\n")
    assert settings.history_path(None, tmp_path, {}) == Path("reports/history.sqlite")
    assert settings.enabled(None, tmp_path, {}) is True


# -- every `testfleet run` ------------------------------------------------------------


def test_every_run_is_recorded_unless_turned_off_by_option_or_pyproject(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_sample="def test_one():\n    pass\n")
    run = ["run", "--workers", "1", "--report", REPORT, "--", "-p", "no:randomly"]
    assert main(run) == 0
    assert main(run) == 0
    assert main([*run[:5], "--no-history", *run[5:]]) == 0
    assert analyze(pytester.path / HISTORY)["recorded_runs"] == 2
    pytester.makepyprojecttoml('[tool.testfleet]\nhistory_path = "ci/h.sqlite"\n')
    assert main(run) == 0
    assert analyze(pytester.path / "ci" / "h.sqlite")["recorded_runs"] == 1
    pytester.makepyprojecttoml("[tool.testfleet]\nhistory = false\n")
    assert main(run) == 0
    assert analyze(pytester.path / HISTORY)["recorded_runs"] == 2
    # A run that wrote no report of its own leaves the earlier run's report unrecorded.
    pytester.makepyprojecttoml("[tool.testfleet]\n")
    assert main([*run, "--no-such-option"]) == 4
    assert analyze(pytester.path / HISTORY)["recorded_runs"] == 2
    assert "history" not in capsys.readouterr().err


def test_a_corrupt_history_does_not_fail_the_run_or_lose_its_report(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_sample="def test_one():\n    pass\n")
    history = pytester.path / HISTORY
    history.parent.mkdir()
    corrupt_file(history)
    before = history.read_bytes()
    assert main(["run", "--workers", "1", "--report", REPORT, "--", "-p", "no:randomly"]) == 0
    err = capsys.readouterr().err
    assert "testfleet: warning: run not recorded in the history: " in err
    assert f"record it later with `testfleet history import {REPORT}`" in err
    assert json.loads((pytester.path / REPORT).read_text())["summary"]["tests"] == 1
    assert history.read_bytes() == before


def test_tests_too_flaky_or_colliding_and_not_fixed_are_listed_to_quarantine_with_commands(
    history: Path,
) -> None:
    collides = ("t.py::collides", "failed", 0.1)
    append(history, [make_report("r1", [collides], commit="aaa", start=1)], {}, classes={
        "t.py::collides": "parallel-only"
    })  # fmt: skip
    append(
        history, [make_report("r2", [("t.py::collides", "passed", 0.1)], workers=1, start=2)], {}
    )
    result = analyze(history)
    assert result["quarantine"] == [
        {
            "nodeid": "t.py::collides",
            "reason": "parallel-only in run r1, and no parallel run has passed it since",
        }
    ]
    text = render.render(result, "text")
    assert "  leave them out of the run: --deselect t.py::collides" in text
    assert "  run them apart: pytest -p no:randomly -n 0 t.py::collides || true" in text
    assert "### To quarantine" in render.render(result, "markdown")
    # Fixed: a parallel run passes it; a test that is flaky above the threshold stays.
    flaky = [("t.py::flaky", "failed", 0.1)]
    third = make_report(
        "r3", [("t.py::collides", "passed", 0.1), *flaky], start=3, commit="bbb",
        reruns=[("t.py::flaky", "passed", 0.1)],
    )  # fmt: skip
    append(history, [third], {})
    append(history, [make_report("r4", flaky, start=4, commit="ccc")], {})
    assert analyze(history)["quarantine"] == [
        {"nodeid": "t.py::flaky", "reason": "flaky in 50% of its runs (above 5%)"}
    ]
    assert "to quarantine" not in render.render(analyze(history, threshold=60), "text")

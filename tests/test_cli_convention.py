"""One convention across commands: inputs positional, --output, --summary, --json, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_report_cli import make_report, make_test
from testfleet.cli.program import main
from testfleet.isolation import pools
from testfleet.neo4j import config as neo4j


@pytest.fixture
def phases(project: Path) -> list[Path]:
    parallel = project / "parallel.json"
    serial = project / "serial.json"
    tests = [make_test("t.py::b", 1.0, "gw0"), make_test("t.py::a", 1.0, "gw1")]
    parallel.write_text(json.dumps(make_report(tests, 1.2, 2, "parallel", "run")))
    alone = [make_test("t.py::s", 0.5, "main", markers=("serial",))]
    serial.write_text(json.dumps(make_report(alone, 0.6, 1, "serial", "run")))
    return [parallel, serial]


@pytest.fixture
def pair(project: Path) -> tuple[Path, Path]:
    """A baseline and a run in which t.py::b takes 1.8 times as long."""
    baseline = project / "baseline.json"
    current = project / "current.json"
    before = [make_test("t.py::a", 1.0, "main"), make_test("t.py::b", 1.0, "main")]
    after = [make_test("t.py::a", 1.0, "gw0"), make_test("t.py::b", 1.8, "gw1")]
    baseline.write_text(json.dumps(make_report(before, 2.0, 1, "serial")))
    current.write_text(json.dumps(make_report(after, 1.8, 2, "parallel", "r2")))
    return baseline, current


def test_merge_takes_the_reports_positionally_and_writes_output(
    phases: list[Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "merged.json"
    assert main(["merge", *map(str, phases), "--output", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert [t["nodeid"] for t in merged["tests"]] == ["t.py::a", "t.py::b", "t.py::s"]
    assert capsys.readouterr().out == f"testfleet: merged 2 reports (3 tests) into {out}\n"


def test_merge_without_output_prints_the_merged_report(
    phases: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["merge", *map(str, phases)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["summary"]["tests"] == 3


def test_merge_in_the_old_form_still_works_and_says_the_new_one(
    phases: list[Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = project / "old.json"
    assert main(["merge", str(out), *map(str, phases)]) == 0
    assert json.loads(out.read_text())["summary"]["tests"] == 3
    assert f"testfleet merge REPORT... --output {out}" in capsys.readouterr().err


def test_merge_never_takes_an_existing_report_for_the_output(
    phases: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    before = [path.read_bytes() for path in phases]
    assert main(["merge", *map(str, phases)]) == 0
    assert [path.read_bytes() for path in phases] == before


def test_report_appends_a_markdown_section_and_writes_json_whatever_it_prints(
    pair: tuple[Path, Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    baseline, current = pair
    summary = project / "summary.md"
    summary.write_text("# before\n")
    step = project / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    analysis = project / "analysis.json"
    args = ["report", str(current), "--baseline", str(baseline), "--summary", str(summary)]
    assert main([*args, "--step-summary", "--json", str(analysis)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("testfleet timing report") or "slowest" in printed
    assert summary.read_text().startswith("# before\n## Test timing\n")
    assert step.read_text().startswith("## Test timing\n")
    data = json.loads(analysis.read_text())
    assert [t["nodeid"] for t in data["baseline"]["slower"]] == ["t.py::b"]


def test_report_thresholds_come_from_the_table_unless_given(
    pair: tuple[Path, Path], project: Path
) -> None:
    baseline, current = pair
    analysis = project / "analysis.json"
    args = ["report", str(current), "--baseline", str(baseline), "--json", str(analysis)]
    (project / "pyproject.toml").write_text("[tool.testfleet]\nslower_ratio = 2.0\n")
    assert main(args) == 0
    assert json.loads(analysis.read_text())["baseline"]["slower"] == []
    assert main([*args, "--slower-ratio", "1.5"]) == 0
    assert len(json.loads(analysis.read_text())["baseline"]["slower"]) == 1


def test_run_takes_workers_and_report_from_the_table(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml(
        '[tool.testfleet]\nworkers = 1\nreport = "out/timing.json"\ndist = "load"\n'
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    assert main(["run", "--", "-p", "no:randomly"]) == 0
    report = json.loads((pytester.path / "out" / "timing.json").read_text())
    assert (report["run"]["mode"], report["run"]["workers"]) == ("serial", 1)
    assert " -n 0 " in capsys.readouterr().out


def test_the_lock_directory_and_neo4j_settings_come_from_the_table(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.testfleet]\nlock_dir = "locks"\nneo4j = "local"\nneo4j_strategy = "namespace"\n'
        'neo4j_uri = "bolt://127.0.0.1:7687"\nneo4j_timeout = 5\n'
    )
    assert pools.configured_lock_dir(None, {}) == project / "locks"
    assert pools.configured_lock_dir("/srv/l", {}) == Path("/srv/l")
    assert neo4j.resolve_mode(None, {}) == "local"
    assert neo4j.resolve_mode(None, {neo4j.MODE_ENV: "required"}) == "required"
    assert neo4j.resolve_strategy(None, {}) == "namespace"
    assert neo4j.resolve_timeout(None, {}) == 5.0
    assert neo4j.resolve_timeout(2.0, {}) == 2.0
    connection = neo4j.explicit_connection(environ={neo4j.PASSWORD_ENV: "pw"})
    assert connection is not None
    assert (connection.uri, connection.user, connection.password) == (
        "bolt://127.0.0.1:7687",
        None,
        "pw",
    )
    assert connection.source == f"neo4j_uri in {project / 'pyproject.toml'}"


def test_a_bad_table_stops_pytest_with_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.testfleet]\npool_timeout = -1\n")
    pytester.makepyfile(test_pool="def test_pool(testfleet_pool):\n    testfleet_pool('p', 1)\n")
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *pyproject.toml: [[]tool.testfleet] pool_timeout = -1: -1 is out of range*"]
    )


def test_a_command_builds_only_its_own_parser_and_help_lists_every_command() -> None:
    # `testfleet run` must not pay for the imports of bisect's, the audit's and the
    # history's parsers before it starts pytest.
    import subprocess
    import sys

    script = (
        "import sys; from testfleet.cli import program as cli; cli.build_parser('run'); "
        "print(sorted(m for m in sys.modules if m.startswith(('testfleet.diagnose.audit', "
        "'testfleet.history', 'testfleet.diagnose.bisect', 'importlib.metadata'))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    from testfleet.cli.program import COMMANDS, build_parser

    # A command's own line is indented four spaces; its help's next lines, further.
    listing = build_parser().format_help().splitlines()
    named = {line.split()[0] for line in listing if line.startswith("    ") and line[4] != " "}
    assert named == set(COMMANDS)
    assert len(COMMANDS) == 12


def test_version_and_a_misspelt_command(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"testfleet {version('testfleet')}\n"
    with pytest.raises(SystemExit) as stopped:
        main(["rnu", "--workers", "2"])
    assert stopped.value.code == 2
    assert "invalid choice: 'rnu'" in capsys.readouterr().err

"""Reports are replaced in one rename: a crash mid-write never leaves half a file."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testfleet.core.atomic import write_json_atomic

OLD = {"schema": "testfleet.timing/1", "old": True}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_new_report_replaces_the_old_one_completely(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_json_atomic(target, OLD)
    write_json_atomic(target, {"new": ["ü", 1.5]})
    assert json.loads(target.read_text(encoding="utf-8")) == {"new": ["ü", 1.5]}
    assert leftovers(tmp_path) == []


def test_parent_directories_are_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "report.json"
    write_json_atomic(target, OLD)
    assert json.loads(target.read_text()) == OLD


def test_an_error_while_serializing_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_json_atomic(target, OLD)
    before = target.read_bytes()
    with pytest.raises(TypeError):
        write_json_atomic(target, {"tests": [1, 2, object()]})
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_a_failure_after_the_data_is_written_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    write_json_atomic(target, OLD)
    before = target.read_bytes()

    def no_rename(self: Path, other: Path) -> Path:
        raise OSError("disk went away")

    monkeypatch.setattr(Path, "replace", no_rename)
    with pytest.raises(OSError, match="disk went away"):
        write_json_atomic(target, {"new": True})
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_a_process_killed_in_the_middle_of_writing_leaves_the_old_report(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_json_atomic(target, OLD)
    before = target.read_bytes()
    # The child dies (os._exit: no cleanup, no exception handlers) after part of the
    # new text has reached the temporary file.
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        import testfleet.core.atomic as atomic

        real_fdopen = os.fdopen

        class DiesHalfway:
            def __init__(self, handle):
                self.handle = handle
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return False
            def write(self, text):
                self.handle.write(text[: len(text) // 2])
                self.handle.flush()
                os._exit(9)

        os.fdopen = lambda fd, *a, **k: DiesHalfway(real_fdopen(fd, *a, **k))
        atomic.write_json_atomic(Path({str(target)!r}), {{"tests": list(range(10000))}})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == 9
    assert target.read_bytes() == before
    # The dead process's partial temp file is the only trace, and it is not the report.
    partial = [tmp_path / name for name in leftovers(tmp_path)]
    assert len(partial) == 1
    assert partial[0].stat().st_size > 0


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.parametrize("detached", [False, True])
def test_the_git_commit_is_read_from_the_repository(tmp_path: Path, detached: bool) -> None:
    from testfleet.timing.records import git_commit

    git(tmp_path, "init", "-q")
    (tmp_path / "f").write_text("x")
    git(tmp_path, "add", "f")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = git(tmp_path, "rev-parse", "HEAD")
    if detached:
        git(tmp_path, "checkout", "-q", "--detach")
    (tmp_path / "sub").mkdir()
    assert git_commit(tmp_path / "sub") == head
    git(tmp_path, "pack-refs", "--all")
    assert git_commit(tmp_path) == head


def test_no_git_commit_outside_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testfleet.timing.records import git_commit

    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_commit(tmp_path) is None


def test_outside_a_repository_no_git_process_is_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every run with a report asks for the commit: outside a repository that must not
    # cost a process.
    from testfleet.timing.records import git_commit

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    started = shlex.quote(str(tmp_path / "git-started"))
    fake.write_text(f"#!/bin/sh\ntouch {started}\necho 0123abcd\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("GIT_DIR", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    if any((parent / ".git").exists() for parent in work.parents):
        pytest.skip("the temporary directory is inside a git repository")
    assert git_commit(work) is None
    assert not (tmp_path / "git-started").exists()
    # A .git that is a file (a worktree, a submodule) is left to git itself.
    (work / ".git").write_text("gitdir: elsewhere\n")
    assert git_commit(work) == "0123abcd"
    assert (tmp_path / "git-started").exists()


def test_appending_a_section_keeps_what_was_there(tmp_path: Path) -> None:
    from testfleet.core.atomic import append_text_atomic

    summary = tmp_path / "summary.md"
    append_text_atomic(summary, "## one\n")
    append_text_atomic(summary, "## two\n")
    summary.write_text(summary.read_text() + "no newline")
    append_text_atomic(summary, "## three\n")
    assert summary.read_text() == "## one\n## two\nno newline\n## three\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "nodeid",
    ["tests/test_a.py::test_plain", 'tests/test_a.py::test_p["}, {\\"nodeid\\": ", "é"]'],
)
def test_a_report_has_one_line_per_test_and_reads_back_as_written(
    tmp_path: Path, nodeid: str
) -> None:
    from testfleet.timing.records import TimingRecord, build_report

    records = [
        TimingRecord(nodeid=f"{nodeid}{index}", worker="gw0", call=0.5, markers=["slow"])
        for index in range(3)
    ]
    report = build_report(records, {"wall_seconds": 1.0, "workers": 1})
    target = tmp_path / "report.json"
    write_json_atomic(target, report)
    text = target.read_text(encoding="utf-8")
    assert json.loads(text) == report
    lines = text.splitlines()
    test_lines = [line for line in lines if line.startswith('    {"nodeid": ')]
    assert len(test_lines) == 3
    assert [json.loads(line.rstrip(","))["nodeid"] for line in test_lines] == [
        f"{nodeid}{index}" for index in range(3)
    ]


#: A number as a run's report writes it: six decimals, no exponent.
SIX_DECIMALS = re.compile(r"-?[0-9]+\.[0-9]{6}")
NUMBER_KEYS = ("duration", "setup", "call", "teardown", "start", "stop", "cpu")


def test_the_text_a_run_writes_is_the_report_of_its_records() -> None:
    # The recorder writes its report straight from the records; readers and baselines
    # rely on it reading back as the documented report, one line per test.
    from testfleet.timing.records import TimingRecord, build_report, dumps_report, report_text

    records = [
        TimingRecord(nodeid="t.py::b", worker="gw1", call=0.1234567891, start=10.5, stop=10.7),
        # Two attempts of one test, the later one first: numbered by start time.
        TimingRecord(nodeid="t.py::a", worker="gw0", outcome="failed", call=1 / 3, start=20.0),
        TimingRecord(
            nodeid='t.py::a[é"\\\\]',
            worker="gw0",
            outcome="error",
            error_phase="setup",
            setup=2.5e-7,
            markers=["slow", "ünï"],
            start=5.0,
            cpu=0.01,
        ),
        TimingRecord(nodeid="t.py::a", worker="gw1", outcome="passed", call=3.0, start=1.0),
        TimingRecord(nodeid="t.py::c", worker="main", setup=0, call=0, teardown=0, cpu=0.0),
        TimingRecord(nodeid="t.py::d", worker="", markers=["slow", "ünï"], call=3e-5),
    ]
    run = {"id": "abc", "wall_seconds": 1.5, "workers": 2, "args": ["-k", "ü"], "seed": None}
    text = report_text(records, run)
    expected_text = dumps_report(build_report([*records], run))
    written, expected = json.loads(text), json.loads(expected_text)
    # The sum of the durations is of the durations before rounding.
    assert written["summary"].pop("duration_sum") == pytest.approx(
        expected["summary"].pop("duration_sum"), abs=1e-6 * len(records)
    )
    assert written == expected
    assert written["summary"]["tests"] == 6
    lines, expected_lines = text.splitlines(), expected_text.splitlines()
    assert len(lines) == len(expected_lines)
    assert lines[:4] == expected_lines[:4]
    test_lines = [line for line in lines if line.startswith('    {"nodeid": ')]
    assert len(test_lines) == len(records)
    for line in test_lines:
        test = json.loads(line.rstrip(","))
        for key in NUMBER_KEYS:
            if key in test or key in test.get("durations", {}):
                assert SIX_DECIMALS.match(line.split(f'"{key}": ', 1)[1]), (key, line)
    assert '"setup": 0.000000' in text
    assert '"call": 0.000030' in text
    assert report_text([], run) == dumps_report(build_report([], run))


def test_a_reports_numbers_read_back_as_round_to_six_decimals_gives_them() -> None:
    # The report writes each number with "%.6f"; a reader must get round(x, 6) back.
    import random

    from testfleet.timing.records import TimingRecord, report_text

    rng = random.Random(20261201)
    values: list[float] = [0.0, -0.0, 1e-4, 9.99999e-5, 0.0001000004, 1e9, 999999999.9999996]
    values += [0.0000005, 2.5e-7, 0.1234565, 1800000000.2295715, 1 / 3, 2.675, 1e16, 5e-324]
    values += [2.0**32, 2.0**32 - 2**-20, 2.0**31 + 0.0000005, 4294967295.9999995, 1e300]
    for _ in range(20_000):
        magnitude = 10 ** rng.uniform(-9, 12)
        values.append(rng.choice([1, -1]) * magnitude)
        # Six-decimal halfway points, where rounding is decided, up to past 2**32.
        values.append(rng.randrange(5 * 10**15) / 10**6 + 5e-7)
        # Epoch seconds, as a test's start and stop.
        values.append(rng.uniform(1.7e9, 2.2e9))
    rng.shuffle(values)
    records = []
    for index in range(0, len(values) - 5, 6):
        setup, call, teardown, start, stop, cpu = values[index : index + 6]
        records.append(
            TimingRecord(f"t.py::test_{index:06d}", "main", setup=setup, call=call,
                         teardown=teardown, start=start, stop=stop, cpu=cpu)
        )  # fmt: skip
    tests = json.loads(report_text(records, {}))["tests"]
    assert len(tests) == len(records)
    wrong = []
    for record, test in zip(records, tests, strict=True):
        written = (*test["durations"].values(), test["start"], test["stop"], test["cpu"])
        wanted = (record.setup, record.call, record.teardown, record.start, record.stop)
        assert record.cpu is not None
        rounded = tuple(round(value, 6) for value in (*wanted, record.cpu))
        if written != rounded or test["duration"] != round(record.duration, 6):
            wrong.append((record, test))
    assert wrong == []


def test_a_number_that_is_not_finite_is_written_as_json_writes_it() -> None:
    # "%.6f" would write nan, which no JSON reader takes; such a test is written as
    # Python's json writes it, and the others as usual.
    import math

    from testfleet.timing.records import TimingRecord, report_text

    records = [
        TimingRecord("t.py::a", "main", call=0.5, cpu=math.nan),
        TimingRecord("t.py::b", "main", call=math.inf),
        TimingRecord("t.py::c", "main", call=0.5, cpu=0.25),
    ]
    text = report_text(records, {})
    assert "nan" not in text
    assert "NaN" in text
    assert "Infinity" in text
    tests = json.loads(text)["tests"]
    assert math.isnan(tests[0]["cpu"])
    assert tests[0]["durations"]["call"] == 0.5
    assert tests[1]["duration"] == math.inf
    assert "cpu" not in tests[1]
    assert tests[2]["cpu"] == 0.25
    assert '"cpu": 0.250000' in text


def test_a_record_crosses_from_a_worker_to_the_controller_unchanged() -> None:
    from testfleet.timing.records import TimingRecord

    record = TimingRecord(
        nodeid="t.py::é[1]",
        worker="gw3",
        outcome="xfailed",
        error_phase="teardown",
        setup=0.1234567891,
        call=2.0,
        teardown=1e-9,
        markers=["slow", "serial"],
        start=1796101497.2241049,
        stop=1796101499.5,
        attempt=2,
        cpu=0.75,
    )
    assert TimingRecord.from_wire(json.loads(json.dumps(record.to_wire()))) == record
    assert TimingRecord.from_wire(TimingRecord(nodeid="a", worker="b").to_wire()).cpu is None

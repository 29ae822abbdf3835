"""The plugin records every test once, serial or distributed, and writes one report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testfleet.timing.records import SCHEMA

ReadReport = Callable[[Path], dict[str, Any]]

MIXED_SUITE = """
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup breaks")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown breaks")

def test_passes():
    pass

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfailed():
    assert False

@pytest.mark.xfail(reason="fixed already")
def test_xpassed():
    pass

@pytest.mark.xfail(strict=True, reason="strict")
def test_strict_xpass():
    pass

def test_setup_error(broken_setup):
    pass

def test_teardown_error(broken_teardown):
    pass

@pytest.mark.slow
def test_marked():
    pass
"""

EXPECTED_OUTCOMES = {
    "test_mixed.py::test_passes": ("passed", None),
    "test_mixed.py::test_fails": ("failed", None),
    "test_mixed.py::test_skipped": ("skipped", None),
    "test_mixed.py::test_xfailed": ("xfailed", None),
    "test_mixed.py::test_xpassed": ("xpassed", None),
    "test_mixed.py::test_strict_xpass": ("failed", None),
    "test_mixed.py::test_setup_error": ("error", "setup"),
    "test_mixed.py::test_teardown_error": ("error", "teardown"),
    "test_mixed.py::test_marked": ("passed", None),
}

# Ids that stress the round trip: unicode, brackets, "::" and a very long parameter.
AWKWARD_SUITE = """
import pytest

@pytest.mark.parametrize(
    "value", ["a::b", "[x]", "ünïcødé ✓", pytest.param(0, id="long-" + "p" * 600), "sp ace/slash"]
)
def test_param(value):
    pass

class TestGroup:
    @pytest.mark.parametrize("n", range(20))
    def test_many(self, n):
        pass
"""


def worker_args(workers: int) -> list[str]:
    return ["-p", "no:xdist"] if workers == 1 else ["-n", str(workers)]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The inner run in this process: no interpreter to start, nothing to import again."""
    return pytester.runpytest("-p", "no:randomly", *args)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_timing_report_lists_every_test_once_with_each_outcome(
    pytester: pytest.Pytester, read_report: ReadReport, workers: int
) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow tests\n")
    pytester.makepyfile(test_mixed=MIXED_SUITE)
    result = run(pytester, *worker_args(workers), "--testfleet-report", "out/timing.json")
    result.assert_outcomes(passed=3, failed=2, skipped=1, xfailed=1, xpassed=1, errors=2)

    report = read_report(pytester.path / "out" / "timing.json")
    assert report["schema"] == SCHEMA
    ids = [t["nodeid"] for t in report["tests"]]
    assert ids == sorted(EXPECTED_OUTCOMES)
    got = {t["nodeid"]: (t["outcome"], t["error_phase"]) for t in report["tests"]}
    assert got == EXPECTED_OUTCOMES
    assert report["summary"]["tests"] == len(EXPECTED_OUTCOMES)
    assert report["summary"]["outcomes"] == {
        "passed": 2,
        "failed": 2,
        "skipped": 1,
        "xfailed": 1,
        "xpassed": 1,
        "error": 2,
    }
    assert report["run"]["workers"] == workers
    assert report["run"]["mode"] == ("serial" if workers == 1 else "parallel")
    used = {t["worker"] for t in report["tests"]}
    if workers == 1:
        assert used == {"main"}
    else:
        assert used <= {f"gw{i}" for i in range(workers)}
    marked = next(t for t in report["tests"] if t["nodeid"].endswith("test_marked"))
    assert marked["markers"] == ["slow"]
    assert all(t["attempt"] == 1 for t in report["tests"])
    result.stdout.fnmatch_lines(["testfleet: timing report written to *timing.json"])


def test_node_ids_are_identical_serial_and_parallel(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
    pytester.makepyfile(test_awkward=AWKWARD_SUITE)
    run(pytester, "-p", "no:xdist", "--testfleet-report", "serial.json").assert_outcomes(passed=25)
    run(pytester, "-n", "2", "--testfleet-report", "parallel.json").assert_outcomes(passed=25)
    serial = read_report(pytester.path / "serial.json")
    parallel = read_report(pytester.path / "parallel.json")
    serial_ids = [t["nodeid"] for t in serial["tests"]]
    assert serial_ids == [t["nodeid"] for t in parallel["tests"]]
    assert len(set(serial_ids)) == 25
    # pytest's own ids, as --collect-only prints them, survive the JSON round trip.
    collected = run(pytester, "-p", "no:xdist", "--collect-only", "-q").stdout.lines
    assert sorted(line for line in collected if "::" in line) == serial_ids
    assert any(len(nodeid) > 500 for nodeid in serial_ids)


def test_tests_in_an_xdist_group_keep_their_serial_node_ids_under_loadgroup(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.xdist_group("db")
        @pytest.mark.parametrize("n", range(3))
        def test_grouped(n):
            pass

        @pytest.mark.xdist_group(name="other")
        def test_named_group():
            pass
        """
    )
    run(pytester, "-p", "no:xdist", "--testfleet-report", "s.json").assert_outcomes(passed=4)
    result = run(pytester, "-n", "2", "--dist", "loadgroup", "--testfleet-report", "p.json")
    result.assert_outcomes(passed=4)
    serial = [t["nodeid"] for t in read_report(pytester.path / "s.json")["tests"]]
    parallel = read_report(pytester.path / "p.json")["tests"]
    assert [t["nodeid"] for t in parallel] == serial
    assert not any("@" in nodeid for nodeid in serial)
    grouped_workers = {t["worker"] for t in parallel if "test_grouped" in t["nodeid"]}
    assert len(grouped_workers) == 1


def test_durations_split_into_setup_call_and_teardown(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.fixture
        def slow_fixture():
            time.sleep(0.2)
            yield
            time.sleep(0.1)

        def test_timed(slow_fixture):
            time.sleep(0.3)
        """
    )
    run(pytester, "-n", "2", "--testfleet-report", "r.json").assert_outcomes(passed=1)
    (test,) = read_report(pytester.path / "r.json")["tests"]
    durations = test["durations"]
    assert durations["setup"] >= 0.2
    assert durations["call"] >= 0.3
    assert durations["teardown"] >= 0.1
    assert test["duration"] == pytest.approx(sum(durations.values()), abs=1e-5)
    assert test["stop"] - test["start"] >= test["duration"] - 0.01


def test_a_crashed_worker_loses_no_test_from_the_report(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
    pytester.makepyfile(
        test_crash="""
        import os

        def test_crashes_its_worker():
            os._exit(3)
        """,
        test_fine="""
        import pytest

        @pytest.mark.parametrize("n", range(12))
        def test_fine(n):
            pass
        """,
    )
    result = run(pytester, "-n", "2", "--testfleet-report", "r.json")
    result.assert_outcomes(passed=12, failed=1)
    report = read_report(pytester.path / "r.json")
    counts = Counter(t["nodeid"] for t in report["tests"])
    assert len(counts) == 13
    assert set(counts.values()) == {1}
    crashed = next(t for t in report["tests"] if "crashes" in t["nodeid"])
    assert crashed["outcome"] == "failed"


def test_randomized_run_records_its_seed(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "randomly", "-p", "no:xdist", "--randomly-seed=4242", "--testfleet-report", "r.json"
    )
    result.assert_outcomes(passed=2)
    run_info = read_report(pytester.path / "r.json")["run"]
    assert run_info["mode"] == "randomized"
    assert run_info["seed"] == 4242
    assert "--randomly-seed=4242" in run_info["args"]


def test_the_ini_setting_names_the_report_relative_to_rootdir(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
    pytester.makeini("[pytest]\ntestfleet_report = reports/from-ini.json\n")
    pytester.makepyfile("def test_a(): pass\n")
    sub = pytester.mkdir("sub")
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", str(pytester.path), f"--rootdir={pytester.path}"
    )
    result.assert_outcomes(passed=1)
    assert read_report(pytester.path / "reports" / "from-ini.json")["summary"]["tests"] == 1
    assert not (sub / "reports").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_without_testfleet_options_a_run_is_plain_pytest(
    pytester: pytest.Pytester, workers: int
) -> None:
    pytester.makepyfile(test_mixed=MIXED_SUITE)
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow tests\n")
    with_plugin = run(pytester, *worker_args(workers))
    without_plugin = run(pytester, *worker_args(workers), "-p", "no:testfleet")
    assert with_plugin.ret == without_plugin.ret == pytest.ExitCode.TESTS_FAILED
    assert with_plugin.parseoutcomes() == without_plugin.parseoutcomes()
    assert not [line for line in with_plugin.outlines if line.startswith("testfleet:")]
    # The words of the closing line; its "=" fill follows the length of the time taken.
    words = [r.outlines[-1].split(" in ")[0].strip("= ") for r in (with_plugin, without_plugin)]
    assert words[0] == words[1]
    assert not list(pytester.path.rglob("*.json"))


def test_an_interrupted_run_leaves_the_previous_report_as_it_was(pytester: pytest.Pytester) -> None:
    previous = '{"schema": "testfleet.timing/1", "kept": true}\n'
    (pytester.path / "r.json").write_text(previous)
    pytester.makepyfile(
        """
        def test_first():
            pass

        def test_interrupts():
            raise KeyboardInterrupt
        """
    )
    # In a process of its own: the KeyboardInterrupt would reach this run too.
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:xdist", "--testfleet-report", "r.json"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["testfleet: timing report not written (*exit status 2*); *r.json is left as it was"]
    )
    assert (pytester.path / "r.json").read_text() == previous
    assert [p.name for p in pytester.path.iterdir() if p.name.startswith(".r.json")] == []


def test_collect_only_writes_no_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    result = run(pytester, "--collect-only", "--testfleet-report", "r.json")
    assert result.ret == pytest.ExitCode.OK
    assert not (pytester.path / "r.json").exists()


SERIAL_SUITE = """
import pytest

def test_free():
    pass

@pytest.mark.serial
def test_alone():
    pass

class TestMore:
    @pytest.mark.serial
    def test_alone_too(self):
        pass

    def test_free_too(self):
        pass
"""


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("run", {"test_free", "test_alone", "test_alone_too", "test_free_too"}),
        ("defer", {"test_free", "test_free_too"}),
        ("only", {"test_alone", "test_alone_too"}),
    ],
)
def test_serial_option_selects_which_serial_tests_run(
    pytester: pytest.Pytester, read_report: ReadReport, choice: str, expected: set[str]
) -> None:
    pytester.makepyfile(test_s=SERIAL_SUITE)
    result = run(
        pytester, "-p", "no:xdist", f"--testfleet-serial={choice}", "--testfleet-report", "r.json"
    )
    result.assert_outcomes(passed=len(expected), deselected=4 - len(expected))
    names = {t["nodeid"].rsplit("::", 1)[1] for t in read_report(pytester.path / "r.json")["tests"]}
    assert names == expected


def test_serial_only_refuses_to_be_distributed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=SERIAL_SUITE)
    result = run(pytester, "-n", "2", "--testfleet-serial=only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--testfleet-serial=only*cannot be distributed*-n0 or -p no:xdist*"]
    )


def test_an_unknown_serial_choice_is_a_usage_error_that_lists_the_choices(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    result = run(pytester, "--testfleet-serial=later")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'later' is not one of run, defer, only*"])


def test_workers_share_one_run_id_and_two_runs_differ(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
    pytester.makeconftest(
        """
        import json, pathlib
        import pytest
        from testfleet.core import workers

        @pytest.fixture
        def record_run_id(request):
            out = pathlib.Path(request.config.rootpath, "ids")
            out.mkdir(exist_ok=True)
            me = workers.worker_id(request.config)
            (out / f"{me}-{request.node.name}").write_text(workers.run_id(request.config))
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(8))
        def test_n(record_run_id, n):
            pass
        """
    )
    run(pytester, "-n", "2", "--testfleet-report", "a.json").assert_outcomes(passed=8)
    ids = {p.read_text() for p in (pytester.path / "ids").iterdir()}
    workers_seen = {p.name.split("-")[0] for p in (pytester.path / "ids").iterdir()}
    assert workers_seen == {"gw0", "gw1"}
    assert ids == {read_report(pytester.path / "a.json")["run"]["id"]}
    run(pytester, "-n", "2", "--testfleet-report", "b.json").assert_outcomes(passed=8)
    assert read_report(pytester.path / "b.json")["run"]["id"] not in ids


def test_report_is_valid_json_with_sorted_keys_of_the_contract(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    run(pytester, "--testfleet-report", "r.json").assert_outcomes(passed=1)
    data = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    assert set(data) == {"schema", "run", "tests", "summary"}
    assert {
        "id",
        "mode",
        "workers",
        "dist",
        "seed",
        "start",
        "end",
        "wall_seconds",
        "python",
        "platform",
        "git_commit",
        "args",
    } <= set(data["run"])
    assert data["run"]["end"] >= data["run"]["start"]
    assert {
        "nodeid",
        "outcome",
        "duration",
        "durations",
        "markers",
        "worker",
        "start",
        "stop",
        "attempt",
    } <= set(data["tests"][0])


@pytest.mark.skipif(
    not Path("/proc/thread-self/schedstat").is_file(), reason="Linux's schedstat is needed"
)
@pytest.mark.parametrize("workers", [1, 2])
def test_the_report_tells_how_long_the_tests_waited_for_a_free_core(
    pytester: pytest.Pytester, read_report: ReadReport, workers: int
) -> None:
    # Each test computes for a quarter of a second: enough CPU time to measure, on the
    # process that ran it (the workers under xdist, not the controller).
    pytester.makepyfile(
        """
        import time

        def burn():
            end = time.process_time() + 0.25
            while time.process_time() < end:
                pass

        def test_a():
            burn()

        def test_b():
            burn()
        """
    )
    run(pytester, *worker_args(workers), "--testfleet-report", "r.json").assert_outcomes(passed=2)
    stretch = read_report(pytester.path / "r.json")["run"]["cpu_stretch"]
    assert isinstance(stretch, float)
    # At least 1: the time on a CPU, plus any wait for one (however busy the machine).
    assert 1.0 <= stretch < 50


@pytest.mark.parametrize("workers", [1, 2])
def test_the_report_tells_what_the_run_cost_beyond_its_tests(
    pytester: pytest.Pytester, read_report: ReadReport, workers: int
) -> None:
    pytester.makepyfile("\n".join(f"def test_{i}(): pass" for i in range(40)) + "\n")
    run(pytester, *worker_args(workers), "--testfleet-report", "r.json").assert_outcomes(passed=40)
    data = read_report(pytester.path / "r.json")
    facts = data["run"]
    per_test = facts["controller_cpu_per_test"]
    if workers == 1:
        # No controller: one process took in its own reports.
        assert per_test is None
    else:
        # Forty tests' reports cost the controller some CPU, and far less than a second each.
        assert isinstance(per_test, float)
        assert 0 < per_test < 1
    # From the last test's end to the end of the session, on the run's own clock.
    last_stop = max(test["stop"] for test in data["tests"])
    after = facts["after_tests_seconds"]
    assert 0 <= after < facts["wall_seconds"]
    assert facts["start"] + facts["wall_seconds"] == pytest.approx(last_stop + after, abs=1e-3)


def test_a_run_with_too_little_cpu_work_to_tell_leaves_the_stretch_unknown(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    run(pytester, "-p", "no:xdist", "--testfleet-report", "r.json").assert_outcomes(passed=1)
    assert read_report(pytester.path / "r.json")["run"]["cpu_stretch"] is None


@pytest.mark.skipif(
    not hasattr(__import__("os"), "confstr"), reason="the C library's version is a POSIX query"
)
def test_the_reports_platform_is_pythons_own_name_without_starting_a_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import platform
    import subprocess

    from testfleet.timing.records import platform_name

    expected = platform.platform()
    # platform keeps what it found: forgotten, a second call would start no process either.
    monkeypatch.setattr(platform, "_uname_cache", None, raising=False)
    monkeypatch.setattr(platform, "_platform_cache", {}, raising=False)

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "check_output", no_process)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    name = platform_name()
    if platform.system() == "Linux" and "glibc" in expected:
        assert name == expected
    else:
        assert name.startswith(f"{platform.system()}-")


CPU_SUITE = """
import subprocess
import sys
import time

BUSY = "import time\\nend = time.process_time() + 0.2\\nwhile time.process_time() < end: pass"

def test_busy():
    exec(BUSY)

def test_sleeps():
    time.sleep(0.2)

def test_waits_for_a_busy_child():
    subprocess.run([sys.executable, "-c", BUSY], check=True)
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_tests_cpu_counts_its_own_work_and_its_childrens_not_its_sleep(
    pytester: pytest.Pytester, read_report: ReadReport, workers: int
) -> None:
    pytester.makepyfile(test_cpu=CPU_SUITE)
    result = run(pytester, *worker_args(workers), "--testfleet-report", "r.json")
    result.assert_outcomes(passed=3)
    cpu = {
        t["nodeid"].split("::")[1]: t["cpu"] for t in read_report(pytester.path / "r.json")["tests"]
    }
    assert cpu["test_busy"] >= 0.18
    assert cpu["test_waits_for_a_busy_child"] >= 0.18
    assert cpu["test_sleeps"] < 0.1


def _report(
    nodeid: str, when: str, outcome: str, start: float, *, xfail: bool = False
) -> pytest.TestReport:
    report = pytest.TestReport(
        nodeid, ("t.py", 1, nodeid), {}, outcome, None, when,  # type: ignore[arg-type]
        duration=0.25, start=start, stop=start + 0.25,
    )  # fmt: skip
    if xfail:
        report.wasxfail = "known"
    return report


#: Phase reports as pytest sends them, the usual and the unusual.
FOLD_SCENARIOS = {
    "passed": [("setup", "passed", 10.0), ("call", "passed", 11.0), ("teardown", "passed", 12.0)],
    "setup fails": [("setup", "failed", 10.0), ("teardown", "passed", 11.0)],
    "setup skips": [("setup", "skipped", 10.0), ("teardown", "passed", 11.0)],
    "call fails": [
        ("setup", "passed", 10.0), ("call", "failed", 11.0), ("teardown", "passed", 12.0)
    ],
    "teardown fails": [
        ("setup", "passed", 10.0), ("call", "passed", 11.0), ("teardown", "failed", 12.0)
    ],
    "run twice": [
        ("setup", "passed", 10.0), ("call", "failed", 11.0), ("teardown", "passed", 12.0),
        ("setup", "passed", 13.0), ("call", "passed", 14.0), ("teardown", "passed", 15.0),
    ],
    "clock steps back": [
        ("setup", "passed", 10.0), ("call", "passed", 9.0), ("teardown", "passed", 8.0)
    ],
    "clock before 1970, interrupted": [("setup", "passed", -1.0)],
    "no start time": [
        ("setup", "passed", 0.0), ("call", "passed", 11.0), ("teardown", "passed", 12.0)
    ],
    "call without setup": [("call", "passed", 11.0), ("teardown", "passed", 12.0)],
    "interrupted after setup": [("setup", "passed", 10.0)],
    # Not from pytest itself; a plugin may report so.
    "call after a failed setup": [
        ("setup", "failed", 10.0), ("call", "passed", 11.0), ("teardown", "passed", 12.0)
    ],
}  # fmt: skip


@pytest.mark.parametrize("xfail", [False, True], ids=["plain", "xfail"])
def test_the_recorders_quick_fold_gives_the_records_of_the_general_one(
    pytestconfig: pytest.Config, tmp_path: Path, xfail: bool
) -> None:
    # The recorder folds passed phases in order without TimingRecord.add_report; every
    # report sequence must give the records add_report gives, CPU time apart.
    from dataclasses import replace

    from testfleet.timing.recorder import TimingRecorder
    from testfleet.timing.records import TimingRecord

    reports = [
        _report(f"t.py::{name}", when, outcome, start, xfail=xfail and when == "call")
        for name, phases in FOLD_SCENARIOS.items()
        for when, outcome, start in phases
    ]
    recorder = TimingRecorder(pytestconfig, tmp_path / "r.json")
    for report in reports:
        recorder.pytest_runtest_logreport(report)
    quick = recorder.records()

    general_open: dict[str, TimingRecord] = {}
    general: list[TimingRecord] = []
    for report in reports:
        recorder._fold(report, recorder._me, general_open, general, None)
    general.extend(general_open.values())

    assert [replace(r, cpu=None) for r in quick] == general
    finished = [r for r in quick if "interrupted" not in r.nodeid]
    assert all(r.cpu is not None and r.cpu >= 0 for r in finished)
    assert len(quick) == len(FOLD_SCENARIOS) + 1

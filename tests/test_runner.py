"""`testfleet run` (parallel phase, then `serial` tests alone) and `testfleet randomized`."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testfleet.cli.program import main
from testfleet.runs import randomized

ReadReport = Callable[[Path], dict[str, Any]]

PHASED_SUITE = """
import time
import pytest

@pytest.mark.parametrize("n", range(6))
def test_parallel(n):
    time.sleep(0.2)

@pytest.mark.serial
def test_alone_one():
    time.sleep(0.1)

@pytest.mark.serial
def test_alone_two():
    time.sleep(0.1)

def test_fails_in_parallel_phase():
    assert False
"""


@pytest.mark.slow
def test_serial_tests_start_after_every_parallel_test_stopped(
    pytester: pytest.Pytester, read_report: ReadReport, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_phased=PHASED_SUITE)
    args = ["run", "--workers", "2", "--dist", "loadgroup", "--report", "out/timing.json"]
    code = main([*args, "--", "-p", "no:randomly"])
    assert code == 1
    out = capfd.readouterr().out
    assert "testfleet: phase 1, parallel (2 workers): " in out
    assert "testfleet: phase 2, serial-marked tests, one process: " in out
    assert re.fullmatch(r"=+ 1 failed, 8 passed in \d+\.\d\ds =+", out.rstrip().splitlines()[-1])

    report = read_report(pytester.path / "out" / "timing.json")
    tests = report["tests"]
    assert len(tests) == 9
    serial = [t for t in tests if "serial" in t["markers"]]
    others = [t for t in tests if "serial" not in t["markers"]]
    assert {t["worker"] for t in serial} == {"main"}
    assert {t["worker"] for t in others} <= {"gw0", "gw1"}
    assert min(t["start"] for t in serial) >= max(t["stop"] for t in others)
    first, second = sorted(serial, key=lambda t: t["start"])
    assert second["start"] >= first["stop"]
    assert report["run"]["mode"] == "parallel"
    assert report["run"]["workers"] == 2
    assert report["run"]["exit_status"] == 1
    assert [phase["workers"] for phase in report["run"]["phases"]] == [2, 1]
    # The phase reports were scratch files: only the merged report is left.
    assert sorted(p.name for p in (pytester.path / "out").iterdir()) == ["timing.json"]


@pytest.mark.slow
def test_one_worker_is_a_single_run_without_xdist(
    pytester: pytest.Pytester,
    read_report: ReadReport,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(test_phased=PHASED_SUITE)
    monkeypatch.setenv("PYTEST_WORKERS", "1")
    assert main(["run", "--report", "r.json", "--", "-p", "no:randomly"]) == 1
    out = capfd.readouterr().out
    assert "phase 1, one process: " in out
    assert " -n 0 " in out
    assert "phase 2" not in out
    assert "bringing up nodes" not in out
    report = read_report(pytester.path / "r.json")
    assert {t["worker"] for t in report["tests"]} == {"main"}
    assert report["run"]["mode"] == "serial"
    assert len(report["tests"]) == 9


@pytest.mark.slow
def test_serial_and_parallel_runs_report_the_same_tests(
    pytester: pytest.Pytester, read_report: ReadReport, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_phased=PHASED_SUITE)
    main(["run", "--workers", "1", "--report", "serial.json", "--", "-p", "no:randomly"])
    main(["run", "--workers", "2", "--report", "parallel.json", "--", "-p", "no:randomly"])
    capfd.readouterr()

    def outcomes(name: str) -> list[tuple[str, str]]:
        return [(t["nodeid"], t["outcome"]) for t in read_report(pytester.path / name)["tests"]]

    assert outcomes("serial.json") == outcomes("parallel.json")


@pytest.mark.slow
def test_a_suite_with_no_serial_tests_still_succeeds(
    pytester: pytest.Pytester, read_report: ReadReport, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass\n")
    args = [
        "run",
        "--workers",
        "2",
        "--dist",
        "load",
        "--report",
        "r.json",
        "--",
        "-p",
        "no:randomly",
    ]
    assert main(args) == 0
    assert read_report(pytester.path / "r.json")["summary"]["tests"] == 2
    out = capfd.readouterr().out
    # Nothing was deferred, so no second pytest collected the suite again.
    assert "phase 2" not in out
    assert re.fullmatch(r"=+ 2 passed in \d+\.\d\ds =+", out.rstrip().splitlines()[-1])


@pytest.mark.slow
def test_a_usage_error_stops_before_the_serial_phase_and_keeps_the_old_report(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    (pytester.path / "r.json").write_text("old\n")
    args = ["run", "--workers", "2", "--dist", "loadgroup", "--report", "r.json"]
    assert main([*args, "--", "--no-such-option"]) == 4
    out = capfd.readouterr().out
    assert "phase 1 ended with exit status 4; later phases skipped" in out
    assert "phase 2" not in out
    assert (pytester.path / "r.json").read_text() == "old\n"
    assert [p.name for p in pytester.path.iterdir() if p.name.startswith(".testfleet")] == []


@pytest.mark.slow
def test_a_bad_worker_count_in_the_environment_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYTEST_WORKERS", "many")
    assert main(["run"]) == 2
    assert capsys.readouterr().err.strip() == (
        "testfleet: error: environment variable PYTEST_WORKERS='many' (workers): "
        "worker count 'many' is not a number: use a whole number "
        "such as 4, 'auto' for one worker per CPU, or 1 for a serial run without xdist"
    )


@pytest.mark.slow
def test_the_report_path_comes_from_the_environment_when_not_given(
    pytester: pytest.Pytester,
    read_report: ReadReport,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    monkeypatch.setenv("TESTFLEET_REPORT", "elsewhere/t.json")
    assert main(["run", "--workers", "1", "--", "-p", "no:randomly"]) == 0
    assert read_report(pytester.path / "elsewhere" / "t.json")["summary"]["tests"] == 1


@pytest.mark.slow
def test_a_report_outside_the_project_does_not_move_pytests_rootdir_on_the_next_run(
    pytester: pytest.Pytester,
    read_report: ReadReport,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # The second run gives the first one's report to the scheduler. Passed as two
    # arguments, pytest took it for a path to test before the plugin knew the option,
    # and chose the common parent as rootdir: the project's settings were not read.
    project = pytester.mkdir("project")
    (project / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nmarkers = ["db: uses the database"]\n'
        'addopts = "--strict-markers -p no:randomly"\n'
    )
    (project / "tests").mkdir()
    (project / "tests" / "test_a.py").write_text(
        "import pytest\n\n@pytest.mark.db\ndef test_a():\n    pass\n"
    )
    outside = pytester.path / "elsewhere" / "timing.json"
    monkeypatch.chdir(project)
    for _ in range(2):
        assert main(["run", "--workers", "2", "--report", str(outside), "--no-history"]) == 0
        assert [t["nodeid"] for t in read_report(outside)["tests"]] == ["tests/test_a.py::test_a"]
    assert "PytestUnknownMarkWarning" not in capfd.readouterr().out


PID_SUITE = """
import os
from pathlib import Path


def test_where_it_runs():
    # The process that ran the test, and the one that started it.
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(f"{name}.pid").write_text(f"{os.getpid()} {os.getppid()}")


def test_wanders_off(tmp_path):
    # A test that changes directory and never comes back.
    os.chdir(tmp_path)
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_testfleet_command_runs_its_pytest_in_its_own_process(
    pytester: pytest.Pytester, read_report: ReadReport, workers: str
) -> None:
    # No second interpreter to start and fill with imports before the first test: with
    # one worker the tests run in the command's process, with xdist it is the controller.
    pytester.makepyfile(test_pids=PID_SUITE)
    command = [sys.executable, "-m", "testfleet", "run", "--workers", workers]
    with subprocess.Popen(
        [*command, "--", "-p", "no:randomly"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    pid, parent = map(int, next(pytester.path.glob("*.pid")).read_text().split())
    assert (parent if workers == "2" else pid) == process.pid
    # The test left the directory: the report and the history are still the project's.
    assert read_report(pytester.path / "reports" / "test-timing.json")["summary"]["tests"] == 2
    assert (pytester.path / "reports" / "history.sqlite").is_file()
    assert re.fullmatch(r"=+ 2 passed in \d+\.\d\ds =+", out.rstrip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_testfleet_command_imports_a_flat_layout_as_python_m_pytest_does(
    pytester: pytest.Pytester, workers: str
) -> None:
    # `python -m pytest` puts the current directory first on sys.path (plain `pytest`
    # does not): a flat project's modules import without any configuration.
    pytester.makepyfile(mymod="VALUE = 3\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_x.py").write_text(
        "import mymod\n\ndef test_x():\n    assert mymod.VALUE == 3\n"
    )
    script = Path(sys.executable).with_name("testfleet")
    command = [str(script), "run", "--workers", workers, "--no-history", "--", "-p", "no:randomly"]
    done = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().splitlines()[-1].strip("= ").startswith("1 passed in ")


def run_command_on_one_worker(
    directory: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m testfleet run --workers 1`` in ``directory``, as a user starts it."""
    command = [sys.executable, "-m", "testfleet", "run", "--workers", "1", "--no-history"]
    return subprocess.run(
        [*command, "--", "-p", "no:randomly"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.e2e
def test_an_installed_testfleet_runs_pytest_in_its_process_without_a_warning_about_itself(
    pytester: pytest.Pytester, tmp_path: Path, wheel: Path
) -> None:
    # pytest rewrites the asserts of every installed plugin's package, and warns when it
    # was imported first, as the command does; `filterwarnings = error` made that fatal.
    # An editable install hides it: pytest cannot see the package's files.
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target"]
    subprocess.run([*install, str(site), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = [sys.executable, "-c", "import testfleet; print(testfleet.__file__)"]
    found = subprocess.run(where, env=env, capture_output=True, text=True, check=True)
    assert found.stdout.startswith(str(site))
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n')
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    done = run_command_on_one_worker(pytester.path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(r"=+ 1 passed in \d+\.\d\ds =+", done.stdout.rstrip().splitlines()[-1])


@pytest.mark.slow
def test_a_conftest_that_exits_with_a_message_is_heard_through_the_testfleet_command(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest('import sys\n\nsys.exit("set DB_URL first")\n')
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    done = run_command_on_one_worker(pytester.path)
    # As `python -m pytest` would have ended: the message, and a failing status.
    assert done.returncode == 1
    assert "set DB_URL first" in done.stderr
    assert "no timing report" in done.stdout


ORDER_DEPENDENT_SUITE = """
import os

def test_polluter():
    os.environ["POLLUTED"] = "1"

def test_victim():
    assert "POLLUTED" not in os.environ
"""


@pytest.mark.e2e
def test_randomized_prints_a_command_per_seed_that_reproduces_its_result(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_order=ORDER_DEPENDENT_SUITE)
    seeds = [str(seed) for seed in range(1, 9)]
    args = ["randomized", "--no-reverse", "--report-dir", "rand"]
    for seed in seeds:
        args += ["--seed", seed]
    code = main(args)
    out = capfd.readouterr().out
    results = json.loads((pytester.path / "rand" / "seeds.json").read_text())["seeds"]
    assert [str(r["seed"]) for r in results] == seeds
    failed = [r for r in results if r["exit_status"] == 1]
    passed = [r for r in results if r["exit_status"] == 0]
    assert failed, "eight seeds all ran the victim first"
    assert passed, "eight seeds all ran the polluter first"
    assert code == 1
    for result in failed:
        (line,) = [
            line
            for line in out.splitlines()
            if line.startswith(f"testfleet: seed {result['seed']} FAILED; reproduce with: ")
        ]
        command = shlex.split(line.split("reproduce with: ", 1)[1])
        assert command == result["command"]
        assert subprocess.run(command, capture_output=True, check=False).returncode == 1
    for result in passed:
        assert subprocess.run(result["command"], capture_output=True, check=False).returncode == 0
        assert f"testfleet: seed {result['seed']} FAILED" not in out


def test_randomized_seed_count_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTFLEET_SEEDS", "5")
    seeds = randomized.seeds_to_run(None, [])
    assert len(seeds) == 5
    assert len(set(seeds)) == 5
    assert randomized.seeds_to_run(2, []) != randomized.seeds_to_run(2, [])
    assert randomized.seeds_to_run(None, [7, 9]) == [7, 9]
    monkeypatch.setenv("TESTFLEET_SEEDS", "lots")
    with pytest.raises(ValueError, match=r"TESTFLEET_SEEDS='lots' \(seeds\): 'lots' is not"):
        randomized.seeds_to_run(None, [])


@pytest.mark.slow
def test_a_run_whose_pytest_wrote_no_report_does_not_pass_off_the_old_one(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    (pytester.path / "r.json").write_text("old\n")
    code = main(["run", "--workers", "1", "--report", "r.json", "--", "--collect-only"])
    assert code == 1
    out = capfd.readouterr().out
    assert "no timing report from one process" in out
    assert "written to" not in out
    assert (pytester.path / "r.json").read_text() == "old\n"


@pytest.mark.slow
def test_randomized_passes_on_pytest_refusing_its_arguments_without_bisecting(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    code = main(["randomized", "--seed", "1", "--seed", "2", "--", "--no-such-option"])
    assert code == 4
    out = capfd.readouterr().out
    assert "reversed ended with exit status 4; later runs skipped" in out
    assert "FAILED; reproduce" not in out

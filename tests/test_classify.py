"""`testfleet classify`: why the tests of a parallel run failed, and what `invoke ci` does then."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from invoke import Exit, MockContext, Result

import testfleet.invoke
from testfleet.cli.program import build_parser, main
from testfleet.core import workers
from testfleet.diagnose import classify, classify_render
from testfleet.settings import config
from testfleet.timing.records import SCHEMA as TIMING_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
MATERIAL = ROOT / "tests" / "material" / "classify" / "wrong_on_purpose.py"
SUITE = "test_wrong_on_purpose.py"
REPORT = "reports/test-timing.json"
SUMMARY = "reports/ci-summary.md"
RUN_ID = "c1a55e5f0000"
EXPECTED = {
    f"{SUITE}::test_always_fails": "failure",
    f"{SUITE}::test_reads_back_the_shared_file": "parallel-only",
    f"{SUITE}::test_is_flaky": "flaky",
    f"{SUITE}::test_sees_a_clean_environment": "order-dependent",
    f"{SUITE}::test_finds_the_admin": "order-dependent",
}


@dataclass(frozen=True)
class Pipeline:
    """What `invoke ci` gets on the material: the parallel run, then the classification."""

    path: Path
    run_status: int
    status: int
    out: str
    step_summary: Path

    def read(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / name).read_text(encoding="utf-8"))
        return data


def clean_env(mp: pytest.MonkeyPatch) -> None:
    # The outer run's settings (xdist worker, PYTEST_ADDOPTS, TESTFLEET_*) must not reach
    # the inner runs: the material waits for the other worker whenever it sees xdist's.
    for name in list(os.environ):
        if name.startswith(("PYTEST_", "TESTFLEET_")) and name != "PYTEST_CURRENT_TEST":
            mp.delenv(name)
    mp.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """Run the material as `invoke ci` does: `testfleet run`, then `testfleet classify`."""
    path = tmp_path_factory.mktemp("classify")
    shutil.copy(MATERIAL, path / SUITE)
    step_summary = path / "step-summary.md"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        clean_env(mp)
        mp.chdir(path)
        # The environment `invoke ci` gives `nox -s tests_parallel`, which runs `testfleet run`.
        mp.setenv(workers.RUN_ID_ENV, RUN_ID)
        mp.setenv(workers.WORKERS_ENV, "2")
        mp.setenv("TESTFLEET_REPORT", REPORT)
        run_status = main(["run", "--", "-p", "no:randomly"])
        (path / SUMMARY).write_text("## Test timing\n\nwritten by testfleet report\n")
        mp.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
        mp.setenv(classify.RUNS_ENV, "2")
        status = main(
            ["classify", REPORT, "--run-id", RUN_ID, "--summary", SUMMARY, "--step-summary"]
        )
    return Pipeline(path, run_status, status, out.getvalue(), step_summary)


def lines_after(out: str, prefix: str) -> list[str]:
    return [line[len(prefix) :] for line in out.splitlines() if line.startswith(prefix)]


@pytest.mark.e2e
def test_each_failed_test_of_a_parallel_run_gets_its_class(pipeline: Pipeline) -> None:
    assert pipeline.run_status == 1
    data = pipeline.read("reports/classification.json")
    assert data["schema"] == "testfleet.classification/1"
    assert {r["nodeid"]: r["class"] for r in data["results"]} == EXPECTED
    assert data["counts"] == {
        "failure": 1,
        "parallel-only": 1,
        "flaky": 1,
        "order-dependent": 2,
        "undecided": 0,
    }
    assert (data["run_id"], data["tests"], data["runs"]) == (RUN_ID, 9, 2)
    by_id = {r["nodeid"]: r for r in data["results"]}
    # Passes every serial rerun; fails again under xdist beside the test it races.
    assert by_id[f"{SUITE}::test_reads_back_the_shared_file"]["reruns"] == {
        "context": ["passed", "passed"],
        "alone": ["passed", "passed"],
        "suite": [],
        "beside": ["failed", "failed"],
    }
    # Fails in its worker's order and alone; passes after the test of the other worker.
    admin = by_id[f"{SUITE}::test_finds_the_admin"]
    assert admin["reruns"]["suite"] == ["passed"]
    assert admin["needs_other_worker"] is True
    assert f"{SUITE}::test_registers_the_admin" not in admin["context"]
    order = shlex.split(admin["bisect"])
    assert "suite" in order[order.index("--order-file") + 1]
    assert by_id[f"{SUITE}::test_sees_a_clean_environment"]["context"] == [
        f"{SUITE}::test_overwrites_the_shared_file",
        f"{SUITE}::test_pollutes_the_environment",
    ]
    for nodeid, cls in EXPECTED.items():
        assert f"testfleet: {cls:<15} {nodeid} (failed on gw" in pipeline.out


@pytest.mark.e2e
def test_a_parallel_only_failure_fails_the_pipeline_with_the_rollback_hint(
    pipeline: Pipeline,
) -> None:
    # The done-when of `invoke ci`, one layer down: `testfleet classify` is what it calls.
    assert pipeline.status == 1
    assert (
        "testfleet: 1 failure, 1 parallel-only, 1 flaky, 2 order-dependent, 0 undecided"
        in pipeline.out
    )
    advice = "\n".join(lines_after(pipeline.out, "testfleet: parallel-only tests pass serially"))
    assert "docs/isolation.md" in advice
    assert "docs/rollback.md" in advice
    (rollback,) = lines_after(pipeline.out, "testfleet: to go back to serial runs ")
    # The material's directory has neither tasks.py nor noxfile.py.
    assert rollback.endswith(": testfleet run --workers 1")


def test_the_printed_rollback_switch_is_the_one_the_project_has(tmp_path: Path) -> None:
    assert classify_render.rollback_command(tmp_path) == "testfleet run --workers 1"
    assert build_parser().parse_args(["run", "--workers", "1"]).workers == 1
    (tmp_path / "noxfile.py").write_text("")
    assert classify_render.rollback_command(tmp_path) == "PYTEST_WORKERS=1 nox -s tests_parallel"
    (tmp_path / "tasks.py").write_text("")
    words = shlex.split(classify_render.rollback_command(tmp_path))
    assert words == [f"{workers.WORKERS_ENV}=1", "invoke", "ci"]
    tasks = load_tasks()
    assert "ci" in tasks.namespace.task_names
    assert config.workers_from_env({workers.WORKERS_ENV: "1"}) == 1


@pytest.mark.e2e
def test_above_the_threshold_flaky_tests_fail_the_run(pipeline: Pipeline) -> None:
    data = pipeline.read("reports/classification.json")
    # One flaky test of nine is 11.11 %, above the default 5 %.
    assert (data["flaky_percent"], data["threshold_percent"]) == (11.11, 5.0)
    assert data["over_threshold"] is True
    assert data["rollback"] == "testfleet run --workers 1"
    (line,) = lines_after(pipeline.out, "testfleet: 1 flaky of 9 tests ")
    assert "above it, the run fails" in line


@pytest.mark.e2e
def test_the_reruns_are_attempts_of_the_failed_tests_in_the_timing_report(
    pipeline: Pipeline,
) -> None:
    report = pipeline.read(REPORT)
    assert report["schema"] == TIMING_SCHEMA
    # Beyond the serial reruns: the suite's serial order for failures that fail in their
    # worker's order and alone, xdist beside the neighbours for those that pass them all.
    more = {"test_reads_back_the_shared_file": ["beside", "beside"]}
    more |= {name: ["suite"] for name in ("test_always_fails", "test_finds_the_admin")}
    for nodeid in EXPECTED:
        tests = [t for t in report["tests"] if t["nodeid"] == nodeid]
        extra = more.get(nodeid.split("::")[1], [])
        assert [t["attempt"] for t in tests] == list(range(1, 6 + len(extra)))
        assert [t.get("rerun") for t in tests] == [
            None, "context", "alone", "context", "alone", *extra
        ]  # fmt: skip
        assert {t["worker"] for t in tests[1:5]} == {"main"}
    flaky = [t["outcome"] for t in report["tests"] if t["nodeid"] == f"{SUITE}::test_is_flaky"]
    assert flaky == ["failed", "failed", "failed", "passed", "failed"]
    passed_once = [t for t in report["tests"] if t["nodeid"] == f"{SUITE}::test_passes"]
    assert [t["attempt"] for t in passed_once] == [1]
    # The summary still counts the run's own outcomes; reruns and classes come apart.
    summary = report["summary"]
    assert summary["tests"] == 9
    assert (summary["outcomes"]["passed"], summary["outcomes"]["failed"]) == (4, 5)
    assert summary["reruns"]["tests"] == 5 * 4 + 2 + 2
    assert summary["classification"] == {
        "failure": 1,
        "parallel-only": 1,
        "flaky": 1,
        "order-dependent": 2,
        "undecided": 0,
    }


@pytest.mark.e2e
def test_the_markdown_section_is_appended_to_the_summary_and_the_step_summary(
    pipeline: Pipeline,
) -> None:
    text = (pipeline.path / SUMMARY).read_text()
    assert text.startswith("## Test timing\n\nwritten by testfleet report\n\n")
    section = text.split("\n\n", 2)[2]
    assert section.startswith("## Parallel-only and flaky failures\n")
    header = "| failure | parallel-only | flaky | order-dependent | undecided |\n"
    assert header + "|---|---|---|---|---|\n" in section
    assert "| 1 | 1 | 1 | 2 | 0 |" in section
    assert f"| parallel-only | `{SUITE}::test_reads_back_the_shared_file` | gw" in section
    # The material's directory has no tasks.py and no noxfile.py.
    assert "`testfleet run --workers 1`" in section
    assert pipeline.step_summary.read_text() == "\n" + section


@pytest.mark.e2e
def test_the_order_dependent_test_comes_with_commands_that_reproduce_and_bisect_it(
    pipeline: Pipeline,
) -> None:
    data = pipeline.read("reports/classification.json")
    (result,) = [r for r in data["results"] if r["nodeid"].endswith("a_clean_environment")]
    reproduce = shlex.split(result["reproduce"])
    assert reproduce[-3:] == [*result["context"], result["nodeid"]]
    done = run_in(pipeline.path, reproduce)
    assert done == 1, "the victim fails after the tests before it, serially"
    assert run_in(pipeline.path, [*reproduce[:-3], result["nodeid"]]) == 0
    assert f"find the test that breaks it with: {result['bisect']}" in pipeline.out
    bisect = shlex.split(result["bisect"])
    assert bisect[0] == "testfleet"
    args = build_parser().parse_args(bisect[1:])
    assert (args.command, args.test) == ("bisect", [result["nodeid"]])
    order = (pipeline.path / args.order_file).read_text().splitlines()
    assert order == [*result["context"], result["nodeid"]]


@pytest.mark.e2e
def test_the_bisect_command_finds_the_test_that_breaks_the_order_dependent_one(
    pipeline: Pipeline,
) -> None:
    data = pipeline.read("reports/classification.json")
    (result,) = [r for r in data["results"] if r["nodeid"].endswith("a_clean_environment")]
    command = [sys.executable, "-m", "testfleet", *shlex.split(result["bisect"])[1:]]
    done = subprocess.run(
        command, cwd=pipeline.path, env=inner_env(), capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"polluted-by: {result['nodeid']} passes alone but fails when "
        f"{SUITE}::test_pollutes_the_environment runs before it"
    ) in done.stdout


def inner_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TESTFLEET_"))}


def run_in(path: Path, command: list[str]) -> int:
    done = subprocess.run(command, cwd=path, env=inner_env(), capture_output=True, check=False)
    return done.returncode


@pytest.mark.e2e
def test_a_classified_report_is_not_classified_twice(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pipeline.path)
    before = (pipeline.path / REPORT).read_text()
    assert main(["classify", REPORT, "--output", "again.json"]) == 2
    assert "classified already" in capsys.readouterr().err
    assert (pipeline.path / REPORT).read_text() == before
    assert not (pipeline.path / "again.json").exists()


FLAKY_SUITE = """
import random
from pathlib import Path

import pytest

COUNTER = Path(__file__).parent / "runs"


def test_is_flaky():
    runs = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(runs + 1))
    # Runs 0, 1, 2, 3, 4 fail, fail, fail, pass, fail (the material's FLAKY_SALT).
    assert random.Random(f"classify{runs}").random() >= 0.5


@pytest.mark.parametrize("n", range(24))
def test_passes(n):
    pass
"""


@pytest.mark.slow
def test_below_the_threshold_flaky_tests_are_listed_and_do_not_fail_the_run(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_flaky=FLAKY_SUITE)
    assert main(["run", "--workers", "2", "--report", REPORT, "--", "-p", "no:randomly"]) == 1
    capfd.readouterr()
    monkeypatch.setenv(classify.THRESHOLD_ENV, "10%")
    assert main(["classify", REPORT, "--runs", "2", "--summary", SUMMARY]) == 0
    out = capfd.readouterr().out
    assert "testfleet: 0 failure, 0 parallel-only, 1 flaky, 0 order-dependent, 0 undecided" in out
    assert "testfleet: flaky           test_flaky.py::test_is_flaky (failed on gw" in out
    assert (
        "testfleet: 1 flaky of 25 tests (4%), threshold 10% (--threshold, "
        "$TESTFLEET_FLAKY_THRESHOLD): reported, they do not fail the run"
    ) in out
    assert "PYTEST_WORKERS=1" not in out
    section = (pytester.path / SUMMARY).read_text()
    assert "| flaky | `test_flaky.py::test_is_flaky` | gw" in section


@pytest.mark.parametrize(
    ("classes", "threshold", "status", "rollback"),
    [
        # One flaky test of 20 is 5 %: not above 5 %.
        (["flaky"], 5.0, 0, False),
        (["flaky", "failure"], 50.0, 1, False),
        (["flaky", "parallel-only"], 50.0, 1, True),
        (["order-dependent"], 50.0, 1, False),
        (["flaky", "flaky"], 5.0, 1, True),
        ([], 5.0, classify.EXIT_NOTHING, False),
    ],
)
def test_the_exit_status_fails_for_real_failures_and_for_flakiness_above_the_threshold(
    classes: list[str], threshold: float, status: int, rollback: bool
) -> None:
    verdicts = [classify.Verdict(f"t.py::{c}", "gw0", "failed", [], cls=c) for c in classes]
    result = classify.Classification("r", Path(REPORT), 20, 3, threshold, [], verdicts)
    assert result.exit_status == status
    assert result.suggest_rollback is rollback


@pytest.mark.parametrize(
    ("in_context", "alone", "parallel", "cls"),
    [
        (["failed", "failed"], ["failed", "error"], True, "failure"),
        (["passed", "passed"], ["passed", "passed"], True, "undecided"),
        (["passed", "passed"], ["failed", "failed"], True, "undecided"),
        (["failed", "failed"], ["passed", "passed"], True, "order-dependent"),
        (["failed", "passed"], ["failed", "failed"], True, "flaky"),
        (["failed", "failed"], ["passed", "failed"], True, "flaky"),
        (["failed", "missing"], ["passed", "passed"], True, "order-dependent"),
        # Failed in a serial run: that was its order context, so passing there now is flaky.
        (["passed", "passed"], ["passed", "passed"], False, "flaky"),
        (["failed", "failed"], ["failed", "failed"], False, "failure"),
    ],
)
def test_the_class_follows_from_the_outcomes_of_the_reruns(
    in_context: list[str], alone: list[str], parallel: bool, cls: str
) -> None:
    assert classify.classify_outcomes(in_context, alone, parallel) == cls


@pytest.mark.parametrize(
    ("in_suite", "beside", "cls"),
    [
        # Passed every serial rerun: only a failure under xdist makes it parallel-only.
        ([], ["passed", "failed"], "parallel-only"),
        ([], ["passed", "passed"], "undecided"),
        # Failed in its worker's order and alone: the suite's serial order decides.
        (["passed"], [], "order-dependent"),
        (["failed"], [], "failure"),
    ],
)
def test_the_suite_order_and_the_parallel_reruns_settle_what_serial_reruns_leave_open(
    in_suite: list[str], beside: list[str], cls: str
) -> None:
    outcome = "failed" if in_suite else "passed"
    context, alone = [outcome, outcome], [outcome, outcome]
    assert classify.classify_outcomes(context, alone, True, in_suite, beside) == cls


@pytest.mark.slow
def test_a_rerun_that_cannot_run_its_tests_is_an_error_with_its_command(
    pytester: pytest.Pytester, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_fails="def test_fails():\n    assert False\n")
    assert main(["run", "--workers", "1", "--report", REPORT, "--", "-p", "no:randomly"]) == 1
    capfd.readouterr()
    before = (pytester.path / REPORT).read_text()
    assert main(["classify", REPORT, "--runs", "1", "--", "--no-such-option"]) == 2
    err = capfd.readouterr().err
    assert err.startswith("testfleet: error: a rerun ended with exit status 4 without running")
    command = err.split("run it yourself to see why: ", 1)[1].splitlines()[0]
    assert shlex.split(command)[-2:] == ["--no-such-option", "test_fails.py"]
    assert (pytester.path / REPORT).read_text() == before


def test_a_report_without_failed_tests_has_nothing_to_classify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = {
        "schema": TIMING_SCHEMA,
        "run": {"id": "r1", "workers": 2, "wall_seconds": 1.0},
        "tests": [],
    }
    (tmp_path / "r.json").write_text(json.dumps(report))
    out = tmp_path / "c.json"
    status = main(["classify", str(tmp_path / "r.json"), "--output", str(out)])
    assert status == classify.EXIT_NOTHING
    assert "no test failed" in capsys.readouterr().out
    assert json.loads(out.read_text())["counts"] == dict.fromkeys(classify.CLASSES, 0)


@pytest.mark.e2e
def test_a_stale_report_or_a_bad_option_is_a_usage_error(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pipeline.path)
    assert main(["classify", REPORT, "--run-id", "other"]) == 2
    assert f"is from run '{RUN_ID}', not from run 'other'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["classify", REPORT, "--threshold", "lots"])
    assert exc.value.code == 2
    assert "threshold 'lots' is not a percentage" in capsys.readouterr().err
    monkeypatch.setenv(classify.RUNS_ENV, "0")
    assert main(["classify", REPORT]) == 2
    assert "TESTFLEET_CLASSIFY_RUNS='0' (classify_runs): 0 is below 1" in capsys.readouterr().err


def test_options_may_follow_the_report_and_pytest_options_follow_the_dashes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = build_parser().parse_args(["classify", REPORT, "--runs", "4", "--", "-p", "no:x"])
    assert (args.report, args.rest) == (Path(REPORT), ["--runs", "4", "--", "-p", "no:x"])
    seen: dict[str, Any] = {}

    class Done:
        exit_status = 0

    def fake(report: Path, pytest_args: list[str], runs: int, limit: float, **kw: Any) -> Done:
        seen.update(report=report, pytest_args=list(pytest_args), runs=runs, limit=limit, **kw)
        return Done()

    monkeypatch.setattr(classify, "classify", fake)
    code = main(["classify", REPORT, "--runs", "4", "--threshold", "7", "--", "-p", "no:x"])
    assert code == 0
    # The options after REPORT reached the classification; only what follows -- is pytest's.
    assert (seen["report"], seen["runs"], seen["limit"]) == (Path(REPORT), 4, 7.0)
    assert seen["pytest_args"] == ["-p", "no:x"]


# -- the ci task ------------------------------------------------------------------------


def load_tasks() -> ModuleType:
    """The tasks of this repository's tasks.py: testfleet.invoke's."""
    spec = importlib.util.spec_from_file_location("testfleet_tasks", ROOT / "tasks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.namespace.task_names.keys() >= {"ci", "baseline", "report"}
    return testfleet.invoke


def ci_context(tests: int, classified: int) -> MockContext:
    """`nox -s tests_parallel` exits ``tests``, `testfleet classify` ``classified``, the rest 0."""
    return MockContext(
        run={
            re.compile(r"nox -s tests_parallel\b.*"): Result(exited=tests),
            re.compile(r"testfleet classify .*"): Result(exited=classified),
            re.compile(r".*"): Result(),
        },
        repeat=True,
    )


@pytest.mark.parametrize(
    ("tests", "classified", "fails"),
    [(0, 1, False), (1, 0, False), (1, 1, True), (1, 2, True)],
)
def test_ci_classifies_failed_tests_and_fails_unless_all_are_tolerated_flaky_tests(
    tests: int, classified: int, fails: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = load_tasks()
    # The report the mocked `nox -s tests_parallel` would have written.
    monkeypatch.chdir(tmp_path)
    settings = config.load(tmp_path)
    Path(settings.get("report")).parent.mkdir(parents=True)
    Path(settings.get("report")).write_text("{}")
    context = ci_context(tests, classified)
    if fails:
        with pytest.raises(Exit, match="tests failed"):
            tasks.ci(context)
    else:
        tasks.ci(context)
    commands = [call.args[0] for call in context.run.call_args_list]  # type: ignore[attr-defined]
    ran = [c for c in commands if c.startswith("testfleet classify")]
    assert len(ran) == (1 if tests else 0)
    for command in ran:
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.report == settings.get("report")
        assert Path(args.rest[args.rest.index("--summary") + 1]) == settings.get("summary")
        assert "--step-summary" in args.rest

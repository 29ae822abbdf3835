"""classify's reruns in-process: a fake pytest behind the `Runner` seam, no processes.

The fake reads the order file, the report path and the node ids from each command, as
pytest would, and writes a timing report whose outcomes come from a rule per test: the
classification logic is tested in milliseconds; tests/test_classify.py runs it for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from testfleet.diagnose import classify
from testfleet.timing.records import SCHEMA

SUITE = ["t.py::setup", "t.py::a", "t.py::b", "t.py::victim", "t.py::z"]
#: (mode, tests that ran before it, workers) -> the victim's outcome.
Rule = Callable[[str, list[str], int], str]


def record(nodeid: str, outcome: str, start: float, worker: str = "main") -> dict[str, object]:
    durations = {"setup": 0.0, "call": 0.1, "teardown": 0.0}
    return {
        "nodeid": nodeid, "outcome": outcome, "duration": 0.1, "durations": durations,
        "start": start, "stop": start + 0.1, "worker": worker, "attempt": 1, "markers": [],
    }  # fmt: skip


def write_report(path: Path, tests: list[dict[str, object]], workers: int = 1) -> None:
    run = {"id": "r", "mode": "parallel", "workers": workers, "wall_seconds": 1.0}
    path.write_text(json.dumps({"schema": SCHEMA, "run": run, "tests": tests}))


class FakePytest:
    """Answers rerun commands as pytest would, with the victim's outcome from ``rule``."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.commands: list[list[str]] = []
        #: (mode, workers, node ids) of each run, as the fake saw them.
        self.runs: list[tuple[str, int, list[str]]] = []

    def __call__(self, command: list[str]) -> tuple[int, str]:
        self.commands.append(command)
        options = dict(arg.split("=", 1) for arg in command if arg.startswith("--testfleet-"))
        workers = int(command[command.index("-n") + 1]) if "-n" in command else 0
        if "--testfleet-order-file" in options:
            ids = Path(options["--testfleet-order-file"]).read_text().split()
            mode = "beside" if workers else "context"
        elif any("::" in arg for arg in command):
            ids, mode = [arg for arg in command if "::" in arg], "alone"
        else:
            ids, mode = list(SUITE), "suite"
        self.runs.append((mode, workers, ids))
        tests = []
        for index, nodeid in enumerate(ids):
            outcome = "passed"
            if nodeid == "t.py::victim":
                outcome = self.rule(mode, ids[:index], workers)
            tests.append(record(nodeid, outcome, float(index)))
        write_report(Path(options["--testfleet-report"]), tests, workers or 1)
        return 0, ""


def parallel_run(tmp_path: Path) -> Path:
    """The victim failed on gw1 after a and b; setup ran on gw0 at the same time."""
    report = tmp_path / "run.json"
    tests = [
        record("t.py::setup", "passed", 0.0, "gw0"),
        record("t.py::a", "passed", 0.0, "gw1"),
        record("t.py::b", "passed", 1.0, "gw1"),
        record("t.py::victim", "failed", 2.0, "gw1"),
        record("t.py::z", "passed", 5.0, "gw0"),
    ]
    write_report(report, tests, 2)
    return report


def classified(tmp_path: Path, rule: Rule) -> tuple[classify.Verdict, FakePytest]:
    fake = FakePytest(rule)
    lines: list[str] = []
    result = classify.classify(
        parallel_run(tmp_path), [], 2, 5.0, output=tmp_path / "c.json", echo=lines.append,
        runner=fake,
    )  # fmt: skip
    (verdict,) = result.verdicts
    assert not [line for line in lines if "t.py::a t.py::b" in line], "no lists of node ids"
    return verdict, fake


def test_a_test_that_needs_another_workers_test_is_order_dependent(tmp_path: Path) -> None:
    def needs_setup(mode: str, before: list[str], workers: int) -> str:
        return "passed" if "t.py::setup" in before else "failed"

    verdict, fake = classified(tmp_path, needs_setup)
    assert (verdict.cls, verdict.in_suite, verdict.needs_other_worker) == (
        "order-dependent", ["passed"], True
    )  # fmt: skip
    assert verdict.suite_context == ["t.py::setup", "t.py::a", "t.py::b"]
    assert [mode for mode, _, _ in fake.runs].count("suite") == 1


def test_a_failure_in_every_order_is_a_failure(tmp_path: Path) -> None:
    verdict, _ = classified(tmp_path, lambda mode, before, workers: "failed")
    assert (verdict.cls, verdict.in_suite) == ("failure", ["failed"])


@pytest.mark.parametrize(
    ("beside", "cls"),
    [(["failed", "passed"], "parallel-only"), (["passed", "passed"], "undecided")],
)
def test_passing_every_serial_rerun_leaves_it_to_the_parallel_reruns(
    tmp_path: Path, beside: list[str], cls: str
) -> None:
    answers = iter(beside)

    def rule(mode: str, before: list[str], workers: int) -> str:
        return next(answers) if mode == "beside" else "passed"

    verdict, fake = classified(tmp_path, rule)
    assert (verdict.cls, verdict.beside) == (cls, beside)
    parallel = [ids for mode, workers, ids in fake.runs if mode == "beside" and workers == 2]
    # Its neighbours: the tests that started before it ended, on any worker.
    assert parallel == [["t.py::a", "t.py::setup", "t.py::b", "t.py::victim"]] * 2


def test_the_rollback_switch_follows_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = classify.classify(
        parallel_run(tmp_path), [], 1, 5.0, output=tmp_path / "c.json", echo=lambda _: None,
        runner=FakePytest(lambda mode, before, workers: "failed" if mode == "beside" else "passed"),
    )  # fmt: skip
    assert result.to_json()["rollback"] == "testfleet run --workers 1"

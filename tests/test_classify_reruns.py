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

from testfleet.diagnose import classify, classify_render, collide
from testfleet.diagnose.replay import Collide, ColliderFactory, Collision, Partner
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


def classified(
    tmp_path: Path, rule: Rule, collider: ColliderFactory = collide.Collider
) -> tuple[classify.Verdict, FakePytest]:
    fake = FakePytest(rule)
    lines: list[str] = []
    result = classify.classify(
        parallel_run(tmp_path), [], 2, 5.0, output=tmp_path / "c.json", echo=lines.append,
        runner=fake, collider=collider,
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


def collider_finding(partners: tuple[Partner, ...]) -> ColliderFactory:
    """A collider that finds ``partners`` for every failure it is asked about."""

    def factory(args: object, runs: int, scratch: Path, output: Path) -> Collide:
        plan = output.parent / "plan.json" if partners else None
        overlap = (Partner("t.py::setup", "gw0", -0.5),)
        return lambda report, nodeid, worker: Collision(overlap, partners, 4, plan)

    return factory


def test_a_failure_that_collides_in_the_replays_is_parallel_only_with_its_partner(
    tmp_path: Path,
) -> None:
    partner = Partner("t.py::setup", "gw0", -0.5)
    verdict, _ = classified(tmp_path, lambda *_: "passed", collider_finding((partner,)))
    assert (verdict.cls, verdict.collision.names) == ("parallel-only", ["t.py::setup"])
    result = json.loads((tmp_path / "c.json").read_text())["results"][0]
    assert (result["collides_with"], result["replays"]) == (["t.py::setup"], 4)
    assert result["reproduce"].endswith(f"-m testfleet.diagnose.collide {tmp_path / 'plan.json'}")


def test_a_failure_the_replays_do_not_repeat_stays_undecided_with_the_count(
    tmp_path: Path,
) -> None:
    verdict, _ = classified(tmp_path, lambda *_: "passed", collider_finding(()))
    assert (verdict.cls, verdict.collision.replays) == ("undecided", 4)
    result = classify.Classification(None, tmp_path, 5, 2, 5.0, [], [verdict])
    lines = classify_render.render_text(result)
    assert "4 replays beside the 1 tests that overlapped it)" in lines[1]
    assert "and 4 replays beside the tests that overlapped them" in lines[2]

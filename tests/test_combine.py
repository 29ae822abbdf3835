"""testfleet combine: the shards' reports make one run, or are refused naming the shard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testfleet.cli import program as cli
from testfleet.sharding import combine
from testfleet.sharding import plan as sharding
from testfleet.sharding.plan import CollectedTest, ShardSpec
from testfleet.sharding.select import describe

NODEIDS = [f"tests/test_m.py::test_{n:02}" for n in range(20)]


def make_test(nodeid: str, outcome: str = "passed", worker: str = "gw0") -> dict[str, Any]:
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "duration": 0.5,
        "durations": {"setup": 0.0, "call": 0.5, "teardown": 0.0},
        "markers": [],
        "worker": worker,
        "start": 1.0,
        "stop": 1.5,
        "attempt": 1,
    }


def shard_reports(
    total: int, nodeids: list[str] = NODEIDS, commit: str = "abc123"
) -> list[tuple[str, dict[str, Any]]]:
    """The reports each shard of a run would write, every test passing."""
    plan = sharding.plan_for([CollectedTest(t) for t in nodeids], {}, total)
    reports = []
    for index in range(1, total + 1):
        info = describe(ShardSpec(index, total), plan, None)
        tests = [make_test(t) for t in plan.shard(index).tests]
        run = {
            "id": f"run{index}",
            "mode": "parallel",
            "workers": 2,
            "dist": "loadgroup",
            "start": 100.0 + index,
            "end": 110.0 + index,
            "wall_seconds": 10.0 + index,
            "exit_status": 0,
            "git_commit": commit,
            "shard": info,
        }
        reports.append(
            (f"shard-{index}.json", {"schema": "testfleet.timing/1", "run": run, "tests": tests})
        )
    return reports


def test_the_combined_report_holds_every_test_once_with_the_shard_in_the_worker() -> None:
    result = combine.combine(shard_reports(3))
    assert [t["nodeid"] for t in result.report["tests"]] == NODEIDS
    assert result.complete
    assert {t["worker"] for t in result.report["tests"]} == {
        "shard1-gw0",
        "shard2-gw0",
        "shard3-gw0",
    }
    run = result.report["run"]
    assert run["wall_seconds"] == 13.0
    assert run["workers"] == 6
    assert run["exit_status"] == 0
    assert "shard" not in run
    assert run["combined"]["collected"] == 20
    assert [row["finished"] for row in result.shards] == [7, 7, 6]


def test_the_order_of_the_given_reports_does_not_matter() -> None:
    reports = shard_reports(4)
    assert combine.combine(reports).report == combine.combine(reports[::-1]).report


def test_a_missing_shard_is_refused_by_its_name() -> None:
    reports = shard_reports(4)
    with pytest.raises(combine.CombineError, match=r"shard 2/4, 4/4 is missing"):
        combine.combine([reports[0], reports[2]])


def test_a_shard_given_twice_is_refused_with_both_files() -> None:
    reports = shard_reports(2)
    twice = [reports[0], ("again.json", reports[0][1]), reports[1]]
    with pytest.raises(
        combine.CombineError, match=r"shard 1/2 is given twice: shard-1.json and again.json"
    ):
        combine.combine(twice)


def test_a_shard_of_another_collection_is_refused_by_its_name() -> None:
    ours = shard_reports(2)
    theirs = shard_reports(2, [*NODEIDS, "tests/test_m.py::test_new"])
    with pytest.raises(
        combine.CombineError,
        match=r"shard-2.json \(shard 2/2\) is from another collection \(21 tests",
    ):
        combine.combine([ours[0], theirs[1]])


def test_a_shard_of_another_commit_is_refused_by_its_name() -> None:
    ours = shard_reports(2)
    theirs = shard_reports(2, commit="def456")
    with pytest.raises(
        combine.CombineError,
        match=r"shard-2.json \(shard 2/2\) ran commit def456, shard-1.json ran abc123",
    ):
        combine.combine([ours[0], theirs[1]])


def test_shards_split_by_other_durations_are_refused() -> None:
    ours = shard_reports(2)
    other = sharding.plan_for([CollectedTest(t) for t in NODEIDS], {NODEIDS[1]: 9.0}, 2)
    name, data = ours[1]
    data["run"]["shard"] = describe(ShardSpec(2, 2), other, None)
    with pytest.raises(
        combine.CombineError, match=r"shard-2.json \(shard 2/2\) split the collection another way"
    ):
        combine.combine([ours[0], (name, data)])


def test_shards_of_different_counts_are_refused() -> None:
    with pytest.raises(
        combine.CombineError, match=r"is one of 3 shards, but shard-1.json is one of 2"
    ):
        combine.combine([shard_reports(2)[0], shard_reports(3)[1]])


def test_a_report_without_a_shard_is_refused() -> None:
    name, data = shard_reports(1)[0]
    del data["run"]["shard"]
    with pytest.raises(combine.CombineError, match=r"shard-1.json is not the report of a shard"):
        combine.combine([(name, data)])


def test_a_crashed_shard_keeps_its_finished_tests_and_lists_the_others() -> None:
    reports = shard_reports(2)
    crashed = reports[1][1]
    lost = [t["nodeid"] for t in crashed["tests"][-3:]]
    crashed["tests"] = crashed["tests"][:-3]
    crashed["run"]["exit_status"] = 1
    result = combine.combine(reports)
    assert not result.complete
    assert result.missing == {2: lost}
    assert len(result.report["tests"]) == 17
    assert result.report["run"]["combined"]["missing"] == lost
    assert result.report["run"]["exit_status"] == 1
    text = combine.render(result, "text")
    assert f"testfleet: shard 2 did not finish 3 test(s): {', '.join(lost)}" in text
    assert ":warning: shard 2 did not finish 3 test(s)" in combine.render(result, "markdown")


def test_a_test_the_plan_gave_another_shard_is_refused() -> None:
    reports = shard_reports(2)
    stray = reports[1][1]["tests"][0]
    reports[0][1]["tests"].append(stray)
    with pytest.raises(
        combine.CombineError,
        match=r"shard-1.json \(shard 1\) ran .* which the plan gave to shard 2",
    ):
        combine.combine(reports)


def write_reports(tmp_path: Path, reports: list[tuple[str, dict[str, Any]]]) -> list[str]:
    paths = []
    for name, data in reports:
        path = tmp_path / name
        path.write_text(json.dumps(data))
        paths.append(str(path))
    return paths


def test_the_combine_command_writes_the_report_the_summary_and_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_reports(tmp_path, shard_reports(2))
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    combined = tmp_path / "combined.json"
    status = cli.main(
        [
            "combine",
            *paths,
            "--combined",
            str(combined),
            "--json",
            str(tmp_path / "c.json"),
            "--summary",
            str(tmp_path / "s.md"),
            "--step-summary",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0]
        == "testfleet: combined 20 of 20 tests from 2 shards, wall 12.00 s (the longest shard)"
    )
    assert out[1].split() == [
        "shard",
        "tests",
        "finished",
        "predicted",
        "s",
        "measured",
        "s",
        "wall",
        "s",
        "exit",
    ]
    assert out[2].split() == ["1", "10", "10", "0.00", "5.00", "11.00", "0"]
    assert out[-1] == f"testfleet: combined timing report written to {combined}"
    assert len(json.loads(combined.read_text())["tests"]) == 20
    assert json.loads((tmp_path / "c.json").read_text())["complete"] is True
    assert (tmp_path / "s.md").read_text() == step.read_text()
    assert "| 2 | 10 | 10 | 0.00 | 5.00 | 12.00 | 0 |" in step.read_text()


def test_the_combine_command_exits_1_for_a_crashed_shard_and_2_for_a_missing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = shard_reports(2)
    reports[0][1]["tests"].pop()
    paths = write_reports(tmp_path, reports)
    combined = tmp_path / "combined.json"
    assert cli.main(["combine", *paths, "--combined", str(combined)]) == 1
    assert len(json.loads(combined.read_text())["tests"]) == 19
    combined.write_text("before")
    assert cli.main(["combine", paths[0], "--combined", str(combined)]) == 2
    assert "shard 2/2 is missing" in capsys.readouterr().err
    # A refusal leaves the earlier combined report as it was.
    assert combined.read_text() == "before"


def test_a_combined_reports_serial_phase_counts_as_serial_for_the_classification() -> None:
    from testfleet.diagnose import classify

    reports = shard_reports(2)
    reports[0][1]["tests"][0]["worker"] = "main"
    reports[0][1]["tests"][0]["outcome"] = "failed"
    reports[1][1]["tests"][0]["outcome"] = "failed"
    verdicts = classify.failed_tests(combine.combine(reports).report)
    assert sorted((v.worker, v.parallel) for v in verdicts) == [
        ("shard1-main", False),
        ("shard2-gw0", True),
    ]

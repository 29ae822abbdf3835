"""invoke's shard steps: `invoke combine` makes one run of the shards' reports, or stops."""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from invoke.config import Config
from invoke.context import Context
from invoke.exceptions import Exit

from test_combine import shard_reports
from testfleet.sharding import tasks as shardtasks
from testfleet.sharding.plan import ShardSpec

# invoke's runner leaves the pipes of its finished commands to the garbage collector.
pytestmark = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning", "ignore::ResourceWarning"
)


@pytest.fixture(autouse=True)
def collect_invokes_pipes() -> Iterator[None]:
    """Collect those pipes before the test ends, while the filter above still applies.

    Left to a later collection, they close in whichever test of the worker comes next
    (another module, in a random order), where warnings are errors.
    """
    yield
    gc.collect()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    # The `testfleet` command of the environment that runs these tests.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def place(reports: list[tuple[str, dict[str, Any]]], root: Path) -> None:
    for _, data in reports:
        shard = data["run"]["shard"]
        directory = shardtasks.shard_dir(ShardSpec(shard["index"], shard["total"]), root)
        directory.mkdir(parents=True)
        (directory / shardtasks.SHARD_REPORT).write_text(json.dumps(data))


def combine(project: Path) -> None:
    shardtasks.combine_shards(
        # No stdin under pytest's capture: invoke must not try to forward it.
        Context(Config(overrides={"run": {"in_stream": False}})),
        project / "reports" / "shards",
        project / "reports" / "test-timing.json",
        project / "reports" / "test-timing-baseline.json",
        project / "reports" / "ci-summary.md",
        coverage=False,
    )


def test_combine_writes_one_report_and_one_summary_of_every_shard(project: Path) -> None:
    place(shard_reports(3), project / "reports" / "shards")
    combine(project)
    report = json.loads((project / "reports" / "test-timing.json").read_text())
    assert report["summary"]["tests"] == 20
    summary = (project / "reports" / "ci-summary.md").read_text()
    assert summary.index("### testfleet: shards combined") < summary.index("20 tests")
    assert "| 3 | 6 | 6 |" in summary


def test_combine_stops_with_2_when_a_shard_is_missing(project: Path) -> None:
    place(shard_reports(3)[:2], project / "reports" / "shards")
    with pytest.raises(Exit) as stopped:
        combine(project)
    assert stopped.value.code == 2
    assert not (project / "reports" / "test-timing.json").exists()


def test_combine_stops_with_1_when_a_shard_did_not_finish(project: Path) -> None:
    reports = shard_reports(2)
    reports[1][1]["tests"].pop()
    place(reports, project / "reports" / "shards")
    with pytest.raises(Exit) as stopped:
        combine(project)
    assert stopped.value.code == 1
    assert "did not finish 1 test(s)" in (project / "reports" / "ci-summary.md").read_text()


def test_combine_without_shard_reports_says_how_to_make_them(project: Path) -> None:
    with pytest.raises(Exit) as stopped:
        combine(project)
    assert stopped.value.code == 2
    assert "invoke ci --shard I/N" in str(stopped.value.message)


@pytest.mark.parametrize("value", ["0/2", "3/2", "a/b"])
def test_a_malformed_shard_stops_the_task_saying_the_form(value: str) -> None:
    with pytest.raises(Exit) as stopped:
        shardtasks.resolve(value)
    assert stopped.value.code == 2
    assert "is not of the form I/N" in str(stopped.value.message)


def test_auto_outside_a_parallel_job_is_the_whole_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    assert shardtasks.resolve("auto") == ShardSpec(1, 1)
    monkeypatch.setenv("CI_NODE_INDEX", "2")
    monkeypatch.setenv("CI_NODE_TOTAL", "5")
    assert shardtasks.resolve("auto") == ShardSpec(2, 5)

"""Collection-time side of sharding: keep this machine's shard of the collected tests.

Every process that collects (a serial run, each xdist worker) computes the same plan
from the same collection and the same committed durations, and keeps its shard. The
shard's description (its assigned tests, the collection and plan digests) goes into
the timing report's ``run.shard``, where `testfleet combine` checks the shards fit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from testfleet.core import paths
from testfleet.core.atomic import write_json_atomic
from testfleet.scheduling.durations import read_report_durations
from testfleet.sharding import plan as sharding
from testfleet.timing.recorder import RUN_EXTRA_KEY, canonical_nodeid
from testfleet.timing.report import ReportError

SPEC_KEY = pytest.StashKey[sharding.ShardSpec | None]()
INFO_KEY = pytest.StashKey[dict[str, Any]]()
#: Key of the shard's description in ``config.workeroutput``.
WORKEROUTPUT_KEY = "testfleet_shard"
SHARD_ENV = sharding.SHARD_ENV
DEFAULT_DURATIONS = paths.BASELINE_REPORT


def configure(config: pytest.Config) -> sharding.ShardSpec | None:
    """Resolve the shard of this run (option > environment) once; a bad value is a usage error."""
    try:
        spec = sharding.resolve_shard(config.getoption("testfleet_shard"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SPEC_KEY] = spec
    return spec


def collected_test(item: pytest.Item) -> sharding.CollectedTest:
    groups = tuple(
        sorted(
            {
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group")
            }
        )
    )
    serial = item.get_closest_marker("serial") is not None
    return sharding.CollectedTest(canonical_nodeid(item), groups, serial)


def durations_file(config: pytest.Config) -> Path | None:
    """The committed report whose durations choose the split, or None when there is none."""
    option: str | None = config.getoption("testfleet_shard_durations")
    if option:
        path = config.invocation_params.dir / option
        if not path.is_file():
            raise pytest.UsageError(
                f"--testfleet-shard-durations: {path} does not exist: give a timing report "
                "(such as the committed baseline), or leave the option out"
            )
        return path
    default = config.rootpath / DEFAULT_DURATIONS
    return default if default.is_file() else None


def recorded_durations(path: Path | None) -> dict[str, float]:
    """Per-test durations of a timing report; every machine reads the same committed file."""
    if path is None:
        return {}
    try:
        wall, _ = read_report_durations(path, first_attempt=True)
    except ReportError as exc:
        raise pytest.UsageError(
            f"shard durations: {exc}; fix or re-record it, or pass another file with "
            "--testfleet-shard-durations"
        ) from None
    return wall


def select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests of the other shards; describe this one for the report."""
    spec = config.stash.get(SPEC_KEY, None)
    plan_file: str | None = config.getoption("testfleet_shard_plan")
    if spec is None and not plan_file:
        return
    total = spec.total if spec is not None else 1
    units = [collected_test(item) for item in items]
    source = durations_file(config)
    plan = sharding.plan_for(units, recorded_durations(source), total)
    if plan_file:
        document = plan.to_json()
        document["durations"] = source.name if source else None
        write_json_atomic(config.invocation_params.dir / plan_file, document)
    if spec is None:
        return
    shard = plan.shard(spec.index)
    remember(config, describe(spec, plan, source))
    wanted = set(shard.tests)
    keep = [item for item, unit in zip(items, units, strict=True) if unit.nodeid in wanted]
    drop = [item for item, unit in zip(items, units, strict=True) if unit.nodeid not in wanted]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        # Sent now rather than at the end: a worker that crashes later has sent it already.
        workeroutput[WORKEROUTPUT_KEY] = json.dumps(config.stash[INFO_KEY])


def describe(spec: sharding.ShardSpec, plan: sharding.Plan, source: Path | None) -> dict[str, Any]:
    """``run.shard`` of the timing report."""
    shard = plan.shard(spec.index)
    return {
        "index": spec.index,
        "total": spec.total,
        "collection": plan.collection,
        "collected": plan.tests,
        "plan": plan.digest(),
        "durations": source.name if source else None,
        "predicted_seconds": round(shard.predicted, 3),
        "without_history": shard.unknown,
        "assigned": list(shard.tests),
    }


def remember(config: pytest.Config, info: dict[str, Any]) -> None:
    """Keep the shard's description for the summary line and the timing report."""
    config.stash[INFO_KEY] = info
    extra = config.stash.setdefault(RUN_EXTRA_KEY, {})
    extra["shard"] = info


def receive(config: pytest.Config, workeroutput: Mapping[str, Any] | None) -> None:
    """On the xdist controller, which collects nothing: take the description a worker sent."""
    if workeroutput and WORKEROUTPUT_KEY in workeroutput and INFO_KEY not in config.stash:
        remember(config, json.loads(workeroutput[WORKEROUTPUT_KEY]))


def summary_line(info: Mapping[str, Any]) -> str:
    return (
        f"testfleet: shard {info['index']}/{info['total']}: {len(info['assigned'])} of "
        f"{info['collected']} tests, predicted {info['predicted_seconds']:.2f} s"
        + (f" from {info['durations']}" if info.get("durations") else " (no recorded durations)")
    )


def lines_for(config: pytest.Config) -> Sequence[str]:
    info = config.stash.get(INFO_KEY, None)
    return [summary_line(info)] if info else []

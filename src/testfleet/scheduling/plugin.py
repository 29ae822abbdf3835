"""pytest wiring of testfleet's xdist scheduler; active only with ``--testfleet-scheduler``.

xdist's controller never collects, so it sees node ids only. Which tests are `serial` or
in an xdist_group is known on the workers: each writes it, as collection indices, to a
file in a directory the controller names (``workerinput``), before it reports its
collection; the scheduler reads the first worker's file. Without the option nothing
here is registered, and ``pytest -n N`` schedules exactly as plain xdist.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from testfleet.core import workers
from testfleet.core.atomic import write_text_atomic
from testfleet.scheduling import durations, running
from testfleet.scheduling.xdist_scheduler import DurationScheduling
from testfleet.timing import store

CONTROLLER_NAME = "testfleet-scheduler"
WORKER_NAME = "testfleet-scheduler-meta"
#: Key of the directory of the workers' files, in ``workerinput``.
META_DIR_KEY = "testfleet_schedule_dir"


def register(config: pytest.Config) -> None:
    """Register the controller or worker side, when this run asked for the scheduler."""
    if not config.getoption("testfleet_scheduler", False):
        return
    if not config.pluginmanager.hasplugin("xdist"):
        return
    if workers.is_worker(config):
        directory = config.workerinput.get(META_DIR_KEY)  # type: ignore[attr-defined]
        if directory:
            config.pluginmanager.register(MetaWriter(Path(directory)), WORKER_NAME)
    elif workers.worker_count(config) > 1:
        config.pluginmanager.register(SchedulerHooks(config), CONTROLLER_NAME)


def unregister(config: pytest.Config) -> None:
    for name in (CONTROLLER_NAME, WORKER_NAME):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin, name)
            if isinstance(plugin, SchedulerHooks):
                plugin.close()


def group_names(item: pytest.Item) -> list[str]:
    """The xdist_group names of ``item``, as xdist's loadgroup reads them."""
    return sorted(
        {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
    )


def describe_items(items: Sequence[pytest.Item]) -> dict[str, Any]:
    """Which collected items are `serial`, and the groups, by collection index."""
    serial: list[int] = []
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        if item.get_closest_marker("serial") is not None:
            serial.append(index)
        names = group_names(item)
        if names:
            # Several groups on one test make one group, as with loadgroup's "a_b".
            groups.setdefault("_".join(names), []).append(index)
    return {"count": len(items), "serial": serial, "groups": groups}


class MetaWriter:
    """Worker side: tell the controller's scheduler about the collected items."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Once -k, -m, shards and every other plugin chose the items, and (tryfirst)
        # before xdist's worker reports its collection to the controller.
        path = self.directory / f"{workers.worker_id(session.config)}.json"
        write_text_atomic(path, json.dumps(describe_items(session.items)))


def read_meta(
    directory: Path, worker: str, collection: Sequence[str]
) -> tuple[list[int], dict[str, list[int]]]:
    """The `serial` indices and the groups a worker wrote for ``collection``."""
    path = directory / f"{worker}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RuntimeError(
            f"testfleet scheduler: {worker} wrote no description of its tests ({exc}); "
            "run with --dist load instead of --testfleet-scheduler and report this"
        ) from None
    if data.get("count") != len(collection):
        raise RuntimeError(
            f"testfleet scheduler: {worker} described {data.get('count')} tests but "
            f"collected {len(collection)}"
        )
    return [int(i) for i in data["serial"]], {
        k: [int(i) for i in v] for k, v in data["groups"].items()
    }


class SchedulerHooks:
    """Controller side: name the workers' directory and make the scheduler."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.directory = Path(tempfile.mkdtemp(prefix="testfleet-schedule-"))
        self.loaded: durations.Durations | None = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[META_DIR_KEY] = str(self.directory)
        if str(self.config.getoption("maxworkerrestart", None)) != "0":
            # A worker that sends windows holds results that die with it and run again
            # on a new worker; with no restarts allowed they would not be reported.
            running.offer(node, self.directory)

    def costs_for(self, collection: Sequence[str]) -> list[float]:
        self.loaded = load_for(self.config, collection)
        return [self.loaded.wall_of(nodeid) for nodeid in collection]

    def meta_for(
        self, node: Any, collection: Sequence[str]
    ) -> tuple[list[int], Mapping[str, list[int]]]:
        return read_meta(self.directory, str(node.workerinput["workerid"]), collection)

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        return DurationScheduling(
            len(_tx_specs(config)),
            self.costs_for,
            self.meta_for,
            getattr(log, "testfleetsched", log),
            report=functools.partial(collection_error, config),
            running_of=running.read,
        )


def collection_error(config: pytest.Config, message: str) -> None:
    """Fail the run with ``message`` as a collection error, as xdist does for its schedulers."""
    report = pytest.CollectReport("", "failed", longrepr=message, result=[])
    config.hook.pytest_collectreport(report=report)


def load_for(config: pytest.Config, collection: Sequence[str] = ()) -> durations.Durations:
    """Past durations for this run: the store in its cache, then ``--testfleet-durations``.

    The reports are read only for tests of ``collection`` that the store does not know.
    """
    given = config.getoption("testfleet_durations", None) or []
    sources = [config.invocation_params.dir / path for path in given]
    cache = getattr(config, "cache", None)
    cache_dir = store.store_for(cache).parent.parent.parent if cache is not None else None
    return durations.load_durations(
        config.rootpath,
        sources,
        cache_dir=cache_dir,
        use_store=cache is not None,
        needed=collection,
    )


def _tx_specs(config: pytest.Config) -> list[str]:
    """The workers' execnet specs, as xdist's own schedulers count them."""
    # Imported here: only a run with xdist gets here. pytest-xdist 3.7 renamed the
    # function; 3.5 and 3.6 have only the old name.
    import xdist.workermanage as workermanage

    parse = getattr(workermanage, "parse_tx_spec_config", None) or workermanage.parse_spec_config
    return list(parse(config))

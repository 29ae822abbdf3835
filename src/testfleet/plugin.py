"""pytest wiring: options, markers and hooks. The work is done in the modules it calls."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from testfleet import workers
from testfleet.timing import TimingRecorder

# The Neo4j wiring is a plugin module of its own; it imports the driver only when used.
pytest_plugins = ["testfleet.neo4j.plugin"]

RECORDER_NAME = "testfleet-timing"
XDIST_HOOKS_NAME = "testfleet-xdist"
SERIAL_CHOICES = ("run", "defer", "only")


def serial_choice(text: str) -> str:
    value = text.strip().lower()
    if value not in SERIAL_CHOICES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not one of {', '.join(SERIAL_CHOICES)}: 'run' runs `serial` tests with "
            "the others, 'defer' leaves them out of this run, 'only' runs just them"
        )
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testfleet", "testfleet: timing and parallel safety")
    group.addoption(
        "--testfleet-report",
        dest="testfleet_report",
        metavar="PATH",
        default=None,
        help="write a JSON timing report of every test to PATH (one file for all xdist "
        "workers). Also the ini setting testfleet_report.",
    )
    group.addoption(
        "--testfleet-serial",
        dest="testfleet_serial",
        type=serial_choice,
        default="run",
        metavar="{run,defer,only}",
        help="what to do with tests marked `serial`: run them with the others (default), "
        "defer them (deselect; run them later with 'only'), or run only them, in one process.",
    )
    parser.addini(
        "testfleet_report",
        help="path of the JSON timing report, as --testfleet-report",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "serial: run alone, after the parallel phase, in one process (testfleet)"
    )
    if config.getoption("testfleet_serial") == "only" and workers.worker_count(config) > 1:
        raise pytest.UsageError(
            "--testfleet-serial=only runs tests that must not overlap any other test, so it "
            "cannot be distributed: drop -n, or use -n0 or -p no:xdist."
        )
    workers.run_id(config)
    path = report_path(config)
    if path is not None:
        config.pluginmanager.register(TimingRecorder(config, path), RECORDER_NAME)
    if config.pluginmanager.hasplugin("xdist") and not workers.is_worker(config):
        config.pluginmanager.register(XdistHooks(config), XDIST_HOOKS_NAME)


def report_path(config: pytest.Config) -> Path | None:
    """Where the timing report goes: the option, else the ini setting, else nowhere."""
    option: str | None = config.getoption("testfleet_report")
    if option:
        return config.invocation_params.dir / option
    ini = str(config.getini("testfleet_report") or "").strip()
    if ini:
        return config.rootpath / ini
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    choice = config.getoption("testfleet_serial")
    if choice == "run":
        return
    want_serial = choice == "only"
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        is_serial = item.get_closest_marker("serial") is not None
        (keep if is_serial == want_serial else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    recorder = config.pluginmanager.get_plugin(RECORDER_NAME)
    if not isinstance(recorder, TimingRecorder) or workers.is_worker(config):
        return
    if recorder.written is not None:
        terminalreporter.write_line(f"testfleet: timing report written to {recorder.written}")
    elif recorder.skipped_reason is not None:
        terminalreporter.write_line(
            f"testfleet: timing report not written ({recorder.skipped_reason}); "
            f"{recorder.path} is left as it was"
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    for name in (RECORDER_NAME, XDIST_HOOKS_NAME):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin, name)


class XdistHooks:
    """Controller-side xdist hooks; registered only when xdist is installed."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def _recorder(self) -> TimingRecorder | None:
        recorder = self.config.pluginmanager.get_plugin(RECORDER_NAME)
        return recorder if isinstance(recorder, TimingRecorder) else None

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["testfleet_run_id"] = workers.run_id(self.config)

    def pytest_testnodeready(self, node: Any) -> None:
        recorder = self._recorder()
        if recorder is not None:
            recorder.node_ready(str(node.workerinput["workerid"]))

    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        recorder = self._recorder()
        if recorder is not None:
            recorder.node_down(
                str(node.workerinput["workerid"]), getattr(node, "workeroutput", None)
            )

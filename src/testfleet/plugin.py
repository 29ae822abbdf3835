"""pytest wiring: options, markers and hooks. The work is done in the modules it calls."""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from testfleet import hookspecs
from testfleet.core import workers
from testfleet.diagnose import replay_hooks, state_hooks
from testfleet.isolation import names as isolation
from testfleet.isolation import pools, services
from testfleet.isolation.serial import SerialGate, remove_lock_files
from testfleet.runs import measure
from testfleet.scheduling import order_hooks, transport, worker_exit
from testfleet.scheduling import plugin as scheduler_plugin
from testfleet.settings import config as settings
from testfleet.settings.kinds import PYTEST
from testfleet.settings.plugin_table import PLUGIN_OPTIONS
from testfleet.settings.table import setting_options
from testfleet.sharding import select as shardselect
from testfleet.timing.recorder import OWN_DESELECTED_KEY, TimingRecorder

# The Neo4j wiring (its options, marker and fixtures) is a plugin of its own, loaded only
# where the driver is installed: find_spec looks for it without importing it, so that a
# project without Neo4j sees no Neo4j option in `pytest --help` and pays nothing for it.
pytest_plugins = ["testfleet.neo4j.plugin"] if importlib.util.find_spec("neo4j") else []

RECORDER_NAME = "testfleet-timing"
XDIST_HOOKS_NAME = "testfleet-xdist"
SERIAL_GATE_NAME = "testfleet-serial-gate"
ORDER_HOOKS_NAME = "testfleet-order"
REPLAY_HOOKS_NAME = "testfleet-replay"
STATE_HOOKS_NAME = "testfleet-state"
STOP_ERRORS_KEY = pytest.StashKey[list[str]]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


#: The group of testfleet's pytest options, the Neo4j plugin's too.
GROUP = ("testfleet", "testfleet: timing and parallel safety")


def add_options(parser: pytest.Parser, command: str) -> None:
    """Add the pytest options of ``command`` (PYTEST or PYTEST_NEO4J), as the table declares."""
    group = parser.getgroup(*GROUP)
    for option in (*PLUGIN_OPTIONS, *setting_options(command)):
        if option.command == command:
            option.add_to(group)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, PYTEST)
    parser.addini(
        "testfleet_report",
        help="path of the JSON timing report, as --testfleet-report",
        default="",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    status = yield
    # Outermost, so after pytest's session and clean-up: a worker that may leave does.
    worker_exit.after_session(config)
    return status


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
    shardselect.configure(config)
    path = report_path(config)
    if path is not None:
        config.pluginmanager.register(TimingRecorder(config, path), RECORDER_NAME)
    if config.pluginmanager.hasplugin("xdist") and not workers.is_worker(config):
        config.pluginmanager.register(XdistHooks(config), XDIST_HOOKS_NAME)
    order_file = config.getoption("testfleet_order_file")
    if order_file or config.getoption("testfleet_reverse"):
        given = config.invocation_params.dir / order_file if order_file else None
        config.pluginmanager.register(order_hooks.OrderHooks(given), ORDER_HOOKS_NAME)
    replay_file = config.getoption("testfleet_replay_file")
    if replay_file:
        side = config.invocation_params.dir / replay_file
        config.pluginmanager.register(replay_hooks.ReplayHooks(side), REPLAY_HOOKS_NAME)
    state_file = config.getoption("testfleet_state_file")
    if state_file:
        start = config.invocation_params.dir
        hooks = state_hooks.StateHooks(start / state_file, config.rootpath, start)
        config.pluginmanager.register(hooks, STATE_HOOKS_NAME)
    scheduler_plugin.register(config)
    transport.register(config)


def report_path(config: pytest.Config) -> Path | None:
    """Where the timing report goes: the option, else the ini setting, else nowhere."""
    option: str | None = config.getoption("testfleet_report")
    if option:
        return config.invocation_params.dir / option
    ini = str(config.getini("testfleet_report") or "").strip()
    if ini:
        return config.rootpath / ini
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # tryfirst: before xdist's DSession (trylast) spawns the workers, which need the info.
    config = session.config
    if workers.is_worker(config) or config.option.collectonly:
        return
    try:
        services.start_services(config)
    except services.ServiceError as exc:
        pytest.exit(f"testfleet: {exc}", returncode=pytest.ExitCode.INTERNAL_ERROR)


def pytest_report_header(config: pytest.Config) -> str | None:
    manager = config.stash.get(services.MANAGER_KEY, None)
    if manager is None or not manager.seconds:
        return None
    started = ", ".join(f"{name} ({seconds:.2f} s)" for name, seconds in manager.seconds.items())
    return f"testfleet: services started: {started}"


def lock_dir_setting(config: pytest.Config) -> Path | None:
    """The configured lock directory, or None for the machine-wide default."""
    try:
        return pools.configured_lock_dir(config.getoption("testfleet_lock_dir"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pool_timeout_setting(config: pytest.Config) -> float:
    """Seconds testfleet_pool waits: the option, else the ``pool_timeout`` setting."""
    option: float | None = config.getoption("testfleet_pool_timeout")
    try:
        return float(settings.load().get("pool_timeout", option))
    except settings.ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # trylast: the shard is chosen from the collection as -k, -m and other plugins left
    # it, and before the `serial` choice, so that both phases of a run agree on it.
    shardselect.select(config, items)
    choice = config.getoption("testfleet_serial")
    if choice == "run":
        return
    want_serial = choice == "only"
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        is_serial = item.get_closest_marker("serial") is not None
        (keep if is_serial == want_serial else drop).append(item)
    config.stash[OWN_DESELECTED_KEY] = len(drop)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if (
        not workers.is_worker(config)
        or workers.worker_count(config) < 2
        or config.getoption("testfleet_serial") != "run"
        # The scheduler runs `serial` tests when no other worker is left: no lock needed.
        or config.getoption("testfleet_scheduler")
        or not any(item.get_closest_marker("serial") for item in session.items)
    ):
        return
    directory = lock_dir_setting(config)
    gate = SerialGate(
        directory or pools.default_lock_dir(),
        workers.run_id(config),
        shared_directory=directory is None,
    )
    config.pluginmanager.register(SerialGateHooks(gate), SERIAL_GATE_NAME)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    # The innermost wrapper: this runs after every plain sessionfinish (session fixtures
    # torn down, xdist's workers ended, so no test uses a service any more) and before
    # the terminal reporter's wrapper prints the summary, which shows any stop error.
    try:
        return (yield)
    finally:
        config = session.config
        if workers.is_worker(config):
            # Before xdist's wrapper tells the controller this worker finished.
            measure.save_in_worker()
        errors = services.stop_services(config)
        if errors:
            if config.pluginmanager.get_plugin("terminalreporter") is None:
                report_stop_errors(config, errors)
            else:
                config.stash[STOP_ERRORS_KEY] = errors
            if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        if config.pluginmanager.get_plugin("dsession") is not None:
            remove_lock_files(
                lock_dir_setting(config) or pools.default_lock_dir(), workers.run_id(config)
            )


def stop_error_lines(errors: Sequence[str]) -> list[str]:
    return [f"testfleet: {error}; it may still be running" for error in errors]


def report_stop_errors(config: pytest.Config, errors: Sequence[str]) -> None:
    for line in stop_error_lines(errors):
        sys.stderr.write(line + "\n")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    stop_errors: list[str] = config.stash.get(STOP_ERRORS_KEY, [])
    for line in stop_error_lines(stop_errors):
        terminalreporter.write_line(line, red=True)
    if not workers.is_worker(config):
        for line in shardselect.lines_for(config):
            terminalreporter.write_line(line)
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
    # Reached even when the session never finished (Ctrl-C while services started).
    errors = services.stop_services(config)
    if errors:
        report_stop_errors(config, errors)
    scheduler_plugin.unregister(config)
    transport.unregister(config)
    for name in (RECORDER_NAME, XDIST_HOOKS_NAME, SERIAL_GATE_NAME, ORDER_HOOKS_NAME):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin, name)
            if isinstance(plugin, SerialGateHooks):
                plugin.gate.close()


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def testfleet_unique_name(pytestconfig: pytest.Config) -> Callable[[str], str]:
    """``testfleet_unique_name("person")``: a name no other test, worker or run makes."""
    return functools.partial(isolation.unique_name, config=pytestconfig)


@pytest.fixture(scope="session")
def testfleet_worker_dir(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Path:
    """This worker's scratch directory, the same for all its tests, new for every run."""
    return isolation.worker_dir(tmp_path_factory, pytestconfig)


@pytest.fixture
def testfleet_redirect(
    monkeypatch: pytest.MonkeyPatch, testfleet_worker_dir: Path
) -> isolation.Redirect:
    """Point env vars or settings attributes at the worker's scratch directory for one test."""
    return isolation.Redirect(monkeypatch, testfleet_worker_dir)


@pytest.fixture
def testfleet_pool(request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """``testfleet_pool("collections", ["c0", "c1"])``: hold a free slot until the test ends."""
    config = request.config
    leases: list[pools.Lease] = []
    holder = {
        "worker": workers.worker_id(config),
        "test": request.node.nodeid,
        "run": workers.run_id(config),
    }

    def take(name: str, slots: int | Sequence[str], *, timeout: float | None = None) -> str:
        pool = pools.Pool(
            name,
            slots,
            lock_dir=lock_dir_setting(config),
            timeout=pool_timeout_setting(config),
        )
        lease = pool.acquire(holder, timeout=timeout, prefer=isolation.worker_index(config))
        leases.append(lease)
        return lease.slot

    yield take
    for lease in reversed(leases):
        lease.release()


@pytest.fixture(scope="session")
def testfleet_service(pytestconfig: pytest.Config) -> Callable[[str], dict[str, str]]:
    """``testfleet_service("web")``: the info of a run-once service, e.g. its address."""
    return functools.partial(services.service_info, pytestconfig)


class SerialGateHooks:
    """Worker-side: every test holds the run's `serial` lock, shared or exclusive."""

    def __init__(self, gate: SerialGate) -> None:
        self.gate = gate

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        with self.gate.hold(serial=item.get_closest_marker("serial") is not None):
            return (yield)


class XdistHooks:
    """Controller-side xdist hooks; registered only when xdist is installed."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def _recorder(self) -> TimingRecorder | None:
        recorder = self.config.pluginmanager.get_plugin(RECORDER_NAME)
        return recorder if isinstance(recorder, TimingRecorder) else None

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["testfleet_run_id"] = workers.run_id(self.config)
        info = services.services_info(self.config)
        if info:
            node.workerinput[services.WORKERINPUT_KEY] = info

    def pytest_testnodeready(self, node: Any) -> None:
        recorder = self._recorder()
        if recorder is not None:
            recorder.node_ready(str(node.workerinput["workerid"]))

    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        recorder = self._recorder()
        if recorder is not None:
            recorder.node_collected(str(node.workerinput["workerid"]))

    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        shardselect.receive(self.config, getattr(node, "workeroutput", None))
        recorder = self._recorder()
        if recorder is not None:
            recorder.node_down(
                str(node.workerinput["workerid"]), getattr(node, "workeroutput", None)
            )

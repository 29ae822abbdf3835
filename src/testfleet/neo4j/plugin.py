"""pytest wiring for the Neo4j support (options, fixtures, the local server as a service)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from testfleet.core import workers
from testfleet.isolation import names as isolation
from testfleet.isolation import pools, services
from testfleet.neo4j.config import (
    DATABASE_ENV,
    MODE_ENV,
    NO_SERVER_REASON,
    PASSWORD_ENV,
    SERVICE_NAME,
    URI_ENV,
    USER_ENV,
    Connection,
    Mode,
    Neo4jConfigError,
    Strategy,
    connection_from_info,
    explicit_connection,
    resolve_mode,
    resolve_strategy,
    resolve_timeout,
)
from testfleet.neo4j.local import LocalBoltServer
from testfleet.neo4j.readiness import Neo4jNotReady, connect
from testfleet.neo4j.strategies import StrategyUnsupported, WorkerIsolation
from testfleet.plugin import add_options
from testfleet.settings.kinds import PYTEST_NEO4J
from testfleet.timing.recorder import canonical_nodeid

if TYPE_CHECKING:
    import neo4j

    from testfleet.neo4j.strategies import Neo4jIsolation, WorkerIsolation

#: The ``xdist_group`` of Neo4j tests under the ``group`` strategy (with ``--dist loadgroup``).
XDIST_GROUP = "testfleet-neo4j"
#: A test that asks for one of these is a Neo4j test, marked or not.
FIXTURES = frozenset(
    {"neo4j_connection", "neo4j_driver", "neo4j_isolation", "neo4j_session", "neo4j_label"}
)
MARKER = (
    "neo4j: needs a Neo4j (Bolt) server; skipped without one, isolated by the "
    "--testfleet-neo4j-strategy (testfleet)"
)
REQUIRED_MESSAGE = (
    f"--testfleet-neo4j=required (or {MODE_ENV}=required) but no Neo4j server is given: "
    f"set {URI_ENV} (and {USER_ENV}, {PASSWORD_ENV}) or --testfleet-neo4j-uri, or use "
    "--testfleet-neo4j=local to start a local Bolt server"
)


@dataclass(frozen=True)
class Neo4jSettings:
    """This run's Neo4j settings, resolved once per process from options and environment."""

    mode: Mode
    strategy: Strategy
    timeout: float
    #: The server named by the options or ``NEO4J_URI``; None when none is.
    explicit: Connection | None

    @property
    def starts_local_server(self) -> bool:
        return self.mode == "local" and self.explicit is None


SETTINGS_KEY = pytest.StashKey[Neo4jSettings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, PYTEST_NEO4J)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    try:
        settings = Neo4jSettings(
            mode=resolve_mode(config.getoption("testfleet_neo4j")),
            strategy=resolve_strategy(config.getoption("testfleet_neo4j_strategy")),
            timeout=resolve_timeout(config.getoption("testfleet_neo4j_timeout")),
            explicit=explicit_connection(
                config.getoption("testfleet_neo4j_uri"),
                config.getoption("testfleet_neo4j_user"),
                config.getoption("testfleet_neo4j_password"),
            ),
        )
    except Neo4jConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings


def settings_of(config: pytest.Config) -> Neo4jSettings:
    """This run's Neo4j settings (made in ``pytest_configure``)."""
    return config.stash[SETTINGS_KEY]


@pytest.hookimpl(optionalhook=True)
def pytest_testfleet_services(config: pytest.Config) -> list[services.Service] | None:
    """The local Bolt server, when ``local`` mode has no other server to use."""
    settings = settings_of(config)
    if not settings.starts_local_server:
        return None
    return [LocalBoltServer(start_timeout=settings.timeout)]


def is_neo4j_test(item: pytest.Item) -> bool:
    """Marked ``neo4j``, or asks for one of the Neo4j fixtures."""
    if item.get_closest_marker("neo4j") is not None:
        return True
    return bool(FIXTURES.intersection(getattr(item, "fixturenames", ())))


# tryfirst: the xdist_group mark must be there before xdist (on the worker) renames the
# test after its group for --dist loadgroup.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # No skip is added here: without a server, the neo4j_connection fixture skips, so a
    # suite that overrides that fixture (a server of its own) runs its Neo4j tests.
    # Without xdist all tests run in this process, and xdist_group is an unknown marker.
    group = settings_of(config).strategy == "group" and config.pluginmanager.hasplugin("xdist")
    for item in items:
        if not is_neo4j_test(item):
            continue
        if item.get_closest_marker("neo4j") is None:
            item.add_marker(pytest.mark.neo4j)
        names = getattr(item, "fixturenames", None)
        if names is not None and "neo4j_isolation" not in names:
            # A marked test is isolated even when it asks for no Neo4j fixture: its code
            # may reach the server through NEO4J_URI, and `group` must still hold and wipe
            # it. A new list: parametrized siblings share the old one. (An autouse
            # fixture would do the same at a cost to every test of every suite.)
            item.fixturenames = [*names, "neo4j_isolation"]  # type: ignore[attr-defined]
        if group:
            item.add_marker(pytest.mark.xdist_group(XDIST_GROUP))


@pytest.fixture(scope="session")
def neo4j_connection(pytestconfig: pytest.Config) -> Iterator[Connection]:
    """The server of this run; ``NEO4J_*`` point at it for the whole session.

    Without a server it skips (``auto``) or fails (``required``) the Neo4j tests.
    Override it to give the tests a server of your own.
    """
    settings = settings_of(pytestconfig)
    if settings.explicit is not None:
        connection = settings.explicit
    elif settings.mode == "local":
        known = services.services_info(pytestconfig)
        if SERVICE_NAME not in known:
            pytest.fail(
                "--testfleet-neo4j=local, but the local Bolt server did not reach this "
                f"process (services of this run: {', '.join(sorted(known)) or 'none'}); "
                "services are not started for --collect-only",
                pytrace=False,
            )
        connection = connection_from_info(known[SERVICE_NAME])
    elif settings.mode == "required":
        pytest.fail(REQUIRED_MESSAGE, pytrace=False)
    else:
        pytest.skip(NO_SERVER_REASON)
    # Application code under test finds the server the way it would in production.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in connection.environ().items():
            patch.setenv(name, value)
        yield connection


@pytest.fixture(scope="session")
def neo4j_driver(
    neo4j_connection: Connection, pytestconfig: pytest.Config
) -> Iterator[neo4j.Driver]:
    """A driver for this run's server, once it answers; shared, not isolated."""
    failure: str | None = None
    try:
        driver = connect(neo4j_connection, settings_of(pytestconfig).timeout)
    except (Neo4jNotReady, Neo4jConfigError) as exc:
        failure = str(exc)
    # Failed outside the except block, so the report shows the message and no chain.
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(scope="session")
def _testfleet_neo4j_worker(
    neo4j_driver: neo4j.Driver, neo4j_connection: Connection, pytestconfig: pytest.Config
) -> Iterator[WorkerIsolation]:
    """This process's side of the strategy: the server checked, its database made."""
    worker = WorkerIsolation(
        driver=neo4j_driver,
        connection=neo4j_connection,
        strategy=settings_of(pytestconfig).strategy,
        new_name=functools.partial(isolation.unique_name, config=pytestconfig),
        holder={"worker": workers.worker_id(pytestconfig), "run": workers.run_id(pytestconfig)},
        lock_dir=Path(neo4j_connection.lock_dir)
        if neo4j_connection.lock_dir
        else pools.configured_lock_dir(pytestconfig.getoption("testfleet_lock_dir", None)),
    )
    failure: str | None = None
    try:
        worker.prepare()
    except StrategyUnsupported as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield worker
    finally:
        worker.close()


@pytest.fixture
def neo4j_isolation(
    _testfleet_neo4j_worker: WorkerIsolation,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Neo4jIsolation]:
    """This test's isolation: strategy, label, database, and the session to use."""
    node = request.node
    if isinstance(node, pytest.Item):
        path, line, _ = node.location
        nodeid, where = canonical_nodeid(node), (str(node.config.rootpath / path), (line or 0) + 1)
    else:  # pragma: no cover - a function-scoped fixture always has an item
        nodeid, where = node.nodeid, None
    with _testfleet_neo4j_worker.test(nodeid, where) as isolated:
        if isolated.database is not None:
            monkeypatch.setenv(DATABASE_ENV, isolated.database)
        yield isolated


@pytest.fixture
def neo4j_session(neo4j_isolation: Neo4jIsolation) -> neo4j.Session | neo4j.Transaction:
    """Where the test runs its queries: a session, or under ``rollback`` the transaction."""
    return neo4j_isolation.runner


@pytest.fixture
def neo4j_label(neo4j_isolation: Neo4jIsolation) -> str:
    """A label no other test uses; under ``namespace``, put it on every node the test makes."""
    return neo4j_isolation.label

"""Isolation strategies: what a Neo4j test gets, what is cleaned after it, and what leaked.

One :class:`WorkerIsolation` per test process checks that the server supports the
strategy and keeps what the process shares (the ``database`` strategy's database);
its :meth:`WorkerIsolation.test` gives each test a :class:`Neo4jIsolation`.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testfleet.isolation import pools
from testfleet.neo4j.config import DATABASE_ENV, Connection, Strategy

if TYPE_CHECKING:
    import neo4j

#: Every label and database name that testfleet makes starts with this. The leak check
#: leaves such nodes alone: they belong to some test's isolation (another worker's, or
#: another run's) or to a capability probe.
NAME_PREFIX = "tfneo"
#: How long a `group` test waits for the Neo4j tests of other processes to finish.
GROUP_LOCK_TIMEOUT = 600.0
#: What to use instead of a strategy the server cannot do; both work on every server.
OTHER_STRATEGIES = "--testfleet-neo4j-strategy=group or --testfleet-neo4j-strategy=namespace"


class StrategyUnsupported(Exception):
    """The server cannot do what the chosen strategy needs; the message names another."""


class Neo4jLeakWarning(UserWarning):
    """A test left nodes outside its isolation, where other tests can see them."""


def run_query(
    driver: neo4j.Driver, text: str, database: str | None = None, **parameters: Any
) -> list[dict[str, Any]]:
    """Run one of testfleet's own queries and return its records.

    No timeout or metadata goes with it: FalkorDB runs a query that carries any of them
    (or a database name, or read mode) on another graph than a plain one.
    """
    with driver.session(database=database) as session:
        return session.run(text, parameters).data()


def _short(exc: BaseException) -> str:
    code, message = getattr(exc, "code", None), getattr(exc, "message", None)
    if code and message:
        return f"{code}: {message}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def databases_unsupported_reason(driver: neo4j.Driver) -> str | None:
    """Why the server cannot create databases, by asking it; None when it can."""
    import neo4j.exceptions

    try:
        records = run_query(driver, "CALL dbms.components() YIELD name, edition RETURN edition")
    except neo4j.exceptions.Neo4jError as exc:
        return (
            "it does not answer CALL dbms.components(), so it is not Neo4j (FalkorDB, for "
            f"one, has no CREATE DATABASE): {_short(exc)}"
        )
    editions = {str(record.get("edition", "")).lower() for record in records}
    if "enterprise" in editions:
        return None
    found = ", ".join(sorted(editions)) or "unknown"
    return f"it is Neo4j {found} edition, which has one user database (Enterprise has more)"


def rollback_unsupported_reason(driver: neo4j.Driver, label: str) -> str | None:
    """Why the server's transactions cannot isolate a test, by trying one; None if they can.

    The probe writes a node labelled ``label`` in a transaction, looks for it from
    another session, rolls back and looks again; what is left is deleted.
    """

    with driver.session() as session:
        tx = session.begin_transaction()
        try:
            tx.run(f"CREATE (:`{label}`)").consume()
            seen = run_query(driver, f"MATCH (n:`{label}`) RETURN count(n) AS n")[0]["n"]
        finally:
            tx.rollback()
    left = run_query(driver, f"MATCH (n:`{label}`) RETURN count(n) AS n")[0]["n"]
    if left:
        run_query(driver, f"MATCH (n:`{label}`) DETACH DELETE n")
        return "it kept a node created in a transaction after ROLLBACK (FalkorDB does)"
    if seen:
        return "another session saw a node that a transaction had not committed yet"
    return None


def describe_nodes(labels: Sequence[Sequence[str]]) -> str:
    """``3 (:Person), 1 (no label)``: how many nodes carry each set of labels."""
    counts = Counter(tuple(sorted(node)) for node in labels)
    parts = [
        f"{count} ({''.join(':' + name for name in key) or 'no label'})"
        for key, count in sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    ]
    return ", ".join(parts)


LEAK_HINTS: Mapping[Strategy, str] = {
    "namespace": "Give every node the test creates its label (neo4j_label), or delete them",
    "rollback": (
        "Write through neo4j_session, the test's transaction: what other sessions or "
        "drivers write is committed and stays"
    ),
    "database": (
        f"Write to the test's database (neo4j_isolation.database, also ${DATABASE_ENV}): "
        "the server's default database is shared by every worker"
    ),
}


def leak_message(nodeid: str, strategy: Strategy, labels: Sequence[Sequence[str]]) -> str:
    """The leak warning's text: who, how much, what, and how to stop it."""
    return (
        f"Neo4j leak: {nodeid} left {len(labels)} node(s) outside its isolation "
        f"(strategy {strategy}): {describe_nodes(labels)}. {LEAK_HINTS[strategy]}. "
        "(In a parallel run, a node that a test on another worker left meanwhile is "
        "reported here too.)"
    )


def group_pool(uri: str, lock_dir: Path | None) -> pools.Pool:
    """The `group` lock of the server at ``uri``: one slot, in ``lock_dir`` or machine-wide.

    Machine-wide by default, so that two runs that share a server do not wipe it under
    each other either; named after the URI, so that runs on different servers do not wait.
    """
    digest = hashlib.sha256(uri.encode("utf-8")).hexdigest()[:16]
    return pools.Pool(f"neo4j-group-{digest}", 1, lock_dir=lock_dir, timeout=GROUP_LOCK_TIMEOUT)


@dataclass
class Neo4jIsolation:
    """One test's share of the server: the session (or transaction) to use and its names."""

    strategy: Strategy
    nodeid: str
    #: A label no other test has; under `namespace` every node the test makes must carry it.
    label: str
    #: The database to use (``database`` strategy), or None for the server's default.
    database: str | None
    session: neo4j.Session
    #: The transaction that is rolled back after the test (``rollback`` strategy only).
    transaction: neo4j.Transaction | None = None

    @property
    def runner(self) -> neo4j.Session | neo4j.Transaction:
        """What the test runs queries on: the transaction under ``rollback``, else the session."""
        return self.transaction if self.transaction is not None else self.session

    def run(
        self, query: Any, parameters: dict[str, Any] | None = None, **kwargs: Any
    ) -> neo4j.Result:
        """Run ``query`` inside this test's isolation."""
        return self.runner.run(query, parameters, **kwargs)


@dataclass
class WorkerIsolation:
    """One test process's view of the chosen strategy on one server."""

    driver: neo4j.Driver
    connection: Connection
    strategy: Strategy
    #: Makes a name no other test, worker or run makes (:func:`testfleet.isolation.unique_name`).
    new_name: Callable[[str], str]
    holder: Mapping[str, object] = field(default_factory=dict)
    lock_dir: Path | None = None
    database: str | None = None
    _created_database: bool = False
    _used_group: bool = False
    _node_key: str = "id"

    def prepare(self) -> None:
        """Check that the server supports the strategy; create this worker's database."""
        reason: str | None = None
        if self.strategy == "database":
            reason = databases_unsupported_reason(self.driver)
        elif self.strategy == "rollback":
            reason = rollback_unsupported_reason(self.driver, self.new_name(NAME_PREFIX + "probe"))
        if reason is not None:
            raise StrategyUnsupported(
                f"--testfleet-neo4j-strategy={self.strategy} does not work with the server at "
                f"{self.connection.uri}: {reason}. Use {OTHER_STRATEGIES} instead (or set "
                "TESTFLEET_NEO4J_STRATEGY)."
            )
        self._node_key = self._pick_node_key()
        if self.strategy == "database":
            import neo4j.exceptions

            self.database = self.new_name(NAME_PREFIX)
            try:
                run_query(
                    self.driver, f"CREATE DATABASE `{self.database}` IF NOT EXISTS WAIT", "system"
                )
            except neo4j.exceptions.Neo4jError as exc:
                raise StrategyUnsupported(
                    f"--testfleet-neo4j-strategy=database could not create the database "
                    f"{self.database} on {self.connection.uri}: {_short(exc)}. The user needs "
                    f"the CREATE DATABASE privilege; or use {OTHER_STRATEGIES}."
                ) from None
            self._created_database = True

    def _pick_node_key(self) -> str:
        """``elementId`` where the server has it (Neo4j 5), else ``id`` (FalkorDB, Neo4j 4)."""
        import neo4j.exceptions

        try:
            run_query(self.driver, "RETURN elementId(null) AS key")
        except neo4j.exceptions.Neo4jError:
            return "id"
        return "elementId"

    def close(self) -> None:
        """Drop this worker's database, if it made one; remove the free `group` lock file."""
        if self._used_group:
            self._used_group = False
            # Its name follows the URI, and a server on a new port each run would leave
            # one directory per run. Another holder keeps its file; the next one remakes it.
            group_pool(self.connection.uri, self.lock_dir).remove_unused()
        if self._created_database and self.database is not None:
            self._created_database = False
            run_query(self.driver, f"DROP DATABASE `{self.database}` IF EXISTS", "system")

    def wipe(self, database: str | None = None) -> None:
        run_query(self.driver, "MATCH (n) DETACH DELETE n", database)

    def outside(self, label: str) -> dict[str, list[str]]:
        """The nodes of the default database outside every isolation but this test's."""
        records = run_query(
            self.driver,
            f"MATCH (n) WHERE NOT any(l IN labels(n) WHERE l STARTS WITH $prefix AND l <> $own) "
            f"RETURN {self._node_key}(n) AS key, labels(n) AS labels",
            prefix=NAME_PREFIX,
            own=label,
        )
        return {str(record["key"]): list(record["labels"]) for record in records}

    def _acquire_group(self, nodeid: str) -> pools.Lease:
        self._used_group = True
        try:
            return group_pool(self.connection.uri, self.lock_dir).acquire(
                {**self.holder, "test": nodeid}
            )
        except pools.PoolTimeout as exc:
            raise StrategyUnsupported(
                f"{nodeid} waited {GROUP_LOCK_TIMEOUT:g} s for the other Neo4j tests on "
                f"{self.connection.uri} (strategy group) to finish: {exc}"
            ) from None

    @contextlib.contextmanager
    def test(
        self, nodeid: str, location: tuple[str, int] | None = None
    ) -> Iterator[Neo4jIsolation]:
        """Isolate one test; afterwards clean up, and warn about nodes it leaked.

        The warning is filed under ``location`` (the test's file and line) when given.
        """
        label = self.new_name(NAME_PREFIX)
        lease = self._acquire_group(nodeid) if self.strategy == "group" else None
        leaked: list[list[str]] = []
        try:
            if self.strategy in ("group", "database"):
                self.wipe(self.database)
            before = None if self.strategy == "group" else self.outside(label)
            session = self.driver.session(database=self.database)
            transaction: neo4j.Transaction | None = None
            try:
                if self.strategy == "rollback":
                    transaction = session.begin_transaction()
                yield Neo4jIsolation(
                    self.strategy, nodeid, label, self.database, session, transaction
                )
            finally:
                self._end(session, transaction)
                if self.strategy == "namespace":
                    run_query(self.driver, f"MATCH (n:`{label}`) DETACH DELETE n")
                elif self.strategy in ("group", "database"):
                    self.wipe(self.database)
            if before is not None:
                after = self.outside(label)
                leaked = [labels for key, labels in after.items() if key not in before]
        finally:
            if lease is not None:
                lease.release()
        if leaked:
            warning = Neo4jLeakWarning(leak_message(nodeid, self.strategy, leaked))
            if location is None:
                warnings.warn(warning, stacklevel=3)
            else:
                warnings.warn_explicit(warning, Neo4jLeakWarning, *location)

    @staticmethod
    def _end(session: neo4j.Session, transaction: neo4j.Transaction | None) -> None:
        """Roll the test's transaction back (unless the test ended it) and close the session."""
        import neo4j.exceptions

        try:
            if transaction is not None and not transaction.closed():
                # A transaction that failed inside the test may refuse the rollback; what
                # it left behind is then found by the leak check.
                with contextlib.suppress(neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError):
                    transaction.rollback()
        finally:
            session.close()

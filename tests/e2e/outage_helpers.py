"""Outages without touching the shared servers: a TCP relay in front of PostgreSQL that a test cuts and restores."""

from __future__ import annotations

import socket
import struct
import threading
import time
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.conftest import POSTGRES_URL


class PostgresProxy:
    """Relays 127.0.0.1:<port> to the test PostgreSQL. stop() is "PostgreSQL stopped": every open connection is
    reset and new ones are reset as soon as they arrive; stop(silent=True) takes new connections and never answers
    (a server that hangs); start() is "PostgreSQL is back"."""

    def __init__(self, upstream_url: str = POSTGRES_URL) -> None:
        target = urlsplit(upstream_url)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 5432)
        self._upstream_url = upstream_url
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._silent = False
        self._held: list[socket.socket] = []
        self._closed = False
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._acceptor = threading.Thread(target=self._accept, name="pg-proxy", daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        """The test PostgreSQL's URL, through this relay."""
        parts = urlsplit(self._upstream_url)
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{self.port}"))

    def stop(self, *, silent: bool = False) -> None:
        self._silent = silent
        self._up.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for client, server in pairs:
            _reset(client)
            _reset(server)

    def start(self) -> None:
        self._up.set()
        held, self._held = self._held, []
        for client in held:
            _reset(client)

    def terminate_backends(self) -> int:
        """pg_terminate_backend on every server process behind this relay ("terminating connection due to
        administrator command", as in a restart); answers how many there were once their ends have reached the
        clients, as they have by the time a restarted server is back (pg_terminate_backend only signals)."""
        with self._lock:
            pairs = {server.getsockname()[1]: (client, server) for client, server in self._pairs if server.fileno() != -1}
        if not pairs:
            return 0
        with psycopg.connect(self._upstream_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, client_port FROM pg_stat_activity WHERE client_port = ANY(%s) AND pid <> pg_backend_pid()",
                (list(pairs),),
            ).fetchall()
            for pid, _ in rows:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        ended = [pairs[port] for _, port in rows]
        deadline = time.monotonic() + 10
        while any(pair in self._pairs for pair in ended) and time.monotonic() < deadline:
            time.sleep(0.005)
        return len(rows)

    def close(self) -> None:
        self._closed = True
        self.stop()
        self.start()
        self._listener.close()

    def __enter__(self) -> PostgresProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                if self._silent:
                    self._held.append(client)
                else:
                    _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.add((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink, (client, server)), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, pair: tuple[socket.socket, socket.socket]) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        _reset(source)
        _reset(sink)
        with self._lock:
            self._pairs.discard(pair)


def _reset(sock: socket.socket) -> None:
    """Closes at once, as a stopped server's host does. shutdown() first: closing a socket another thread is
    reading from would neither wake that thread nor tell the peer."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass

"""Small real servers on 127.0.0.1 for the failures no broker produces on demand.

Each listens on an ephemeral port, serves every connection in its own thread,
and stops (closing every socket) when its ``with`` block ends. Every wait is
bounded.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from mqtt_tls_probe.dev.pki import CertAndKey

from .helpers import write_pem

Handler = Callable[[socket.socket, threading.Event], None]
_HOLD_LIMIT = 30.0  # no connection is held longer than this, whatever happens


class TcpServer:
    """A loopback TCP server running ``handler(connection, stopping)`` per connection."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._handler = handler
        self._stopping = threading.Event()
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self.accepted = 0

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self._connections.append(conn)
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._handler(conn, self._stopping)

    def __enter__(self) -> TcpServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._acceptor.join(5)
        self._listener.close()
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.close()
        for worker in self._threads:
            worker.join(5)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# --- handlers -------------------------------------------------------------------------


def hold(conn: socket.socket, stopping: threading.Event) -> None:
    """Accept and say nothing until the server stops."""
    stopping.wait(_HOLD_LIMIT)
    del conn


def close_at_once(conn: socket.socket, stopping: threading.Event) -> None:
    del stopping
    conn.close()


def answer_http(conn: socket.socket, stopping: threading.Event) -> None:
    """Reply to whatever arrives like an HTTP server that does not understand it."""
    conn.settimeout(5)
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    stopping.wait(0.5)
    conn.close()


def tls_handler(context: ssl.SSLContext, after: Handler = hold) -> Handler:
    """Complete a server-side TLS handshake (errors end the connection), then ``after``."""

    def handle(conn: socket.socket, stopping: threading.Event) -> None:
        conn.settimeout(10)
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        with tls:
            after(tls, stopping)

    return handle


def write_chain(directory: Path, chain: Sequence[CertAndKey]) -> tuple[Path, Path]:
    """Files for a server that sends ``chain`` (leaf first): (certificates, key)."""
    cert_file = directory / "tls-server-chain.pem"
    key_file = directory / "tls-server.key"
    write_pem(cert_file, *chain)
    key_file.write_bytes(chain[0].key_pem())
    return cert_file, key_file


def server_context(
    cert_file: Path,
    key_file: Path,
    *,
    max_version: ssl.TLSVersion | None = None,
    client_ca: Path | None = None,
) -> ssl.SSLContext:
    """A TLS server context; ``client_ca`` makes it require client certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    if max_version is not None:
        context.maximum_version = max_version
    if client_ca is not None:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A listening port whose accept queue is full: further SYNs go unanswered."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # Linux queues backlog+1; extra attempts just time out
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.settimeout(0.2)
            with contextlib.suppress(OSError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (containers often run without IPv6)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

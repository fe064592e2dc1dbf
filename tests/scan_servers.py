"""Handlers for ``servers.TcpServer`` that only a scan needs: a handshake that never ends,
and a proxy that refuses every third TLS connection.

Every wait is bounded: by the server's ``stopping`` event, a socket timeout, or both.
"""

from __future__ import annotations

import select
import socket
import threading

_DRIP = 0.1  # seconds between the bytes of a handshake that never ends
_PUMP_LIMIT = 30.0  # no proxied connection lasts longer
_SLOW_REFUSAL = 0.5


def dribble(conn: socket.socket, stopping: threading.Event) -> None:
    """Announce a 16 KiB TLS record after the ClientHello, then send one byte of it per 0.1 s.

    Each byte arrives well within any per-read timeout, so only a deadline over
    the whole handshake (or the target) ends it: 16 KiB would take 27 minutes.
    """
    conn.settimeout(5)
    conn.recv(4096)
    conn.sendall(b"\x16\x03\x03\x40\x00")
    while not stopping.wait(_DRIP):
        conn.sendall(b"\x00")


class EveryThirdRefused:
    """Closes every third TLS connection at once; forwards the others to ``backend_port``.

    Only connections that start with a TLS record count: the probe's cleartext
    look at a port that closed on it (an MQTT CONNECT) is closed uncounted.
    """

    def __init__(self, backend_port: int) -> None:
        self.backend_port = backend_port
        self.tls_connections = 0
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket, stopping: threading.Event) -> None:
        conn.settimeout(5)
        first = conn.recv(4096)
        if not first.startswith(b"\x16"):
            conn.close()
            return
        with self._lock:
            self.tls_connections += 1
            refused = self.tls_connections % 3 == 0
        if refused:
            conn.close()
            return
        with socket.create_connection(("127.0.0.1", self.backend_port), timeout=5) as backend:
            for sock in (conn, backend):  # small MQTT packets: no Nagle delay on the way
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            backend.sendall(first)
            _pump(conn, backend, stopping)
        conn.close()


def _pump(a: socket.socket, b: socket.socket, stopping: threading.Event) -> None:
    peers = {a: b, b: a}
    waited = 0.0
    while not stopping.is_set() and waited < _PUMP_LIMIT:
        readable, _, _ = select.select(list(peers), [], [], 0.1)
        waited += 0.1 if not readable else 0.0
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)


def refuses_v5_then_silent(conn: socket.socket, stopping: threading.Event) -> None:
    """After TLS: refuse an MQTT 5 CONNECT after 0.5 s (as a slow 3.1.1-only broker would),
    then ignore the 3.1.1 CONNECT of the retry.

    The retry waits a second time inside the mqtt stage, past the time the
    stage was given: only the target deadline, enforced from outside, ends it in time.
    """
    conn.settimeout(5)
    connect = conn.recv(4096)
    name = connect.find(b"MQTT")
    if name >= 0 and connect[name + 4 : name + 5] == b"\x05":
        stopping.wait(_SLOW_REFUSAL)
        conn.sendall(b"\x20\x02\x00\x01")  # CONNACK, return code 1: unacceptable version
        return
    stopping.wait(_PUMP_LIMIT)

"""A TLS MQTT server scripted per test: the broker that breaks the protocol on purpose.

A script is a function of one ``Peer`` (the client's connection, seen from the
server) that reads what the client sends and writes whatever bytes the test
needs: malformed packets, a CONNACK that declares 256 MB, a PUBLISH flood, a
drop right after an MQTT 5 CONNECT. It runs after ``servers.tls_handler``'s
handshake, one thread per connection; every read and write is bounded by a
socket timeout, and a flood stops when the server stops.

The wire format follows OASIS MQTT 5.0 and 3.1.1, sections 2 and 3.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mqtt_tls_probe.dev.pki import PkiFiles

from .servers import Handler, TcpServer, server_context, tls_handler

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
UNSUBSCRIBE, PINGREQ, DISCONNECT = 10, 12, 14
_IO_TIMEOUT = 5.0  # no single read or write of a script waits longer
_FLOOD_LIMIT = 30.0  # no flood lasts longer, whatever the client does


@dataclass(frozen=True)
class Packet:
    """A packet the client sent: its type, the flags of its first byte, its body."""

    kind: int
    flags: int
    body: bytes

    @property
    def protocol_level(self) -> int:
        """A CONNECT's protocol level: 4 for MQTT 3.1.1, 5 for MQTT 5."""
        name_length = int.from_bytes(self.body[:2], "big")
        return self.body[2 + name_length]

    @property
    def packet_id(self) -> int:
        """The packet identifier of a SUBSCRIBE or UNSUBSCRIBE."""
        return int.from_bytes(self.body[:2], "big")


class Peer:
    """One client connection, seen from the server."""

    def __init__(self, conn: socket.socket, stopping: threading.Event) -> None:
        self.conn = conn
        self.stopping = stopping
        conn.settimeout(_IO_TIMEOUT)

    def read_packet(self) -> Packet | None:
        """The next packet, or None once the client has closed the connection."""
        try:
            first = self._read(1)
            length, shift = 0, 0
            while True:
                byte = self._read(1)[0]
                length += (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            return Packet(first[0] >> 4, first[0] & 0x0F, self._read(length))
        except (OSError, EOFError):
            return None

    def expect(self, kind: int) -> Packet:
        """Read packets until one of ``kind`` (PINGREQs and acknowledgements may come first)."""
        while (packet := self.read_packet()) is not None:
            if packet.kind == kind:
                return packet
        raise EOFError(f"the client closed the connection before packet type {kind}")

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def send_raw_record(self, data: bytes) -> None:
        """Bytes on the TCP connection under TLS: the client's TLS layer reads them as a record."""
        with socket.socket(fileno=self.conn.fileno()) as raw:
            try:
                raw.sendall(data)
            finally:
                raw.detach()  # the TLS socket still owns the descriptor

    def drain(self) -> None:
        """Read and drop whatever the client sends, in the background, until it closes."""

        def read_all() -> None:
            while not self.stopping.is_set() and self.read_packet() is not None:
                pass

        threading.Thread(target=read_all, daemon=True).start()

    def flood(self, make: Callable[[int], bytes]) -> int:
        """Send ``make(1)``, ``make(2)``... until the client stops reading or closes; the count.

        Numbers cycle through 1-65535, so each can be a packet identifier.
        """
        sent = 0
        deadline = time.monotonic() + _FLOOD_LIMIT
        with contextlib.suppress(OSError):
            while not self.stopping.is_set() and time.monotonic() < deadline:
                burst = b"".join(make(1 + (sent + i) % 65535) for i in range(64))
                self.conn.sendall(burst)
                sent += 64
        return sent

    def hold(self, seconds: float = _IO_TIMEOUT) -> None:
        """Keep the connection open, reading nothing, until the server stops or ``seconds``."""
        self.stopping.wait(seconds)

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.conn.recv(count - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data


Script = Callable[[Peer], None]


def scripted(script: Script) -> Handler:
    def handle(conn: socket.socket, stopping: threading.Event) -> None:
        script(Peer(conn, stopping))

    return handle


@contextlib.contextmanager
def hostile_broker(pki: PkiFiles, script: Script) -> Iterator[TcpServer]:
    """A TLS listener with ``pki``'s server certificate that runs ``script`` per connection."""
    context = server_context(pki.server_cert, pki.server_key)
    with TcpServer(tls_handler(context, after=scripted(script))) as server:
        yield server


# --- the wire: packets as a broker sends them ---------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + varint(len(body)) + body


def utf8(text: bytes) -> bytes:
    return len(text).to_bytes(2, "big") + text


def connack(code: int = 0, properties: bytes = b"", *, v5: bool = True) -> bytes:
    """A CONNACK: MQTT 5 with ``properties`` (the block's content), or the 3.1.1 form."""
    if not v5:
        return packet(0x20, bytes([0, code]))
    return packet(0x20, bytes([0, code]) + varint(len(properties)) + properties)


def connack_for(connect: Packet, code: int = 0) -> bytes:
    """The accepting (or refusing) CONNACK in the client's own version."""
    return connack(code, v5=connect.protocol_level == 5)


def suback(packet_id: int, codes: bytes, *, v5: bool = True) -> bytes:
    return packet(0x90, packet_id.to_bytes(2, "big") + (b"\x00" if v5 else b"") + codes)


def publish(
    topic: bytes, payload: bytes, qos: int, packet_id: int = 1, *, v5: bool = True
) -> bytes:
    ident = packet_id.to_bytes(2, "big") if qos else b""
    return packet(0x30 | qos << 1, utf8(topic) + ident + (b"\x00" if v5 else b"") + payload)


def reason_string(text: bytes) -> bytes:
    """A Reason String property (0x1F), ``text`` as raw bytes (valid UTF-8 or not)."""
    return b"\x1f" + utf8(text)


def subscribed(peer: Peer) -> tuple[Packet, Packet]:
    """CONNECT -> CONNACK accepted, then SUBSCRIBE: the round trip's start. (CONNECT, SUBSCRIBE)."""
    connect = peer.expect(CONNECT)
    peer.send(connack_for(connect))
    return connect, peer.expect(SUBSCRIBE)

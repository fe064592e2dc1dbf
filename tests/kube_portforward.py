"""The server side of the Kubernetes port-forward protocol, for the suite's API server.

What the official client speaks (``kubernetes/stream/ws_client.py``,
``PortForward``): a WebSocket upgrade of
``GET /api/v1/namespaces/NS/pods/NAME/portforward?ports=P`` with the
subprotocol ``v4.channel.k8s.io`` (or v5); then binary frames whose first byte
is the channel: channel 0 carries the port's data, channel 1 its errors. The
server opens each channel with a frame holding the port number (two bytes,
little-endian) and nothing else. A text on channel 1 is an error the client
reports, after which the client closes the forward.

The forward connects to a real local server (the "pod"), so a probe through
it is a probe of that server.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import select
import socket
import struct
from collections.abc import Callable

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
SUBPROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_BINARY, _CLOSE, _PING = 0x2, 0x8, 0x9
_MAX_FRAME = 1 << 20
_IDLE_LIMIT = 30.0  # seconds without traffic before the test server gives up


def accept_key(key: str) -> str:
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


def choose_subprotocol(offered: str) -> str | None:
    names = [name.strip() for name in offered.split(",")]
    return next((name for name in SUBPROTOCOLS if name in names), None)


def frame(payload: bytes, opcode: int = _BINARY) -> bytes:
    """A server frame (unmasked, RFC 6455 section 5.2)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        return head + bytes([size]) + payload
    if size < 1 << 16:
        return head + bytes([126]) + struct.pack("!H", size) + payload
    return head + bytes([127]) + struct.pack("!Q", size) + payload


class FrameReader:
    """Client frames (masked) from a socket, buffered here; ``pending`` says one is waiting."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._buffer = b""

    def pending(self) -> bool:
        tls_pending = getattr(self._connection, "pending", lambda: 0)()
        return bool(self._buffer) or tls_pending > 0

    def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            chunk = self._connection.recv(65536)
            if not chunk:
                return False
            self._buffer += chunk
        return True

    def _take(self, size: int) -> bytes:
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read(self) -> tuple[int, bytes] | None:
        """One frame as (opcode, payload); None at the end of the stream or on a bad frame."""
        if not self._fill(2):
            return None
        opcode, size, masked = (
            self._buffer[0] & 0x0F,
            self._buffer[1] & 0x7F,
            self._buffer[1] & 0x80,
        )
        header = 2 + {126: 2, 127: 8}.get(size, 0) + (4 if masked else 0)
        if not self._fill(header):
            return None
        if size == 126:
            size = struct.unpack("!H", self._buffer[2:4])[0]
        elif size == 127:
            size = struct.unpack("!Q", self._buffer[2:10])[0]
        if size > _MAX_FRAME or not self._fill(header + size):
            return None
        mask = self._buffer[header - 4 : header] if masked else b"\0\0\0\0"
        data = self._take(header + size)[header:]
        return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def channel_open(channel: int, port: int) -> bytes:
    return frame(bytes([channel]) + struct.pack("<H", port))


def serve_forward(
    connection: socket.socket, port: int, upstream: Callable[[], socket.socket | str]
) -> None:
    """Run one port-forward stream on ``connection``, after the 101 answer.

    ``upstream`` connects to the pod's port, or returns an error text that is
    sent on the error channel (as the kubelet does when the port is closed).
    """
    connection.sendall(channel_open(0, port) + channel_open(1, port))
    target = upstream()
    if isinstance(target, str):
        connection.sendall(frame(b"\x01" + target.encode()))
        return
    with target:
        _pump(FrameReader(connection), connection, target)


def _pump(frames: FrameReader, connection: socket.socket, target: socket.socket) -> None:
    while True:
        ready = [connection] if frames.pending() else []
        if not ready:
            ready, _, _ = select.select([connection, target], [], [], _IDLE_LIMIT)
            if not ready:
                return  # idle: the test is over
        if target in ready:
            data = target.recv(65536)
            if not data:
                return
            connection.sendall(frame(b"\x00" + data))
        if connection in ready and not _relay(frames, connection, target):
            return


def _relay(frames: FrameReader, connection: socket.socket, target: socket.socket) -> bool:
    """Handle one client frame; False when the stream is over."""
    received = frames.read()
    if received is None:
        return False
    opcode, payload = received
    if opcode == _CLOSE:
        with contextlib.suppress(OSError):
            connection.sendall(frame(b"", _CLOSE))
        return False
    if opcode == _BINARY and payload[:1] == b"\x00" and len(payload) > 1:
        target.sendall(payload[1:])
    elif opcode == _PING:
        connection.sendall(frame(payload, 0xA))
    return True

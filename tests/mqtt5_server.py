"""A small MQTT 5 server for what no real broker here can do on demand: K8S-SAT
authentication (with an AUTH exchange), chosen CONNACK codes, refused SUBSCRIBEs,
messages never delivered, silence, and dropped connections.

It speaks just enough MQTT 5 (OASIS mqtt-v5.0, sections 2 and 3) for one client
per connection, over the TLS connection ``servers.tls_handler`` hands it.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from .servers import Handler

K8S_SAT = "K8S-SAT"
# Property identifiers (section 2.2.2.2).
_AUTH_METHOD = 0x15
_AUTH_DATA = 0x16
_MAXIMUM_QOS = 0x24
_RECEIVE_MAXIMUM = 0x21
_TOPIC_ALIAS_MAXIMUM = 0x22
_ASSIGNED_CLIENT_ID = 0x12
_CONTINUE_AUTHENTICATION = 0x18


@dataclass
class Behaviour:
    """What the server does; the defaults make a well-behaved broker."""

    token: bytes | None = None  # the K8S-SAT token it accepts; None: no auth needed
    bad_token_code: int = 0x87  # CONNACK for any other token (0x86 or 0x87)
    challenge: bool = False  # send an AUTH packet before accepting the token
    connack_code: int = 0x00  # CONNACK reason code when authentication passes
    silent: bool = False  # never answer CONNECT
    drop_after_connect: bool = False  # close the connection after reading CONNECT
    suback_code: int = 0x01  # granted QoS 1, or a failure code (0x80 and above)
    disconnect_on_subscribe: int | None = None  # send DISCONNECT with this code instead
    deliver: bool = True  # deliver published messages back to the subscriber
    seen: list[str] = field(default_factory=list)  # packet names, for assertions
    auth_replies: list[bytes] = field(default_factory=list)  # data the client sent in AUTH


def mqtt5_session(behaviour: Behaviour) -> Handler:
    def handle(conn: socket.socket, stopping: threading.Event) -> None:
        conn.settimeout(10)
        _Session(conn, behaviour, stopping).run()

    return handle


class _Session:
    def __init__(self, conn: socket.socket, behaviour: Behaviour, stopping: threading.Event):
        self.conn = conn
        self.b = behaviour
        self.stopping = stopping
        self.subscriptions: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            packet = self._read_packet()
            if packet is None:
                return
            kind, flags, body = packet
            handler = {
                1: self._connect,
                3: self._publish,
                4: self._ignore,  # PUBACK for a message delivered to the client
                8: self._subscribe,
                10: self._unsubscribe,
                12: self._ping,
                14: self._disconnect,
                15: self._auth,
            }.get(kind)
            if handler is None or handler(flags, body) is False:
                return

    # --- packets --------------------------------------------------------------------

    def _connect(self, _flags: int, body: bytes) -> bool:
        self.b.seen.append("CONNECT")
        properties = _connect_properties(body)
        if self.b.drop_after_connect:
            return False
        if self.b.silent:
            self.stopping.wait(30)
            return False
        method = properties.get(_AUTH_METHOD)
        if self.b.token is not None:
            if method != K8S_SAT.encode():
                self._send(0x20, bytes([0, 0x8C, 0]))  # Bad authentication method
                return False
            if properties.get(_AUTH_DATA) != self.b.token:
                self._send(0x20, bytes([0, self.b.bad_token_code, 0]))
                return False
            if self.b.challenge:
                props = _property_string(_AUTH_METHOD, K8S_SAT.encode())
                self._send(0xF0, bytes([_CONTINUE_AUTHENTICATION]) + _varint(len(props)) + props)
                return True  # CONNACK follows the client's AUTH
        return self._connack()

    def _connack(self) -> bool:
        props = bytes([_MAXIMUM_QOS, 1, _RECEIVE_MAXIMUM, 0, 20, _TOPIC_ALIAS_MAXIMUM, 0, 5])
        props += _property_string(_ASSIGNED_CLIENT_ID, b"assigned-by-server")
        self._send(0x20, bytes([0, self.b.connack_code]) + _varint(len(props)) + props)
        return self.b.connack_code < 0x80

    def _auth(self, _flags: int, body: bytes) -> bool:
        self.b.seen.append("AUTH")
        properties = _properties(body[1:])[0] if len(body) > 1 else {}
        self.b.auth_replies.append(properties.get(_AUTH_DATA, b""))
        if properties.get(_AUTH_DATA) != self.b.token:
            self._send(0x20, bytes([0, self.b.bad_token_code, 0]))
            return False
        return self._connack()

    def _subscribe(self, _flags: int, body: bytes) -> bool:
        self.b.seen.append("SUBSCRIBE")
        if self.b.disconnect_on_subscribe is not None:
            self._send(0xE0, bytes([self.b.disconnect_on_subscribe, 0]))
            return False
        packet_id = body[:2]
        _, offset = _properties(body[2:])
        topic, _ = _string(body, 2 + offset)
        if self.b.suback_code < 0x80:
            self.subscriptions.append(topic.decode())
        self._send(0x90, packet_id + b"\x00" + bytes([self.b.suback_code]))
        return True

    def _publish(self, flags: int, body: bytes) -> bool:
        self.b.seen.append("PUBLISH")
        topic, at = _string(body, 0)
        qos = (flags >> 1) & 3
        packet_id = body[at : at + 2] if qos else b""
        at += 2 if qos else 0
        _, used = _properties(body[at:])
        payload = body[at + used :]
        if qos:
            self._send(0x40, packet_id + b"\x00\x00")  # PUBACK, Success, no properties
        if self.b.deliver and topic.decode() in self.subscriptions:
            out = _utf8(topic) + b"\x00\x01" + b"\x00" + payload
            self._send(0x32, out)  # QoS 1, packet id 1
        return True

    def _unsubscribe(self, _flags: int, body: bytes) -> bool:
        self._send(0xB0, body[:2] + b"\x00\x00")
        return True

    def _ping(self, _flags: int, _body: bytes) -> bool:
        self._send(0xD0, b"")
        return True

    def _disconnect(self, _flags: int, _body: bytes) -> bool:
        self.b.seen.append("DISCONNECT")
        return False

    def _ignore(self, _flags: int, _body: bytes) -> bool:
        return True

    # --- wire -------------------------------------------------------------------------

    def _send(self, header: int, body: bytes) -> None:
        self.conn.sendall(bytes([header]) + _varint(len(body)) + body)

    def _read_packet(self) -> tuple[int, int, bytes] | None:
        try:
            first = self._read(1)
            length, multiplier = 0, 1
            while True:
                byte = self._read(1)[0]
                length += (byte & 0x7F) * multiplier
                if not byte & 0x80:
                    break
                multiplier *= 128
            return first[0] >> 4, first[0] & 0x0F, self._read(length)
        except (OSError, EOFError):
            return None

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.conn.recv(count - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, multiplier = 0, 1
    while True:
        byte = data[at]
        at += 1
        value += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            return value, at
        multiplier *= 128


def _utf8(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def _string(data: bytes, at: int) -> tuple[bytes, int]:
    size = int.from_bytes(data[at : at + 2], "big")
    return data[at + 2 : at + 2 + size], at + 2 + size


def _property_string(identifier: int, value: bytes) -> bytes:
    return bytes([identifier]) + _utf8(value)


def _properties(data: bytes) -> tuple[dict[int, bytes], int]:
    """The string/binary properties of a property block, and the block's size."""
    size, at = _read_varint(data, 0)
    end = at + size
    found: dict[int, bytes] = {}
    while at < end:
        identifier = data[at]
        at += 1
        if identifier in (_AUTH_METHOD, _AUTH_DATA, 0x03, 0x08, 0x09, 0x11, 0x1F):
            if identifier == 0x11:  # session expiry interval: four bytes
                at += 4
                continue
            value, at = _string(data, at)
            found[identifier] = value
        elif identifier in (0x21, 0x22, 0x23):  # two-byte integers
            at += 2
        elif identifier == 0x27:  # four-byte integer
            at += 4
        else:
            at += 1
    return found, end


def _connect_properties(body: bytes) -> dict[int, bytes]:
    _, at = _string(body, 0)  # protocol name
    at += 1 + 1 + 2  # level, flags, keep alive
    return _properties(body[at:])[0]

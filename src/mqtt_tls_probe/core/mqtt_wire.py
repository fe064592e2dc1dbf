"""What a broker may send, checked on the wire: packet framing, sizes, and each packet's form.

paho-mqtt is the protocol engine (``adapters/mqtt.py``); this module decides,
before paho reads a packet, whether the broker kept the protocol, and says
why not in an operator's words (paho's own messages can be a bare ``3``).

Rules:
- pure functions of bytes: no socket, no paho, no clock;
- each check returns ``None`` (the packet is well formed) or one phrase naming
  the packet and the problem, e.g. ``"a CONNACK with the reason code 0x03,
  which MQTT 5 does not define"``; the adapter turns it into ``malformed_packet``;
- the rules are those of OASIS MQTT 3.1.1 (sections 2 and 3) and MQTT 5.0
  (sections 1.5, 2 and 3), for the packets a server sends to a client.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple

MAX_LENGTH_BYTES = 4  # a remaining length takes at most four bytes (MQTT 5 1.5.5)


class PacketType(IntEnum):
    """The high nibble of a packet's first byte (MQTT 5 2.1.2)."""

    RESERVED = 0
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


def packet_type(first_byte: int) -> PacketType:
    return PacketType(first_byte >> 4)


def packet_name(first_byte: int) -> str:
    return packet_type(first_byte).name


def _article(name: str) -> str:
    return "an" if name[0] in "AEIOU" else "a"


def named(first_byte: int) -> str:
    """``a CONNACK``, ``an AUTH``: the packet, as a phrase begins."""
    name = packet_name(first_byte)
    return f"{_article(name)} {name}"


# --- framing: packet boundaries and sizes, before the body is read -------------------


class Refusal(NamedTuple):
    """A packet refused at its fixed header: which, whether for its size, and why."""

    packet: PacketType
    oversized: bool
    text: str  # "a CONNACK of 268435460 bytes, more than the 1048576 bytes this client accepts"


class FrameScanner:
    """Follows the packet boundaries of the byte stream a broker sends.

    Fed every chunk in order, it reads each fixed header (MQTT 5 2.1) and
    refuses a packet as soon as its header is complete: a remaining length
    encoded in more than four bytes, or a packet larger than ``limit`` bytes
    (fixed header included, as MQTT 5's Maximum Packet Size counts). So the
    body of a refused packet is never read.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._first: int | None = None  # the first byte of the packet being read
        self._length = 0
        self._length_bytes = 0
        self._body_left = 0

    def feed(self, data: bytes) -> Refusal | None:
        """Account for ``data``; the refused packet, or None."""
        at = 0
        while at < len(data):
            if self._body_left:
                taken = min(self._body_left, len(data) - at)
                self._body_left -= taken
                at += taken
                continue
            byte = data[at]
            at += 1
            if self._first is None:
                self._first, self._length, self._length_bytes = byte, 0, 0
                continue
            problem = self._length_byte(byte)
            if problem is not None:
                return problem
        return None

    def _length_byte(self, byte: int) -> Refusal | None:
        first = self._first
        assert first is not None  # noqa: S101 (called only inside a header)
        self._length += (byte & 0x7F) << (7 * self._length_bytes)
        self._length_bytes += 1
        if byte & 0x80:
            if self._length_bytes == MAX_LENGTH_BYTES:
                text = f"{named(first)} whose remaining length runs past four bytes"
                return Refusal(packet_type(first), oversized=False, text=text)
            return None
        size = 1 + self._length_bytes + self._length
        if size > self.limit:
            limit = f"more than the {self.limit} bytes this client accepts"
            text = f"{named(first)} of {size} bytes, {limit}"
            return Refusal(packet_type(first), oversized=True, text=text)
        self._body_left, self._first = self._length, None
        return None


# --- MQTT 5 properties (section 2.2.2.2) ----------------------------------------------

_BYTE, _INT16, _INT32, _VARINT, _UTF8, _BINARY, _PAIR = range(7)
_WIDTH = {_BYTE: 1, _INT16: 2, _INT32: 4}
_T = PacketType
_ACKS = (_T.PUBACK, _T.PUBREC, _T.PUBREL, _T.PUBCOMP)


class _Property(NamedTuple):
    name: str
    kind: int
    packets: tuple[PacketType, ...]
    valid: Callable[[int], bool] | None = None  # for integers: the values allowed


def _boolean(value: int) -> bool:
    return value in (0, 1)


def _positive(value: int) -> bool:
    return value > 0


def _no_alias(value: int) -> bool:
    # This client sends no Topic Alias Maximum (so 0): a server may send no alias at all.
    del value
    return False


# The properties a server may send, by identifier. The client-only ones
# (Will Delay Interval, Request Problem/Response Information) are left out:
# a broker sending one is as wrong as one sending an unknown identifier.
PROPERTIES: dict[int, _Property] = {
    0x01: _Property("Payload Format Indicator", _BYTE, (_T.PUBLISH,), _boolean),
    0x02: _Property("Message Expiry Interval", _INT32, (_T.PUBLISH,)),
    0x03: _Property("Content Type", _UTF8, (_T.PUBLISH,)),
    0x08: _Property("Response Topic", _UTF8, (_T.PUBLISH,)),
    0x09: _Property("Correlation Data", _BINARY, (_T.PUBLISH,)),
    0x0B: _Property("Subscription Identifier", _VARINT, (_T.PUBLISH,), _positive),
    0x11: _Property("Session Expiry Interval", _INT32, (_T.CONNACK, _T.DISCONNECT)),
    0x12: _Property("Assigned Client Identifier", _UTF8, (_T.CONNACK,)),
    0x13: _Property("Server Keep Alive", _INT16, (_T.CONNACK,)),
    0x15: _Property("Authentication Method", _UTF8, (_T.CONNACK, _T.AUTH)),
    0x16: _Property("Authentication Data", _BINARY, (_T.CONNACK, _T.AUTH)),
    0x1A: _Property("Response Information", _UTF8, (_T.CONNACK,)),
    0x1C: _Property("Server Reference", _UTF8, (_T.CONNACK, _T.DISCONNECT)),
    0x1F: _Property(
        "Reason String",
        _UTF8,
        (_T.CONNACK, *_ACKS, _T.SUBACK, _T.UNSUBACK, _T.DISCONNECT, _T.AUTH),
    ),
    0x21: _Property("Receive Maximum", _INT16, (_T.CONNACK,), _positive),
    0x22: _Property("Topic Alias Maximum", _INT16, (_T.CONNACK,)),
    0x23: _Property("Topic Alias", _INT16, (_T.PUBLISH,), _no_alias),
    0x24: _Property("Maximum QoS", _BYTE, (_T.CONNACK,), _boolean),
    0x25: _Property("Retain Available", _BYTE, (_T.CONNACK,), _boolean),
    0x26: _Property("User Property", _PAIR, tuple(_T)),
    0x27: _Property("Maximum Packet Size", _INT32, (_T.CONNACK,), _positive),
    0x28: _Property("Wildcard Subscription Available", _BYTE, (_T.CONNACK,), _boolean),
    0x29: _Property("Subscription Identifier Available", _BYTE, (_T.CONNACK,), _boolean),
    0x2A: _Property("Shared Subscription Available", _BYTE, (_T.CONNACK,), _boolean),
}
_REPEATABLE = frozenset({0x26, 0x0B})  # User Property; Subscription Identifier in PUBLISH

# Reason codes a server may send, per packet (MQTT 5 2.4 and each packet's section).
_V5_CODES: dict[PacketType, frozenset[int]] = {
    _T.CONNACK: frozenset(
        {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C}
        | {0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F}
    ),
    _T.PUBACK: frozenset({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}),
    _T.PUBREC: frozenset({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}),
    _T.PUBREL: frozenset({0x00, 0x92}),
    _T.PUBCOMP: frozenset({0x00, 0x92}),
    _T.SUBACK: frozenset({0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2}),
    _T.UNSUBACK: frozenset({0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91}),
    _T.DISCONNECT: frozenset(
        {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93}
        | {0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2}
    ),
    _T.AUTH: frozenset({0x00, 0x18, 0x19}),
}
_V311_SUBACK_CODES = frozenset({0x00, 0x01, 0x02, 0x80})
V311_CONNACK_CODES = range(6)


class _Malformed(Exception):
    """Raised inside the readers below; ``check_packet`` turns it into its phrase."""


class _Reader:
    """A cursor over a packet's body that raises ``_Malformed`` instead of running past it."""

    def __init__(self, body: bytes, packet: PacketType) -> None:
        self.body = body
        self.at = 0
        self.packet = packet
        self.what = f"{_article(packet.name)} {packet.name}"  # as a phrase: "a CONNACK"

    @property
    def left(self) -> int:
        return len(self.body) - self.at

    def take(self, count: int, field: str) -> bytes:
        if count > self.left:
            raise _Malformed(f"{self.what} cut short in its {field}")
        chunk = self.body[self.at : self.at + count]
        self.at += count
        return chunk

    def integer(self, width: int, field: str) -> int:
        return int.from_bytes(self.take(width, field), "big")

    def varint(self, field: str) -> int:
        value = 0
        for shift in range(MAX_LENGTH_BYTES):
            byte = self.take(1, field)[0]
            value += (byte & 0x7F) << (7 * shift)
            if not byte & 0x80:
                return value
        raise _Malformed(f"{self.what} whose {field} runs past four bytes")

    def utf8(self, field: str) -> str:
        raw = self.take(self.integer(2, field), field)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Malformed(
                f"{self.what} whose {field} is not valid UTF-8 ({exc.reason})"
            ) from exc
        if "\x00" in text:
            raise _Malformed(f"{self.what} whose {field} holds U+0000, which MQTT forbids")
        return text

    def end(self, after: str) -> None:
        if self.left:
            raise _Malformed(f"{self.what} with {self.left} stray byte(s) after its {after}")


def _properties(reader: _Reader, packet: PacketType) -> None:
    """Read one property block (MQTT 5 2.2.2), checking each property against the table."""
    size = reader.varint("property length")
    block = _Reader(reader.take(size, "properties"), packet)
    seen: set[int] = set()
    while block.left:
        identifier = block.varint("property identifier")
        spec = PROPERTIES.get(identifier)
        if spec is None:
            raise _Malformed(
                f"{block.what} with the unknown property identifier 0x{identifier:02X}"
            )
        if packet not in spec.packets:
            raise _Malformed(
                f"{block.what} carrying {spec.name} (0x{identifier:02X}), "
                f"which does not belong in {packet.name}"
            )
        if identifier in seen and identifier not in _REPEATABLE:
            raise _Malformed(f"{block.what} carrying {spec.name} twice")
        seen.add(identifier)
        _property_value(block, spec)


def _property_value(block: _Reader, spec: _Property) -> None:
    field = f"{spec.name} property"
    if spec.kind in _WIDTH:
        value = block.integer(_WIDTH[spec.kind], field)
    elif spec.kind == _VARINT:
        value = block.varint(field)
    else:
        if spec.kind == _BINARY:
            block.take(block.integer(2, field), field)
        else:
            for _ in range(2 if spec.kind == _PAIR else 1):
                block.utf8(field)
        return
    if spec.valid is not None and not spec.valid(value):
        raise _Malformed(f"{block.what} whose {field} has the invalid value {value}")


def _reason_code(reader: _Reader, version: str) -> int:
    packet = reader.packet
    code = reader.take(1, "reason code")[0]
    allowed = _V5_CODES[packet] if version == "5" else _V311_SUBACK_CODES
    if code not in allowed:
        mqtt = "MQTT 5" if version == "5" else "MQTT 3.1.1"
        raise _Malformed(
            f"{reader.what} with the reason code 0x{code:02X}, which {mqtt} does not define "
            f"for {packet.name}"
        )
    return code


# --- one packet at a time -----------------------------------------------------------------

# The flags of the first byte's low nibble, where they are fixed (MQTT 5 2.1.3).
_FIXED_FLAGS = {t: 0 for t in PacketType if t not in (_T.PUBLISH, _T.PUBREL)} | {_T.PUBREL: 2}
_CLIENT_ONLY = (_T.CONNECT, _T.SUBSCRIBE, _T.UNSUBSCRIBE, _T.PINGREQ)


def check_packet(first_byte: int, body: bytes, version: str) -> str | None:
    """Whether a packet a server sent is well formed: None, or what is wrong with it.

    ``first_byte`` is the fixed header's first byte, ``body`` all that follows
    the remaining length, ``version`` the client's MQTT version ("5" or "3.1.1").
    """
    packet = packet_type(first_byte)
    what = named(first_byte)
    if packet is _T.RESERVED or packet in _CLIENT_ONLY or (packet is _T.AUTH and version != "5"):
        mqtt = "" if packet is _T.RESERVED else f" in MQTT {version}"
        return f"{what} (packet type {int(packet)}), which a server never sends{mqtt}"
    if packet is _T.DISCONNECT and version != "5":
        return f"{what}, which an MQTT 3.1.1 server never sends"
    flags = first_byte & 0x0F
    if packet in _FIXED_FLAGS and flags != _FIXED_FLAGS[packet]:
        required = _FIXED_FLAGS[packet]
        return f"{what} with the header flags 0x{flags:X}, where MQTT requires 0x{required:X}"
    reader = _Reader(body, packet)
    try:
        _CHECKS[packet](reader, flags, version)
    except _Malformed as exc:
        return str(exc)
    return None


def _connack(reader: _Reader, _flags: int, version: str) -> None:
    if version != "5" or len(reader.body) == 2:
        # MQTT 3.1.1 form; an MQTT 3.1.1-only broker answers an MQTT 5 CONNECT
        # this way, with return code 1 (unacceptable protocol version).
        if len(reader.body) != 2:
            raise _Malformed(f"{reader.what} of {len(reader.body)} bytes (MQTT 3.1.1 needs 2)")
        acknowledge, code = reader.body
        if acknowledge & 0xFE:
            raise _Malformed(f"{reader.what} with the reserved flag bits 0x{acknowledge:02X} set")
        if version == "5" and code != 1:
            raise _Malformed(
                f"{reader.what} of 2 bytes (return code {code}): an MQTT 5 CONNACK has a "
                "property length, and only a refusal of the version (1) comes in 3.1.1 form"
            )
        if code not in V311_CONNACK_CODES:
            raise _Malformed(
                f"{reader.what} with the return code {code}, which MQTT 3.1.1 does not define"
            )
        return
    acknowledge = reader.take(1, "acknowledge flags")[0]
    if acknowledge & 0xFE:
        raise _Malformed(f"{reader.what} with the reserved flag bits 0x{acknowledge:02X} set")
    _reason_code(reader, version)
    _properties(reader, _T.CONNACK)
    reader.end("properties")


def _publish(reader: _Reader, flags: int, version: str) -> None:
    qos = (flags >> 1) & 3
    if qos == 3:
        raise _Malformed(f"{reader.what} with QoS 3, which does not exist")
    topic = reader.utf8("topic name")
    if not topic:  # MQTT 5 allows it only with a Topic Alias, which this client never allows
        raise _Malformed(f"{reader.what} with an empty topic name")
    if any(c in topic for c in "+#"):
        raise _Malformed(f"{reader.what} whose topic name {topic!r} holds a wildcard")
    if qos and reader.integer(2, "packet identifier") == 0:
        raise _Malformed(f"{reader.what} at QoS {qos} with the packet identifier 0")
    if version == "5":
        _properties(reader, _T.PUBLISH)


def _acknowledgement(reader: _Reader, _flags: int, version: str) -> None:
    """PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id, then (MQTT 5) a reason code and properties."""
    reader.integer(2, "packet identifier")
    if version != "5":
        reader.end("packet identifier")
        return
    _optional_reason_and_properties(reader, version)


def _suback(reader: _Reader, _flags: int, version: str) -> None:
    reader.integer(2, "packet identifier")
    if version == "5":
        _properties(reader, _T.SUBACK)
    if not reader.left:
        raise _Malformed(f"{reader.what} without any reason code")
    while reader.left:
        _reason_code(reader, version)


def _unsuback(reader: _Reader, _flags: int, version: str) -> None:
    reader.integer(2, "packet identifier")
    if version != "5":
        reader.end("packet identifier")
        return
    _properties(reader, _T.UNSUBACK)
    if not reader.left:
        raise _Malformed(f"{reader.what} without any reason code")
    while reader.left:
        _reason_code(reader, version)


def _pingresp(reader: _Reader, _flags: int, _version: str) -> None:
    reader.end("fixed header")


def _disconnect_or_auth(reader: _Reader, _flags: int, version: str) -> None:
    _optional_reason_and_properties(reader, version)


def _optional_reason_and_properties(reader: _Reader, version: str) -> None:
    """A reason code (0 when absent), then properties (none when absent): MQTT 5 3.4.2.1."""
    if reader.left:
        _reason_code(reader, version)
    if reader.left:
        _properties(reader, reader.packet)
    reader.end("properties")


_CHECKS: dict[PacketType, Callable[[_Reader, int, str], None]] = {
    _T.CONNACK: _connack,
    _T.PUBLISH: _publish,
    **dict.fromkeys(_ACKS, _acknowledgement),
    _T.SUBACK: _suback,
    _T.UNSUBACK: _unsuback,
    _T.PINGRESP: _pingresp,
    _T.DISCONNECT: _disconnect_or_auth,
    _T.AUTH: _disconnect_or_auth,
}


# --- what a well-formed packet still may not say ---------------------------------------------


def publish_qos(first_byte: int) -> int:
    return (first_byte >> 1) & 3


def suback_problem(
    sent_id: int, acked_id: int, codes: list[int], requested_qos: int, topics: int = 1
) -> str | None:
    """Whether a SUBACK answers the SUBSCRIBE sent: its packet id, one code per topic, the QoS."""
    if acked_id != sent_id:
        return f"a SUBACK for the packet identifier {acked_id}, but the SUBSCRIBE had {sent_id}"
    if len(codes) != topics:
        return f"a SUBACK with {len(codes)} reason code(s) for a SUBSCRIBE of {topics} topic(s)"
    granted = [c for c in codes if c < 0x80 and c > requested_qos]
    if granted:
        return f"a SUBACK granting QoS {granted[0]}, more than the QoS {requested_qos} requested"
    return None

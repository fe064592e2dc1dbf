"""``core.mqtt_wire``: the framing and form of what a broker sends, byte by byte.

The end-to-end cases (a hostile server, the probe as a whole) are in
``test_hostile_mqtt.py``; here, the rules themselves, and what real brokers
send passing them (a check stricter than the protocol would fail real brokers).
"""

from __future__ import annotations

import pytest

from mqtt_tls_probe.core.mqtt_wire import (
    FrameScanner,
    PacketType,
    Refusal,
    check_packet,
    suback_problem,
)

from . import hostile_mqtt as w

# --- framing ----------------------------------------------------------------------------------


def test_frames_are_followed_across_any_chunking() -> None:
    stream = w.connack(0) + w.publish(b"t", b"x" * 300, 1) + w.packet(0xD0, b"")
    for size in (1, 2, 3, 7, len(stream)):
        scanner = FrameScanner(1024)
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert [scanner.feed(c) for c in chunks] == [None] * len(chunks)


def test_an_oversized_packet_is_refused_at_its_header_whatever_its_position() -> None:
    scanner = FrameScanner(1024)
    assert scanner.feed(w.connack(0)) is None
    header = b"\x30" + w.varint(2000)  # the body never needs to arrive
    refused = scanner.feed(header)
    assert refused == Refusal(
        PacketType.PUBLISH,
        oversized=True,
        text="a PUBLISH of 2003 bytes, more than the 1024 bytes this client accepts",
    )


def test_the_limit_counts_the_fixed_header() -> None:
    """MQTT 5's Maximum Packet Size is the whole packet: 1 + 2 length bytes + body here."""
    assert FrameScanner(1000 + 3).feed(b"\x30" + w.varint(1000)) is None
    assert FrameScanner(1000 + 2).feed(b"\x30" + w.varint(1000)) is not None


def test_a_remaining_length_of_five_bytes_is_refused() -> None:
    refused = FrameScanner(10**9).feed(b"\x20\x80\x80\x80\x80")
    assert refused is not None
    assert not refused.oversized
    assert refused.text == "a CONNACK whose remaining length runs past four bytes"


# --- what real brokers send passes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "data"),
    [
        # mosquitto 2: CONNACK with Receive Maximum, Topic Alias Maximum and an assigned id.
        ("5", w.connack(0, b"\x21\x00\x14\x22\x00\x0a\x12\x00\x03abc")),
        ("5", w.connack(0x87, w.reason_string(b"not authorized"))),
        ("5", w.connack(1, v5=False)),  # amqtt's answer to an MQTT 5 CONNECT
        ("3.1.1", w.connack(5, v5=False)),
        ("5", w.suback(1, b"\x01")),
        ("3.1.1", w.suback(1, b"\x80", v5=False)),
        ("5", w.packet(0x40, b"\x00\x01")),  # PUBACK, success, no properties
        ("5", w.packet(0x40, b"\x00\x01\x87")),
        ("5", w.packet(0x40, b"\x00\x01\x10\x00")),
        ("5", w.packet(0x62, b"\x00\x01")),  # PUBREL with its fixed flags 0010
        ("5", w.packet(0xB0, b"\x00\x01\x00\x00")),  # UNSUBACK
        ("3.1.1", w.packet(0xB0, b"\x00\x01")),
        ("5", w.publish(b"probe/t", b"payload", 1)),
        ("5", w.publish(b"probe/t", b"", 0)),
        ("3.1.1", w.publish(b"probe/t", b"payload", 1, v5=False)),
        ("5", w.packet(0xE0, b"")),
        ("5", w.packet(0xE0, b"\x8b\x00")),
        ("5", w.packet(0xF0, b"\x18\x0a\x15\x00\x07K8S-SAT")),
        ("5", w.packet(0xD0, b"")),
    ],
)
def test_well_formed_packets_pass(version: str, data: bytes) -> None:
    assert check_packet(data[0], _body(data), version) is None


def _body(data: bytes) -> bytes:
    """What follows the fixed header (the first byte and the remaining length)."""
    at = 1
    while data[at] & 0x80:
        at += 1
    return data[at + 1 :]


# --- and what breaks the protocol does not ------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "data", "said"),
    [
        ("5", w.connack(0, b"\x21\x00\x00"), "Receive Maximum property has the invalid value 0"),
        ("5", w.connack(0, b"\x24\x02"), "Maximum QoS property has the invalid value 2"),
        ("5", w.connack(0, b"\x23\x00\x01"), "Topic Alias (0x23), which does not belong"),
        ("5", w.connack(0, b"\x12\x00\x01a\x12\x00\x01b"), "Assigned Client Identifier twice"),
        ("5", w.connack(0, b"\x12\x00\x05ab"), "cut short in its Assigned Client Identifier"),
        ("5", w.connack(0, w.reason_string(b"a\x00b")), "holds U+0000"),
        ("5", w.packet(0x20, b"\x00\x00\x00\x00"), "1 stray byte(s) after its properties"),
        ("5", w.packet(0x20, b"\x02\x00\x00"), "reserved flag bits 0x02"),
        ("5", w.packet(0x20, b"\x00\x00"), "an MQTT 5 CONNACK has a property length"),
        ("5", w.packet(0x21, b"\x00\x00\x00"), "the header flags 0x1, where MQTT requires 0x0"),
        ("5", w.packet(0x60, b"\x00\x01"), "the header flags 0x0, where MQTT requires 0x2"),
        ("5", w.packet(0x36, b"\x00\x01t\x00\x01\x00"), "a PUBLISH with QoS 3"),
        ("5", w.publish(b"", b"x", 1), "a PUBLISH with an empty topic name"),
        ("5", w.publish(b"a/#", b"x", 0), "holds a wildcard"),
        ("5", w.publish(b"t", b"x", 1, packet_id=0), "the packet identifier 0"),
        ("3.1.1", w.packet(0x40, b"\x00\x01\x00"), "1 stray byte(s) after its packet identifier"),
        ("3.1.1", w.packet(0xE0, b""), "which an MQTT 3.1.1 server never sends"),
        ("3.1.1", w.packet(0xF0, b""), "which a server never sends in MQTT 3.1.1"),
        ("5", w.packet(0x10, b""), "a CONNECT (packet type 1), which a server never sends"),
        ("5", w.packet(0xB0, b"\x00\x01\x00"), "an UNSUBACK without any reason code"),
        ("5", w.packet(0xF0, b"\x05"), "an AUTH with the reason code 0x05"),
        ("5", w.suback(1, b"\x01", v5=False), "cut short in its properties"),
    ],
)
def test_malformed_packets_are_named(version: str, data: bytes, said: str) -> None:
    found = check_packet(data[0], _body(data), version)
    assert found is not None
    assert said in found


def test_suback_must_answer_the_subscribe_sent() -> None:
    assert suback_problem(3, 3, [1], 1) is None
    assert suback_problem(3, 3, [0x87], 1) is None  # a refusal: the round trip reports it
    assert suback_problem(3, 4, [1], 1) == (
        "a SUBACK for the packet identifier 4, but the SUBSCRIBE had 3"
    )
    assert suback_problem(3, 3, [1, 1], 1) == (
        "a SUBACK with 2 reason code(s) for a SUBSCRIBE of 1 topic(s)"
    )
    assert suback_problem(3, 3, [2], 1) == (
        "a SUBACK granting QoS 2, more than the QoS 1 requested"
    )

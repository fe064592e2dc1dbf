"""Brokers that break MQTT on purpose (issue 9): the probe ends on time, in bounded memory,
and says which packet was wrong, in the stage where it happened.

Each scenario runs against ``hostile_mqtt``'s scripted TLS server. The wall-time
bound is the stage's ``--timeout`` plus a fixed margin for everything else a
run does (in-process: trust, TLS and the verdict window; as a child process:
also Python's start-up). The memory cases run the probe as a child process and
read its peak RSS.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from mqtt_tls_probe.adapters.mqtt import _WireGuard
from mqtt_tls_probe.dev.pki import PkiFiles

from . import hostile_mqtt as w
from .helpers import connect_json, probe, stage
from .measure import Measured, run_probe
from .servers import TcpServer, server_context, tls_handler

# Time a run spends outside the stage under test, in-process (TLS, verdict window, parsing).
MARGIN = 0.75
# The same for a child process, which also imports the package (~0.2-1 s on a busy machine).
CHILD_MARGIN = 2.5
RSS_LIMIT_MIB = 100
# What a stage may run past its --timeout: the last poll and the cleanup after it.
STAGE_MARGIN_MS = 250


def run(
    pki: PkiFiles, script: w.Script, *args: str, timeout: float = 1.0
) -> tuple[int, dict[str, Any], float]:
    """``probe connect`` (JSON) against ``script``; the exit code, document and wall time."""
    with w.hostile_broker(pki, script) as server:
        started = time.monotonic()
        code, doc = connect_json(server.address, pki.ca_cert, "--timeout", f"{timeout:g}", *args)
        return code, doc, time.monotonic() - started


def run_child(pki: PkiFiles, script: w.Script, *args: str, timeout: float = 1.0) -> Measured:
    with w.hostile_broker(pki, script) as server:
        return run_probe(
            "connect",
            server.address,
            "--ca-file",
            str(pki.ca_cert),
            "--output",
            "json",
            "--timeout",
            f"{timeout:g}",
            *args,
        )


def assert_failed_at(doc: dict[str, Any], code: int, name: str, kind: str) -> None:
    """The failing row, ``error.stage`` and the exit code all name the same stage."""
    failed = [s["name"] for s in doc["stages"] if not s["ok"] and not s["skipped"]]
    assert failed == [name], doc["stages"]
    assert doc["error"]["stage"] == name
    assert doc["error"]["kind"] == kind, doc["error"]
    assert code == doc["exit_code"] == {"mqtt": 7, "roundtrip": 8}[name]


# --- huge packets -------------------------------------------------------------------------

_LARGEST = 268_435_455  # the largest remaining length MQTT can encode (256 MB)


def huge_connack(peer: w.Peer) -> None:
    """Declare a 256 MB CONNACK, then send its body for as long as the client reads."""
    peer.expect(w.CONNECT)
    peer.send(b"\x20" + w.varint(_LARGEST))
    zeros = b"\x00" * 65536
    peer.flood(lambda _: zeros)


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_huge_connack_is_refused_at_its_header(pki: PkiFiles, version: str) -> None:
    result = run_child(pki, huge_connack, "--mqtt-version", version)
    doc = json.loads(result.stdout)
    assert_failed_at(doc, result.returncode, "mqtt", "malformed_packet")
    assert f"a CONNACK of {_LARGEST + 5} bytes" in doc["error"]["message"]
    assert result.seconds < 1 + CHILD_MARGIN
    assert result.max_rss_mib < RSS_LIMIT_MIB
    assert result.stderr == ""


# --- floods --------------------------------------------------------------------------------


def flood_after_suback(qos: int, *, drain: bool, size: int = 512) -> w.Script:
    """Grant the subscription, then send PUBLISH packets at ``qos`` without end.

    Each has its own packet identifier (paho keeps a QoS 2 message per
    identifier until its PUBREL) and ``size`` bytes of payload. ``drain``: read
    (and ignore) what the client sends meanwhile, its PUBLISH included; else
    read nothing, like a broker that stopped reading.
    """

    def script(peer: w.Peer) -> None:
        connect, subscribe = w.subscribed(peer)
        v5 = connect.protocol_level == 5
        peer.send(w.suback(subscribe.packet_id, b"\x01", v5=v5))
        if drain:
            peer.drain()
        payload = b"x" * size
        peer.flood(lambda n: w.publish(b"probe/flood", payload, qos, packet_id=n, v5=v5))

    return script


@pytest.mark.parametrize("drain", [True, False])
def test_qos1_flood_ends_at_the_deadline_in_bounded_memory(pki: PkiFiles, drain: bool) -> None:
    result = run_child(pki, flood_after_suback(1, drain=drain), "--roundtrip", timeout=2)
    doc = json.loads(result.stdout)
    # The broker never acknowledges the probe's own message: refused, at the deadline.
    assert_failed_at(doc, result.returncode, "roundtrip", "publish_refused")
    assert "within 2 s" in doc["error"]["message"]
    assert stage(doc, "roundtrip")["ms"] < 2000 + STAGE_MARGIN_MS
    assert result.seconds < 2 + CHILD_MARGIN
    assert result.max_rss_mib < RSS_LIMIT_MIB
    assert result.stderr == ""


def test_qos2_publish_is_refused_at_once(pki: PkiFiles) -> None:
    code, doc, seconds = run(pki, flood_after_suback(2, drain=True), "--roundtrip", timeout=4)
    assert_failed_at(doc, code, "roundtrip", "malformed_packet")
    assert "a QoS 2 PUBLISH" in doc["error"]["message"]
    assert seconds < 2  # at the first one, long before the 4 s deadline


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_qos2_flood_stays_in_bounded_memory(pki: PkiFiles, version: str) -> None:
    """Before: 9.2 s with --timeout 4 and over 250 MB, paho keeping every QoS 2 message."""
    script = flood_after_suback(2, drain=True, size=16384)
    result = run_child(pki, script, "--roundtrip", "--mqtt-version", version, timeout=4)
    doc = json.loads(result.stdout)
    assert_failed_at(doc, result.returncode, "roundtrip", "malformed_packet")
    assert stage(doc, "roundtrip")["ms"] < 4000 + STAGE_MARGIN_MS
    assert result.max_rss_mib < RSS_LIMIT_MIB
    assert result.seconds < 4 + CHILD_MARGIN


# --- malformed packets -----------------------------------------------------------------------


def answer_connect_with(data: bytes) -> w.Script:
    def script(peer: w.Peer) -> None:
        peer.expect(w.CONNECT)
        peer.send(data)
        peer.hold()

    return script


@pytest.mark.parametrize(
    ("version", "data", "said"),
    [
        ("5", b"\x20\x00", "a CONNACK cut short in its acknowledge flags"),
        ("5", b"\x20\x01\x00", "a CONNACK cut short in its reason code"),
        ("3.1.1", b"\x20\x01\x00", "a CONNACK of 1 bytes (MQTT 3.1.1 needs 2)"),
        ("5", w.connack(0x03), "the reason code 0x03, which MQTT 5 does not define for CONNACK"),
        ("5", w.connack(0, b"\x7f\x00"), "the unknown property identifier 0x7F"),
        (
            "5",
            w.connack(0, w.reason_string(b"\xff\xfe")),
            "Reason String property is not valid UTF-8",
        ),
        ("5", w.packet(0xE0, b"\x03"), "a DISCONNECT with the reason code 0x03"),
        ("3.1.1", w.connack(6, v5=False), "the return code 6, which MQTT 3.1.1 does not define"),
        ("5", b"\x20\xff\xff\xff\xff\x7f", "remaining length runs past four bytes"),
        ("5", w.packet(0xF0, b"\x18\x00"), "an AUTH packet, but this client started no enhanced"),
        # Valid MQTT (a BOM in a string must be kept, MQTT 5 1.5.4), but paho refuses it:
        # the probe cannot go on, and says that it is paho that refused.
        ("5", w.connack(0, w.reason_string("\ufeff".encode())), "that paho-mqtt rejects"),
    ],
)
def test_malformed_answer_to_connect(pki: PkiFiles, version: str, data: bytes, said: str) -> None:
    code, doc, seconds = run(pki, answer_connect_with(data), "--mqtt-version", version)
    assert_failed_at(doc, code, "mqtt", "malformed_packet")
    assert said in doc["error"]["message"]
    assert "the probe closed the connection" in doc["error"]["message"]
    assert doc["mqtt"] is None
    assert seconds < 1 + MARGIN


def test_malformed_connack_in_text_output_names_the_stage(pki: PkiFiles) -> None:
    with w.hostile_broker(pki, answer_connect_with(w.connack(0x03))) as server:
        result = probe("connect", server.address, "--ca-file", str(pki.ca_cert), "--timeout", "1")
    assert result.exit_code == 7
    assert "FAIL  mqtt" in result.stdout
    assert "FAILED at mqtt: malformed_packet (exit 7)" in result.stdout
    assert result.stderr == ""


def answer_subscribe_with(make: Callable[[int], bytes]) -> w.Script:
    """Answer the SUBSCRIBE with ``make(its packet identifier)``."""

    def script(peer: w.Peer) -> None:
        _, subscribe = w.subscribed(peer)
        peer.send(make(subscribe.packet_id))
        peer.hold()

    return script


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda i: w.suback(i, b"\x03"), "a SUBACK with the reason code 0x03"),
        (lambda i: w.suback(i, b""), "a SUBACK without any reason code"),
        (
            lambda i: w.suback(i + 1, b"\x01"),
            "a SUBACK for the packet identifier",
        ),
        (lambda i: w.suback(i, b"\x02"), "a SUBACK granting QoS 2"),
        (lambda _: w.packet(0x40, b"\x00\x01\x05"), "a PUBACK with the reason code 0x05"),
        (lambda _: w.packet(0xE0, b"\x8b\x02\x1f"), "a DISCONNECT cut short"),
        (lambda _: w.packet(0x00, b""), "(packet type 0), which a server never sends"),
        (lambda _: w.packet(0xD0, b"\x01"), "a PINGRESP with 1 stray byte"),
    ],
)
def test_malformed_packet_in_the_round_trip(
    pki: PkiFiles, make: Callable[[int], bytes], said: str
) -> None:
    code, doc, seconds = run(pki, answer_subscribe_with(make), "--roundtrip")
    assert_failed_at(doc, code, "roundtrip", "malformed_packet")
    assert said in doc["error"]["message"]
    assert stage(doc, "mqtt")["ok"] is True
    assert seconds < 1 + MARGIN


def test_malformed_suback_in_text_output_fails_the_round_trip(pki: PkiFiles) -> None:
    script = answer_subscribe_with(lambda i: w.suback(i, b"\x03"))
    with w.hostile_broker(pki, script) as server:
        result = probe("connect", server.address, "--ca-file", str(pki.ca_cert), "--roundtrip")
    assert result.exit_code == 8
    assert "FAIL  roundtrip" in result.stdout
    assert "FAILED at roundtrip: malformed_packet (exit 8)" in result.stdout


def test_an_oversized_message_in_the_round_trip_says_what_to_do(pki: PkiFiles) -> None:
    def script(peer: w.Peer) -> None:
        _, subscribe = w.subscribed(peer)
        peer.send(w.suback(subscribe.packet_id, b"\x01"))
        peer.send(w.publish(b"probe/big", b"x" * (2 << 20), 1))  # 2 MiB: refused at its header
        peer.hold()

    code, doc, seconds = run(pki, script, "--roundtrip")
    assert_failed_at(doc, code, "roundtrip", "malformed_packet")
    assert "a PUBLISH of 2097" in doc["error"]["message"]
    assert "--topic" in doc["error"]["hint"]
    assert seconds < 1 + MARGIN


def test_well_formed_round_trip_on_the_same_server_passes(pki: PkiFiles) -> None:
    """The twin of the cases above: the scripted server, playing by the rules, passes."""

    def script(peer: w.Peer) -> None:
        _, subscribe = w.subscribed(peer)
        peer.send(w.suback(subscribe.packet_id, b"\x01"))
        sent = peer.expect(w.PUBLISH)
        topic_length = int.from_bytes(sent.body[:2], "big")
        topic, packet_id = sent.body[2 : 2 + topic_length], sent.body[2 + topic_length :][:2]
        payload = sent.body[2 + topic_length + 2 + 1 :]  # after the id and an empty property block
        peer.send(w.packet(0x40, packet_id) + w.publish(topic, payload, 1, packet_id=9))
        unsubscribe = peer.expect(w.UNSUBSCRIBE)
        peer.send(w.packet(0xB0, unsubscribe.packet_id.to_bytes(2, "big") + b"\x00\x00"))
        peer.hold(1)

    code, doc, _ = run(pki, script, "--roundtrip")
    assert code == 0, doc["error"]
    assert stage(doc, "roundtrip")["ok"] is True


# --- a TLS record the client rejects, during the round trip -----------------------------------


def test_bad_tls_record_during_the_round_trip_fails_the_round_trip(pki: PkiFiles) -> None:
    def script(peer: w.Peer) -> None:
        w.subscribed(peer)
        # An application-data record whose content cannot decrypt.
        peer.send_raw_record(b"\x17\x03\x03\x00\x20" + os.urandom(32))
        peer.hold()

    code, doc, seconds = run(pki, script, "--roundtrip")
    assert stage(doc, "tls")["ok"] is True
    assert_failed_at(doc, code, "roundtrip", "peer_closed")
    assert "after the handshake" in doc["error"]["message"]
    assert seconds < 1 + MARGIN


# --- the guard paho reads through ---------------------------------------------------------


def test_the_guard_stops_reading_while_our_packets_cannot_be_sent(pki: PkiFiles) -> None:
    """A broker that floods without reading: past 64 unsent packets the probe stops reading."""
    context = server_context(pki.server_cert, pki.server_key)

    def send_a_pingresp(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(w.packet(0xD0, b""))
        stopping.wait(5)

    with TcpServer(tls_handler(context, after=send_a_pingresp)) as server:
        client_context = ssl.create_default_context(cafile=str(pki.ca_cert))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            unsent = [64]
            guard = _WireGuard(tls, lambda: unsent[0])
            with pytest.raises(BlockingIOError):
                guard.recv(1)  # the PINGRESP waits: 64 of our packets do too
            unsent[0] = 63
            assert guard.recv(1) == b"\xd0"
            guard.deadline = 0.0
            with pytest.raises(BlockingIOError):
                guard.recv(1)  # past the deadline nothing is read, whatever waits


# --- the MQTT 5 -> 3.1.1 fallback -----------------------------------------------------------


def drop_v5_accept_311(seen: list[int]) -> w.Script:
    """RabbitMQ before 3.13: an MQTT 5 CONNECT is closed at once, an MQTT 3.1.1 one accepted."""

    def script(peer: w.Peer) -> None:
        connect = peer.expect(w.CONNECT)
        seen.append(connect.protocol_level)
        if connect.protocol_level == 5:
            return  # the server closes the connection
        peer.send(w.connack(0, v5=False))
        peer.expect(w.DISCONNECT)

    return script


def test_drop_after_mqtt5_connect_falls_back_to_311(pki: PkiFiles) -> None:
    seen: list[int] = []
    code, doc, _ = run(pki, drop_v5_accept_311(seen))
    assert code == 0, doc["error"]
    assert seen == [5, 4]
    assert doc["mqtt"]["version"] == "3.1.1"
    assert doc["mqtt"]["fallback_from"] == "5"
    assert stage(doc, "mqtt")["detail"] == (
        "the broker closed the connection on MQTT 5 CONNECT; retried with 3.1.1: accepted"
    )


def test_explicit_mqtt5_is_not_retried_after_a_drop(pki: PkiFiles) -> None:
    seen: list[int] = []
    code, doc, _ = run(pki, drop_v5_accept_311(seen), "--mqtt-version", "5")
    assert_failed_at(doc, code, "mqtt", "connection_dropped")
    assert seen == [5]


def test_sat_is_not_retried_after_a_drop(pki: PkiFiles, tmp_path: Any) -> None:
    token = tmp_path / "token"
    token.write_text("header.claims.signature")
    seen: list[int] = []
    code, doc, _ = run(pki, drop_v5_accept_311(seen), "--sat-file", str(token))
    assert_failed_at(doc, code, "mqtt", "connection_dropped")
    assert seen == [5]


def test_drop_on_both_versions_says_so(pki: PkiFiles) -> None:
    def script(peer: w.Peer) -> None:
        peer.expect(w.CONNECT)

    code, doc, _ = run(pki, script)
    assert_failed_at(doc, code, "mqtt", "connection_dropped")
    assert "on an MQTT 5 CONNECT, and again on an MQTT 3.1.1 CONNECT" in doc["error"]["message"]


def test_the_fallback_shares_the_mqtt_stage_deadline(pki: PkiFiles) -> None:
    """A slow refusal of MQTT 5, then silence on 3.1.1: both fit in one --timeout."""

    def script(peer: w.Peer) -> None:
        connect = peer.expect(w.CONNECT)
        if connect.protocol_level == 5:
            peer.hold(1.2)
            peer.send(w.connack(1, v5=False))  # unacceptable protocol version
        peer.hold()

    code, doc, seconds = run(pki, script, timeout=2)
    assert_failed_at(doc, code, "mqtt", "no_connack")
    assert stage(doc, "mqtt")["ms"] < 2000 + 250
    assert seconds < 2 + MARGIN

"""The hand-made ClientHello and the reading of a server's first flight (``core.tls_hello``).

The end-to-end proof (real servers that abort before sending their certificate) is in
``tests/test_tls_diagnosis.py``; here, the bytes.
"""

from __future__ import annotations

import pytest

from mqtt_tls_probe.core.tls_hello import ServerFlight, client_hello
from mqtt_tls_probe.core.tls_messages import TLS12, decode_handshake

RANDOM = bytes(range(32))
SUITES = (0xC02B, 0x00A3, 0x009C)


def _record(kind: int, payload: bytes) -> bytes:
    return bytes([kind, 3, 3]) + len(payload).to_bytes(2, "big") + payload


def _message(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def test_the_client_hello_offers_tls12_every_group_and_the_suites_given() -> None:
    record = client_hello("broker.example", SUITES, RANDOM)
    assert record[:3] == b"\x16\x03\x01"
    assert int.from_bytes(record[3:5], "big") == len(record) - 5
    [hello] = decode_handshake(record[5:])
    assert hello.type == "ClientHello"
    fields = hello.fields
    assert fields["versions"] == ("TLSv1.2",)
    assert fields["cipher_suites"] == len(SUITES)
    assert fields["server_name"] == "broker.example"
    groups = fields["groups"]
    assert isinstance(groups, tuple)
    for curve in ("secp256r1", "x25519", "brainpoolP256r1", "brainpoolP384r1", "ffdhe2048"):
        assert curve in groups
    assert groups[-1] == "+3 more"  # 35 offered; the decoder keeps 32 of a list
    assert "dsa_sha256" in fields["signature_algorithms"]  # type: ignore[operator]
    assert "supported_versions" not in fields["extensions"]  # type: ignore[operator]
    assert RANDOM in record


def test_no_sni_for_an_ip_address() -> None:
    [hello] = decode_handshake(client_hello("127.0.0.1", SUITES, RANDOM)[5:])
    assert "server_name" not in hello.fields
    with pytest.raises(ValueError, match="32 bytes"):
        client_hello(None, SUITES, b"short")


def test_the_flight_is_reassembled_across_records_and_reads() -> None:
    hello = _message(2, b"s" * 70)
    certificate = _message(11, b"c" * 3000)
    done = _message(14, b"")
    # A message split over two records, and two messages in one record.
    stream = _record(22, hello + certificate[:1000]) + _record(22, certificate[1000:] + done)
    flight = ServerFlight()
    for start in range(0, len(stream), 7):  # the socket hands over 7 bytes at a time
        assert not flight.done or start >= len(stream) - 7
        flight.feed(stream[start : start + 7])
    assert flight.done
    assert flight.messages == [hello, certificate]  # stops at the certificate
    assert flight.alert is None
    assert flight.error is None


def test_an_alert_or_a_non_tls_answer_ends_the_flight() -> None:
    flight = ServerFlight()
    flight.feed(_record(21, b"\x02\x28"))
    assert flight.done
    assert flight.alert == b"\x02\x28"
    flight = ServerFlight()
    flight.feed(b"HTTP/1.1 400 Bad Request\r\n")
    assert flight.done
    assert flight.error is not None
    assert "485454502f" in flight.error
    flight = ServerFlight()
    flight.feed(_record(23, b"data"))
    assert flight.error == "a record of type 23 before the server's certificate"


def test_an_anonymous_suite_ends_at_server_hello_done() -> None:
    flight = ServerFlight()
    flight.feed(_record(22, _message(2, b"s" * 40) + _message(14, b"")))
    assert flight.done
    assert [m[0] for m in flight.messages] == [2, 14]
    assert decode_handshake(flight.messages[0], version=TLS12)[0].type == "ServerHello"

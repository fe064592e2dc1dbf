"""The classification tables, entry by entry (the real-server scenarios prove them end to end)."""

from __future__ import annotations

import errno
import socket

import pytest

from mqtt_tls_probe.core import classify
from mqtt_tls_probe.core.classify import Connack, HandshakeFailure, TlsAttempt
from mqtt_tls_probe.errors import KIND_STAGE, ErrorKind, Stage

NO_CLIENT = TlsAttempt(timeout=2.0)
WITH_CLIENT = TlsAttempt(client_subject="CN=probe-client", timeout=2.0)


def _tls_kind(reason: str, attempt: TlsAttempt = NO_CLIENT) -> ErrorKind | None:
    info = classify.classify_handshake(HandshakeFailure(reason=reason, ssl_error=True), attempt)
    return None if info is None else info.kind


# --- tls ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", sorted(classify.NOT_TLS_REASONS))
def test_not_tls_reasons(reason: str) -> None:
    assert _tls_kind(reason) is ErrorKind.NOT_TLS


@pytest.mark.parametrize("reason", sorted(classify.PROTOCOL_VERSION_REASONS))
def test_protocol_version_reasons(reason: str) -> None:
    assert _tls_kind(reason) is ErrorKind.PROTOCOL_VERSION


@pytest.mark.parametrize("reason", sorted(classify.CLIENT_CERT_ALERTS))
def test_client_certificate_alerts(reason: str) -> None:
    assert _tls_kind(reason) is ErrorKind.CLIENT_CERT_REQUIRED
    assert _tls_kind(reason, WITH_CLIENT) is ErrorKind.CLIENT_CERT_REJECTED


@pytest.mark.parametrize("reason", sorted(classify.EOF_REASONS))
def test_eof_reasons_are_peer_closed(reason: str) -> None:
    assert _tls_kind(reason) is ErrorKind.PEER_CLOSED


def test_handshake_failure_alert_depends_on_the_client_certificate() -> None:
    # TLS 1.2: an OpenSSL server that requires a certificate and got none says handshake_failure.
    assert _tls_kind(classify.HANDSHAKE_FAILURE) is ErrorKind.CLIENT_CERT_REQUIRED
    assert _tls_kind(classify.HANDSHAKE_FAILURE, WITH_CLIENT) is ErrorKind.PROTOCOL_VERSION


def test_no_application_protocol_names_the_alpn_offered() -> None:
    info = classify.classify_handshake(
        HandshakeFailure(reason=classify.NO_APPLICATION_PROTOCOL, ssl_error=True),
        TlsAttempt(alpn=("mqtt", "x-amzn-mqtt-ca")),
    )
    assert info is not None
    assert info.kind is ErrorKind.PROTOCOL_VERSION
    assert "mqtt, x-amzn-mqtt-ca" in info.message


def test_rejection_hints_per_alert() -> None:
    for reason, hint in classify.CLIENT_REJECTION_HINTS.items():
        info = classify.classify_handshake(
            HandshakeFailure(reason=reason, ssl_error=True), WITH_CLIENT
        )
        assert info is not None
        assert info.hint == hint


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (HandshakeFailure(timed_out=True), ErrorKind.HANDSHAKE_TIMEOUT),
        (HandshakeFailure(closed=True), ErrorKind.PEER_CLOSED),
        (
            HandshakeFailure(reason="TLSV1_ALERT_INTERNAL_ERROR", ssl_error=True),
            ErrorKind.PEER_CLOSED,
        ),
        (HandshakeFailure(reason="SOMETHING_NEW", ssl_error=True), ErrorKind.PEER_CLOSED),
        (HandshakeFailure(os_error=True), ErrorKind.PEER_CLOSED),
    ],
)
def test_the_remaining_handshake_outcomes(failure: HandshakeFailure, kind: ErrorKind) -> None:
    info = classify.classify_handshake(failure, NO_CLIENT)
    assert info is not None
    assert info.kind is kind


def test_an_unknown_failure_is_not_guessed() -> None:
    assert classify.classify_handshake(HandshakeFailure(), NO_CLIENT) is None


def test_after_the_handshake_the_message_says_so() -> None:
    attempt = TlsAttempt(after_handshake=True)
    info = classify.classify_handshake(HandshakeFailure(closed=True), attempt)
    assert info is not None
    assert "right after the TLS handshake" in info.message


# --- resolve and tcp ---------------------------------------------------------------------


def test_getaddrinfo_codes_match_the_socket_module() -> None:
    assert classify.EAI_NONAME == socket.EAI_NONAME
    assert classify.EAI_AGAIN == socket.EAI_AGAIN
    assert classify.EAI_NODATA == socket.EAI_NODATA


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (socket.EAI_NONAME, "does not resolve"),
        (socket.EAI_NODATA, "does not resolve"),
        (socket.EAI_AGAIN, "did not answer"),
        (socket.EAI_FAIL, "failed: boom"),
    ],
)
def test_dns_codes(code: int, says: str) -> None:
    info = classify.dns_error("broker.example", code, "boom")
    assert info.kind is ErrorKind.DNS_FAILURE
    assert info.stage is Stage.RESOLVE
    assert says in info.message


@pytest.mark.parametrize("number", sorted(classify.REFUSED_ERRNOS))
def test_refusal_errnos(number: int) -> None:
    info = classify.connect_error("h:1", [number], timed_out=False, strerror="x", timeout=1)
    assert info is not None
    assert info.kind is ErrorKind.CONNECTION_REFUSED


@pytest.mark.parametrize("number", sorted(classify.UNREACHABLE_ERRNOS))
def test_unreachable_errnos(number: int) -> None:
    info = classify.connect_error("h:1", [number], timed_out=False, strerror="x", timeout=1)
    assert info is not None
    assert info.kind is ErrorKind.NETWORK_UNREACHABLE


def test_timeouts_and_unknown_errnos() -> None:
    timed_out = classify.connect_error("h:1", [None], timed_out=True, strerror=None, timeout=2)
    assert timed_out is not None
    assert timed_out.kind is ErrorKind.CONNECT_TIMEOUT
    assert "within 2 s" in timed_out.message
    # No address was even tried (the deadline passed): a timeout too.
    nothing = classify.connect_error("h:1", [], timed_out=False, strerror=None, timeout=2)
    assert nothing is not None
    assert nothing.kind is ErrorKind.CONNECT_TIMEOUT
    # A refusal outranks a timeout on another address.
    both = classify.connect_error(
        "a, b", [errno.ECONNREFUSED, None], timed_out=True, strerror=None, timeout=2
    )
    assert both is not None
    assert both.kind is ErrorKind.CONNECTION_REFUSED
    unknown = classify.connect_error("h:1", [errno.EPERM], timed_out=False, strerror="x", timeout=2)
    assert unknown is None


# --- verify codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "kind"), sorted(classify.OPENSSL_VERIFY_CODES.items()))
def test_openssl_verify_codes(code: int, kind: ErrorKind) -> None:
    assert classify.verify_code_kind(code) is kind
    assert KIND_STAGE[kind] is Stage.VERIFY


def test_unknown_verify_codes_are_ca_problems() -> None:
    assert classify.verify_code_kind(None) is ErrorKind.CA_INVALID
    assert classify.verify_code_kind(4242) is ErrorKind.CA_INVALID


# --- CONNACK ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "entry"), sorted(classify.V311_RETURN_CODES.items()))
def test_every_v311_return_code(code: int, entry: tuple[str, ErrorKind]) -> None:
    name, kind = entry
    connack = Connack("3.1.1", code, name, {})
    assert connack.kind is kind
    assert classify.v311_return_code_name(code) == name
    assert connack.refuses_version is (code == 1)
    info = classify.connack_error(connack, sat=False, username=None)
    assert info.kind is kind
    assert f"return code {code}" in info.message


def test_v311_accepted_and_unknown_codes() -> None:
    assert classify.v311_return_code_name(0) == "Connection Accepted"
    assert Connack("3.1.1", 0, "Connection Accepted", {}).accepted
    assert Connack("3.1.1", 77, "Unknown", {}).kind is ErrorKind.SERVER_UNAVAILABLE


@pytest.mark.parametrize(("code", "kind"), sorted(classify.V5_CONNACK_KINDS.items()))
def test_every_v5_reason_code(code: int, kind: ErrorKind) -> None:
    connack = Connack("5", code, "Some Reason", {"reason_string": "because"})
    assert connack.kind is kind
    assert connack.refuses_version is (code == 0x84)
    info = classify.connack_error(connack, sat=False, username="operator")
    assert info.kind is kind
    assert f"0x{code:02X} Some Reason" in info.message
    assert "saying 'because'" in info.message


@pytest.mark.parametrize("code", [0x80, 0x83, 0x88, 0x89, 0x8D, 0x97, 0x9C, 0x9D, 0x9F])
def test_other_v5_failures_are_server_unavailable(code: int) -> None:
    assert Connack("5", code, "x", {}).kind is ErrorKind.SERVER_UNAVAILABLE


def test_a_v311_answer_to_a_v5_connect() -> None:
    """amqtt answers a v5 CONNECT in 3.1.1 form: return code 1 means 'version refused'."""
    connack = Connack("5", 1, "Connection Refused, unacceptable protocol version", {}, True)
    assert connack.refuses_version
    assert connack.kind is ErrorKind.PROTOCOL_UNSUPPORTED
    assert connack.code_text().endswith("in MQTT 3.1.1 form")


@pytest.mark.parametrize(
    ("sat", "username", "says"),
    [
        (True, None, "service account token"),
        (False, None, "anonymous"),
        (False, "operator", "password of 'operator'"),
    ],
)
def test_refusal_hints_follow_how_the_client_signed_in(
    sat: bool, username: str | None, says: str
) -> None:
    info = classify.connack_error(
        Connack("5", 0x87, "Not authorized", {}), sat=sat, username=username
    )
    assert says in info.hint


# --- cleartext ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", None),
        (b"\x20\x02\x00\x05", "plain MQTT listener"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "HTTP server"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "SSH server"),
        (b"hello there", "cleartext: b'hello there'"),
        (b"\x00\x01\xff", "00 01 ff"),
    ],
)
def test_describe_cleartext(data: bytes, says: str | None) -> None:
    described = classify.describe_cleartext(data)
    if says is None:
        assert described is None
    else:
        assert described is not None
        assert says in described

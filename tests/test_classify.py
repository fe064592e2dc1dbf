"""The classification tables, entry by entry (the real-server scenarios prove them end to end)."""

from __future__ import annotations

import errno
import socket

import pytest

from mqtt_tls_probe.core import classify
from mqtt_tls_probe.core.classify import Connack, HandshakeFailure, ServerKey, TlsAttempt
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


def test_handshake_failure_without_a_trace_keeps_the_tls12_reading() -> None:
    # No trace: an OpenSSL TLS 1.2 server that requires a certificate and got none says
    # handshake_failure, so that is still the likeliest reading without a client certificate.
    assert _tls_kind(classify.HANDSHAKE_FAILURE) is ErrorKind.CLIENT_CERT_REQUIRED
    assert _tls_kind(classify.HANDSHAKE_FAILURE, WITH_CLIENT) is ErrorKind.NO_SHARED_CIPHER


DSA_2048 = ServerKey("DSA", 2048)
RSA_512 = ServerKey("RSA", 512)
RSA_1024 = ServerKey("RSA", 1024)
RSA_2048 = ServerKey("RSA", 2048)
SECP256K1 = ServerKey("EC", 256, "secp256k1")
BRAINPOOL = ServerKey("EC", 256, "brainpoolP256r1")
P256 = ServerKey("EC", 256, "secp256r1")
ED25519 = ServerKey("Ed25519", 256)
LEVEL_1 = TlsAttempt(timeout=2.0, security_level=1)


@pytest.mark.parametrize("reason", sorted(classify.NEGOTIATION_ALERTS))
@pytest.mark.parametrize(
    ("requested", "key", "attempt", "kind"),
    [
        # The server asked for a client certificate: that decides, whatever its own key.
        (True, None, NO_CLIENT, ErrorKind.CLIENT_CERT_REQUIRED),
        (True, DSA_2048, NO_CLIENT, ErrorKind.CLIENT_CERT_REQUIRED),
        (True, None, WITH_CLIENT, ErrorKind.CLIENT_CERT_REJECTED),
        # It did not: the key of its certificate decides.
        (False, DSA_2048, NO_CLIENT, ErrorKind.UNSUPPORTED_SERVER_KEY),
        (False, RSA_512, NO_CLIENT, ErrorKind.UNSUPPORTED_SERVER_KEY),
        (False, RSA_1024, NO_CLIENT, ErrorKind.UNSUPPORTED_SERVER_KEY),
        (False, SECP256K1, NO_CLIENT, ErrorKind.UNSUPPORTED_SERVER_KEY),
        (False, BRAINPOOL, WITH_CLIENT, ErrorKind.UNSUPPORTED_SERVER_KEY),
        (False, P256, NO_CLIENT, ErrorKind.NO_SHARED_CIPHER),
        (False, RSA_2048, NO_CLIENT, ErrorKind.NO_SHARED_CIPHER),
        (False, ED25519, NO_CLIENT, ErrorKind.NO_SHARED_CIPHER),
        (False, RSA_1024, LEVEL_1, ErrorKind.NO_SHARED_CIPHER),  # level 1 takes RSA 1024
        (False, None, NO_CLIENT, ErrorKind.NO_SHARED_CIPHER),  # certificate not read
        # No trace: an unusable key still decides; else the TLS 1.2 reading.
        (None, SECP256K1, NO_CLIENT, ErrorKind.UNSUPPORTED_SERVER_KEY),
        (None, P256, NO_CLIENT, ErrorKind.CLIENT_CERT_REQUIRED),
        (None, P256, WITH_CLIENT, ErrorKind.NO_SHARED_CIPHER),
    ],
)
def test_a_refused_handshake_is_read_with_the_trace_facts(
    reason: str, requested: bool | None, key: ServerKey | None, attempt: TlsAttempt, kind: ErrorKind
) -> None:
    failure = HandshakeFailure(
        reason=reason, ssl_error=True, server_requested_certificate=requested, server_key=key
    )
    info = classify.classify_handshake(failure, attempt)
    if requested is None and kind is ErrorKind.CLIENT_CERT_REQUIRED:
        # The TLS 1.2 reading is handshake_failure's alone (insufficient_security is not it).
        kind = kind if reason == classify.HANDSHAKE_FAILURE else ErrorKind.NO_SHARED_CIPHER
    assert info is not None
    assert info.kind is kind
    assert info.stage is Stage.TLS
    if kind is ErrorKind.UNSUPPORTED_SERVER_KEY:
        assert str(key) in info.message


@pytest.mark.parametrize(
    ("key", "attempt", "problem"),
    [
        (DSA_2048, NO_CLIENT, "DHE-DSS"),
        (DSA_2048, TlsAttempt(dsa_suites=True), None),
        (ServerKey("DSA", 1024), TlsAttempt(dsa_suites=True), "below the 2048 bits"),
        (RSA_512, TlsAttempt(security_level=0), None),
        (RSA_512, LEVEL_1, "below the 1024 bits that OpenSSL's security level 1"),
        (RSA_2048, NO_CLIENT, None),
        (SECP256K1, NO_CLIENT, "x25519, secp256r1, x448, secp521r1, secp384r1"),
        (SECP256K1, TlsAttempt(offered_groups=("x25519", "secp256k1")), None),
        (BRAINPOOL, TlsAttempt(offered_groups=("secp256r1",)), "(secp256r1)"),
        (ServerKey("EC", 192, "secp192r1"), TlsAttempt(offered_groups=("secp192r1",)), "192"),
        (P256, NO_CLIENT, None),
        (ED25519, NO_CLIENT, None),
        (ServerKey("SomethingNew"), NO_CLIENT, None),  # unknown: not declared unusable
    ],
)
def test_server_key_problems(key: ServerKey, attempt: TlsAttempt, problem: str | None) -> None:
    found = classify.server_key_problem(key, attempt)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_no_shared_cipher_names_what_the_client_offered() -> None:
    failure = HandshakeFailure(
        reason=classify.HANDSHAKE_FAILURE,
        ssl_error=True,
        server_requested_certificate=False,
        server_key=P256,
    )
    attempt = TlsAttempt(tls_max="1.2", ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    info = classify.classify_handshake(failure, attempt)
    assert info is not None
    assert info.kind is ErrorKind.NO_SHARED_CIPHER
    assert "TLS 1.2 only" in info.message
    assert "'ECDHE-RSA-AES128-GCM-SHA256'" in info.message
    assert "did not ask for a client certificate" in info.message
    assert "(EC P-256) is one this client can use" in info.message
    assert "probe tls" in info.hint
    plain = classify.classify_handshake(failure, NO_CLIENT)
    assert plain is not None
    assert "probe tls" in plain.hint  # the kind's default hint


@pytest.mark.parametrize(
    ("attempt", "words"),
    [
        (TlsAttempt(), "TLS 1.2 or newer"),
        (TlsAttempt(tls_min="1.3"), "TLS 1.3 or newer"),
        (TlsAttempt(tls_max="1.2"), "TLS 1.2 only"),
        (TlsAttempt(tls_min="1.2", tls_max="1.3"), "TLS 1.2 to 1.3"),
    ],
)
def test_offered_versions_in_words(attempt: TlsAttempt, words: str) -> None:
    assert classify.offered_versions(attempt) == words


def test_protocol_version_hint_follows_the_limits() -> None:
    def hint(attempt: TlsAttempt) -> str:
        failure = HandshakeFailure(reason="TLSV1_ALERT_PROTOCOL_VERSION", ssl_error=True)
        info = classify.classify_handshake(failure, attempt)
        assert info is not None
        assert info.kind is ErrorKind.PROTOCOL_VERSION
        return info.hint

    assert "--tls-max" in hint(TlsAttempt(tls_max="1.2"))
    assert "--tls-min" in hint(TlsAttempt(tls_min="1.3"))
    assert "older versions are insecure" in hint(TlsAttempt())


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


def test_a_negotiation_alert_after_the_handshake_is_about_the_client_not_the_ciphers() -> None:
    """Review finding: a completed handshake cannot lack a shared cipher."""
    failure = HandshakeFailure(
        reason=classify.HANDSHAKE_FAILURE, ssl_error=True, server_requested_certificate=True
    )
    after = TlsAttempt(after_handshake=True)
    info = classify.classify_handshake(failure, after)
    assert info is not None
    assert info.kind is ErrorKind.CLIENT_CERT_REQUIRED
    unasked = HandshakeFailure(
        reason=classify.HANDSHAKE_FAILURE, ssl_error=True, server_requested_certificate=False
    )
    broken = classify.classify_handshake(unasked, after)
    assert broken is not None
    assert broken.kind is ErrorKind.PEER_CLOSED
    assert "after the handshake" in broken.message


def test_without_a_trace_only_handshake_failure_reads_as_a_missing_client_certificate() -> None:
    failure = HandshakeFailure(reason="TLSV1_ALERT_INSUFFICIENT_SECURITY", ssl_error=True)
    info = classify.classify_handshake(failure, NO_CLIENT)
    assert info is not None
    assert info.kind is not ErrorKind.CLIENT_CERT_REQUIRED

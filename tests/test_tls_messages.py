"""The pure TLS message decoder: hand-built messages, hostile input, and a fuzz property.

Messages are built here byte by byte from the RFC layouts (RFC 8446 §4, RFC 5246
§7.4), independently of the decoder; names are checked against ``cryptography``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mqtt_tls_probe.core.tls_messages import (
    ALERT,
    CHANGE_CIPHER_SPEC,
    CIPHER_SUITE_NAMES,
    HANDSHAKE,
    HELLO_RETRY_REQUEST_RANDOM,
    INNER_CONTENT_TYPE,
    MAX_CERTIFICATES,
    MAX_EXTENSIONS,
    MAX_ITEMS,
    MAX_MESSAGES_PER_RECORD,
    MAX_TEXT,
    RECORD_HEADER,
    UNPARSEABLE_CERTIFICATE,
    Direction,
    HandshakeSummary,
    Message,
    RawRecord,
    TraceEvent,
    build_events,
    certificate_names,
    decode_alert,
    decode_change_cipher_spec,
    decode_handshake,
    dn_from_der,
)
from mqtt_tls_probe.dev.pki import create_root_ca, issue_server_certificate

TLS12 = 0x0303
TLS13 = 0x0304

# --- builders (RFC presentation language: <..2^8-1> is a 1-byte length, etc.) --------


def u8(value: int) -> bytes:
    return value.to_bytes(1, "big")


def u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def vec(width: int, data: bytes) -> bytes:
    return len(data).to_bytes(width, "big") + data


def u16s(values: Iterable[int]) -> bytes:
    return b"".join(u16(value) for value in values)


def ext(kind: int, body: bytes) -> bytes:
    return u16(kind) + vec(2, body)


def handshake(kind: int, body: bytes) -> bytes:
    return u8(kind) + vec(3, body)


def client_hello(
    extensions: bytes | None, *, legacy: int = TLS12, suites: Iterable[int] = (0x1301, 0x1302)
) -> bytes:
    body = u16(legacy) + bytes(32) + vec(1, b"") + vec(2, u16s(suites)) + vec(1, b"\x00")
    if extensions is not None:
        body += vec(2, extensions)
    return handshake(1, body)


def server_hello(
    extensions: bytes | None, *, suite: int = 0x1302, random: bytes = b"\x11" * 32
) -> bytes:
    body = u16(TLS12) + random + vec(1, b"\x22" * 32) + u16(suite) + b"\x00"
    if extensions is not None:
        body += vec(2, extensions)
    return handshake(2, body)


def sni(host: bytes) -> bytes:
    return ext(0, vec(2, b"\x00" + vec(2, host)))


def alpn(*names: bytes) -> bytes:
    return ext(16, vec(2, b"".join(vec(1, name) for name in names)))


def certificate_12(ders: Iterable[bytes]) -> bytes:
    return handshake(11, vec(3, b"".join(vec(3, der) for der in ders)))


def certificate_13(ders: Iterable[bytes], context: bytes = b"") -> bytes:
    entries = b"".join(vec(3, der) + vec(2, b"") for der in ders)
    return handshake(11, vec(1, context) + vec(3, entries))


def authorities(names: Iterable[x509.Name]) -> bytes:
    return vec(2, b"".join(vec(2, name.public_bytes()) for name in names))


def only(messages: list[Message]) -> Message:
    assert len(messages) == 1, messages
    return messages[0]


# --- certificates -----------------------------------------------------------------


def self_signed(subject: x509.Name) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def chain() -> tuple[bytes, bytes]:
    """A leaf and its quickstart-profile root, DER."""
    root = create_root_ca()
    leaf = issue_server_certificate(root, ["127.0.0.1", "localhost"])
    return (
        leaf.certificate.public_bytes(serialization.Encoding.DER),
        root.certificate.public_bytes(serialization.Encoding.DER),
    )


# --- alerts -------------------------------------------------------------------------

# RFC 8446 §6, written out here independently of the decoder's table.
RFC8446_ALERTS = [
    (0, "close_notify"),
    (10, "unexpected_message"),
    (20, "bad_record_mac"),
    (22, "record_overflow"),
    (40, "handshake_failure"),
    (42, "bad_certificate"),
    (43, "unsupported_certificate"),
    (44, "certificate_revoked"),
    (45, "certificate_expired"),
    (46, "certificate_unknown"),
    (47, "illegal_parameter"),
    (48, "unknown_ca"),
    (49, "access_denied"),
    (50, "decode_error"),
    (51, "decrypt_error"),
    (70, "protocol_version"),
    (71, "insufficient_security"),
    (80, "internal_error"),
    (86, "inappropriate_fallback"),
    (90, "user_canceled"),
    (109, "missing_extension"),
    (110, "unsupported_extension"),
    (112, "unrecognized_name"),
    (113, "bad_certificate_status_response"),
    (115, "unknown_psk_identity"),
    (116, "certificate_required"),
    (120, "no_application_protocol"),
]


@pytest.mark.parametrize(("code", "name"), RFC8446_ALERTS)
def test_each_alert_description_has_its_rfc_name(code: int, name: str) -> None:
    alert = decode_alert(bytes([2, code]))
    assert alert.type == "Alert"
    assert alert.fields == {"level": "fatal", "description": name, "code": code}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x01\x00", {"level": "warning", "description": "close_notify", "code": 0}),
        (b"\x07\xc8", {"level": "unknown(7)", "description": "unknown(200)", "code": 200}),
        (b"", {"error": "an alert is 2 bytes, got 0"}),
        (b"\x02", {"level": "fatal", "error": "an alert is 2 bytes, got 1"}),
        (
            b"\x02\x30\x00",
            {
                "level": "fatal",
                "description": "unknown_ca",
                "code": 48,
                "error": "an alert is 2 bytes, got 3",
            },
        ),
    ],
)
def test_alert_levels_unknown_codes_and_bad_lengths(
    data: bytes, expected: dict[str, object]
) -> None:
    assert decode_alert(data).fields == expected


def test_change_cipher_spec_is_the_byte_one() -> None:
    assert decode_change_cipher_spec(b"\x01") == Message("ChangeCipherSpec", 1, {})
    assert decode_change_cipher_spec(b"\x02").fields == {"error": "not the byte 1"}


# --- ClientHello --------------------------------------------------------------------


def test_client_hello_reports_what_the_client_offers() -> None:
    extensions = (
        sni(b"aio-broker")
        + ext(10, vec(2, u16s([0x1D, 0x17, 0x18, 0x19, 0x1E, 0x100, 0x1A1A, 0x4242])))
        + alpn(b"mqtt", b"x-amzn-mqtt-ca")
        + ext(43, vec(1, u16s([0x2A2A, TLS13, TLS12])))
        + ext(51, vec(2, u16(0x1D) + vec(2, b"k" * 32)))
        + ext(0xFFFE, b"")
    )
    message = only(decode_handshake(client_hello(extensions, suites=range(0x1301, 0x1306))))
    assert message.type == "ClientHello"
    assert message.fields == {
        "versions": ("GREASE", "TLSv1.3", "TLSv1.2"),
        "key_share": True,
        "key_share_groups": ("x25519",),
        "cipher_suites": 5,
        "extensions": (
            "server_name",
            "supported_groups",
            "application_layer_protocol_negotiation",
            "supported_versions",
            "key_share",
            "0xfffe",
        ),
        "server_name": "aio-broker",
        "groups": (
            "x25519",
            "secp256r1",
            "secp384r1",
            "secp521r1",
            "x448",
            "ffdhe2048",
            "GREASE",
            "0x4242",
        ),
        "alpn": ("mqtt", "x-amzn-mqtt-ca"),
    }


def test_client_hello_without_supported_versions_offers_its_legacy_version() -> None:
    fields = only(decode_handshake(client_hello(None, legacy=TLS12))).fields
    assert fields == {"versions": ("TLSv1.2",), "key_share": False, "cipher_suites": 2}
    fields = only(decode_handshake(client_hello(sni(b"h"), legacy=0x0301))).fields
    assert fields["versions"] == ("TLSv1",)
    assert fields["key_share"] is False


def test_long_lists_are_capped_and_say_how_many_more() -> None:
    groups = ext(10, vec(2, u16s([0x17] * (MAX_ITEMS + 10))))
    fields = only(decode_handshake(client_hello(groups))).fields
    listed = fields["groups"]
    assert isinstance(listed, tuple)
    assert len(listed) == MAX_ITEMS + 1
    assert listed[-1] == "+10 more"


def test_a_flood_of_extensions_is_counted_not_interpreted() -> None:
    flood = ext(0xFFFE, b"") * (MAX_EXTENSIONS + 10) + sni(b"late.example")
    fields = only(decode_handshake(client_hello(flood))).fields
    names = fields["extensions"]
    assert isinstance(names, tuple)
    assert len(names) == MAX_ITEMS + 1
    assert names[-1] == f"+{MAX_EXTENSIONS + 11 - MAX_ITEMS} more"
    assert "server_name" not in fields  # beyond the cap: never looked at


# --- ServerHello, HelloRetryRequest, EncryptedExtensions --------------------------------


def test_tls13_server_hello_takes_the_version_from_supported_versions() -> None:
    extensions = ext(43, u16(TLS13)) + ext(51, u16(0x17) + vec(2, b"p" * 65))
    message = only(decode_handshake(server_hello(extensions, suite=0x1301)))
    assert message.type == "ServerHello"
    assert message.fields == {
        "version": "TLSv1.3",
        "cipher_suite": "TLS_AES_128_GCM_SHA256",
        "extensions": ("supported_versions", "key_share"),
        "key_share_group": "secp256r1",
    }


def test_tls12_server_hello_with_alpn_and_an_unknown_suite() -> None:
    message = only(decode_handshake(server_hello(alpn(b"mqtt"), suite=0xC02B)))
    assert message.fields["version"] == "TLSv1.2"
    assert message.fields["cipher_suite"] == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    assert message.fields["alpn"] == "mqtt"
    bare = only(decode_handshake(server_hello(None, suite=0x1234)))
    assert bare.fields == {"version": "TLSv1.2", "cipher_suite": "0x1234"}


def test_the_special_random_makes_a_hello_retry_request() -> None:
    extensions = ext(43, u16(TLS13)) + ext(51, u16(0x18)) + ext(44, vec(2, b"cookie"))
    message = only(decode_handshake(server_hello(extensions, random=HELLO_RETRY_REQUEST_RANDOM)))
    assert message.type == "HelloRetryRequest"
    assert message.fields["selected_group"] == "secp384r1"
    assert message.fields["cookie"] is True
    assert message.fields["version"] == "TLSv1.3"


def test_hello_retry_request_is_recognised_even_when_cut_after_the_random() -> None:
    full = server_hello(ext(43, u16(TLS13)), random=HELLO_RETRY_REQUEST_RANDOM)
    message = only(decode_handshake(full[:40]))
    assert message.type == "HelloRetryRequest"
    assert "truncated" in str(message.fields["error"])


def test_encrypted_extensions_carry_the_alpn_choice() -> None:
    body = vec(2, alpn(b"mqtt") + ext(0, b""))
    fields = only(decode_handshake(handshake(8, body), version=TLS13)).fields
    assert fields == {
        "alpn": "mqtt",
        "extensions": ("application_layer_protocol_negotiation", "server_name"),
    }
    assert only(decode_handshake(handshake(8, vec(2, b"")))).fields["alpn"] is None


# --- Certificate ---------------------------------------------------------------------


ROOT_CN = "CN=Azure IoT Operations Quickstart Root CA - Not for Production"


def test_tls13_certificate_lists_the_chain_as_sent(chain: tuple[bytes, bytes]) -> None:
    message = only(decode_handshake(certificate_13(chain), version=TLS13))
    assert message.type == "Certificate"
    assert message.fields == {
        "count": 2,
        "subjects": ("CN=127.0.0.1", ROOT_CN),
        "issuers": (ROOT_CN, ROOT_CN),
    }
    assert message.certificates == chain
    assert not any(isinstance(value, bytes) for value in message.fields.values())


def test_tls12_certificate_has_no_context_and_no_entry_extensions(
    chain: tuple[bytes, bytes],
) -> None:
    message = only(decode_handshake(certificate_12(chain), version=TLS12))
    assert message.fields["subjects"] == ("CN=127.0.0.1", ROOT_CN)
    assert message.certificates == chain
    # Read with the wrong version's layout, the same bytes cannot pass for a chain.
    assert "error" in only(decode_handshake(certificate_12(chain), version=TLS13)).fields


def test_an_empty_certificate_message_is_a_client_without_certificate() -> None:
    assert only(decode_handshake(certificate_13([]), version=TLS13)).fields == {
        "count": 0,
        "subjects": (),
        "issuers": (),
    }


def test_a_post_handshake_request_context_is_flagged(chain: tuple[bytes, bytes]) -> None:
    fields = only(decode_handshake(certificate_13(chain[:1], b"ctx"), version=TLS13)).fields
    assert fields["request_context"] is True


def test_a_cut_certificate_list_keeps_the_certificates_before_the_cut(
    chain: tuple[bytes, bytes],
) -> None:
    full = certificate_13(chain)
    message = only(decode_handshake(full[: len(full) - 50], version=TLS13))
    assert message.fields["count"] == 1
    assert message.fields["subjects"] == ("CN=127.0.0.1",)
    assert message.certificates == chain[:1]
    assert "truncated" in str(message.fields["error"])


def test_garbage_in_place_of_a_certificate_is_unparseable() -> None:
    message = only(decode_handshake(certificate_12([b"\x30\x03\x02\x01\x05", b"junk"])))
    assert message.fields["subjects"] == (UNPARSEABLE_CERTIFICATE, UNPARSEABLE_CERTIFICATE)
    assert message.certificates == (b"\x30\x03\x02\x01\x05", b"junk")


def test_certificates_kept_are_capped(chain: tuple[bytes, bytes]) -> None:
    many = [chain[0]] * (MAX_CERTIFICATES + 3)
    message = only(decode_handshake(certificate_13(many), version=TLS13))
    assert message.fields["count"] == MAX_CERTIFICATES + 3
    assert len(message.certificates) == MAX_CERTIFICATES
    subjects = message.fields["subjects"]
    assert isinstance(subjects, tuple)
    assert subjects[-1] == "+3 more"


# --- names ------------------------------------------------------------------------------


def attribute(
    oid: x509.ObjectIdentifier, value: str, kind: _ASN1Type | None = None
) -> x509.NameAttribute[str]:
    return (
        x509.NameAttribute(oid, value)
        if kind is None
        else x509.NameAttribute(oid, value, _type=kind)
    )


TRICKY_NAMES = [
    x509.Name([attribute(NameOID.COMMON_NAME, "aio-broker")]),
    x509.Name(
        [
            attribute(NameOID.COUNTRY_NAME, "DE"),
            attribute(NameOID.ORGANIZATION_NAME, 'Acme, "Inc" +<x>;'),
            attribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#hash "),
            attribute(NameOID.COMMON_NAME, " lead"),
        ]
    ),
    x509.Name(
        [
            x509.RelativeDistinguishedName(
                [attribute(NameOID.COMMON_NAME, "a"), attribute(NameOID.SERIAL_NUMBER, "7")]
            ),
            x509.RelativeDistinguishedName([attribute(NameOID.DOMAIN_COMPONENT, "example")]),
        ]
    ),
    x509.Name(
        [
            attribute(NameOID.EMAIL_ADDRESS, "ops@example.com"),
            attribute(NameOID.COMMON_NAME, "Grüße ☃", _ASN1Type.BMPString),
            attribute(NameOID.LOCALITY_NAME, "Zürich", _ASN1Type.UniversalString),
            attribute(NameOID.USER_ID, "uid\\1"),
            attribute(NameOID.STREET_ADDRESS, "Main St 1"),
            attribute(NameOID.STATE_OR_PROVINCE_NAME, "BY"),
        ]
    ),
    x509.Name([]),
]


@pytest.mark.parametrize("name", TRICKY_NAMES, ids=range(len(TRICKY_NAMES)))
def test_names_are_formatted_like_cryptography_does(name: x509.Name) -> None:
    expected = name.rfc4514_string() or "(empty name)"
    assert dn_from_der(name.public_bytes()) == expected
    assert certificate_names(self_signed(name)) == (expected, expected)


@pytest.mark.parametrize(
    "der",
    [b"", b"\x30", b"\x30\x05\x31\x03", b"\x31\x00", b"\x30\x84\xff\xff\xff\xff", b"\x1f\x00"],
)
def test_broken_names_are_unparseable(der: bytes) -> None:
    assert dn_from_der(der) == "unparseable name"


# --- CertificateRequest and the rest ------------------------------------------------------


CA_NAMES = [
    x509.Name([attribute(NameOID.COMMON_NAME, "Client CA One")]),
    x509.Name([attribute(NameOID.ORGANIZATION_NAME, "Org"), attribute(NameOID.COMMON_NAME, "Two")]),
]


def test_tls13_certificate_request_names_the_accepted_cas() -> None:
    extensions = ext(13, vec(2, u16s([0x0403, 0x0804]))) + ext(47, authorities(CA_NAMES))
    message = only(decode_handshake(handshake(13, vec(1, b"") + vec(2, extensions)), version=TLS13))
    assert message.type == "CertificateRequest"
    assert message.fields == {
        "certificate_authorities": ("CN=Client CA One", "CN=Two,O=Org"),
        "signature_algorithms": ("ecdsa_secp256r1_sha256", "rsa_pss_rsae_sha256"),
    }


def test_tls12_certificate_request_names_the_accepted_cas() -> None:
    body = vec(1, b"\x01\x40") + vec(2, u16s([0x0403, 0x0401])) + authorities(CA_NAMES)
    fields = only(decode_handshake(handshake(13, body), version=TLS12)).fields
    assert fields == {
        "certificate_authorities": ("CN=Client CA One", "CN=Two,O=Org"),
        "signature_algorithms": ("ecdsa_secp256r1_sha256", "rsa_pkcs1_sha256"),
    }


@pytest.mark.parametrize(
    ("message", "version", "kind", "fields"),
    [
        (handshake(14, b""), TLS12, "ServerHelloDone", {}),
        (handshake(16, vec(1, b"k" * 32)), TLS12, "ClientKeyExchange", {}),
        (handshake(20, b"v" * 12), TLS12, "Finished", {}),
        (handshake(5, b""), TLS13, "EndOfEarlyData", {}),
        (handshake(24, b"\x01"), TLS13, "KeyUpdate", {"update_requested": True}),
        (handshake(24, b"\x00"), TLS13, "KeyUpdate", {"update_requested": False}),
        (handshake(99, b"??"), TLS13, "Handshake(99)", {}),
        (
            handshake(15, u16(0x0807) + vec(2, b"s" * 64)),
            TLS13,
            "CertificateVerify",
            {"signature_algorithm": "ed25519"},
        ),
        (
            handshake(4, (7200).to_bytes(4, "big") + b"\x00" * 4 + vec(1, b"") + vec(2, b"t")),
            TLS13,
            "NewSessionTicket",
            {"lifetime_s": 7200},
        ),
        (
            handshake(12, b"\x03" + u16(0x1D) + vec(1, b"k" * 32) + u16(0x0403) + vec(2, b"s")),
            TLS12,
            "ServerKeyExchange",
            {"group": "x25519", "signature_algorithm": "ecdsa_secp256r1_sha256"},
        ),
    ],
)
def test_other_messages_by_rfc_name(
    message: bytes, version: int, kind: str, fields: dict[str, object]
) -> None:
    decoded = only(decode_handshake(message, version=version))
    assert (decoded.type, decoded.fields, decoded.size) == (kind, fields, len(message))


def test_dhe_server_key_exchange_is_not_read_as_ecdhe() -> None:
    body = vec(2, b"\x03" * 256) + vec(2, b"\x02") + vec(2, b"y" * 256)
    decoded = only(decode_handshake(handshake(12, body), version=TLS12, cipher_suite=0x009E))
    assert decoded.fields == {}


# --- truncation and garbage -----------------------------------------------------------------


def test_every_prefix_of_a_client_hello_decodes_partially() -> None:
    full = client_hello(sni(b"aio-broker") + alpn(b"mqtt") + ext(43, vec(1, u16(TLS13))))
    assert "error" not in only(decode_handshake(full)).fields
    for end in range(1, len(full)):
        message = only(decode_handshake(full[:end]))
        assert message.type == "ClientHello"
        assert "error" in message.fields, end
        assert message.size == end


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\x02\x00",
        b"\x0b\xff\xff\xff",
        b"\x02\x00\x00\x02\x03\x03",
        b"\x0d\x00\x00\x03\x00\xff\xff",
        b"\xff" * 64,
        bytes(range(256)),
    ],
)
def test_garbage_never_raises_and_says_what_went_wrong(data: bytes) -> None:
    for version in (None, TLS12, TLS13):
        messages = decode_handshake(data, version=version)
        assert messages
        assert all(message.size <= max(len(data), 4) for message in messages)
        assert any("error" in message.fields for message in messages) or all(
            message.type.startswith("Handshake(") for message in messages
        )


def test_several_messages_in_one_buffer_are_each_decoded() -> None:
    data = handshake(14, b"") + handshake(20, b"v" * 12)
    assert [m.type for m in decode_handshake(data)] == ["ServerHelloDone", "Finished"]
    flood = handshake(14, b"") * (MAX_MESSAGES_PER_RECORD + 5)
    assert len(decode_handshake(flood)) == MAX_MESSAGES_PER_RECORD


# --- the callback stream --------------------------------------------------------------------


def record(
    direction: str, content_type: int, data: bytes, at: float, version: int = TLS12
) -> RawRecord:
    assert direction in ("sent", "received")
    return RawRecord("sent" if direction == "sent" else "received", version, content_type, data, at)


def test_build_events_follows_what_openssl_reports(chain: tuple[bytes, bytes]) -> None:
    """The shape of a measured TLS 1.3 client stream (see the module's docstring)."""
    hello = client_hello(ext(43, vec(1, u16(TLS13))) + ext(51, vec(2, u16(0x1D) + vec(2, b"k"))))
    records = [
        record("sent", RECORD_HEADER, b"\x16\x03\x01\x02\x00", 10.000, 0x0301),
        record("sent", HANDSHAKE, hello, 10.000, TLS13),
        record("received", RECORD_HEADER, b"\x16\x03\x03\x00\x7a", 10.002),
        # Labelled TLSv1.3 here; in a TLS 1.2 handshake OpenSSL labels it TLSv1.3 too.
        record("received", HANDSHAKE, server_hello(ext(43, u16(TLS13))), 10.002, TLS13),
        # A received CCS shows only as its record header.
        record("received", RECORD_HEADER, b"\x14\x03\x03\x00\x01", 10.003),
        record("received", RECORD_HEADER, b"\x17\x03\x03\x03\xec", 10.004),
        record("received", INNER_CONTENT_TYPE, b"\x16", 10.004, TLS13),
        record("received", HANDSHAKE, certificate_13(chain), 10.004, TLS13),
        # A sent CCS: its header and then the message: one event.
        record("sent", RECORD_HEADER, b"\x14\x03\x03\x00\x01", 10.005),
        record("sent", CHANGE_CIPHER_SPEC, b"\x01", 10.005, TLS13),
        record("sent", INNER_CONTENT_TYPE, b"\x15", 10.006),
        record("sent", ALERT, b"\x02\x30", 10.006, TLS13),
        record("sent", 999, b"ignored", 10.007),
    ]
    events = build_events(records, start=10.0)
    assert [(e.direction, e.type, e.version) for e in events] == [
        ("sent", "ClientHello", "TLSv1.3"),
        ("received", "ServerHello", "TLSv1.3"),
        ("received", "ChangeCipherSpec", "TLSv1.3"),
        ("received", "Certificate", "TLSv1.3"),
        ("sent", "ChangeCipherSpec", "TLSv1.3"),
        ("sent", "Alert", "TLSv1.3"),
    ]
    assert [e.ms for e in events] == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert events[3].certificates == chain
    assert events[5].fields["description"] == "unknown_ca"


def test_a_sent_ccs_without_its_header_still_counts_once() -> None:
    records = [record("sent", CHANGE_CIPHER_SPEC, b"\x01", 1.0)]
    assert [e.type for e in build_events(records, 1.0)] == ["ChangeCipherSpec"]


def test_the_version_before_the_server_hello_is_the_callbacks() -> None:
    records = [record("sent", HANDSHAKE, client_hello(None), 0.0, 0x0304)]
    assert build_events(records, 0.0)[0].version == "TLSv1.3"


def test_tls12_server_hello_makes_later_messages_tls12(chain: tuple[bytes, bytes]) -> None:
    records = [
        record("received", HANDSHAKE, server_hello(None, suite=0xC02B), 0.0, TLS13),
        record("received", HANDSHAKE, certificate_12(chain), 0.0, TLS12),
    ]
    events = build_events(records, 0.0)
    assert [e.version for e in events] == ["TLSv1.2", "TLSv1.2"]
    assert events[1].fields["subjects"] == ("CN=127.0.0.1", ROOT_CN)


def test_events_are_json_ready(chain: tuple[bytes, bytes]) -> None:
    records = [
        record("received", HANDSHAKE, server_hello(ext(43, u16(TLS13))), 0.0),
        record("received", HANDSHAKE, certificate_13(chain), 0.001),
    ]
    event = build_events(records, 0.0)[1]
    assert event.to_json() == {
        "direction": "received",
        "type": "Certificate",
        "version": "TLSv1.3",
        "size": len(certificate_13(chain)),
        "ms": 1.0,
        "fields": {
            "count": 2,
            "subjects": ["CN=127.0.0.1", ROOT_CN],
            "issuers": [ROOT_CN, ROOT_CN],
        },
    }
    assert "certificates" not in repr(event)


# --- the summary ------------------------------------------------------------------------------


def event(direction: str, kind: str, **fields: object) -> TraceEvent:
    side: Direction = "sent" if direction == "sent" else "received"
    return TraceEvent(side, kind, "TLSv1.3", 0, 0.0, dict(fields))


def test_summary_from_the_clients_side(chain: tuple[bytes, bytes]) -> None:
    server_certificate = TraceEvent(
        "received", "Certificate", "TLSv1.3", 0, 0.0, {}, certificates=chain
    )
    own_certificate = TraceEvent("sent", "Certificate", "TLSv1.3", 0, 0.0, {}, certificates=())
    events = [
        event("sent", "ClientHello"),
        event("received", "ServerHello", version="TLSv1.3"),
        event("received", "CertificateRequest"),
        server_certificate,
        own_certificate,
        event("received", "Alert", level="warning", description="user_canceled"),
        event("received", "Alert", level="fatal", description="unknown_ca"),
    ]
    summary = HandshakeSummary.of(events)
    assert summary.server_requested_client_certificate()
    assert summary.server_certificates() == chain
    assert summary.received_alert() == ("fatal", "unknown_ca")
    assert summary.sent_alert() is None
    assert summary.negotiated_version() == "TLSv1.3"


def test_summary_from_the_servers_side() -> None:
    events = [
        event("received", "ClientHello"),
        event("sent", "CertificateRequest"),
        event("received", "CertificateRequest"),
        event("sent", "Alert", level="warning", description="close_notify"),
    ]
    summary = HandshakeSummary.of(events)
    assert summary.server_requested_client_certificate()
    assert summary.sent_alert() == ("warning", "close_notify")
    assert summary.received_alert() is None


def test_summary_of_nothing() -> None:
    summary = HandshakeSummary.of([])
    assert not summary.server_requested_client_certificate()
    assert summary.server_certificates() == ()
    assert summary.received_alert() is None
    assert summary.negotiated_version() is None
    # A CertificateRequest the client itself "sent" is not the server asking.
    assert not HandshakeSummary.of(
        [event("sent", "CertificateRequest")]
    ).server_requested_client_certificate()


# --- tables -----------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_cipher_suite_names_agree_with_openssl_stdname() -> None:
    listing = subprocess.run(
        ["openssl", "ciphers", "-V", "-stdname", "ALL:@SECLEVEL=0"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    known: dict[int, str] = {}
    for line in listing.splitlines():
        parts = line.split()
        high, low = parts[0].split(",")
        known[int(high, 16) << 8 | int(low, 16)] = parts[2]
    checked = [code for code in CIPHER_SUITE_NAMES if code in known]
    assert len(checked) >= 25
    for code in checked:
        assert CIPHER_SUITE_NAMES[code] == known[code], hex(code)


# --- the fuzz property ------------------------------------------------------------------------


def _valid_samples() -> list[bytes]:
    names = b"".join(vec(2, name.public_bytes()) for name in CA_NAMES)
    return [
        client_hello(sni(b"x") + alpn(b"mqtt") + ext(10, vec(2, u16s([0x1D, 0x17])))),
        server_hello(ext(43, u16(TLS13)) + ext(51, u16(0x1D) + vec(2, b"k"))),
        certificate_13([self_signed(CA_NAMES[1])]),
        handshake(13, vec(1, b"") + vec(2, ext(47, vec(2, names)))),
        handshake(13, vec(1, b"\x40") + vec(2, u16(0x0403)) + vec(2, names)),
    ]


VALID = _valid_samples()


def _assert_bounded(message: Message, limit: int) -> None:
    assert message.size <= max(limit, 4)
    assert len(message.certificates) <= MAX_CERTIFICATES
    for value in message.fields.values():
        assert isinstance(value, str | int | bool | tuple | None)
        items = value if isinstance(value, tuple) else (value,)
        assert len(items) <= MAX_ITEMS + 1
        assert all(not isinstance(item, str) or len(item) <= MAX_TEXT for item in items)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(data=st.binary(max_size=2048), version=st.sampled_from([None, TLS12, TLS13]))
def test_arbitrary_bytes_never_raise_and_stay_bounded(data: bytes, version: int | None) -> None:
    messages = decode_handshake(data, version=version)
    assert 1 <= len(messages) <= MAX_MESSAGES_PER_RECORD
    for message in messages:
        _assert_bounded(message, len(data))
    _assert_bounded(decode_alert(data), len(data))
    assert len(dn_from_der(data)) <= MAX_TEXT
    assert all(len(name) <= MAX_TEXT for name in certificate_names(data))


@settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    sample=st.sampled_from(VALID),
    edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 4096),
    version=st.sampled_from([None, TLS12, TLS13]),
)
def test_mutated_messages_never_raise_and_stay_bounded(
    sample: bytes, edits: list[tuple[int, int]], cut: int, version: int | None
) -> None:
    mutated = bytearray(sample)
    for position, value in edits:
        mutated[position % len(mutated)] = value
    data = bytes(mutated[: max(1, cut)])
    for message in decode_handshake(data, version=version):
        _assert_bounded(message, len(data))


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["sent", "received"]),
            st.sampled_from(
                [RECORD_HEADER, INNER_CONTENT_TYPE, HANDSHAKE, ALERT, CHANGE_CIPHER_SPEC, 23, -1]
            ),
            st.one_of(st.binary(max_size=64), st.sampled_from(VALID)),
        ),
        max_size=20,
    )
)
def test_arbitrary_callback_streams_never_raise(
    stream: list[tuple[str, int, bytes]],
) -> None:
    records = [record(direction, kind, data, 0.0) for direction, kind, data in stream]
    events = build_events(records, 0.0)
    HandshakeSummary.of(events).received_alert()
    assert len(events) <= len(records) * MAX_MESSAGES_PER_RECORD

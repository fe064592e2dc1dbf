"""What the handshake trace decides: a server key the client cannot use is no missing certificate.

Real servers only: ``openssl s_server`` on certificates with DSA, RSA-512, RSA-1024,
secp256k1 and brainpool keys (facts in ``tests/openssl_server.py``), mosquitto with a
restricted cipher list, and mutual-TLS servers, which must still be reported as
``client_cert_required``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.adapters import tls_trace
from mqtt_tls_probe.dev.pki import PkiFiles

from .brokers import mosquitto
from .helpers import connect_json, stage
from .openssl_server import needs_openssl, openssl_server, self_signed

pytestmark = needs_openssl


def _error(document: dict[str, Any]) -> dict[str, str]:
    error = document["error"]
    assert isinstance(error, dict)
    return error


def _types(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(event["direction"], event["type"]) for event in document["tls"]["trace"]]


@pytest.mark.parametrize(
    ("kind", "server_options", "key", "why"),
    [
        ("dsa", ("-cipher", "ALL"), "DSA 2048", "DHE-DSS"),
        ("rsa512", ("-cipher", "ALL:@SECLEVEL=0"), "RSA 512", "below the 2048 bits"),
        ("secp256k1", (), "EC secp256k1", "not among the groups this client offers"),
        ("brainpool", (), "EC brainpoolP256r1", "not among the groups this client offers"),
    ],
)
def test_a_server_key_the_client_cannot_use_is_not_a_missing_client_certificate(
    tmp_path: Path, kind: str, server_options: tuple[str, ...], key: str, why: str
) -> None:
    cert, private = self_signed(tmp_path, kind)
    with openssl_server(cert, private, *server_options) as port:
        code, doc = connect_json(f"127.0.0.1:{port}", cert, "--trace", "--timeout", "5")
    assert code == 5
    error = _error(doc)
    assert error["kind"] == "unsupported_server_key"
    assert error["stage"] == "tls"
    assert f"a {key} key" in error["message"]
    assert why in error["message"]
    assert "P-256" in error["hint"]
    # What the trace saw: the server refused right after the ClientHello, sending no
    # certificate; the key was read with a separate ClientHello offering everything.
    assert _types(doc) == [("sent", "ClientHello"), ("received", "Alert")]
    assert doc["tls"]["trace"][1]["fields"]["description"] == "handshake_failure"
    assert doc["tls"]["version"] is None


def test_the_same_servers_without_the_message_callback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No trace: the key, read separately, still decides; --trace says it is unavailable."""
    cert, private = self_signed(tmp_path, "secp256k1")
    monkeypatch.setattr(tls_trace, "trace_available", lambda: False)
    with openssl_server(cert, private) as port:
        code, doc = connect_json(f"127.0.0.1:{port}", cert, "--trace", "--timeout", "5")
    assert code == 5
    assert _error(doc)["kind"] == "unsupported_server_key"
    assert doc["tls"] is None  # no trace to show
    [unavailable] = [w for w in doc["warnings"] if w["code"] == "trace_unavailable"]
    assert "trace unavailable on this Python" in unavailable["message"]


def test_an_rsa_1024_certificate_fails_verification_as_too_weak(tmp_path: Path) -> None:
    cert, private = self_signed(tmp_path, "rsa1024")
    with openssl_server(cert, private, "-cipher", "ALL:@SECLEVEL=0") as port:
        code, doc = connect_json(f"127.0.0.1:{port}", cert, "--timeout", "5")
        # Not verifying means not checking the key size either: OpenSSL's check is
        # part of X.509 verification (CERT_NONE skips it).
        insecure_code, insecure = connect_json(
            f"127.0.0.1:{port}", cert, "--insecure", "--timeout", "5"
        )
    assert code == 6
    error = _error(doc)
    assert error["kind"] == "unsupported_server_key"
    assert error["stage"] == "verify"
    assert "has a RSA 1024 key" in error["message"]
    assert "verify error 66" in error["message"]
    assert doc["chain"][0]["key"] == "RSA 1024"  # read from the trace
    assert stage(insecure, "tls")["ok"] is True
    assert insecure_code == 7  # s_server speaks no MQTT


def test_mutual_tls_servers_still_require_a_client_certificate(
    pki: PkiFiles, tmp_path: Path
) -> None:
    """TLS 1.2: the refusal is a bare handshake_failure; the CertificateRequest decides."""
    options = ("-tls1_2", "-Verify", "1", "-CAfile", str(pki.ca_cert))
    with openssl_server(pki.server_cert, pki.server_key, *options) as port:
        code, doc = connect_json(f"127.0.0.1:{port}", pki.ca_cert, "--trace", "--timeout", "5")
    assert code == 5
    assert _error(doc)["kind"] == "client_cert_required"
    received = [t for d, t in _types(doc) if d == "received"]
    assert "CertificateRequest" in received
    request = next(e for e in doc["tls"]["trace"] if e["type"] == "CertificateRequest")
    assert request["fields"]["certificate_authorities"] == [
        "CN=Azure IoT Operations Quickstart Root CA - Not for Production"
    ]


@pytest.mark.mosquitto
def test_a_cipher_list_the_broker_refuses_is_no_shared_cipher(
    pki: PkiFiles, tmp_path: Path
) -> None:
    listener = [
        f"certfile {pki.server_cert}",
        f"keyfile {pki.server_key}",
        "ciphers ECDHE-ECDSA-AES256-GCM-SHA384",
        "allow_anonymous true",
    ]
    with mosquitto(tmp_path, listener) as port:
        address = f"127.0.0.1:{port}"
        refused = ("--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256")
        code, doc = connect_json(address, pki.ca_cert, *refused)
        accepted = ("--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384")
        ok_code, ok = connect_json(address, pki.ca_cert, *accepted)
    assert code == 5
    error = _error(doc)
    assert error["kind"] == "no_shared_cipher"
    assert "TLS 1.2 only" in error["message"]
    assert "'ECDHE-ECDSA-AES128-GCM-SHA256'" in error["message"]
    assert "did not ask for a client certificate" in error["message"]
    assert "(EC P-256) is one this client can use" in error["message"]
    assert "probe tls" in error["hint"]
    assert ok_code == 0, ok["error"]
    assert ok["tls"] == {
        "version": "TLSv1.2",
        "cipher": "ECDHE-ECDSA-AES256-GCM-SHA384",
        "alpn": None,
    }

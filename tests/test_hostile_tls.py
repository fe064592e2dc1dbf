"""TLS servers that misbehave, and certificates cryptography refuses (issue 9, families 5 and 7).

OpenSSL decides trust; ``cryptography`` only describes. A certificate it
cannot parse (``odd_certs``) must neither crash a command nor change
OpenSSL's verdict: it is described as far as it can be, named with the
SHA-256 of its DER, and skipped from a trust bundle.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.dev.pki import CertAndKey, PkiFiles, create_root_ca

from . import odd_certs
from .helpers import connect_json, probe, probe_json, stage, write_pem
from .measure import run_probe
from .mqtt5_server import Behaviour, mqtt5_session
from .servers import TcpServer, server_context, tls_handler, write_chain

MARGIN = 0.75  # what a run spends outside the stage under test, in-process


# --- the handshake ----------------------------------------------------------------------------


def close_notify_after_hello(conn: socket.socket, stopping: threading.Event) -> None:
    """Read the ClientHello, answer with a close_notify alert, close: to any client at all."""
    conn.settimeout(5)
    conn.recv(4096)
    conn.sendall(bytes.fromhex("15030300020100"))  # alert record: warning, close_notify
    stopping.wait(0.2)
    conn.close()


def test_close_notify_during_the_handshake_is_peer_closed(pki: PkiFiles) -> None:
    """Before: "does not speak TLS: it answered 15 03 03 00 02 01 00" (a TLS record)."""
    with TcpServer(close_notify_after_hello) as server:
        code, doc = connect_json(server.address, pki.ca_cert, "--timeout", "2")
    assert code == 5
    assert doc["error"]["kind"] == "peer_closed"
    assert "close_notify" in doc["error"]["message"]
    assert stage(doc, "tls")["ok"] is False


def test_a_1_mib_certificate_is_refused_by_the_client_and_said_so(tmp_path: Path) -> None:
    ca = create_root_ca("Big Chain CA")
    files = write_chain(tmp_path, [odd_certs.oversized_leaf(ca, ["127.0.0.1"]), ca])
    write_pem(tmp_path / "ca.crt", ca)
    with TcpServer(tls_handler(server_context(*files))) as server:
        code, doc = connect_json(server.address, tmp_path / "ca.crt", "--timeout", "2")
        inspected_code, inspected = probe_json("inspect", server.address, "--timeout", "2")
    assert code == 5
    assert doc["error"]["kind"] == "unsupported_server_key"
    assert "EXCESSIVE_MESSAGE_SIZE" in doc["error"]["message"]
    assert "certificate chain" in doc["error"]["message"]
    assert inspected_code == 5
    assert inspected["error"]["kind"] == "unsupported_server_key"


def test_the_tls_stage_ends_within_its_timeout_when_the_cleartext_look_waits(
    pki: PkiFiles,
) -> None:
    """A server that closes the handshake late, then holds the cleartext look silently:
    before, the look had a timeout of its own (0.7 s + 1 s with --timeout 1)."""

    def slow_close_then_silence(conn: socket.socket, stopping: threading.Event) -> None:
        conn.settimeout(5)
        first = conn.recv(4096)
        if first[:1] == b"\x16":  # a TLS ClientHello: close, late
            stopping.wait(0.7)
            conn.close()
        else:  # the cleartext MQTT CONNECT: say nothing
            stopping.wait(5)

    with TcpServer(slow_close_then_silence) as server:
        started = time.monotonic()
        code, doc = connect_json(server.address, pki.ca_cert, "--timeout", "1")
        seconds = time.monotonic() - started
    assert code == 5
    assert doc["error"]["kind"] == "peer_closed"
    assert stage(doc, "tls")["ms"] < 1000 + 150
    assert seconds < 1 + MARGIN


# --- certificates cryptography refuses ---------------------------------------------------------

ODD: dict[str, Callable[[CertAndKey], bytes]] = {
    "duplicate extension": odd_certs.duplicate_extension,
    "malformed IP SAN": odd_certs.malformed_ip_san,
    "BER boolean": odd_certs.ber_boolean,
}
# What cryptography says of each.
REASONS = {
    "duplicate extension": "Duplicate 2.5.29.17 extension found",
    "malformed IP SAN": "does not appear to be an IPv4 or IPv6 address",
    "BER boolean": "error parsing asn1 value",
}


@pytest.fixture(scope="module")
def other_ca() -> CertAndKey:
    return create_root_ca("Lax Toolchain CA")


def _serving(pki: PkiFiles, tmp_path: Path, extra: bytes) -> tuple[TcpServer, Path]:
    """An MQTT 5 server sending the PKI's valid chain with ``extra`` (DER) appended."""
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.server_cert.read_bytes() + odd_certs.pem(extra))
    context = server_context(chain, pki.server_key)
    return TcpServer(tls_handler(context, after=mqtt5_session(Behaviour()))), chain


@pytest.mark.parametrize("odd", sorted(ODD))
def test_an_unparseable_certificate_appended_to_a_valid_chain(
    pki: PkiFiles, tmp_path: Path, other_ca: CertAndKey, odd: str
) -> None:
    extra = ODD[odd](other_ca)
    server, _ = _serving(pki, tmp_path, extra)
    with server:
        code, doc = connect_json(server.address, pki.ca_cert)
        inspected_code, inspected = probe_json("inspect", server.address)
    assert code == 0, doc["error"]  # OpenSSL's verdict: the valid chain is trusted
    [warning] = [w for w in doc["warnings"] if w["code"] == "unparseable"]
    assert "certificate 2 of the server's chain" in warning["message"]
    assert hashlib.sha256(extra).hexdigest() in warning["message"]
    assert REASONS[odd] in warning["message"]
    assert inspected_code == 0
    assert [w["code"] for w in inspected["warnings"]] == ["unparseable"]
    if odd == "BER boolean":  # it does not even load: no entry to describe
        assert len(doc["chain"]) == len(inspected["certificates"]) == 2
    else:  # it loads: described as far as it parses
        described = doc["chain"][2]
        assert described["subject"] == f"CN={odd.replace(' ', '-').lower()}"
        assert described["sha256"] == hashlib.sha256(extra).hexdigest()
        assert [f["code"] for f in described["findings"]] == ["unparseable"]
        assert inspected["certificates"][2] == described


def test_a_negative_serial_is_a_finding_not_a_warning_on_the_terminal(
    pki: PkiFiles, tmp_path: Path, other_ca: CertAndKey
) -> None:
    extra = odd_certs.negative_serial(other_ca)
    server, _ = _serving(pki, tmp_path, extra)
    with server:
        code, doc = connect_json(server.address, pki.ca_cert)
        child = run_probe("inspect", server.address, "--output", "json")
    assert code == 0, doc["error"]
    assert doc["chain"][2]["serial"] == "-6dcba988"
    assert [f["code"] for f in doc["chain"][2]["findings"]] == ["negative_serial"]
    assert child.returncode == 0
    assert child.stderr == ""  # cryptography's CryptographyDeprecationWarning stays quiet


def test_inspecting_a_file_of_odd_certificates(
    pki: PkiFiles, tmp_path: Path, other_ca: CertAndKey
) -> None:
    odd = [make(other_ca) for make in ODD.values()]
    path = tmp_path / "odd.pem"
    path.write_bytes(pki.ca_cert.read_bytes() + b"".join(odd_certs.pem(d) for d in odd))
    code, doc = probe_json("inspect", str(path))
    assert code == 0
    assert len(doc["certificates"]) == 3  # the CA, and the two odd ones that load
    assert [w["code"] for w in doc["warnings"]] == ["unparseable"] * 3
    # One that does not load, alone in a file: nothing to show, said with its fingerprint.
    alone = tmp_path / "ber.pem"
    alone.write_bytes(odd_certs.pem(odd[2]))
    code, doc = probe_json("inspect", str(alone))
    assert code == 3
    assert doc["error"]["kind"] == "trust_bundle_invalid"
    assert hashlib.sha256(odd[2]).hexdigest() in doc["error"]["message"]


# --- in a CA file: skipped, the rest used -----------------------------------------------------


def _ca_file(path: Path, *blocks: bytes) -> Path:
    path.write_bytes(b"".join(blocks))
    return path


@pytest.mark.parametrize("odd", sorted(ODD))
def test_an_unparseable_ca_is_skipped_and_the_rest_used(
    pki: PkiFiles, tmp_path: Path, other_ca: CertAndKey, odd: str
) -> None:
    extra = ODD[odd](other_ca)
    ca_file = _ca_file(tmp_path / "ca.crt", odd_certs.pem(extra), pki.ca_cert.read_bytes())
    context = server_context(pki.server_cert, pki.server_key)
    with TcpServer(tls_handler(context, after=mqtt5_session(Behaviour()))) as server:
        code, doc = connect_json(server.address, ca_file)
    assert code == 0, doc["error"]
    assert len(doc["trust"]["certificates"]) == 1
    assert "1 skipped (cryptography cannot parse them)" in stage(doc, "trust")["detail"]
    [warning] = [w for w in doc["warnings"] if w["code"] == "unparseable"]
    assert hashlib.sha256(extra).hexdigest() in warning["message"]
    assert "it is skipped, and the other CAs are used" in warning["message"]

    code, bundle = probe_json("bundle", "--ca-file", str(ca_file))
    assert code == 0
    assert len(bundle["certificates"]) == 1
    assert [w["code"] for w in bundle["warnings"]] == ["unparseable"]
    text = probe("bundle", "--ca-file", str(ca_file))
    assert "warning: cryptography cannot parse a certificate of" in text.stdout


def test_a_bundle_of_only_unparseable_certificates_is_invalid(
    pki: PkiFiles, tmp_path: Path, other_ca: CertAndKey
) -> None:
    ca_file = _ca_file(
        tmp_path / "odd-only.crt", *(odd_certs.pem(make(other_ca)) for make in ODD.values())
    )
    code, doc = connect_json("127.0.0.1:1", ca_file)
    assert code == 3
    assert doc["error"]["kind"] == "trust_bundle_invalid"
    assert "holds 3 certificate(s), and cryptography can parse none" in doc["error"]["message"]
    code, bundle = probe_json("bundle", "--ca-file", str(ca_file))
    assert code == 3
    assert bundle["error"]["kind"] == "trust_bundle_invalid"


def test_the_odd_certificates_are_what_they_claim(other_ca: CertAndKey) -> None:
    """The control: each odd certificate does fail cryptography the way the tests assume."""
    from cryptography import x509
    from cryptography.utils import CryptographyDeprecationWarning

    from mqtt_tls_probe.core.certinfo import load_der

    for name, make in ODD.items():
        loaded: Any = load_der(make(other_ca))
        assert not isinstance(loaded, x509.Certificate), name
        assert REASONS[name] in loaded.reason
    with pytest.warns(CryptographyDeprecationWarning, match="serial number"):
        x509.load_der_x509_certificate(odd_certs.negative_serial(other_ca))

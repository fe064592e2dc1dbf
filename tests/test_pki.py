"""``probe certs init``: the development PKI mirrors the quickstart CA's profile."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from mqtt_tls_probe.aio import QUICKSTART_CA_CN
from mqtt_tls_probe.dev.pki import PkiFiles, init_pki

from .helpers import probe, probe_json


def _load(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


@pytest.fixture
def files(tmp_path: Path) -> PkiFiles:
    return init_pki(tmp_path / "certs", extra_sans=("aio-broker", "10.0.0.7"), client=True)


def test_ca_matches_the_quickstart_profile(files: PkiFiles) -> None:
    [ca] = _load(files.ca_cert)
    cn = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == QUICKSTART_CA_CN
    assert ca.issuer == ca.subject
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    assert ca.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical is True
    assert constraints.value.ca is True
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical is True
    assert usage.value.key_cert_sign is True
    assert not any(
        getattr(usage.value, flag)
        for flag in (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "crl_sign",
        )
    )
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ski.value.digest == x509.SubjectKeyIdentifier.from_public_key(key).digest
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == timedelta(days=30)
    ca.verify_directly_issued_by(ca)  # self-signed


def test_server_certificate_is_issued_by_the_ca(files: PkiFiles) -> None:
    [ca] = _load(files.ca_cert)
    leaf, sent_ca = _load(files.server_cert)
    assert sent_ca == ca  # the chain as cert-manager writes tls.crt
    leaf.verify_directly_issued_by(ca)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "aio-broker"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "::1",
        "10.0.0.7",
    ]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_client_certificate_is_for_client_auth(files: PkiFiles) -> None:
    [client] = _load(files.client_cert)
    [ca] = _load(files.ca_cert)
    client.verify_directly_issued_by(ca)
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_cryptography_verifier_accepts_the_server_certificate(files: PkiFiles) -> None:
    [ca] = _load(files.ca_cert)
    leaf, _ = _load(files.server_cert)
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("aio-broker"))
    chain = verifier.verify(leaf, [])
    assert chain[-1] == ca
    # Negative control: a name the certificate does not list.
    wrong = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("example.com"))
    with pytest.raises(VerificationError):
        wrong.verify(leaf, [])


def _handshake(files: PkiFiles, ca_file: Path, name: str) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.server_cert, files.server_key)
    client = ssl.create_default_context(cafile=str(ca_file))
    left, right = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server.wrap_socket(right, server_side=True):
                pass
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        with client.wrap_socket(left, server_hostname=name):
            pass
    finally:
        left.close()
        worker.join(5)
        right.close()


def test_openssl_accepts_the_server_certificate(files: PkiFiles, tmp_path: Path) -> None:
    _handshake(files, files.ca_cert, "localhost")
    _handshake(files, files.ca_cert, "aio-broker")
    # Negative control: another CA with the same profile is not trusted.
    other = init_pki(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files, other.ca_cert, "localhost")


def test_private_keys_are_private(files: PkiFiles) -> None:
    for key in (files.ca_key, files.server_key, files.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.ca_cert.stat().st_mode) == 0o644


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    assert probe("certs", "init", str(directory)).exit_code == 0
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    result = probe("certs", "init", str(directory))
    assert result.exit_code == 2
    assert "--force" in result.stderr
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    assert probe("certs", "init", str(directory), "--force").exit_code == 0
    assert (directory / "ca.crt").read_bytes() != before["ca.crt"]


def test_init_json_and_days(tmp_path: Path) -> None:
    code, document = probe_json("certs", "init", str(tmp_path / "c"), "--days", "3", "--san", "x")
    assert code == 0
    assert document["ca"]["subject"] == f"CN={QUICKSTART_CA_CN}"
    assert document["ca"]["days_left"] == 2  # 3 days from a minute ago
    assert "DNS:x" in document["server"]["sans"]

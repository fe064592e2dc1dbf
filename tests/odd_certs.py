"""Certificates OpenSSL accepts and ``cryptography`` refuses, made for the tests.

Each starts as a valid certificate built with ``cryptography``; then its
TBSCertificate is edited in place (same length, so no length changes ripple
up) and signed again by the issuer, as a CA with a lax toolchain would:

- a duplicate extension (two subjectAltName): ``cert.extensions`` raises;
- an IP SAN of five bytes: the SAN does not parse;
- a BOOLEAN encoded in BER (``01 01 01`` for TRUE): the certificate does not load;
- a negative serial number: it loads with a ``CryptographyDeprecationWarning``;
- a 1 MiB extension: every part parses, but OpenSSL's client refuses a
  certificate chain of over 100 KiB.

DER (X.690): a TLV's length is one byte below 128, else 0x80 + the number of
length bytes, then the length.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID, ObjectIdentifier

from mqtt_tls_probe.dev.pki import CertAndKey, general_name, new_private_key

_SERIAL = 0x12345678
_SAN = bytes.fromhex("0603551d11")  # OID 2.5.29.17
_UNUSED_SAN_TWIN = bytes.fromhex("0603551d63")  # OID 2.5.29.99, the same length
_PRIVATE_OID = ObjectIdentifier("1.3.6.1.4.1.55555.1")


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _header_size(der: bytes, at: int) -> int:
    first = der[at + 1]
    return 2 if first < 0x80 else 2 + (first & 0x7F)


def _builder(issuer: CertAndKey, common_name: str, key: ec.EllipticCurvePrivateKey) -> Any:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(_SERIAL)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=20))
    )


def resigned(cert: x509.Certificate, issuer: CertAndKey, edit: Callable[[bytes], bytes]) -> bytes:
    """The DER of ``cert`` with its TBSCertificate edited (same length) and signed again."""
    tbs = cert.tbs_certificate_bytes
    edited = edit(tbs)
    if len(edited) != len(tbs) or edited == tbs:
        raise ValueError("the edit must change the TBSCertificate and keep its length")
    der = cert.public_bytes(Encoding.DER)
    at = _header_size(der, 0) + len(tbs)  # the AlgorithmIdentifier follows the TBS
    algorithm = der[at : at + _header_size(der, at) + der[at + 1]]
    signature = issuer.private_key.sign(edited, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, edited + algorithm + _tlv(0x03, b"\x00" + signature))


def _replace_once(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def edit(tbs: bytes) -> bytes:
        if tbs.count(old) != 1:
            raise ValueError(f"{old.hex()} is not in the TBSCertificate exactly once")
        return tbs.replace(old, new)

    return edit


def duplicate_extension(issuer: CertAndKey, common_name: str = "duplicate-extension") -> bytes:
    """Two subjectAltName extensions: the second starts as an unknown OID of the same length."""
    key = new_private_key()
    san = x509.SubjectAlternativeName([x509.DNSName("odd.example")])
    twin = x509.UnrecognizedExtension(ObjectIdentifier("2.5.29.99"), san.public_bytes())
    cert = (
        _builder(issuer, common_name, key)
        .add_extension(san, critical=False)
        .add_extension(twin, critical=False)
        .sign(issuer.private_key, hashes.SHA256())
    )
    return resigned(cert, issuer, _replace_once(_UNUSED_SAN_TWIN, _SAN))


def malformed_ip_san(issuer: CertAndKey, common_name: str = "malformed-ip-san") -> bytes:
    """An iPAddress SAN of five bytes (the DNS name "abcde", retagged [7])."""
    key = new_private_key()
    san = x509.SubjectAlternativeName([x509.DNSName("abcde")])
    cert = (
        _builder(issuer, common_name, key)
        .add_extension(san, critical=False)
        .sign(issuer.private_key, hashes.SHA256())
    )
    return resigned(cert, issuer, _replace_once(b"\x82\x05abcde", b"\x87\x05abcde"))


def ber_boolean(issuer: CertAndKey, common_name: str = "ber-boolean") -> bytes:
    """basicConstraints marked critical with the BOOLEAN 01 (DER allows only FF for TRUE)."""
    key = new_private_key()
    cert = (
        _builder(issuer, common_name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer.private_key, hashes.SHA256())
    )
    return resigned(cert, issuer, _replace_once(b"\x01\x01\xff", b"\x01\x01\x01"))


def negative_serial(issuer: CertAndKey, common_name: str = "negative-serial") -> bytes:
    """The serial number 0x92345678 read as a signed INTEGER: negative."""
    key = new_private_key()
    cert = _builder(issuer, common_name, key).sign(issuer.private_key, hashes.SHA256())
    serial = b"\x02\x04" + _SERIAL.to_bytes(4, "big")
    return resigned(cert, issuer, _replace_once(serial, b"\x02\x04\x92" + serial[3:]))


def oversized_leaf(issuer: CertAndKey, names: list[str], size: int = 1 << 20) -> CertAndKey:
    """A valid server certificate carrying a ``size``-byte private extension."""
    key = new_private_key()
    value = _tlv(0x04, b"\x00" * size)  # an OCTET STRING
    cert = (
        _builder(issuer, names[0], key)
        .add_extension(
            x509.SubjectAlternativeName([general_name(n) for n in names]), critical=False
        )
        .add_extension(x509.UnrecognizedExtension(_PRIVATE_OID, value), critical=False)
        .sign(issuer.private_key, hashes.SHA256())
    )
    return CertAndKey(cert, key)


def pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"

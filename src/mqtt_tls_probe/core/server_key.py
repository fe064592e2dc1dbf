"""The key of a server's certificate, as ``core.classify.server_key_problem`` reads it.

Rule: pure; a certificate (or its DER bytes, as a trace holds them) in, a ``ServerKey``
out. Bytes that do not parse as a certificate give ``None``: the classification then
knows no more than without them.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from mqtt_tls_probe.core.classify import ServerKey


def server_key(cert: x509.Certificate) -> ServerKey:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return ServerKey("RSA", key.key_size)
    if isinstance(key, dsa.DSAPublicKey):
        return ServerKey("DSA", key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ServerKey("EC", key.curve.key_size, key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ServerKey("Ed25519", 256)
    if isinstance(key, ed448.Ed448PublicKey):
        return ServerKey("Ed448", 456)
    return ServerKey(type(key).__name__)


def server_key_from_der(der: bytes) -> ServerKey | None:
    """The key of a DER certificate, or None when it does not parse."""
    try:
        return server_key(x509.load_der_x509_certificate(der))
    except ValueError:
        return None

"""``openssl s_server`` for many connections, and certificates on keys a client may not use.

Facts measured with OpenSSL 3.0.19 (Debian 12), which the tests rely on:

- ``s_server`` refuses to load an RSA-512 or an RSA-1024 certificate at the default
  security level of Debian's build, 2 ("ee key too small");
  ``-cipher 'ALL:@SECLEVEL=0'`` loads both.
- OpenSSL 3.0's ``DEFAULT`` cipher list holds no DHE-DSS suite: a DSA-certificate server
  needs ``-cipher ALL`` to serve anyone; Python's client never offers DSS suites.
- A secp256k1 or brainpoolP256r1 certificate loads at the default level; the server
  picks it only for a client whose supported_groups lists that curve (RFC 8422 §5.1),
  which Python's default client does not.
- A server whose certificate cannot sign TLS 1.3 (DSA, secp256k1, brainpool) negotiates
  TLS 1.2 at most; an RSA-512 one still picks TLS 1.3, then finds no RSA-PSS signature
  it can make ("no suitable signature algorithm").
- In all four cases the server answers the probe's ClientHello with a handshake_failure
  alert and sends no certificate. A verifying client at level 2 refuses an RSA-1024
  certificate with verify error 66 (EE certificate key too weak); a client that does not
  verify (CERT_NONE) accepts it: the key-size check is part of X.509 verification.

``cryptography`` refuses to generate RSA keys below 1024 bits; the RSA-512 key comes
from ``openssl genpkey`` (and ``cryptography`` signs the certificate with it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID

from .servers import free_port

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
_START_LIMIT = 10.0

PrivateKey = rsa.RSAPrivateKey | dsa.DSAPrivateKey | ec.EllipticCurvePrivateKey


def private_key(kind: str, directory: Path) -> PrivateKey:
    """``dsa``, ``rsa512``, ``rsa1024``, ``rsa2048``, ``secp256k1``, ``brainpool``, ``p256``."""
    if kind == "dsa":
        return dsa.generate_private_key(2048)
    if kind == "rsa512":
        assert OPENSSL is not None
        path = directory / "rsa512.key"
        command = [OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"]
        subprocess.run([*command, "-out", str(path)], check=True, capture_output=True, timeout=30)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind.removeprefix("rsa")))
    curves: dict[str, ec.EllipticCurve] = {
        "secp256k1": ec.SECP256K1(),
        "brainpool": ec.BrainpoolP256R1(),
        "p256": ec.SECP256R1(),
    }
    return ec.generate_private_key(curves[kind])


def self_signed(directory: Path, kind: str, *, days: float = 30) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 and localhost on a ``kind`` key.

    Returns (certificate file, key file); the certificate file doubles as the CA file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = private_key(kind, directory)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{kind}-server")])
    now = datetime.now(UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{kind}.crt", directory / f"{kind}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@contextlib.contextmanager
def openssl_server(cert_file: Path, key_file: Path, *options: str) -> Iterator[int]:
    """``openssl s_server`` on 127.0.0.1 serving connection after connection; yields its port.

    It serves one connection at a time (each of the probe's is short). Killed on exit.
    """
    if OPENSSL is None:
        pytest.skip("needs the openssl command")
    port = free_port()
    log = cert_file.parent / f"s_server-{port}.log"
    command = [OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert_file)]
    command += ["-key", str(key_file), *options]
    with log.open("wb") as output:
        # stdin stays open: s_server stops at EOF on its standard input.
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + _START_LIMIT
        while b"ACCEPT" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"openssl s_server did not start: {log.read_text()[-1000:]}")
            time.sleep(0.02)
        yield port
    finally:
        process.kill()
        process.communicate(timeout=10)

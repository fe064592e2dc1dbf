"""Local files the flags name: secrets (password, token) and the client certificate pair.

Rule: a file's content never reaches output; what is reported about a file is
its path and what it looks like.
"""

from __future__ import annotations

from pathlib import Path

from mqtt_tls_probe.config import ClientIdentity
from mqtt_tls_probe.errors import UsageError


def read_secret_file(path: Path, what: str) -> bytes:
    """A password or token file, without the one trailing newline editors and kubectl leave.

    Raises:
        UsageError: the file cannot be read, or is empty.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise UsageError(f"the {what} file {path} is empty")
    return data


def load_client_identity(cert_file: Path, key_file: Path) -> ClientIdentity:
    """Check that ``key_file`` holds the private key of ``cert_file``'s certificate.

    Raises:
        UsageError: unreadable files, or a key that belongs to another certificate.
    """
    from cryptography.hazmat.primitives import serialization

    from mqtt_tls_probe.core.certinfo import name_of, parse_certificates

    try:
        certs = parse_certificates(cert_file.read_bytes())
        key_data = key_file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"{cert_file} holds no valid certificate: {exc}") from exc
    if not certs:
        raise UsageError(f"{cert_file} holds no certificate")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{key_file} holds no unencrypted PEM private key") from exc
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != certs[0].public_key().public_bytes(*spki):
        raise UsageError(
            f"the key in {key_file} does not belong to the certificate in {cert_file} "
            f"({name_of(certs[0].subject)}): pass the matching --key"
        )
    return ClientIdentity(cert_file, key_file, name_of(certs[0].subject))

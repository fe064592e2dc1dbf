"""A development PKI that mirrors the Azure IoT Operations quickstart CA.

The quickstart profile (what ``probe certs init`` makes): a self-signed root,
ECDSA P-256 with ecdsa-with-SHA256, subject = issuer
``CN = Azure IoT Operations Quickstart Root CA - Not for Production``,
basicConstraints critical CA:TRUE, keyUsage critical keyCertSign, a Subject Key
Identifier, valid for 30 days. The server certificate it issues carries SANs,
an Authority Key Identifier and extended key usage serverAuth.

The builders take keyword overrides (validity, key, key usage, CA flag) so the
test suite can make every broken certificate a real deployment meets.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mqtt_tls_probe.aio import QUICKSTART_CA_CN, QUICKSTART_CA_DAYS
from mqtt_tls_probe.errors import UsageError

DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
CLIENT_COMMON_NAME = "probe-client"
# Certificates start a minute in the past so that a peer whose clock is a
# little behind does not see them as not yet valid.
_BACKDATE = timedelta(minutes=1)


@dataclass(frozen=True)
class CertAndKey:
    """A certificate with its private key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(not_before: datetime | None, days: float) -> tuple[datetime, datetime]:
    start = not_before or datetime.now(UTC) - _BACKDATE
    return start, start + timedelta(days=days)


def create_root_ca(
    common_name: str = QUICKSTART_CA_CN,
    *,
    days: float = QUICKSTART_CA_DAYS,
    not_before: datetime | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    key_cert_sign: bool = True,
    ca: bool = True,
    with_key_usage: bool = True,
) -> CertAndKey:
    """A self-signed root CA in the quickstart profile.

    Args:
        common_name: the subject's (and issuer's) CN.
        days: validity from ``not_before``.
        not_before: start of validity; default one minute ago.
        key: reuse a key (default: a new P-256 key).
        key_cert_sign: False makes a "CA" whose keyUsage forbids signing certificates.
        ca: False makes basicConstraints CA:FALSE (not a CA at all).
        with_key_usage: False leaves keyUsage out, as plain ``openssl req -x509`` does.
    """
    key = key or new_private_key()
    start, end = _validity(not_before, days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if with_key_usage:
        usage = _key_usage(cert_sign=key_cert_sign, digital_signature=not ca)
        builder = builder.add_extension(usage, critical=True)
    return CertAndKey(builder.sign(key, hashes.SHA256()), key)


def create_intermediate_ca(
    issuer: CertAndKey,
    common_name: str,
    *,
    days: float = QUICKSTART_CA_DAYS,
    not_before: datetime | None = None,
) -> CertAndKey:
    """An intermediate CA signed by ``issuer`` (path length 0)."""
    key = new_private_key()
    start, end = _validity(not_before, days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(issuer), critical=False)
    )
    return CertAndKey(builder.sign(issuer.private_key, hashes.SHA256()), key)


def issue_server_certificate(
    issuer: CertAndKey | None,
    names: Sequence[str] = DEFAULT_SERVER_NAMES,
    *,
    days: float = QUICKSTART_CA_DAYS,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    common_name: str | None = None,
) -> CertAndKey:
    """A TLS server certificate for ``names`` (DNS names or IP addresses).

    ``issuer=None`` makes a self-signed leaf. Validity ends with ``days`` but
    never outlasts the issuer, unless ``not_after`` says otherwise explicitly.
    """
    return _issue_leaf(
        issuer,
        common_name or (names[0] if names else "server"),
        names,
        ExtendedKeyUsageOID.SERVER_AUTH,
        days=days,
        not_before=not_before,
        not_after=not_after,
    )


def issue_client_certificate(
    issuer: CertAndKey,
    common_name: str = CLIENT_COMMON_NAME,
    *,
    days: float = QUICKSTART_CA_DAYS,
    not_before: datetime | None = None,
) -> CertAndKey:
    """A TLS client certificate (extended key usage clientAuth)."""
    return _issue_leaf(
        issuer, common_name, (), ExtendedKeyUsageOID.CLIENT_AUTH, days=days, not_before=not_before
    )


def _issue_leaf(
    issuer: CertAndKey | None,
    common_name: str,
    names: Sequence[str],
    usage: x509.ObjectIdentifier,
    *,
    days: float,
    not_before: datetime | None,
    not_after: datetime | None = None,
) -> CertAndKey:
    key = new_private_key()
    start, end = _validity(not_before, days)
    if issuer is not None:
        end = min(end, issuer.certificate.not_valid_after_utc)
    end = not_after or end
    subject = _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([general_name(n) for n in names]), critical=False
        )
    if issuer is not None:
        builder = builder.add_extension(_authority_key_id(issuer), critical=False)
    signer = issuer.private_key if issuer else key
    return CertAndKey(builder.sign(signer, hashes.SHA256()), key)


def general_name(name: str) -> x509.GeneralName:
    """``127.0.0.1`` and ``::1`` become IP SANs; anything else a DNS SAN."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_usage(*, cert_sign: bool = False, digital_signature: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(issuer: CertAndKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key())


# --- files -------------------------------------------------------------------


@dataclass(frozen=True)
class PkiFiles:
    """Where ``probe certs init`` put things."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    def server_files_exist(self) -> bool:
        return all(p.is_file() for p in (self.ca_cert, self.server_cert, self.server_key))


def init_pki(
    directory: Path,
    *,
    days: float = QUICKSTART_CA_DAYS,
    extra_sans: Sequence[str] = (),
    client: bool = False,
    force: bool = False,
) -> PkiFiles:
    """Write ``ca.crt``, ``ca.key``, ``server.crt``, ``server.key`` (and the client pair).

    ``server.crt`` holds the server certificate followed by the CA, as
    cert-manager writes ``tls.crt`` for the broker: clients that trust another
    CA then see the same error as against Azure IoT Operations.

    Raises:
        UsageError: a file exists and ``force`` is false; nothing is written then.
    """
    files = PkiFiles(directory)
    targets = [files.ca_cert, files.ca_key, files.server_cert, files.server_key]
    if client:
        targets += [files.client_cert, files.client_key]
    existing = [str(p) for p in targets if os.path.lexists(p)]  # a dangling link exists too
    if existing and not force:
        raise UsageError(
            f"refusing to overwrite {', '.join(existing)}: pass --force to replace them"
        )
    _make_directory(directory)
    names = list(dict.fromkeys([*DEFAULT_SERVER_NAMES, *extra_sans]))
    ca = create_root_ca(days=days)
    server = issue_server_certificate(ca, names, days=days)
    _write(files.ca_cert, ca.cert_pem(), replace=force)
    _write(files.ca_key, ca.key_pem(), private=True, replace=force)
    _write(files.server_cert, server.cert_pem() + ca.cert_pem(), replace=force)
    _write(files.server_key, server.key_pem(), private=True, replace=force)
    if client:
        pair = issue_client_certificate(ca, days=days)
        _write(files.client_cert, pair.cert_pem(), replace=force)
        _write(files.client_key, pair.key_pem(), private=True, replace=force)
    return files


def _make_directory(directory: Path) -> None:
    """``directory`` and its parents, or a usage error that names the path and the reason."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise UsageError(f"cannot create the directory {directory}: a file has that name") from exc
    except OSError as exc:
        raise UsageError(f"cannot create the directory {directory}: {exc.strerror}") from exc
    except ValueError as exc:  # an embedded NUL
        raise UsageError(f"cannot create the directory {directory}: not a valid name") from exc


def ensure_pki(directory: Path) -> tuple[PkiFiles, bool]:
    """The PKI in ``directory``, created when missing. Returns (files, created)."""
    files = PkiFiles(directory)
    if files.server_files_exist():
        return files, False
    return init_pki(directory, force=True), True


def _write(path: Path, data: bytes, *, private: bool = False, replace: bool = False) -> None:
    """Write one file of the PKI: never through a symbolic link, replaced only when asked.

    Raises:
        UsageError: the path exists (without ``replace``) or cannot be written.
    """
    from mqtt_tls_probe.adapters.files import write_file

    write_file(path, data, mode=0o600 if private else 0o644, replace=replace)

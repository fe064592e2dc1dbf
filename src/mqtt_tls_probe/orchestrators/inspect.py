"""``probe inspect``: certificates from a file, or the chain a server sends.

A certificate cryptography cannot parse in full is described as far as it
can be, and named in a warning with its SHA-256; the others are described
as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from mqtt_tls_probe.adapters import net, tls
from mqtt_tls_probe.config import TlsOptions, parse_target
from mqtt_tls_probe.core.certinfo import (
    Loaded,
    describe_all,
    describe_content,
    read_certificates,
    unparseable_finding,
)
from mqtt_tls_probe.core.verify import hostname_error, name_matches
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import Finding, FindingCode, InspectionReport, Unparseable


def inspect_source(
    source: str, server_name: str | None, timeout: float, now: datetime | None = None
) -> InspectionReport:
    """Describe a certificate file, or the chain ``host:port`` sends (read, not trusted)."""
    moment = now or datetime.now(UTC)
    path = Path(source)
    try:
        if path.exists():
            certs = _read_file(path)
            findings = _unparseable(certs, "certificate {} of the file")
            return InspectionReport(source, "file", describe_all(certs, moment), findings=findings)
        return _inspect_server(source, server_name, timeout, moment)
    except ProbeError as error:
        origin = "file" if path.exists() else "server"
        return InspectionReport(source, origin, (), error=error.info)


def _unparseable(certs: list[Loaded], what: str) -> tuple[Finding, ...]:
    """A warning per certificate cryptography cannot parse; ``what`` has a {} for its index."""
    return tuple(
        unparseable_finding(cert, what.format(index), "OpenSSL may still accept it")
        for index, cert in enumerate(certs)
        if not isinstance(cert, x509.Certificate)
    )


def _read_file(path: Path) -> list[Loaded]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_NOT_FOUND, f"{path} cannot be read: {exc.strerror}."
        ) from exc
    certs = read_certificates(data)
    if not certs:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{path} holds no certificate: {describe_content(data)}.",
            "Give a PEM or DER certificate file, or host:port for a server's chain.",
        )
    if not any(isinstance(c, x509.Certificate) or c.certificate is not None for c in certs):
        first = certs[0]
        assert isinstance(first, Unparseable)  # noqa: S101 (narrowing: none loads)
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{path} holds {len(certs)} certificate(s), and cryptography can load none of "
            f"them: {first.reason} (SHA-256 {first.sha256}).",
            "OpenSSL may still read it: openssl x509 -in FILE -noout -text",
        )
    return certs


def _inspect_server(
    source: str, server_name: str | None, timeout: float, now: datetime
) -> InspectionReport:
    host, port = parse_target(source, None)
    name = server_name or host
    options = TlsOptions(server_name=name)
    addresses = net.resolve(host, port, timeout)
    sock, _ = net.connect(addresses, timeout)
    context = tls.build_context(None, options, verify=False)
    with tls.handshake(sock, context, options, timeout) as connection:
        chain = tls.peer_chain(connection)
        info = tls.session_info(connection)
    findings = _unparseable(chain, "certificate {} of the server's chain (0 is its own)")
    leaf = chain[0] if chain else None
    if isinstance(leaf, x509.Certificate) and not name_matches(leaf, name):
        mismatch = hostname_error(leaf, name).message
        findings += (Finding(FindingCode.HOSTNAME_MISMATCH, mismatch),)
    return InspectionReport(source, "server", describe_all(chain, now), info, findings)

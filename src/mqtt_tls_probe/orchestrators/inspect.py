"""``probe inspect``: certificates from a file, or the chain a server sends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from mqtt_tls_probe.adapters import net, tls
from mqtt_tls_probe.config import TlsOptions, parse_target
from mqtt_tls_probe.core.certinfo import describe_all, describe_content, parse_certificates
from mqtt_tls_probe.core.verify import hostname_error, name_matches
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import Finding, FindingCode, InspectionReport


def inspect_source(
    source: str, server_name: str | None, timeout: float, now: datetime | None = None
) -> InspectionReport:
    """Describe a certificate file, or the chain ``host:port`` sends (read, not trusted)."""
    moment = now or datetime.now(UTC)
    path = Path(source)
    try:
        if path.exists():
            return InspectionReport(source, "file", describe_all(_read_file(path), moment))
        return _inspect_server(source, server_name, timeout, moment)
    except ProbeError as error:
        origin = "file" if path.exists() else "server"
        return InspectionReport(source, origin, (), error=error.info)


def _read_file(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
        certs = parse_certificates(data)
    except OSError as exc:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_NOT_FOUND, f"{path} cannot be read: {exc.strerror}."
        ) from exc
    except ValueError as exc:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{path} holds a certificate that does not parse: {exc}.",
        ) from exc
    if not certs:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{path} holds no certificate: {describe_content(data)}.",
            "Give a PEM or DER certificate file, or host:port for a server's chain.",
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
    findings: tuple[Finding, ...] = ()
    if chain and not name_matches(chain[0], name):
        mismatch = hostname_error(chain[0], name).message
        findings = (Finding(FindingCode.HOSTNAME_MISMATCH, mismatch),)
    return InspectionReport(source, "server", describe_all(chain, now), info, findings)

"""``probe inspect``: certificates from a file, or the chain a server sends."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from mqtt_tls_probe.adapters import net, tls
from mqtt_tls_probe.adapters.trust import read_certificate_file
from mqtt_tls_probe.config import TlsOptions, check_server_name, parse_target
from mqtt_tls_probe.core.certinfo import describe_all, describe_content, parse_certificates
from mqtt_tls_probe.core.verify import hostname_error, name_matches
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import Finding, FindingCode, InspectionReport


def inspect_source(
    source: str, server_name: str | None, timeout: float, now: datetime | None = None
) -> InspectionReport:
    """Describe a certificate file, or the chain ``host:port`` sends (read, not trusted).

    SOURCE is a file when it exists, or when it looks like a path (a ``/``, or a
    certificate's suffix): a missing file is then a trust-stage error, never a
    host name to resolve.

    Raises:
        UsageError: ``host:port`` or ``--server-name`` is no valid target (before any I/O).
    """
    moment = now or datetime.now(UTC)
    if server_name is not None:
        server_name = check_server_name(server_name)
    origin = "file" if _is_file_source(source) else "server"
    try:
        if origin == "file":
            data = read_certificate_file(Path(source), "The file", timeout)
            return InspectionReport(
                source, origin, describe_all(_certificates(data, source), moment)
            )
        return _inspect_server(source, server_name, timeout, moment)
    except ProbeError as error:
        return InspectionReport(source, origin, (), error=error.info)


_CERTIFICATE_SUFFIXES = (".pem", ".crt", ".der", ".cer")


def _is_file_source(source: str) -> bool:
    try:
        os.lstat(source)
    except (OSError, ValueError):
        return "/" in source or source.lower().endswith(_CERTIFICATE_SUFFIXES)
    return True


def _certificates(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        certs = parse_certificates(data)
    except ValueError as exc:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{source} holds a certificate that does not parse: {exc}.",
        ) from exc
    if not certs:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{source} holds no certificate: {describe_content(data)}.",
            "Give a PEM or DER certificate file, or host:port for a server's chain.",
        )
    return certs


def _inspect_server(
    source: str, server_name: str | None, timeout: float, now: datetime
) -> InspectionReport:
    host, port = parse_target(source, None)
    name = server_name or host.removesuffix(".")
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

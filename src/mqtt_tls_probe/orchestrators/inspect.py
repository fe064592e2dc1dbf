"""``probe inspect``: certificates from a file, or the chain a server sends.

With ``trace`` (``--trace``), the report's ``tls`` also holds the handshake's messages,
whether the handshake succeeded or not. A certificate cryptography cannot parse in
full is described as far as it can be, and named in a warning with its SHA-256; the
others are described as usual.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from mqtt_tls_probe.adapters import net, tls
from mqtt_tls_probe.adapters.tls_observer import HandshakeObserver
from mqtt_tls_probe.adapters.trust import read_certificate_file
from mqtt_tls_probe.config import TlsOptions, check_server_name, parse_target
from mqtt_tls_probe.core.certinfo import (
    Loaded,
    describe_all,
    describe_content,
    read_certificates,
    unparseable_finding,
)
from mqtt_tls_probe.core.verify import hostname_error, name_matches
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import Finding, FindingCode, InspectionReport, TlsInfo, Unparseable


def inspect_source(
    source: str,
    server_name: str | None,
    timeout: float,
    now: datetime | None = None,
    *,
    trace: bool = False,
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
    watch = _Watch(trace)
    try:
        if origin == "file":
            data = read_certificate_file(Path(source), "The file", timeout)
            certs = _certificates(data, source)
            findings = _unparseable(certs, "certificate {} of the file")
            return InspectionReport(source, origin, describe_all(certs, moment), findings=findings)
        return _inspect_server(source, server_name, timeout, moment, watch)
    except ProbeError as error:
        return InspectionReport(source, origin, (), tls=watch.tls_info(None), error=error.info)


class _Watch:
    """The handshake's observer, kept for a trace that must outlive a failure."""

    def __init__(self, trace: bool) -> None:
        self.trace = trace
        self.observer: HandshakeObserver | None = None

    def tls_info(self, info: TlsInfo | None) -> TlsInfo | None:
        """``info`` with the trace when one was asked for (and could be recorded)."""
        if not self.trace or self.observer is None or not self.observer.available:
            return info
        self.observer.stop()
        events = tuple(self.observer.events())
        return (info or TlsInfo(None, None, None))._replace(trace=events)


_CERTIFICATE_SUFFIXES = (".pem", ".crt", ".der", ".cer")


def _is_file_source(source: str) -> bool:
    try:
        os.lstat(source)
    except (OSError, ValueError):
        return "/" in source or source.lower().endswith(_CERTIFICATE_SUFFIXES)
    return True


def _unparseable(certs: list[Loaded], what: str) -> tuple[Finding, ...]:
    """A warning per certificate cryptography cannot parse; ``what`` has a {} for its index."""
    return tuple(
        unparseable_finding(cert, what.format(index), "OpenSSL may still accept it")
        for index, cert in enumerate(certs)
        if not isinstance(cert, x509.Certificate)
    )


def _certificates(data: bytes, source: str) -> list[Loaded]:
    certs = read_certificates(data)
    if not certs:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{source} holds no certificate: {describe_content(data)}.",
            "Give a PEM or DER certificate file, or host:port for a server's chain.",
        )
    if not any(isinstance(c, x509.Certificate) or c.certificate is not None for c in certs):
        first = certs[0]
        assert isinstance(first, Unparseable)  # noqa: S101 (narrowing: none loads)
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{source} holds {len(certs)} certificate(s), and cryptography can load none of "
            f"them: {first.reason} (SHA-256 {first.sha256}).",
            "OpenSSL may still read it: openssl x509 -in FILE -noout -text",
        )
    return certs


def _inspect_server(
    source: str, server_name: str | None, timeout: float, now: datetime, watch: _Watch
) -> InspectionReport:
    host, port = parse_target(source, None)
    name = server_name or host.removesuffix(".")
    options = TlsOptions(server_name=name)
    addresses = net.resolve(host, port, timeout)
    sock, address = net.connect(addresses, timeout)
    context = tls.build_context(None, options, verify=False)
    watch.observer = HandshakeObserver(context, server_name=name, address=address, timeout=timeout)
    findings: tuple[Finding, ...] = ()
    if watch.trace and not watch.observer.available:
        unavailable = "--trace: trace unavailable on this Python (no SSLContext._msg_callback)."
        findings = (Finding(FindingCode.TRACE_UNAVAILABLE, unavailable),)
    watch.observer.begin()
    with tls.handshake(sock, context, options, timeout, observer=watch.observer) as connection:
        chain = tls.peer_chain(connection)
        info = watch.tls_info(tls.session_info(connection))
    watch.observer.stop()
    findings += _unparseable(chain, "certificate {} of the server's chain (0 is its own)")
    leaf = chain[0] if chain else None
    if isinstance(leaf, x509.Certificate) and not name_matches(leaf, name):
        mismatch = hostname_error(leaf, name).message
        findings = (*findings, Finding(FindingCode.HOSTNAME_MISMATCH, mismatch))
    return InspectionReport(source, "server", describe_all(chain, now), info, findings)

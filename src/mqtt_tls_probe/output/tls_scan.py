"""The text and JSON of ``probe tls`` (a ``TlsScanReport``).

Rule: read the report, compute nothing. A version the local OpenSSL could not try is
``null`` in JSON and "not tried" in text, never "no".
"""

from __future__ import annotations

from typing import Any

from mqtt_tls_probe.model import (
    CertInfo,
    CipherSuites,
    ClientCertificatePolicy,
    ResumptionInfo,
    TlsScanReport,
)

_YES_NO = {True: "yes", False: "no", None: "not tried"}
_PAD = " " * 16


def render_text(report: TlsScanReport, *, verbose: bool = False) -> list[str]:
    """One line per question; the chain one line per certificate (every field with -v)."""
    t = report.target
    host = f"[{t.host}]" if ":" in t.host else t.host
    head = f"probe tls {host}:{t.port} (server name {t.server_name}; {report.handshakes} "
    lines = [head + f"handshakes; {report.openssl})"]
    if report.error is not None:
        e = report.error
        return [
            *lines,
            "",
            f"FAILED: {e.kind} (exit {report.exit_code})",
            f"cause: {e.message}",
            f"hint:  {e.hint}",
        ]
    versions = "   ".join(f"{name} {_YES_NO[ok]}" for name, ok in report.versions.items())
    lines.append(f"  {'versions':<14}{versions}")
    if report.cipher_suites is not None:
        lines += _suite_lines(report.cipher_suites)
    if report.alpn is not None:
        a = report.alpn
        lines.append(
            f"  {'ALPN':<14}mqtt: {a.mqtt or 'unknown'}; "
            f"{a.unknown_protocol}: {a.unknown or 'unknown'}"
        )
    if report.client_certificate is not None:
        lines.append(f"  {'client cert':<14}{_client_certificate(report.client_certificate)}")
    if report.resumption is not None:
        lines.append(f"  {'resumption':<14}{_resumption(report.resumption)}")
    lines += _chain_lines(report.chain, verbose=verbose)
    lines += ["", "findings:" if report.findings else "findings: none"]
    width = max((len(f.code) for f in report.findings), default=0)
    for finding in report.findings:
        lines.append(f"  {finding.severity.upper():<7} {finding.code:<{width}}  {finding.message}")
    if report.notes:
        lines += ["", "notes:", *(f"  {note}" for note in report.notes)]
    return lines


def _client_certificate(policy: ClientCertificatePolicy) -> str:
    if policy.requested is None:
        return "unknown (no trace on this Python)"
    if not policy.requested:
        return "not requested"
    said = "requested, " + {True: "required", False: "optional", None: "?"}[policy.required]
    return said + f"; CAs it names: {'; '.join(policy.authorities) or '(none)'}"


def _resumption(info: ResumptionInfo) -> str:
    tickets = {True: "tickets issued", False: "no tickets", None: "tickets unknown"}
    said = f"{info.version or '?'}: {tickets[info.tickets]}"
    if info.ticket_lifetime_s is not None:
        said += f" (lifetime {info.ticket_lifetime_s} s)"
    resumed = {True: "accepted", False: "refused", None: "not tried"}
    return said + f"; resumed handshake {resumed[info.resumed]}"


def _chain_lines(chain: tuple[CertInfo, ...], *, verbose: bool) -> list[str]:
    from mqtt_tls_probe.output.text import certificate_lines

    lines = [f"  chain (as sent, not verified): {len(chain)} certificate(s)"]
    for index, cert in enumerate(chain):
        if verbose:
            lines += [f"  {line}" for line in certificate_lines(cert, index)]
            continue
        left = f"{cert.days_left} days left" if cert.days_left >= 0 else "EXPIRED"
        lines.append(
            f"{_PAD}[{index}] {cert.subject}  {cert.key}, until "
            f"{cert.not_after.strftime('%Y-%m-%dT%H:%M:%SZ')} ({left})"
        )
        lines += [f"{_PAD}    {finding.message}" for finding in cert.findings]
    return lines


def _suite_lines(suites: CipherSuites) -> list[str]:
    order = {True: "; the server imposes its order", False: "; the client's order wins"}
    said = f"{len(suites.tls12_accepted)} of {suites.tls12_tried} suites accepted"
    said += order.get(suites.server_preference, "") if suites.server_preference is not None else ""
    lines = [f"  {'TLS 1.2':<14}{said}"]
    width = max((len(s.name) for s in suites.tls12_accepted), default=0)
    for suite in suites.tls12_accepted:
        notes = [] if suite.forward_secrecy else ["no forward secrecy"]
        notes += ["CBC"] if suite.cbc else []
        notes += ["INSECURE"] if suite.insecure else []
        extra = f"  ({', '.join(notes)})" if notes else ""
        lines.append(f"{_PAD}{suite.name:<{width}}  {suite.iana}{extra}")
    chosen = suites.tls13_chosen or "not negotiated"
    lines.append(f"  {'TLS 1.3':<14}suite chosen: {chosen}")
    return lines


def render_json(report: TlsScanReport) -> dict[str, Any]:
    from mqtt_tls_probe.output.json_doc import cert_json, error_json

    t = report.target
    return {
        "ok": report.ok,
        "target": {"host": t.host, "port": t.port, "server_name": t.server_name},
        "openssl": report.openssl,
        "handshakes": report.handshakes,
        "versions": dict(report.versions),
        "cipher_suites": _suites_json(report.cipher_suites),
        "alpn": None
        if report.alpn is None
        else {
            "mqtt": report.alpn.mqtt,
            "unknown": report.alpn.unknown,
            "unknown_protocol": report.alpn.unknown_protocol,
        },
        "client_certificate": None
        if report.client_certificate is None
        else {
            "requested": report.client_certificate.requested,
            "required": report.client_certificate.required,
            "certificate_authorities": list(report.client_certificate.authorities),
        },
        "resumption": None
        if report.resumption is None
        else {
            "version": report.resumption.version,
            "tickets": report.resumption.tickets,
            "ticket_lifetime_s": report.resumption.ticket_lifetime_s,
            "resumed": report.resumption.resumed,
        },
        "chain": [cert_json(c) for c in report.chain],
        "findings": [
            {"code": str(f.code), "severity": str(f.severity), "message": f.message}
            for f in report.findings
        ],
        "notes": list(report.notes),
        "error": error_json(report.error),
        "exit_code": report.exit_code,
    }


def _suites_json(suites: CipherSuites | None) -> dict[str, Any] | None:
    if suites is None:
        return None
    return {
        "TLSv1.2": {
            "accepted": [
                {
                    "name": s.name,
                    "iana": s.iana,
                    "code": f"0x{s.code:04x}",
                    "kex": s.kex,
                    "auth": s.auth,
                    "forward_secrecy": s.forward_secrecy,
                    "cbc": s.cbc,
                    "insecure": s.insecure,
                }
                for s in suites.tls12_accepted
            ],
            "tried": suites.tls12_tried,
            "server_preference": suites.server_preference,
        },
        "TLSv1.3": {"chosen": suites.tls13_chosen},
    }

"""The text reports: for connect, one line per stage, then the cause and the next step.

Rule: read the report, compute nothing; return lines, print nothing. Every
line goes through ``escape_controls`` before the lines are joined, so no value
(a certificate's subject, a Kubernetes message, a file name) can move the
cursor, clear the screen or end a line: the joins are the only raw newlines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mqtt_tls_probe import aio
from mqtt_tls_probe.core.moments import iso
from mqtt_tls_probe.errors import ErrorInfo, Stage
from mqtt_tls_probe.model import (
    CertInfo,
    ProbeReport,
    StageResult,
)

if TYPE_CHECKING:  # loaded on first use: connect's reports do not need them
    from mqtt_tls_probe.reports import (
        BundleReport,
        CertsInitReport,
        ClusterReport,
        InspectionReport,
        Report,
    )
from mqtt_tls_probe.output.escape import escape_controls

_NAME_WIDTH = max(len(s) for s in Stage)


def render(report: Report, *, verbose: bool = False) -> str:
    """The text of any report, one line each, ending with a newline."""
    if isinstance(report, ProbeReport):
        lines = render_report(report, verbose=verbose)
    else:
        lines = _other_report_lines(report, verbose=verbose)
    return "\n".join(escape_controls(line) for line in lines) + "\n"


def _other_report_lines(report: Report, *, verbose: bool) -> list[str]:
    from mqtt_tls_probe import reports

    if isinstance(report, reports.DemoReport):
        return [*report.notes, *render_report(report.probe, verbose=verbose)]
    if isinstance(report, reports.BundleReport):
        return render_bundle(report)
    if isinstance(report, reports.InspectionReport):
        return render_inspection(report)
    if isinstance(report, reports.ClusterReport):
        return render_cluster(report)
    if isinstance(report, reports.ListenersReport):
        from mqtt_tls_probe.output.listeners import render_text as listeners_text

        return listeners_text(report)
    if isinstance(report, reports.TlsScanReport):
        from mqtt_tls_probe.output.tls_scan import render_text

        return render_text(report, verbose=verbose)
    assert isinstance(report, reports.CertsInitReport)  # noqa: S101 (the last kind)
    return render_certs_init(report)


def render_report(report: ProbeReport, *, verbose: bool = False) -> list[str]:
    t = report.target
    host = f"[{t.host}]" if ":" in t.host else t.host
    head = f"probe connect {host}:{t.port}"
    if t.server_name != t.host:
        head += f" (verifying the name {t.server_name})"
    lines = [head]
    for stage in report.stages:
        lines.append(_stage_line(stage, report))
        if stage.name is Stage.TLS and report.tls is not None and report.tls.trace is not None:
            from mqtt_tls_probe.output.trace_text import trace_lines

            lines += trace_lines(report.tls.trace)
    for warning in report.warnings:
        lines.append(f"warning: {warning.message}")
    if verbose:
        lines += certificate_section("server chain, as sent (leaf first)", report.chain)
        source = report.trust.location or str(report.trust.source)
        lines += certificate_section(f"trust bundle ({source})", report.trust.certificates)
    lines.append("")
    if report.error is not None:
        e = report.error
        lines.append(f"FAILED at {e.stage}: {e.kind} (exit {report.exit_code})")
        lines.append(f"cause: {e.message}")
        lines.append(f"hint:  {e.hint}")
    elif report.listener is not None and not report.listener.tls:
        lines.append(
            f"OK, but WITHOUT TLS: {host}:{t.port} accepts plain MQTT; everything on this "
            "port crosses the network in clear text."
        )
    elif report.verified:
        lines.append(
            f"OK: {host}:{t.port} accepts MQTT over TLS, verified against {report.trust.location}."
        )
    else:
        lines.append(
            f"OK, but UNVERIFIED: {host}:{t.port} speaks MQTT over TLS; its "
            "certificate was not verified (--insecure)."
        )
    return lines


def _stage_line(stage: StageResult, report: ProbeReport) -> str:
    if stage.skipped:
        return f"  SKIP  {stage.name}"
    mark = "PASS" if stage.ok else "FAIL"
    if stage.ok and stage.name is Stage.VERIFY and not report.verified:
        mark = "WARN"
    ms = f"{stage.ms:8.1f} ms" if stage.ms is not None else " " * 11
    return f"  {mark}  {stage.name:<{_NAME_WIDTH}} {ms}  {stage.detail}"


def certificate_section(title: str, certs: Sequence[CertInfo]) -> list[str]:
    lines = ["", f"{title}:"]
    if not certs:
        lines.append("  (none)")
    for index, cert in enumerate(certs):
        lines += certificate_lines(cert, index)
    return lines


def certificate_lines(cert: CertInfo, index: int) -> list[str]:
    """The per-certificate view shared by connect -v, bundle and inspect."""
    pad = "      "
    left = f"{cert.days_left} days left" if cert.days_left >= 0 else "EXPIRED"
    constraints = cert.basic_constraints or "no basicConstraints"
    usage = ", ".join(cert.key_usage) or "-"
    if cert.extended_key_usage:
        usage += f"; extended: {', '.join(cert.extended_key_usage)}"
    lines = [
        f"  [{index}] {cert.subject}",
        f"{pad}issuer      {cert.issuer}{'  (self-signed)' if cert.self_signed else ''}",
        f"{pad}serial      {cert.serial}",
        f"{pad}valid       {iso(cert.not_before)} to {iso(cert.not_after)} ({left})",
        f"{pad}key         {cert.key}, signed with {cert.signature_algorithm}",
        f"{pad}CA          {'yes' if cert.is_ca else 'no'} ({constraints})",
        f"{pad}key usage   {usage}",
    ]
    if cert.sans:
        lines.append(f"{pad}SANs        {', '.join(cert.sans)}")
    lines.append(f"{pad}SKI         {cert.ski or '-'}")
    lines.append(f"{pad}AKI         {cert.aki or '-'}")
    lines.append(f"{pad}SHA-256     {cert.sha256}")
    for finding in cert.findings:
        lines.append(f"{pad}finding     {finding.message}")
    return lines


def render_bundle(report: BundleReport) -> list[str]:
    if report.error is not None or report.bundle is None:
        return _failure_lines(report.error)
    bundle = report.bundle
    count = len(report.certificates)
    lines = [f"trust bundle: {bundle.location} ({count} CA certificate{'s' if count > 1 else ''})"]
    if bundle.note:
        lines.append(f"note: {bundle.note}")
    for index, cert in enumerate(report.certificates):
        lines += certificate_lines(cert, index)
    lines += [f"warning: {f.message}" for f in report.findings]
    if report.written is not None:
        lines += ["", f"wrote the bundle's PEM to {report.written}"]
    return lines


def render_inspection(report: InspectionReport) -> list[str]:
    from mqtt_tls_probe.output.trace_text import trace_lines

    traced = report.tls.trace if report.tls is not None else None
    if report.error is not None:
        trace = ["handshake:", *trace_lines(traced)] if traced is not None else []
        return [*trace, *_failure_lines(report.error)]
    what = "chain sent by" if report.origin == "server" else "certificates in"
    lines = [f"{what} {report.source} (not verified):"]
    if report.tls is not None:
        lines.append(f"  {report.tls.version} {report.tls.cipher}")
        if traced is not None:
            lines += trace_lines(traced)
    for index, cert in enumerate(report.certificates):
        lines += certificate_lines(cert, index)
    lines += [f"warning: {f.message}" for f in report.findings]
    return lines


def render_cluster(report: ClusterReport) -> list[str]:
    origin = f" ({report.origin})" if report.origin else ""
    lines = [f"probe cluster: namespace {report.namespace}{origin}"]
    width = max(len(c.name) for c in report.checks)
    for check in report.checks:
        lines.append(f"  {check.status.upper():<8} {check.name:<{width}}  {check.message}")
        if check.hint and check.status != "ok":
            lines.append(f"  {'':<8} {'':<{width}}  hint: {check.hint}")
    lines += ["", f"status: {report.status} (exit {report.exit_code})"]
    return lines


def render_certs_init(report: CertsInitReport) -> list[str]:
    lines = [f"wrote {p}" + ("  (mode 0600)" if p.suffix == ".key" else "") for p in report.files]
    ca_file = report.directory / "ca.crt"
    return [
        *lines,
        "",
        f"Start the harness broker:  probe broker --certs {report.directory}",
        f"Then probe it:             probe connect localhost:{aio.BROKER_PORT} --ca-file {ca_file}",
    ]


def _failure_lines(error: ErrorInfo | None) -> list[str]:
    if error is None:  # pragma: no cover (reports without a result carry an error)
        return ["FAILED"]
    return [
        f"FAILED: {error.kind} (exit {error.exit_code})",
        f"cause: {error.message}",
        f"hint:  {error.hint}",
    ]


def pem_or_failure(report: BundleReport) -> tuple[str, str]:
    """``bundle --pem``: the PEM for stdout, or the failure for stderr."""
    if report.bundle is not None:
        from mqtt_tls_probe.core.certinfo import to_pem

        return to_pem(report.bundle.certificates).decode("ascii"), ""
    error = report.error
    if error is None:  # pragma: no cover (reports without a bundle carry an error)
        return "", ""
    lines = [f"probe: {error.kind}: {error.message}", f"hint: {error.hint}"]
    return "", "".join(escape_controls(line) + "\n" for line in lines)

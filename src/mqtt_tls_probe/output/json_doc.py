"""The JSON documents of ``--output json``: exactly the contract's keys, plus documented additions.

Rule: read the report, compute nothing. Additions to the contract (``roundtrip``,
``warnings``, and extra certificate and MQTT fields) are listed in README.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mqtt_tls_probe.core.moments import iso
from mqtt_tls_probe.errors import ErrorInfo
from mqtt_tls_probe.model import (
    CertInfo,
    Finding,
    MqttInfo,
    ProbeReport,
    TlsInfo,
)

if TYPE_CHECKING:  # loaded on first use: connect's reports do not need them
    from mqtt_tls_probe.reports import (
        BundleReport,
        CertsInitReport,
        ClusterReport,
        InspectionReport,
        ListenersReport,
        Report,
        TlsScanReport,
    )


def render(report: Report) -> str:
    """The one JSON object of a report, indented, ending with a newline."""
    return json.dumps(document(report), indent=2) + "\n"


def document(report: Report) -> dict[str, Any]:
    """The JSON document of any report, as a dict."""
    if isinstance(report, ProbeReport):
        return report_json(report)
    from mqtt_tls_probe import reports

    if isinstance(report, reports.DemoReport):
        return report_json(report.probe)
    builders: dict[type, Callable[[Any], dict[str, Any]]] = {
        reports.TlsScanReport: _tls_scan_json,
        reports.BundleReport: bundle_json,
        reports.InspectionReport: inspection_json,
        reports.ClusterReport: cluster_json,
        reports.ListenersReport: _listeners_json,
        reports.CertsInitReport: certs_init_json,
    }
    return builders[type(report)](report)


def report_json(report: ProbeReport) -> dict[str, Any]:
    document = _report_document(report)
    if report.listener is not None or report.forward is not None:
        from mqtt_tls_probe.output.listeners import forward_json, listener_json

        exit_code = document.pop("exit_code")  # stays last
        if report.listener is not None:
            document["listener"] = listener_json(report.listener)
        if report.forward is not None:
            document["forward"] = forward_json(report.forward)
        document["exit_code"] = exit_code
    return document


def _report_document(report: ProbeReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "verified": report.verified,
        "target": {
            "host": report.target.host,
            "port": report.target.port,
            "server_name": report.target.server_name,
        },
        "trust": {
            "source": str(report.trust.source),
            "location": report.trust.location,
            "certificates": [cert_json(c) for c in report.trust.certificates],
        },
        "stages": [
            {
                "name": str(s.name),
                "ok": s.ok,
                "skipped": s.skipped,
                "ms": None if s.ms is None else round(s.ms, 2),
                "detail": s.detail,
            }
            for s in report.stages
        ],
        "tls": tls_json(report.tls),
        "chain": [cert_json(c) for c in report.chain],
        "mqtt": mqtt_json(report.mqtt) if report.mqtt else None,
        "roundtrip": _roundtrip_json(report),
        "error": error_json(report.error),
        "warnings": findings_json(report.warnings),
        "exit_code": report.exit_code,
    }


def tls_json(info: TlsInfo | None) -> dict[str, Any] | None:
    """The contract's three keys; ``trace`` only when --trace asked for it."""
    if info is None:
        return None
    document: dict[str, Any] = {"version": info.version, "cipher": info.cipher, "alpn": info.alpn}
    if info.trace is not None:
        document["trace"] = [event.to_json() for event in info.trace]
    return document


def cert_json(cert: CertInfo) -> dict[str, Any]:
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "serial": cert.serial,
        "not_before": iso(cert.not_before),
        "not_after": iso(cert.not_after),
        "days_left": cert.days_left,
        "sans": list(cert.sans),
        "is_ca": cert.is_ca,
        "key": cert.key,
        "sha256": cert.sha256,
        "signature_algorithm": cert.signature_algorithm,
        "basic_constraints": cert.basic_constraints,
        "key_usage": list(cert.key_usage),
        "extended_key_usage": list(cert.extended_key_usage),
        "ski": cert.ski,
        "aki": cert.aki,
        "self_signed": cert.self_signed,
        "findings": findings_json(cert.findings),
    }


def findings_json(findings: tuple[Finding, ...] | list[Finding]) -> list[dict[str, str]]:
    return [{"code": f.code, "message": f.message} for f in findings]


def mqtt_json(info: MqttInfo) -> dict[str, Any]:
    sat = None
    if info.sat is not None:
        sat = {
            "aud": list(info.sat.audiences),
            "sub": info.sat.subject,
            "exp": iso(info.sat.expires) if info.sat.expires else None,
            "iss": info.sat.issuer,
        }
    return {
        "version": info.version,
        "reason_code": info.reason_code,
        "reason": info.reason,
        "fallback_from": info.fallback_from,
        "properties": dict(info.properties),
        "sat": sat,
    }


def _roundtrip_json(report: ProbeReport) -> dict[str, Any] | None:
    if report.roundtrip is None:
        return None
    r = report.roundtrip
    return {
        "topic": r.topic,
        "subscribe_ms": _ms(r.subscribe_ms),
        "publish_ms": _ms(r.publish_ms),
        "receive_ms": _ms(r.receive_ms),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def error_json(error: ErrorInfo | None) -> dict[str, str] | None:
    if error is None:
        return None
    return {
        "stage": str(error.stage),
        "kind": str(error.kind),
        "message": error.message,
        "hint": error.hint,
    }


def failure_json(kind: str, message: str, hint: str, exit_code: int) -> dict[str, Any]:
    """The one object of a run that produced no report: a usage error (2) or a bug (1).

    The same ``error`` shape as every report, with no stage (none ran).
    """
    error = {"stage": None, "kind": kind, "message": message, "hint": hint}
    return {"ok": False, "error": error, "exit_code": exit_code}


def render_failure(kind: str, message: str, hint: str, exit_code: int) -> str:
    return json.dumps(failure_json(kind, message, hint, exit_code), indent=2) + "\n"


def bundle_json(report: BundleReport) -> dict[str, Any]:
    bundle = report.bundle
    return {
        "ok": report.error is None,
        "source": str(bundle.source) if bundle else None,
        "location": bundle.location if bundle else None,
        "note": bundle.note if bundle and bundle.note else None,
        "certificates": [cert_json(c) for c in report.certificates],
        "written": None if report.written is None else str(report.written),
        "warnings": findings_json(report.findings),
        "error": error_json(report.error),
        "exit_code": report.exit_code,
    }


def inspection_json(report: InspectionReport) -> dict[str, Any]:
    return {
        "ok": report.error is None,
        "source": report.source,
        "origin": report.origin,
        "tls": tls_json(report.tls),
        "certificates": [cert_json(c) for c in report.certificates],
        "warnings": findings_json(report.findings),
        "error": error_json(report.error),
        "exit_code": report.exit_code,
    }


def cluster_json(report: ClusterReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "status": str(report.status),
        "namespace": report.namespace,
        "origin": report.origin,
        "checks": [
            {"name": c.name, "status": str(c.status), "message": c.message, "hint": c.hint}
            for c in report.checks
        ],
        "exit_code": report.exit_code,
    }


def certs_init_json(report: CertsInitReport) -> dict[str, Any]:
    return {
        "ok": True,
        "directory": str(report.directory),
        "files": [str(p) for p in report.files],
        "ca": cert_json(report.ca),
        "server": cert_json(report.server),
        "exit_code": report.exit_code,
    }


def _listeners_json(report: ListenersReport) -> dict[str, Any]:
    from mqtt_tls_probe.output.listeners import render_json

    return render_json(report)


def _tls_scan_json(report: TlsScanReport) -> dict[str, Any]:
    from mqtt_tls_probe.output.tls_scan import render_json

    return render_json(report)

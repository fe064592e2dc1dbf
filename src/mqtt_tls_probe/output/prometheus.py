"""A probe report as Prometheus metric families (``probe exporter``): what the metrics say.

Rule: read the report, compute nothing but unit changes (milliseconds to
seconds, datetimes to Unix time). The families are plain data; the exporter
hands them to prometheus_client, which names, escapes and encodes them (so
this layer stays free of the HTTP machinery that package imports).

Names follow blackbox_exporter where the concept is the same (``probe_success``,
``probe_duration_seconds``, ``probe_ssl_earliest_cert_expiry``,
``probe_tls_version_info`` with its ``TLS 1.3`` values). Unlike
blackbox_exporter (#1119, #443), the certificate metrics stay when the probe
fails after the server sent its chain (a verify failure, an MQTT refusal):
an expired certificate is exactly when they matter. Label values are bounded
by the contract (stages, kinds, versions) or by what the server sent (one
series per certificate).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mqtt_tls_probe.model import CertInfo, ProbeReport


@dataclass(frozen=True)
class MetricFamily:
    """A gauge family: every sample has a value for each of ``label_names``, in order."""

    name: str
    documentation: str
    label_names: tuple[str, ...]
    samples: tuple[tuple[tuple[str, ...], float], ...]


def report_metrics(
    report: ProbeReport, duration_seconds: float, labels: Mapping[str, str] | None = None
) -> tuple[MetricFamily, ...]:
    """The families of one probe; ``labels`` (e.g. ``target``) lead every sample's labels.

    ``duration_seconds`` is the probe's own wall time, measured by the caller
    (a report holds stage times only). Families without a sample are left out.
    """
    extra = dict(labels or {})
    families = [
        _family(
            "probe_success",
            "1 when every stage passed, else 0.",
            (),
            [((), 1.0 if report.ok else 0.0)],
        ),
        _family(
            "probe_duration_seconds",
            "How long the probe took, in seconds.",
            (),
            [((), duration_seconds)],
        ),
        _family(
            "probe_exit_code",
            "The exit code probe connect would give (0 ok, 3 trust ... 8 roundtrip).",
            (),
            [((), float(report.exit_code))],
        ),
        _family(
            "probe_stage_duration_seconds",
            "How long each stage that ran took, in seconds.",
            ("stage",),
            [((str(s.name),), s.ms / 1000) for s in report.stages if s.ms is not None],
        ),
        _family(
            "probe_error_info",
            "The failed stage and the error kind (the contract's names), when the probe failed.",
            ("stage", "kind"),
            [((str(report.error.stage), str(report.error.kind)), 1.0)] if report.error else [],
        ),
        _family(
            "probe_tls_version_info",
            "The negotiated TLS version.",
            ("version",),
            [((_tls_version(report.tls.version),), 1.0)]
            if report.tls is not None and report.tls.version
            else [],
        ),
        _family(
            "probe_ssl_earliest_cert_expiry",
            "The earliest notAfter of the certificates the server sent, in Unix time.",
            (),
            [((), min(_unix(c) for c in report.chain))] if report.chain else [],
        ),
        _family(
            "probe_cert_not_after_timestamp_seconds",
            "notAfter of each certificate the server sent, in Unix time "
            "(also when verification or a later stage failed).",
            ("role", "subject", "sha256"),
            [((_role(i, c), c.subject, c.sha256), _unix(c)) for i, c in enumerate(report.chain)],
        ),
        _family(
            "probe_trust_bundle_cert_not_after_timestamp_seconds",
            "notAfter of each CA certificate of the trust bundle, in Unix time.",
            ("subject", "sha256"),
            [((c.subject, c.sha256), _unix(c)) for c in report.trust.certificates],
        ),
        _family(
            "probe_mqtt_connack_reason_code",
            "The CONNACK reason code (MQTT 5 numbering; 3.1.1 return codes as paho maps them).",
            (),
            [((), float(report.mqtt.reason_code))]
            if report.mqtt is not None and report.mqtt.reason_code is not None
            else [],
        ),
        _family(
            "probe_mqtt_version_info",
            "The MQTT version of the session (3.1.1 after a fallback from 5).",
            ("version",),
            [((report.mqtt.version,), 1.0)] if report.mqtt is not None else [],
        ),
    ]
    return tuple(_with_labels(f, extra) for f in families if f.samples)


def merge(families: Iterable[MetricFamily]) -> tuple[MetricFamily, ...]:
    """One family per name, samples in order: several reports on one page (``target`` labels).

    The exposition formats allow each name once; families of one name share
    their label names, since they come from ``report_metrics`` with the same labels.
    """
    merged: dict[str, MetricFamily] = {}
    for family in families:
        seen = merged.get(family.name)
        if seen is None:
            merged[family.name] = family
        else:
            merged[family.name] = MetricFamily(
                seen.name, seen.documentation, seen.label_names, seen.samples + family.samples
            )
    return tuple(merged.values())


def _family(
    name: str,
    documentation: str,
    label_names: tuple[str, ...],
    samples: Iterable[tuple[tuple[str, ...], float]],
) -> MetricFamily:
    return MetricFamily(name, documentation, label_names, tuple(samples))


def _with_labels(family: MetricFamily, labels: Mapping[str, str]) -> MetricFamily:
    if not labels:
        return family
    values = tuple(labels.values())
    return MetricFamily(
        family.name,
        family.documentation,
        (*labels, *family.label_names),
        tuple(((*values, *sample), value) for sample, value in family.samples),
    )


def _role(index: int, cert: CertInfo) -> str:
    if index == 0:
        return "leaf"
    return "root" if cert.self_signed else "intermediate"


def _unix(cert: CertInfo) -> float:
    return cert.not_after.timestamp()


def _tls_version(version: str) -> str:
    """``TLSv1.3`` as blackbox_exporter writes it: ``TLS 1.3``."""
    return version.replace("TLSv", "TLS ", 1) if version.startswith("TLSv") else version

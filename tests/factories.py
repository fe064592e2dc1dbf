"""Small builders of typed reports, so that the renderers are tested without any server."""

from __future__ import annotations

import dataclasses
from dataclasses import fields, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TypeVar

from mqtt_tls_probe.errors import ErrorInfo, ErrorKind, Stage
from mqtt_tls_probe.model import (
    BundleReport,
    CertInfo,
    CertsInitReport,
    Check,
    CheckStatus,
    ClusterReport,
    DemoReport,
    Described,
    Finding,
    FindingCode,
    InspectionReport,
    MqttInfo,
    ProbeReport,
    RoundtripInfo,
    SatClaims,
    StageResult,
    Target,
    TlsInfo,
    TrustBundle,
    TrustInfo,
    TrustSource,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
T = TypeVar("T")
QUICKSTART = "CN=Azure IoT Operations Quickstart Root CA - Not for Production"


def cert(subject: str = "CN=aio-broker", **changes: object) -> CertInfo:
    base = CertInfo(
        subject=subject,
        issuer=QUICKSTART,
        serial="1a2b",
        not_before=datetime(2026, 11, 20, tzinfo=UTC),
        not_after=datetime(2026, 12, 20, tzinfo=UTC),
        days_left=20,
        sans=("DNS:aio-broker", "IP:10.0.0.9"),
        is_ca=False,
        key="EC P-256",
        sha256="ab" * 32,
        signature_algorithm="ecdsa-with-SHA256",
        basic_constraints="CA:FALSE (critical)",
        key_usage=("digitalSignature",),
        extended_key_usage=("serverAuth",),
        ski="01" * 20,
        aki="02" * 20,
        self_signed=False,
    )
    return base._replace(**changes)  # type: ignore[arg-type]


def ca_cert() -> CertInfo:
    return cert(
        QUICKSTART,
        issuer=QUICKSTART,
        sans=(),
        is_ca=True,
        basic_constraints="CA:TRUE (critical)",
        key_usage=("keyCertSign",),
        extended_key_usage=(),
        self_signed=True,
        findings=(Finding(FindingCode.QUICKSTART_CA, "quickstart CA: not for production"),),
    )


def stages(failed: Stage | None = None, *, roundtrip: bool = False) -> tuple[StageResult, ...]:
    order = [s for s in Stage if roundtrip or s is not Stage.ROUNDTRIP]
    results = []
    failed_seen = False
    for index, name in enumerate(order):
        if failed_seen:
            results.append(StageResult(name, ok=False, skipped=True, ms=None, detail="skipped"))
        elif name is failed:
            failed_seen = True
            results.append(StageResult(name, False, False, 1.5, "hostname_mismatch"))
        else:
            results.append(StageResult(name, True, False, float(index), f"{name} done"))
    return tuple(results)


def passing_report(**changes: object) -> ProbeReport:
    report = ProbeReport(
        target=Target("localhost", 18883, "aio-broker"),
        verified=True,
        trust=TrustInfo(TrustSource.FILE, "ca.crt", (ca_cert(),)),
        stages=stages(),
        tls=TlsInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", None),
        chain=(cert(), ca_cert()),
        mqtt=MqttInfo("5", 0, "Success"),
        warnings=(Finding(FindingCode.QUICKSTART_CA, "The chain ends at the quickstart CA."),),
    )
    return report._replace(**changes)  # type: ignore[arg-type]


def verify_failure() -> ProbeReport:
    error = ErrorInfo.of(
        ErrorKind.HOSTNAME_MISMATCH,
        "The server certificate is not valid for localhost: it lists DNS:aio-broker.",
        "Add --server-name aio-broker.",
    )
    return passing_report(
        target=Target("localhost", 18883, "localhost"),
        stages=stages(Stage.VERIFY),
        mqtt=None,
        error=error,
    )


def bundle_report(error: ErrorInfo | None = None) -> BundleReport:
    if error is not None:
        return BundleReport(None, (), error)
    bundle = TrustBundle(TrustSource.CLUSTER, "configmap ns/name[ca.crt]", (), "a note")
    return BundleReport(bundle, (ca_cert(),), written=Path("ca.crt"))


def inspection_report() -> InspectionReport:
    return InspectionReport(
        "localhost:18883",
        "server",
        (cert(), ca_cert()),
        TlsInfo("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", None),
        (Finding(FindingCode.HOSTNAME_MISMATCH, "not valid for localhost"),),
    )


def cluster_report() -> ClusterReport:
    return ClusterReport(
        "context aio of kubeconfig",
        "azure-iot-operations",
        (
            Check("trust-bundle", CheckStatus.OK, "configmap: 1 CA"),
            Check("quickstart-ca", CheckStatus.WARNING, "quickstart CA", "bring your own"),
            Check("issuer", CheckStatus.ERROR, "not Ready", "kubectl describe issuer"),
        ),
    )


def certs_init_report() -> CertsInitReport:
    directory = Path("certs")
    files = tuple(directory / name for name in ("ca.crt", "ca.key", "server.crt", "server.key"))
    return CertsInitReport(directory, files, ca_cert(), cert())


def demo_report() -> DemoReport:
    return DemoReport(("created a PKI in /tmp/probe-demo",), passing_report())


def full_report() -> ProbeReport:
    """A report with every section filled: MQTT properties, token claims, round trip."""
    claims = SatClaims(("aio-internal",), "system:serviceaccount:ns:sa", NOW, "issuer", ("odd",))
    mqtt = MqttInfo("5", 0, "Success", "5", {"reason_string": "welcome"}, claims)
    return passing_report(mqtt=mqtt, roundtrip=RoundtripInfo("probe/t", 1.0, 2.0, 3.0))


# Terminal control in every shape: ESC sequences, BEL, CR, NUL, DEL, a C1 CSI, a
# right-to-left override, a byte the OS gave undecoded, a line separator.
HOSTILE = "\x1b[2J\x1b]0;owned\x07\r\x00\x7f\x9b\u202e\udcff\u2028\t\n"


def with_hostile_strings(value: T) -> T:
    """A copy of ``value`` in which every string (and path) ends with ``HOSTILE``.

    Walks records (NamedTuples), dataclasses, tuples, lists and dicts; enums keep
    their value (they are the report's vocabulary, not data from outside).
    """
    result: object
    if isinstance(value, Enum):
        result = value
    elif isinstance(value, str):
        result = value + HOSTILE
    elif isinstance(value, Path):
        result = Path(str(value) + HOSTILE)
    elif isinstance(value, tuple) and hasattr(value, "_fields"):  # a record (NamedTuple)
        changes = {name: with_hostile_strings(getattr(value, name)) for name in value._fields}
        result = value._replace(**changes)  # type: ignore[attr-defined]
    elif isinstance(value, tuple | list):
        result = type(value)(with_hostile_strings(item) for item in value)
    elif isinstance(value, Described):
        result = tuple(with_hostile_strings(item) for item in value)
    elif isinstance(value, dict):
        result = {key: with_hostile_strings(item) for key, item in value.items()}
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: with_hostile_strings(getattr(value, f.name)) for f in fields(value)}
        result = replace(value, **changes)
    else:
        result = value
    return result  # type: ignore[return-value]

"""Every report the commands produce: what the orchestrators build and the renderers read.

Rule: plain frozen data. Nothing here does I/O or reads the clock; values such
as ``days_left`` are computed once, when the report is built, from an injected
``now``. Every report carries the same ``ErrorInfo`` (from ``errors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from mqtt_tls_probe.errors import EXIT_CODES, EXIT_OK, ErrorInfo, Stage

if TYPE_CHECKING:
    from cryptography import x509


class TrustSource(StrEnum):
    FILE = "file"
    CLUSTER = "cluster"
    NONE = "none"


class FindingCode(StrEnum):
    """Stable codes of findings (``warnings[].code`` and ``findings[].code`` in JSON)."""

    # one certificate
    EXPIRED = "expired"
    EXPIRES_SOON = "expires_soon"
    NOT_YET_VALID = "not_yet_valid"
    NOT_A_CA = "not_a_ca"
    NO_CERT_SIGN = "no_cert_sign"
    QUICKSTART_CA = "quickstart_ca"
    # a trust anchor of connect's trust stage
    TRUST_EXPIRED = "trust_expired"
    TRUST_EXPIRES_SOON = "trust_expires_soon"
    TRUST_NOT_A_CA = "trust_not_a_ca"
    TRUST_NO_CERT_SIGN = "trust_no_cert_sign"
    # the server's chain
    HOSTNAME_MISMATCH = "hostname_mismatch"
    STRICT_VERIFICATION = "strict_verification"
    UNVERIFIED = "unverified"
    # the service account token
    SAT_NOT_JWT = "sat_not_jwt"
    SAT_EXPIRED = "sat_expired"
    SAT_AUDIENCE = "sat_audience"


# A trust anchor's own finding -> how connect's trust stage reports it.
TRUST_ANCHOR_FINDINGS: dict[FindingCode, FindingCode] = {
    FindingCode.EXPIRED: FindingCode.TRUST_EXPIRED,
    FindingCode.EXPIRES_SOON: FindingCode.TRUST_EXPIRES_SOON,
    FindingCode.NOT_A_CA: FindingCode.TRUST_NOT_A_CA,
    FindingCode.NO_CERT_SIGN: FindingCode.TRUST_NO_CERT_SIGN,
}


@dataclass(frozen=True)
class Finding:
    """Something worth knowing that does not fail the run (expiry soon, quickstart CA...)."""

    code: FindingCode
    message: str


@dataclass(frozen=True)
class CertInfo:
    """One certificate, described the way an operator reads it."""

    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    days_left: int
    sans: tuple[str, ...]
    is_ca: bool
    key: str
    sha256: str
    signature_algorithm: str
    basic_constraints: str | None
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    ski: str | None
    aki: str | None
    self_signed: bool
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    server_name: str


@dataclass(frozen=True)
class TrustBundle:
    """The trust anchors as read, before they are described."""

    source: TrustSource
    location: str  # a path, or namespace/configmap[key]
    certificates: tuple[x509.Certificate, ...]
    note: str = ""  # e.g. which of the default ConfigMaps was used


@dataclass(frozen=True)
class TrustInfo:
    source: TrustSource
    location: str
    certificates: tuple[CertInfo, ...] = ()


@dataclass(frozen=True)
class StageResult:
    name: Stage
    ok: bool
    skipped: bool
    ms: float | None
    detail: str


@dataclass(frozen=True)
class TlsInfo:
    version: str | None
    cipher: str | None
    alpn: str | None


@dataclass(frozen=True)
class SatClaims:
    """Claims of a service account token, decoded without verifying it (never the token)."""

    audiences: tuple[str, ...]
    subject: str | None
    expires: datetime | None
    issuer: str | None


@dataclass(frozen=True)
class MqttInfo:
    version: str
    reason_code: int | None
    reason: str | None
    fallback_from: str | None = None
    properties: dict[str, int | str] = field(default_factory=dict)
    sat: SatClaims | None = None


@dataclass(frozen=True)
class RoundtripInfo:
    topic: str
    subscribe_ms: float | None = None
    publish_ms: float | None = None
    receive_ms: float | None = None


@dataclass(frozen=True)
class ProbeReport:
    """Everything ``probe connect`` found, in stage order."""

    target: Target
    verified: bool
    trust: TrustInfo
    stages: tuple[StageResult, ...]
    tls: TlsInfo | None = None
    chain: tuple[CertInfo, ...] = ()
    mqtt: MqttInfo | None = None
    roundtrip: RoundtripInfo | None = None
    error: ErrorInfo | None = None
    warnings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> int:
        return _exit_code(self.error)


def _exit_code(error: ErrorInfo | None) -> int:
    return EXIT_OK if error is None else error.exit_code


@dataclass(frozen=True)
class BundleReport:
    """``probe bundle``: the trust bundle's CAs, described."""

    bundle: TrustBundle | None
    certificates: tuple[CertInfo, ...]
    error: ErrorInfo | None = None
    written: Path | None = None  # --out

    @property
    def exit_code(self) -> int:
        return _exit_code(self.error)


@dataclass(frozen=True)
class InspectionReport:
    """``probe inspect``: certificates of a file, or the chain a server sends."""

    source: str
    origin: str  # "file" or "server"
    certificates: tuple[CertInfo, ...]
    tls: TlsInfo | None = None
    findings: tuple[Finding, ...] = ()
    error: ErrorInfo | None = None

    @property
    def exit_code(self) -> int:
        return _exit_code(self.error)


class CheckStatus(StrEnum):
    """In order of severity: the worst of a run decides its outcome."""

    OK = "ok"
    SKIPPED = "skipped"
    WARNING = "warning"
    ERROR = "error"

    @property
    def severity(self) -> int:
        return list(CheckStatus).index(self)


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class ClusterReport:
    """``probe cluster``: the CA's health on the cluster side, check by check."""

    origin: str
    namespace: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> CheckStatus:
        return max(
            (c.status for c in self.checks), key=lambda s: s.severity, default=CheckStatus.OK
        )

    @property
    def ok(self) -> bool:
        return self.status is not CheckStatus.ERROR

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_CODES[Stage.TRUST]


@dataclass(frozen=True)
class CertsInitReport:
    """``probe certs init``: the files written, and the CA and server certificate made."""

    directory: Path
    files: tuple[Path, ...]
    ca: CertInfo
    server: CertInfo
    exit_code: int = EXIT_OK


@dataclass(frozen=True)
class DemoReport:
    """``probe demo``: what was set up, then the probe of it."""

    notes: tuple[str, ...]
    probe: ProbeReport

    @property
    def exit_code(self) -> int:
        return self.probe.exit_code


Report = (
    ProbeReport | BundleReport | InspectionReport | ClusterReport | CertsInitReport | DemoReport
)

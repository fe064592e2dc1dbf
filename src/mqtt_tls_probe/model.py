"""The typed result of a probe: what the stages produce and the renderers read.

Rule: plain frozen data. Nothing here does I/O or reads the clock; values such
as ``days_left`` are computed once, when the report is built, from an injected
``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mqtt_tls_probe.errors import EXIT_CODES, EXIT_OK, ErrorKind, Stage


class TrustSource(StrEnum):
    FILE = "file"
    CLUSTER = "cluster"
    NONE = "none"


@dataclass(frozen=True)
class Finding:
    """Something worth knowing that does not fail the run (expiry soon, quickstart CA...)."""

    code: str
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
class ErrorInfo:
    stage: Stage
    kind: ErrorKind
    message: str
    hint: str


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
        return EXIT_OK if self.error is None else EXIT_CODES[self.error.stage]

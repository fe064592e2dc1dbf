"""Every report the commands produce: what the orchestrators build and the renderers read.

Rule: plain frozen data. Nothing here does I/O or reads the clock; values such
as ``days_left`` are computed once, when the report is built, from an injected
``now``. Every report carries the same ``ErrorInfo`` (from ``errors``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from mqtt_tls_probe.errors import EXIT_OK, ErrorInfo, Stage

if TYPE_CHECKING:
    from cryptography import x509

    from mqtt_tls_probe.core.tls_messages import TraceEvent


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
    NEGATIVE_SERIAL = "negative_serial"
    UNPARSEABLE = "unparseable"  # cryptography cannot read it (also a report's warning)
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
    SAT_CLAIM_INVALID = "sat_claim_invalid"
    # the tls stage's diagnostics
    TRACE_UNAVAILABLE = "trace_unavailable"
    TLS_KEYLOG = "tls_keylog"
    NO_TLS = "no_tls"  # a discovered listener port without TLS: probed in plain MQTT
    # probe tls: what a TLS endpoint accepts
    TLS10_ACCEPTED = "tls1_0_accepted"
    TLS11_ACCEPTED = "tls1_1_accepted"
    NO_TLS13 = "no_tls1_3"
    NO_FORWARD_SECRECY = "no_forward_secrecy"
    CBC_SUITES = "cbc_suites"
    INSECURE_SUITES = "insecure_suites"
    NO_HANDSHAKE = "no_handshake"
    CHAIN_EXPIRED = "chain_expired"
    CHAIN_EXPIRES_SOON = "chain_expires_soon"


# A trust anchor's own finding -> how connect's trust stage reports it.
TRUST_ANCHOR_FINDINGS: dict[FindingCode, FindingCode] = {
    FindingCode.EXPIRED: FindingCode.TRUST_EXPIRED,
    FindingCode.EXPIRES_SOON: FindingCode.TRUST_EXPIRES_SOON,
    FindingCode.NOT_A_CA: FindingCode.TRUST_NOT_A_CA,
    FindingCode.NO_CERT_SIGN: FindingCode.TRUST_NO_CERT_SIGN,
}


class Finding(NamedTuple):
    """Something worth knowing that does not fail the run (expiry soon, quickstart CA...)."""

    code: FindingCode
    message: str


class CertInfo(NamedTuple):
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


class Described(Sequence[CertInfo]):
    """Certificates described when first read, by ``describe``, once.

    Describing takes ``cryptography``; the text report of a successful
    ``connect`` never reads the descriptions, so it never pays for them.
    Compares equal to any sequence of the same descriptions.
    """

    __slots__ = ("_describe", "_items")

    def __init__(self, describe: Callable[[], Sequence[CertInfo]]) -> None:
        self._describe = describe
        self._items: tuple[CertInfo, ...] | None = None

    def _all(self) -> tuple[CertInfo, ...]:
        if self._items is None:
            self._items = tuple(self._describe())
        return self._items

    @overload
    def __getitem__(self, index: int) -> CertInfo: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[CertInfo, ...]: ...
    def __getitem__(self, index: int | slice) -> CertInfo | tuple[CertInfo, ...]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self._all() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # like a list: compared by content

    def __repr__(self) -> str:
        return f"Described({list(self._all())!r})"


class Unparseable(NamedTuple):
    """A certificate ``cryptography`` cannot read in full, though OpenSSL may accept it.

    ``certificate`` is set when it loads but a part does not parse (a
    duplicate extension, a malformed SAN); None when it does not load at all.
    """

    der: bytes
    reason: str
    certificate: x509.Certificate | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()


class Target(NamedTuple):
    host: str
    port: int
    server_name: str


class TrustBundle(NamedTuple):
    """The trust anchors as read, before they are described."""

    source: TrustSource
    location: str  # a path, or namespace/configmap[key]
    certificates: tuple[x509.Certificate, ...]
    note: str = ""  # e.g. which of the default ConfigMaps was used
    unparseable: tuple[Unparseable, ...] = ()  # skipped: cryptography cannot read them


class TrustInfo(NamedTuple):
    source: TrustSource
    location: str
    certificates: Sequence[CertInfo] = ()


class StageResult(NamedTuple):
    name: Stage
    ok: bool
    skipped: bool
    ms: float | None
    detail: str


class TlsInfo(NamedTuple):
    version: str | None
    cipher: str | None
    alpn: str | None
    # --trace: the handshake's messages up to the end of the tls stage; None: not asked.
    trace: tuple[TraceEvent, ...] | None = None


class SatClaims(NamedTuple):
    """Claims of a service account token, decoded without verifying it (never the token)."""

    audiences: tuple[str, ...]
    subject: str | None
    expires: datetime | None
    issuer: str | None
    invalid: tuple[str, ...] = ()  # what is wrong with claims that are there but malformed


class MqttInfo(NamedTuple):
    version: str
    reason_code: int | None
    reason: str | None
    fallback_from: str | None = None
    properties: Mapping[str, int | str] = MappingProxyType({})  # read-only: a shared default
    sat: SatClaims | None = None


class RoundtripInfo(NamedTuple):
    topic: str
    subscribe_ms: float | None = None
    publish_ms: float | None = None
    receive_ms: float | None = None


class ListenerInfo(NamedTuple):
    """The BrokerListener port a discovered target came from (``--discover``)."""

    name: str
    service: str
    service_type: str
    port: int
    protocol: str
    tls: bool
    authentication: tuple[str, ...]
    address_source: str  # cluster_dns | load_balancer | node_port | port_forward


class ForwardInfo(NamedTuple):
    """The pod and port a built-in port-forward went through."""

    namespace: str
    pod: str
    port: int


class ProbeReport(NamedTuple):
    """Everything ``probe connect`` found, in stage order."""

    target: Target
    verified: bool
    trust: TrustInfo
    stages: tuple[StageResult, ...]
    tls: TlsInfo | None = None
    chain: Sequence[CertInfo] = ()  # a Described when connect ran alone
    mqtt: MqttInfo | None = None
    roundtrip: RoundtripInfo | None = None
    error: ErrorInfo | None = None
    warnings: tuple[Finding, ...] = ()
    listener: ListenerInfo | None = None  # rendered only when set (--discover)
    forward: ForwardInfo | None = None  # rendered only when set (--port-forward)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.error)


def exit_code_of(error: ErrorInfo | None) -> int:
    return EXIT_OK if error is None else error.exit_code


# The other commands' reports, defined in ``reports`` and loaded on first use (PEP 562).
_IN_REPORTS = frozenset(
    {
        "BundleReport",
        "InspectionReport",
        "CheckStatus",
        "Check",
        "ClusterReport",
        "DiscoveredListener",
        "ListenersReport",
        "CertsInitReport",
        "DemoReport",
        "Severity",
        "RatedFinding",
        "SuiteInfo",
        "CipherSuites",
        "AlpnBehaviour",
        "ClientCertificatePolicy",
        "ResumptionInfo",
        "TlsScanReport",
        "Report",
    }
)

if TYPE_CHECKING:  # re-exported for mypy
    from mqtt_tls_probe.reports import (
        AlpnBehaviour as AlpnBehaviour,
    )
    from mqtt_tls_probe.reports import (
        BundleReport as BundleReport,
    )
    from mqtt_tls_probe.reports import (
        CertsInitReport as CertsInitReport,
    )
    from mqtt_tls_probe.reports import (
        Check as Check,
    )
    from mqtt_tls_probe.reports import (
        CheckStatus as CheckStatus,
    )
    from mqtt_tls_probe.reports import (
        CipherSuites as CipherSuites,
    )
    from mqtt_tls_probe.reports import (
        ClientCertificatePolicy as ClientCertificatePolicy,
    )
    from mqtt_tls_probe.reports import (
        ClusterReport as ClusterReport,
    )
    from mqtt_tls_probe.reports import (
        DemoReport as DemoReport,
    )
    from mqtt_tls_probe.reports import (
        DiscoveredListener as DiscoveredListener,
    )
    from mqtt_tls_probe.reports import (
        InspectionReport as InspectionReport,
    )
    from mqtt_tls_probe.reports import (
        ListenersReport as ListenersReport,
    )
    from mqtt_tls_probe.reports import (
        RatedFinding as RatedFinding,
    )
    from mqtt_tls_probe.reports import (
        Report as Report,
    )
    from mqtt_tls_probe.reports import (
        ResumptionInfo as ResumptionInfo,
    )
    from mqtt_tls_probe.reports import (
        Severity as Severity,
    )
    from mqtt_tls_probe.reports import (
        SuiteInfo as SuiteInfo,
    )
    from mqtt_tls_probe.reports import (
        TlsScanReport as TlsScanReport,
    )


def __getattr__(name: str) -> Any:
    if name in _IN_REPORTS:
        from mqtt_tls_probe import reports

        return getattr(reports, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

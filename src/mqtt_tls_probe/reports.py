"""The reports of the commands other than ``connect``, under the same rule as ``model``.

They live apart so that ``probe connect`` does not create their classes on
each start; ``model`` still exports them, loading this module on first use.
NamedTuples, as in ``model``: a frozen dataclass costs about 1 ms to define.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from mqtt_tls_probe.errors import EXIT_CODES, EXIT_OK, ErrorInfo, Stage
from mqtt_tls_probe.model import (
    CertInfo,
    Finding,
    FindingCode,
    ListenerInfo,
    ProbeReport,
    Target,
    TlsInfo,
    TrustBundle,
    exit_code_of,
)


class BundleReport(NamedTuple):
    """``probe bundle``: the trust bundle's CAs, described."""

    bundle: TrustBundle | None
    certificates: tuple[CertInfo, ...]
    error: ErrorInfo | None = None
    written: Path | None = None  # --out
    findings: tuple[Finding, ...] = ()  # about the bundle as a whole (skipped certificates)

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.error)


class InspectionReport(NamedTuple):
    """``probe inspect``: certificates of a file, or the chain a server sends."""

    source: str
    origin: str  # "file" or "server"
    certificates: tuple[CertInfo, ...]
    tls: TlsInfo | None = None
    findings: tuple[Finding, ...] = ()
    error: ErrorInfo | None = None

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.error)


class CheckStatus(StrEnum):
    """In order of severity: the worst of a run decides its outcome."""

    OK = "ok"
    SKIPPED = "skipped"
    WARNING = "warning"
    ERROR = "error"

    @property
    def severity(self) -> int:
        return list(CheckStatus).index(self)


class Check(NamedTuple):
    name: str
    status: CheckStatus
    message: str
    hint: str | None = None


class ClusterReport(NamedTuple):
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


class DiscoveredListener(NamedTuple):
    """One listener port ``--discover`` found: where it is dialled, or why it is not."""

    listener: ListenerInfo
    address: str  # host:port to dial ("127.0.0.1:PORT" stands for a port-forward)
    server_name: str
    audiences: tuple[str, ...]  # of its ServiceAccountToken method
    credential: str | None  # what the port expects, and the flag that supplies it
    problem: str | None  # set: not probed, for this reason


class ListenersReport(NamedTuple):
    """``probe cluster --listeners``: the broker listeners' ports, as targets."""

    origin: str
    namespace: str
    api_version: str  # the mqttbroker group version read (v1, or v1beta1)
    listeners: tuple[DiscoveredListener, ...]
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.error)


class CertsInitReport(NamedTuple):
    """``probe certs init``: the files written, and the CA and server certificate made."""

    directory: Path
    files: tuple[Path, ...]
    ca: CertInfo
    server: CertInfo
    exit_code: int = EXIT_OK


class DemoReport(NamedTuple):
    """``probe demo``: what was set up, then the probe of it."""

    notes: tuple[str, ...]
    probe: ProbeReport

    @property
    def exit_code(self) -> int:
        return self.probe.exit_code


class Severity(StrEnum):
    """How much a finding of ``probe tls`` matters, worst first."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class RatedFinding(NamedTuple):
    code: FindingCode
    severity: Severity
    message: str


class SuiteInfo(NamedTuple):
    """A TLS 1.2 cipher suite the server accepted."""

    name: str  # OpenSSL's name (what --ciphers and openssl s_client -cipher take)
    iana: str  # the IANA name, or 0x.... when the probe has no name for it
    code: int
    kex: str  # ECDHE, DHE, RSA...
    auth: str  # ECDSA, RSA, DSS, NULL (anonymous)
    forward_secrecy: bool
    cbc: bool
    insecure: bool  # anonymous, or no encryption at all


class CipherSuites(NamedTuple):
    tls12_accepted: tuple[SuiteInfo, ...]
    tls12_tried: int
    server_preference: bool | None  # None: fewer than two suites, or no clear answer
    tls13_chosen: str | None


class AlpnBehaviour(NamedTuple):
    """What the server did with an offered ALPN protocol: selected, ignored or refused."""

    mqtt: str | None
    unknown: str | None
    unknown_protocol: str


class ClientCertificatePolicy(NamedTuple):
    requested: bool | None
    required: bool | None
    authorities: tuple[str, ...]  # the CA names of its CertificateRequest


class ResumptionInfo(NamedTuple):
    version: str | None
    tickets: bool | None  # the server issued a NewSessionTicket
    ticket_lifetime_s: int | None
    resumed: bool | None  # a second handshake offering the session was resumed


class TlsScanReport(NamedTuple):
    """``probe tls``: what a TLS endpoint accepts, question by question."""

    target: Target
    openssl: str  # the local library: what could be tried depends on it
    versions: Mapping[str, bool | None] = MappingProxyType({})  # None: not tried
    cipher_suites: CipherSuites | None = None
    alpn: AlpnBehaviour | None = None
    client_certificate: ClientCertificatePolicy | None = None
    resumption: ResumptionInfo | None = None
    chain: tuple[CertInfo, ...] = ()
    findings: tuple[RatedFinding, ...] = ()
    notes: tuple[str, ...] = ()
    handshakes: int = 0
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.error)


Report = (
    ProbeReport
    | BundleReport
    | InspectionReport
    | ClusterReport
    | ListenersReport
    | CertsInitReport
    | DemoReport
    | TlsScanReport
)

"""``probe tls TARGET``: what a TLS endpoint accepts, one short handshake per question.

Rules:
- Trust is not this command's business: every handshake is unverified, the chain is
  read as sent and described (``core.certinfo``), ``--server-name`` only sets SNI.
- The questions run ``WORKERS`` at a time, each handshake bounded by ``timeout``:
  protocol versions 1.0 to 1.3 (1.0 and 1.1 at ``@SECLEVEL=0``, the only way OpenSSL 3
  offers them), every TLS 1.2 suite the local OpenSSL knows (one per handshake; PSK and
  SRP suites need credentials and are left out), the server's order (two accepted
  suites offered both ways), the TLS 1.3 suite chosen, ALPN (``mqtt``, then an unknown
  protocol), the client certificate request (from the traces), and session resumption.
- Exit codes as for ``inspect``: 0 once the endpoint answered in TLS, whatever it
  accepts; 4 when it cannot be reached; 5 when it does not speak TLS.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from cryptography import x509

from mqtt_tls_probe.adapters import net, tls_scan, tls_suites, tls_trace
from mqtt_tls_probe.adapters.tls import sniff_cleartext
from mqtt_tls_probe.adapters.tls_hello import ask_certificate
from mqtt_tls_probe.config import parse_target
from mqtt_tls_probe.core import certinfo
from mqtt_tls_probe.core import tls_scan as decide
from mqtt_tls_probe.core.classify import NOT_TLS_REASONS
from mqtt_tls_probe.core.tls_scan import Answer
from mqtt_tls_probe.errors import ErrorInfo, ErrorKind, ProbeError
from mqtt_tls_probe.model import (
    AlpnBehaviour,
    CertInfo,
    CipherSuites,
    ResumptionInfo,
    Target,
    TlsScanReport,
)

WORKERS = 8
UNKNOWN_ALPN = "probe-unknown/1"
_LINGER_ROUND_TRIPS = 4  # the read after a handshake: TLS 1.3 tickets, a verdict
_LINGER_FLOOR = 0.05


def scan_tls(
    target: str,
    server_name: str | None,
    timeout: float,
    now: datetime | None = None,
    *,
    port: int | None = None,
) -> TlsScanReport:
    """Scan one TLS endpoint; failures are in the report's ``error``."""
    host, resolved_port = parse_target(target, port)
    name = server_name or host
    report = TlsScanReport(Target(host, resolved_port, name), ssl.OPENSSL_VERSION)
    try:
        address, tcp_seconds = _reach(host, resolved_port, timeout)
    except ProbeError as error:
        return _with(report, error=error.info)
    return _Scan(address, name, timeout, tcp_seconds, now or datetime.now(UTC)).run(report)


def _reach(host: str, port: int, timeout: float) -> tuple[net.Address, float]:
    started = time.perf_counter()
    sock, address = net.connect(net.resolve(host, port, timeout), timeout)
    elapsed = time.perf_counter() - started
    sock.close()
    return address, elapsed


def _with(report: TlsScanReport, **changes: object) -> TlsScanReport:
    return report._replace(**changes)  # type: ignore[arg-type]


class _Scan:
    def __init__(
        self, address: net.Address, name: str, timeout: float, tcp_seconds: float, now: datetime
    ) -> None:
        self.address = address
        self.name = name
        self.timeout = timeout
        self.now = now
        self.linger = min(timeout, max(_LINGER_FLOOR, _LINGER_ROUND_TRIPS * tcp_seconds))
        self.handshakes = 0
        self.notes: list[str] = []

    def ask(self, pool: ThreadPoolExecutor, offer: tls_scan.Offer) -> Future[Answer]:
        self.handshakes += 1
        return pool.submit(tls_scan.attempt, self.address, self.name, offer, self.timeout)

    def run(self, report: TlsScanReport) -> TlsScanReport:
        if not tls_trace.trace_available():
            self.notes.append(
                "Trace unavailable on this Python (no SSLContext._msg_callback): answers come "
                "from completed handshakes only, so a listener that requires a client "
                "certificate shows its versions and suites as not accepted, and whether it "
                "asks for one is unknown."
            )
        # The most permissive client first: does this speak TLS at all?
        baseline = tls_scan.attempt(
            self.address, self.name, tls_scan.Offer(minimum="1.0", linger=self.linger), self.timeout
        )
        self.handshakes += 1
        if not baseline.answered_tls:
            return _with(report, handshakes=self.handshakes, error=self._not_tls(baseline))
        suites = tls_suites.tls12_suites()
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="probe-tls") as pool:
            versions = {v: self.ask(pool, self._version_offer(v)) for v in decide.VERSION_LABELS}
            per_suite = [self.ask(pool, _only(suite.name)) for suite in suites]
            alpn = [
                self.ask(pool, tls_scan.Offer(alpn=(protocol,)))
                for protocol in ("mqtt", UNKNOWN_ALPN)
            ]
            self.handshakes += 2  # resumption: a handshake, then one offering its session
            resumed = pool.submit(
                tls_scan.resume, self.address, self.name, self.timeout, self.linger
            )
            version_answers = {v: f.result() for v, f in versions.items()}
            suite_answers = [f.result() for f in per_suite]
            accepted = [
                s
                for s, a in zip(suites, suite_answers, strict=True)
                if decide.suite_accepted(s.name, s.code, a)
            ]
            preference = self._preference(pool, accepted)
            alpn_answers = [f.result() for f in alpn]
            resumption = resumed.result()
        answers = [baseline, *version_answers.values(), *suite_answers, *alpn_answers]
        verdicts = {
            decide.VERSION_LABELS[v]: self._version_verdict(v, a)
            for v, a in version_answers.items()
        }
        described = tuple(
            decide.describe_suite(s.name, s.code, s.kex, s.auth, s.symmetric) for s in accepted
        )
        chain = self._chain(answers)
        self._note_failures(answers)
        return _with(
            report,
            handshakes=self.handshakes,
            versions=verdicts,
            cipher_suites=CipherSuites(
                described, len(suites), preference, version_answers["1.3"].suite
            ),
            alpn=AlpnBehaviour(
                decide.alpn_verdict("mqtt", alpn_answers[0]),
                decide.alpn_verdict(UNKNOWN_ALPN, alpn_answers[1]),
                UNKNOWN_ALPN,
            ),
            client_certificate=decide.client_certificate_policy(baseline, answers[1:]),
            resumption=ResumptionInfo(
                resumption.first.version,
                resumption.ticket if resumption.first.traced else None,
                resumption.ticket_lifetime_s,
                resumption.reused,
            ),
            chain=chain,
            findings=decide.findings(verdicts, described, chain),
            notes=tuple(self.notes),
        )

    def _version_offer(self, version: str) -> tls_scan.Offer:
        # Every suite at @SECLEVEL=0 (Offer's default): TLS 1.0/1.1 sign with SHA-1,
        # which OpenSSL 3 refuses from level 1 up.
        return tls_scan.Offer(minimum=version, maximum=version)

    def _version_verdict(self, version: str, answer: Answer) -> bool | None:
        verdict = decide.version_accepted(version, answer)
        if verdict is None and answer.network_error is None:
            self.notes.append(
                f"{decide.VERSION_LABELS[version]} was not tried: the local OpenSSL "
                f"({ssl.OPENSSL_VERSION}) would not offer it ({answer.reason})."
            )
        return verdict

    def _preference(
        self, pool: ThreadPoolExecutor, accepted: Sequence[tls_suites.Suite]
    ) -> bool | None:
        if len(accepted) < 2:
            return None
        first, second = accepted[0], accepted[1]
        both = [
            self.ask(pool, _only(f"{a.name}:{b.name}"))
            for a, b in ((first, second), (second, first))
        ]
        return decide.server_preference(first.code, second.code, [f.result() for f in both])

    def _chain(self, answers: Sequence[Answer]) -> tuple[CertInfo, ...]:
        sent = decide.server_certificates(answers)
        if not sent:  # no handshake the local OpenSSL could make reached the certificate
            self.handshakes += 1
            sent = ask_certificate(self.address, self.name, self.timeout).certificates
        try:
            chain = [x509.load_der_x509_certificate(der) for der in sent]
        except ValueError:
            self.notes.append("The server's certificate chain does not parse.")
            return ()
        return certinfo.describe_all(chain, self.now)

    def _note_failures(self, answers: Sequence[Answer]) -> None:
        failed = [a for a in answers if a.network_error is not None or a.timed_out]
        if failed:
            self.notes.append(
                f"{len(failed)} handshake(s) got no answer (timeout or TCP failure): "
                "their questions are reported as not tried or not accepted."
            )

    def _not_tls(self, baseline: Answer) -> ErrorInfo:
        if baseline.network_error is not None:
            return ErrorInfo.of(
                ErrorKind.CONNECTION_REFUSED,
                f"{self.address} stopped accepting connections: {baseline.network_error}.",
            )
        if baseline.timed_out:
            return ErrorInfo.of(
                ErrorKind.HANDSHAKE_TIMEOUT,
                f"{self.address} accepted TCP but did not answer a TLS ClientHello within "
                f"{self.timeout:g} s.",
            )
        seen = sniff_cleartext(self.address, min(self.timeout, 2.0))
        if seen is not None or baseline.reason in NOT_TLS_REASONS:
            return ErrorInfo.of(
                ErrorKind.NOT_TLS,
                f"{self.address} does not speak TLS: {seen or baseline.reason}.",
            )
        return ErrorInfo.of(
            ErrorKind.PEER_CLOSED,
            f"{self.address} closed the connection without a TLS answer ({baseline.reason}).",
        )


def _only(ciphers: str) -> tls_scan.Offer:
    """TLS 1.2 only, with exactly these suites (weak ones allowed: a probe, not a session)."""
    return tls_scan.Offer(
        minimum="1.2", maximum="1.2", ciphers=f"{ciphers}:@SECLEVEL=0", full_trace=False
    )

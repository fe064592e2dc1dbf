"""The decisions of ``probe tls``: what each answer means, and which findings follow.

Rule: pure. The adapter (``adapters.tls_scan``) turns each handshake into an ``Answer``;
this module reads answers, never sockets. What the server *chose* (its ServerHello,
from the trace) counts, not only whether the handshake completed: a server that picks
TLS 1.2 and then refuses the missing client certificate does accept TLS 1.2. Without a
trace (``Answer.events`` empty), only completed handshakes count.

Severities: ``high`` for what RFC 8996 forbids (TLS 1.0, 1.1), suites that do not
encrypt or do not authenticate the server, an expired chain, and an endpoint nothing
can connect to; ``medium`` for suites without forward secrecy (a stolen key decrypts
recorded traffic) and a chain that expires within 7 days; ``low`` for CBC suites (the
padding-oracle family, RFC 7366), no TLS 1.3, and a chain that expires within 30 days
(the quickstart CA lives 30 days: that one is expected, and still worth watching).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mqtt_tls_probe.core.tls_messages import TraceEvent, cipher_suite_code, cipher_suite_name
from mqtt_tls_probe.model import (
    CertInfo,
    ClientCertificatePolicy,
    FindingCode,
    RatedFinding,
    Severity,
    SuiteInfo,
)

# probe tls's names for the versions (JSON keys), and ssl.SSLSocket.version()'s spelling,
# which the trace uses too.
VERSION_LABELS = {"1.0": "TLSv1.0", "1.1": "TLSv1.1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}
SSL_VERSION_NAMES = {"1.0": "TLSv1", "1.1": "TLSv1.1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}
CHAIN_SOON_DAYS = 30
CHAIN_VERY_SOON_DAYS = 7
# Alerts by which a server refuses a client without a certificate (RFC 8446 §4.4.2.4:
# certificate_required; OpenSSL's TLS 1.2 servers: handshake_failure).
NO_CERTIFICATE_ALERTS = frozenset({"certificate_required", "handshake_failure"})


@dataclass(frozen=True)
class Answer:
    """What the server answered one handshake (built by ``adapters.tls_scan``)."""

    tried: bool  # a ClientHello left this machine
    completed: bool = False  # the client's handshake completed
    version: str | None = None  # the version the server chose (ServerHello)
    suite: str | None = None  # the suite it chose: IANA name or 0x.... (OpenSSL's, untraced)
    alpn: str | None = None  # the protocol it selected
    reason: str | None = None  # OpenSSL's reason when the handshake (or the read) failed
    alert: str | None = None  # the alert the server sent, if any
    timed_out: bool = False
    events: tuple[TraceEvent, ...] = field(default=(), repr=False)
    network_error: str | None = None  # the TCP connection itself failed
    traced: bool = False  # the facts come from the trace (else from the ssl module only)

    @property
    def answered_tls(self) -> bool:
        """The server said something in TLS: a ServerHello or an alert."""
        return self.version is not None or self.alert is not None or self.completed


def version_accepted(version: str, answer: Answer) -> bool | None:
    """Whether the server took ``version`` ("1.0".."1.3") when only it was offered.

    None: the question could not be asked (the local OpenSSL sent nothing, or TCP failed).
    """
    if not answer.tried or answer.network_error is not None:
        return None
    return answer.version == SSL_VERSION_NAMES[version]


def suite_accepted(name: str, code: int, answer: Answer) -> bool | None:
    """Whether the server chose the one TLS 1.2 suite offered (OpenSSL ``name``, IANA ``code``)."""
    if not answer.tried or answer.network_error is not None:
        return None
    if answer.version != SSL_VERSION_NAMES["1.2"] or answer.suite is None:
        return False
    if answer.traced:
        return cipher_suite_code(answer.suite) == code
    return answer.suite == name


def chosen_suite_code(answer: Answer) -> int | None:
    return cipher_suite_code(answer.suite) if answer.suite is not None else None


def server_preference(first: int, second: int, answers: Sequence[Answer]) -> bool | None:
    """Offered ``first:second`` then ``second:first``: does the server impose its order?"""
    chosen = [chosen_suite_code(answer) for answer in answers]
    if len(chosen) != 2 or None in chosen or not set(chosen) <= {first, second}:
        return None
    if chosen[0] == chosen[1]:
        return True
    return False if chosen == [first, second] else None


def alpn_verdict(offered: str, answer: Answer) -> str | None:
    """``selected``, ``ignored`` (no protocol chosen) or ``refused`` (alert); None: unknown."""
    if answer.alert == "no_application_protocol" or answer.reason == (
        "TLSV1_ALERT_NO_APPLICATION_PROTOCOL"
    ):
        return "refused"
    if not answer.completed:
        return None
    if answer.alpn == offered:
        return "selected"
    return "ignored" if answer.alpn is None else f"selected {answer.alpn}"


def client_certificate_policy(
    baseline: Answer, others: Iterable[Answer]
) -> ClientCertificatePolicy:
    """Whether the server asks for a client certificate, insists on it, and from which CAs.

    ``baseline`` offered no certificate and read once after its handshake, so a TLS 1.3
    server's verdict is in it: a certificate_required (or, TLS 1.2, handshake_failure)
    alert after a CertificateRequest means required; a completed handshake without an
    alert means optional.
    """
    answers = [baseline, *others]
    if not any(answer.traced for answer in answers):
        return ClientCertificatePolicy(None, None, ())
    requests = [
        event
        for answer in answers
        for event in answer.events
        if event.type == "CertificateRequest" and event.direction == "received"
    ]
    if not requests:
        return ClientCertificatePolicy(False, False, ())
    names = requests[0].fields.get("certificate_authorities")
    authorities = tuple(str(n) for n in names) if isinstance(names, tuple) else ()
    requested_here = any(e.type == "CertificateRequest" for e in baseline.events)
    required: bool | None = None
    if requested_here:
        required = baseline.alert in NO_CERTIFICATE_ALERTS or (
            not baseline.completed and baseline.alert is not None
        )
    return ClientCertificatePolicy(True, required, authorities)


def server_certificates(answers: Iterable[Answer]) -> tuple[bytes, ...]:
    """The server's chain (DER, as sent) from the first traced Certificate message."""
    for answer in answers:
        for event in answer.events:
            received = event.direction == "received"
            if event.type == "Certificate" and received and event.certificates:
                return event.certificates
    return ()


def describe_suite(name: str, code: int, kex: str, auth: str, symmetric: str | None) -> SuiteInfo:
    """A TLS 1.2 suite's properties, from what OpenSSL says of it (``get_ciphers``)."""
    return SuiteInfo(
        name=name,
        iana=cipher_suite_name(code),
        code=code,
        kex=kex,
        auth=auth,
        forward_secrecy=kex in ("ECDHE", "DHE"),
        cbc=bool(symmetric and symmetric.endswith("-cbc")),
        insecure=auth == "NULL" or symmetric is None,
    )


# --- findings -----------------------------------------------------------------------------


def findings(
    versions: Mapping[str, bool | None],
    accepted: Sequence[SuiteInfo],
    chain: Sequence[CertInfo],
) -> tuple[RatedFinding, ...]:
    """The findings of a scan, worst first."""
    found: list[RatedFinding] = []
    if not any(versions.values()):
        found.append(
            RatedFinding(
                FindingCode.NO_HANDSHAKE,
                Severity.HIGH,
                "The server completed no handshake with any version or suite the local "
                "OpenSSL can offer: no client like this one can connect.",
            )
        )
    for version, code in (
        ("TLSv1.0", FindingCode.TLS10_ACCEPTED),
        ("TLSv1.1", FindingCode.TLS11_ACCEPTED),
    ):
        if versions.get(version):
            found.append(
                RatedFinding(
                    code,
                    Severity.HIGH,
                    f"{version} is accepted: RFC 8996 forbids it; allow TLS 1.2 and 1.3 only.",
                )
            )
    if versions.get("TLSv1.3") is False and any(versions.values()):
        found.append(
            RatedFinding(
                FindingCode.NO_TLS13,
                Severity.LOW,
                "TLS 1.3 is not accepted: enable it (faster handshakes, no legacy suites).",
            )
        )
    found += _suite_findings(accepted)
    found += _chain_findings(chain)
    order = list(Severity)
    return tuple(sorted(found, key=lambda f: order.index(f.severity)))


def _suite_findings(accepted: Sequence[SuiteInfo]) -> list[RatedFinding]:
    found = []
    insecure = [s.name for s in accepted if s.insecure]
    if insecure:
        found.append(
            RatedFinding(
                FindingCode.INSECURE_SUITES,
                Severity.HIGH,
                "Suites without encryption or without server authentication are accepted: "
                f"{_names(insecure)}.",
            )
        )
    static = [s.name for s in accepted if not s.forward_secrecy and not s.insecure]
    if static:
        found.append(
            RatedFinding(
                FindingCode.NO_FORWARD_SECRECY,
                Severity.MEDIUM,
                "Suites without forward secrecy (static RSA key exchange) are accepted: "
                f"{_names(static)}; whoever obtains the server's key can decrypt recorded "
                "sessions.",
            )
        )
    cbc = [s.name for s in accepted if s.cbc and not s.insecure]
    if cbc:
        found.append(
            RatedFinding(
                FindingCode.CBC_SUITES,
                Severity.LOW,
                f"CBC suites are accepted: {_names(cbc)}; prefer AEAD suites (GCM, "
                "CHACHA20-POLY1305).",
            )
        )
    return found


def _names(names: Sequence[str], shown: int = 4) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _chain_findings(chain: Sequence[CertInfo]) -> list[RatedFinding]:
    if not chain:
        return []
    first = min(chain, key=lambda cert: cert.not_after)
    left = first.days_left
    when = first.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    if left < 0:
        return [
            RatedFinding(
                FindingCode.CHAIN_EXPIRED,
                Severity.HIGH,
                f"The chain has expired: {first.subject} expired on {when}.",
            )
        ]
    if left < CHAIN_SOON_DAYS:
        severity = Severity.MEDIUM if left < CHAIN_VERY_SOON_DAYS else Severity.LOW
        return [
            RatedFinding(
                FindingCode.CHAIN_EXPIRES_SOON,
                severity,
                f"The chain expires within {CHAIN_SOON_DAYS} days: {first.subject} on {when} "
                f"({left} day{'s' if left != 1 else ''} left).",
            )
        ]
    return []

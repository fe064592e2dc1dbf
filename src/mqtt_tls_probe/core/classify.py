"""The classification tables: what the network, OpenSSL and the broker said -> an error kind.

Rule: classify on codes, never on message text: errno and getaddrinfo codes,
OpenSSL reason names (``SSLError.reason``), OpenSSL verify codes, CONNACK
reason and return codes. Each function takes the facts an adapter extracted
and returns an ``ErrorInfo``; ``None`` means "not in the tables", which the
adapter lets escape as a bug (exit 1) rather than guess.

A failed handshake is also read with what the handshake trace saw (``HandshakeFailure``'s
``server_requested_certificate`` and ``server_key``): a ``handshake_failure`` alert is a
missing client certificate only when the server asked for one (CertificateRequest);
otherwise the server's certificate decides between ``unsupported_server_key`` (a key the
client cannot use) and ``no_shared_cipher``. Without a trace (``None``: the Python has no
message callback) the TLS 1.2 reading of that alert, a missing client certificate, stays.
"""

from __future__ import annotations

import errno
from collections.abc import Collection
from typing import NamedTuple

from mqtt_tls_probe import aio
from mqtt_tls_probe.errors import ErrorInfo, ErrorKind

# --- resolve and tcp -----------------------------------------------------------------

# getaddrinfo's EAI_* codes as Linux's glibc numbers them (socket.EAI_*), kept
# here as numbers so that this module needs no socket import.
EAI_NONAME = -2
EAI_AGAIN = -3
EAI_NODATA = -5


def dns_error(host: str, code: int | None, strerror: str | None) -> ErrorInfo:
    """A failed lookup, by its getaddrinfo code."""
    if code in (EAI_NONAME, EAI_NODATA):
        return ErrorInfo.of(
            ErrorKind.DNS_FAILURE,
            f"The name {host} does not resolve to any address.",
            "Check the spelling; for a cluster service, port-forward it (kubectl port-forward "
            "svc/aio-broker 18883 -n azure-iot-operations) and use localhost.",
        )
    if code == EAI_AGAIN:
        return ErrorInfo.of(
            ErrorKind.DNS_FAILURE,
            f"The name {host} could not be resolved now: the DNS server did not answer.",
            "Check this machine's DNS servers, then retry; or use the broker's IP address.",
        )
    return ErrorInfo.of(ErrorKind.DNS_FAILURE, f"Resolving {host} failed: {strerror}.")


def invalid_host_name(host: str, reason: str) -> ErrorInfo:
    """A name the resolver refuses before asking anyone (the IDNA codec: ``a..b``, ``.``)."""
    return ErrorInfo.of(
        ErrorKind.DNS_FAILURE,
        f"{host!r} is not a valid host name: {reason} (each dot-separated label needs 1 to "
        "63 characters).",
        "Check the host name for doubled or stray dots and overlong labels, or use the "
        "broker's IP address.",
    )


def unknown_interface(host: str, scope: str) -> ErrorInfo:
    return ErrorInfo.of(
        ErrorKind.DNS_FAILURE,
        f"The address {host} names the network interface {scope!r}, which this machine "
        "does not have.",
        "Name an interface this machine has (ip link lists them), e.g. [fe80::1%eth0]:18883.",
    )


def dns_timeout(host: str, timeout: float) -> ErrorInfo:
    return ErrorInfo.of(
        ErrorKind.DNS_FAILURE,
        f"Resolving {host} did not finish within {timeout:g} s.",
        "Check the DNS servers this machine uses (resolv.conf), or use the broker's IP.",
    )


# A reset in answer to SYN is what a refusal is.
REFUSED_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED})
UNREACHABLE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN}
    | {errno.EAFNOSUPPORT}  # an IPv6 address on a machine without IPv6
)
# A link-local IPv6 address without its interface (fe80::1, not fe80::1%eth0).
NEEDS_INTERFACE_ERRNOS = frozenset({errno.EINVAL})


def connect_error(
    tried: str,
    errnos: Collection[int | None],
    *,
    timed_out: bool,
    strerror: str | None,
    timeout: float,
) -> ErrorInfo | None:
    """Why no address accepted TCP: refused, timed out, unreachable; None if unknown."""
    found = set(errnos)
    if found & REFUSED_ERRNOS:
        return ErrorInfo.of(
            ErrorKind.CONNECTION_REFUSED,
            f"The connection to {tried} was refused: nothing listens on that port.",
        )
    if timed_out or not found:
        return ErrorInfo.of(
            ErrorKind.CONNECT_TIMEOUT,
            f"No answer from {tried} within {timeout:g} s (TCP connect timed out).",
        )
    if found & UNREACHABLE_ERRNOS:
        return ErrorInfo.of(
            ErrorKind.NETWORK_UNREACHABLE,
            f"{tried} cannot be reached from this machine: {strerror}.",
        )
    if found & NEEDS_INTERFACE_ERRNOS:
        return ErrorInfo.of(
            ErrorKind.NETWORK_UNREACHABLE,
            f"{tried} cannot be dialled from this machine ({strerror}): a link-local IPv6 "
            "address needs its interface.",
            "Name the interface after the address: [fe80::1%eth0]:18883.",
        )
    return None


# --- tls ------------------------------------------------------------------------------

# OpenSSL reason names (SSLError.reason) that mean "the peer does not speak TLS".
NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
        "UNEXPECTED_MESSAGE",
    }
)
PROTOCOL_VERSION_REASONS = frozenset(
    {
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "TLSV1_ALERT_INAPPROPRIATE_FALLBACK",
        "VERSION_TOO_LOW",
        "VERSION_TOO_HIGH",
    }
)
# Alerts a server sends about the client's certificate (or the lack of one).
CLIENT_CERT_ALERTS = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV1_ALERT_DECRYPT_ERROR",
    }
)
EOF_REASONS = frozenset({"UNEXPECTED_EOF_WHILE_READING", "EOF"})
HANDSHAKE_FAILURE = "SSLV3_ALERT_HANDSHAKE_FAILURE"
# Alerts a server sends when it cannot complete the handshake with what the client
# offered (RFC 8446 §6.2: handshake_failure, insufficient_security).
NEGOTIATION_ALERTS = frozenset({HANDSHAKE_FAILURE, "TLSV1_ALERT_INSUFFICIENT_SECURITY"})
NO_APPLICATION_PROTOCOL = "TLSV1_ALERT_NO_APPLICATION_PROTOCOL"

# OpenSSL reasons for a server whose certificate or parameters this client refuses:
# (message, hint). OpenSSL reads at most 100 KiB of certificate chain (max_cert_list).
SERVER_PARAMETER_REASONS = {
    "EXCESSIVE_MESSAGE_SIZE": (
        "The client refused the server's handshake: a message from the server (its "
        "certificate chain, most likely) is larger than OpenSSL accepts, 100 KiB for a chain",
        "Have the broker send only its certificate and its intermediates (not the root, not "
        "unrelated certificates), and certificates without oversized extensions.",
    ),
}

CLIENT_REJECTION_HINTS = {
    "TLSV1_ALERT_UNKNOWN_CA": (
        "The listener does not trust the CA that issued --cert: use a certificate from the "
        "CA the listener trusts, or add that CA to the listener's client-certificate trust."
    ),
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "The client certificate has expired: issue a new one.",
}


class ServerKey(NamedTuple):
    """The public key of the server's certificate, as the usability rules read it.

    A NamedTuple, not a dataclass: this module is on every run's import path, and a
    frozen dataclass costs about a millisecond more to create at import time.
    """

    algorithm: str  # "RSA", "DSA", "EC", "Ed25519", "Ed448", or the key type's name
    bits: int | None = None
    curve: str | None = None  # EC only: the curve's name (secp256r1, secp256k1, ...)

    def __str__(self) -> str:
        """As ``core.certinfo.key_description`` writes it: "EC P-256", "RSA 2048"."""
        if self.curve is not None:
            return f"EC {_NIST_CURVES.get(self.curve, self.curve)}"
        return f"{self.algorithm} {self.bits}" if self.bits else self.algorithm


_NIST_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class HandshakeFailure(NamedTuple):
    """A failed TLS handshake (or a TLS error right after it), as facts the tables read."""

    reason: str = ""  # OpenSSL's reason name, "" when there is none
    timed_out: bool = False
    closed: bool = False  # EOF, reset or broken pipe
    close_notify: bool = False  # the server sent a close_notify alert (a clean TLS close)
    ssl_error: bool = False  # an ssl.SSLError (as opposed to a plain OSError)
    os_error: bool = False  # an OSError with an errno
    text: str = ""  # the exception's text, for the last-resort message only
    # From the handshake trace; None: not known (no trace on this Python).
    server_requested_certificate: bool | None = None  # a CertificateRequest arrived
    # The key of the server's certificate, from its Certificate message or, when the
    # server sent none, from a separate ClientHello that offered everything.
    server_key: ServerKey | None = None


class TlsAttempt(NamedTuple):
    """What the client offered: the hints depend on it."""

    tls_min: str | None = None
    alpn: tuple[str, ...] = ()
    client_subject: str | None = None  # the client certificate sent, if any
    timeout: float = 0.0
    after_handshake: bool = False  # the error came after the client's handshake finished
    tls_max: str | None = None
    ciphers: str | None = None  # --ciphers, as given
    security_level: int = 2  # OpenSSL's, of the client context (Python's default: 2)
    dsa_suites: bool = False  # the client offered a DHE-DSS suite
    offered_groups: tuple[str, ...] | None = None  # from the ClientHello sent, if traced


def classify_handshake(failure: HandshakeFailure, attempt: TlsAttempt) -> ErrorInfo | None:
    """The kind of a failed handshake; None when the tables do not know it."""
    reason = failure.reason
    if failure.timed_out:
        return ErrorInfo.of(
            ErrorKind.HANDSHAKE_TIMEOUT,
            "The server accepted TCP but did not complete the TLS handshake within "
            f"{attempt.timeout:g} s.",
        )
    ended = _connection_ended(failure, attempt)
    if ended is not None:
        return ended
    if reason in NOT_TLS_REASONS:
        return ErrorInfo.of(
            ErrorKind.NOT_TLS, f"The server did not answer in TLS (OpenSSL: {reason})."
        )
    if reason in PROTOCOL_VERSION_REASONS:
        return protocol_version_error(reason, attempt)
    if reason == NO_APPLICATION_PROTOCOL:
        return ErrorInfo.of(
            ErrorKind.PROTOCOL_VERSION,
            f"The server supports none of the ALPN protocols offered ({', '.join(attempt.alpn)}).",
            "Offer the protocol the listener expects with --alpn (often 'mqtt'), or drop --alpn.",
        )
    if reason in CLIENT_CERT_ALERTS:
        return client_cert_error(reason, attempt)
    if reason in SERVER_PARAMETER_REASONS:
        message, hint = SERVER_PARAMETER_REASONS[reason]
        said = f"{message} (OpenSSL: {reason})."
        return ErrorInfo.of(ErrorKind.UNSUPPORTED_SERVER_KEY, said, hint)
    if reason in NEGOTIATION_ALERTS:
        return _refused(reason, failure, attempt)
    if "ALERT" in reason:
        return ErrorInfo.of(
            ErrorKind.PEER_CLOSED, f"The server aborted the TLS handshake with the alert {reason}."
        )
    if failure.ssl_error:
        return ErrorInfo.of(ErrorKind.PEER_CLOSED, f"The TLS handshake failed: {failure.text}.")
    if failure.os_error:
        return peer_closed(after_handshake=attempt.after_handshake)
    return None


def protocol_version_error(reason: str, attempt: TlsAttempt) -> ErrorInfo:
    if attempt.tls_max:
        hint = "Raise --tls-max (or lower --tls-min), or enable the version on the broker."
    elif attempt.tls_min:
        hint = "Lower --tls-min, or enable the version on the broker."
    else:
        hint = "Enable TLS 1.2 or 1.3 on the broker: older versions are insecure."
    return ErrorInfo.of(
        ErrorKind.PROTOCOL_VERSION,
        "The server and this client share no TLS version: the client offered "
        f"{offered_versions(attempt)} (OpenSSL: {reason}).",
        hint,
    )


def _refused(reason: str, failure: HandshakeFailure, attempt: TlsAttempt) -> ErrorInfo:
    """A handshake_failure-like alert: during the handshake, what the client's offers lacked.

    After it, ciphers and keys were evidently fine: the alert is the server's verdict on
    the client, or the session breaking.
    """
    if not attempt.after_handshake:
        return negotiation_error(reason, failure, attempt)
    if failure.server_requested_certificate is False:
        return broken_after_handshake(reason)
    return client_cert_error(reason, attempt)


def negotiation_error(reason: str, failure: HandshakeFailure, attempt: TlsAttempt) -> ErrorInfo:
    """A server that would not complete the handshake: which of the client's offers it lacked.

    | CertificateRequest seen | server key usable | kind                            |
    | yes                     | -                 | client_cert_required / rejected |
    | no or unknown           | no                | unsupported_server_key          |
    | unknown (no trace)      | yes or unknown    | client_cert_required (*)        |
    | no                      | yes or unknown    | no_shared_cipher                |

    (*) when the client sent no certificate: the TLS 1.2 reading of the alert; with a
    certificate sent, no_shared_cipher.
    """
    requested = failure.server_requested_certificate
    if requested:
        return client_cert_error(reason, attempt)
    key = failure.server_key
    problem = server_key_problem(key, attempt) if key is not None else None
    if key is not None and problem is not None:
        return ErrorInfo.of(
            ErrorKind.UNSUPPORTED_SERVER_KEY,
            f"The server refused the handshake ({_alert_name(reason)}): its certificate has a "
            f"{key} key, which this client cannot use: {problem}.",
        )
    if requested is None and attempt.client_subject is None and reason == HANDSHAKE_FAILURE:
        # In TLS 1.2 an OpenSSL server that requires a certificate and gets none
        # answers with a plain handshake_failure alert.
        return client_cert_error(reason, attempt)
    said = f"The server refused the handshake ({_alert_name(reason)})"
    why = "it shares no cipher suite, group or signature algorithm with what this client offered"
    facts = [f"the client offered {offered_versions(attempt)}"]
    if attempt.ciphers:
        facts.append(f"TLS 1.2 suites {attempt.ciphers!r}")
    if requested is False:
        facts.append("the server did not ask for a client certificate")
    if key is not None:
        facts.append(f"its certificate's key ({key}) is one this client can use")
    hint = None
    if attempt.ciphers or attempt.tls_max:
        hint = (
            "The broker accepts none of what --ciphers/--tls-max leave: list what it accepts "
            "with probe tls HOST:PORT, then widen them."
        )
    return ErrorInfo.of(ErrorKind.NO_SHARED_CIPHER, f"{said}: {why} ({'; '.join(facts)}).", hint)


def _alert_name(reason: str) -> str:
    """``SSLV3_ALERT_HANDSHAKE_FAILURE`` -> ``handshake_failure alert``."""
    for prefix in ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_"):
        if reason.startswith(prefix):
            return f"{reason.removeprefix(prefix).lower()} alert"
    return reason


def offered_versions(attempt: TlsAttempt) -> str:
    """The TLS versions a client offered, in words: "TLS 1.2 or newer", "TLS 1.2 only"."""
    low, high = attempt.tls_min or "1.2", attempt.tls_max
    if high is None:
        return f"TLS {low} or newer"
    return f"TLS {low} only" if low == high else f"TLS {low} to {high}"


# OpenSSL's security levels (SSL_CTX_set_security_level(3)): the smallest RSA or DSA key
# and the smallest EC key, in bits, that a peer's certificate may have.
SECURITY_LEVEL_BITS: dict[int, tuple[int, int]] = {
    0: (0, 0),
    1: (1024, 160),
    2: (2048, 224),
    3: (3072, 256),
    4: (7680, 384),
    5: (15360, 512),
}
# The EC groups OpenSSL 3.0's client offers by default (ssl/t1_lib.c,
# supported_groups_default), when the trace did not show the ClientHello.
DEFAULT_CLIENT_GROUPS = ("x25519", "secp256r1", "x448", "secp521r1", "secp384r1")


def server_key_problem(key: ServerKey, attempt: TlsAttempt) -> str | None:
    """Why this client cannot use a certificate with ``key``; None when it can (or may).

    - DSA signs only in DHE-DSS suites, which Python's ``ssl`` leaves out (and TLS 1.3
      has no DSA at all);
    - an ECDSA certificate's curve must be among the client's supported_groups (RFC 8422
      §5.1, TLS 1.2) and TLS 1.3 signs with P-256, P-384 and P-521 only (RFC 8446
      §4.2.3): secp256k1 and brainpool certificates fail;
    - RSA, DSA and EC keys below the security level's size (OpenSSL 3: level 2 wants
      RSA 2048; an RSA-512 key cannot even sign TLS 1.3's RSA-PSS).
    """
    level = max(0, min(attempt.security_level, max(SECURITY_LEVEL_BITS)))
    rsa_bits, ec_bits = SECURITY_LEVEL_BITS[level]
    if key.algorithm == "DSA" and not attempt.dsa_suites:
        return (
            "DSA needs a DHE-DSS cipher suite, which this client does not offer (Python's ssl "
            "leaves them out, and TLS 1.3 has no DSA at all)"
        )
    if key.algorithm in ("RSA", "DSA") and key.bits is not None and key.bits < rsa_bits:
        return (
            f"{key.bits} bits is below the {rsa_bits} bits that OpenSSL's security level "
            f"{level} requires of {key.algorithm} keys"
        )
    if key.algorithm == "EC":
        groups = attempt.offered_groups or DEFAULT_CLIENT_GROUPS
        if key.curve is not None and key.curve not in groups:
            return (
                f"the curve {key.curve} is not among the groups this client offers "
                f"({', '.join(groups)}), and TLS 1.3 signs only with P-256, P-384 and P-521"
            )
        if key.bits is not None and key.bits < ec_bits:
            return (
                f"{key.bits} bits is below the {ec_bits} bits that OpenSSL's security level "
                f"{level} requires of EC keys"
            )
    return None


def _connection_ended(failure: HandshakeFailure, attempt: TlsAttempt) -> ErrorInfo | None:
    """The server closed (cleanly or not), or broke a session already established."""
    if failure.close_notify and not attempt.after_handshake:
        return ErrorInfo.of(
            ErrorKind.PEER_CLOSED,
            "The server closed the TLS handshake: it sent a close_notify alert instead of "
            "going on with the handshake.",
            "The server ended the handshake without saying why: read the broker's (or its "
            "proxy's) log for the TLS error; some refuse an SNI name they do not serve "
            "(--server-name) or a client they do not accept.",
        )
    if failure.closed or failure.reason in EOF_REASONS:
        return peer_closed(after_handshake=attempt.after_handshake)
    broken = attempt.after_handshake and failure.ssl_error
    if broken and not _about_the_client(failure.reason, attempt):
        return broken_after_handshake(failure.reason or failure.text)
    return None


def _about_the_client(reason: str, attempt: TlsAttempt) -> bool:
    """An alert that is the server's verdict on the client (or its missing certificate).

    In TLS 1.2 an OpenSSL server that requires a certificate and gets none
    answers with a plain handshake_failure alert.
    """
    return reason in CLIENT_CERT_ALERTS or (
        reason == HANDSHAKE_FAILURE and attempt.client_subject is None
    )


def broken_after_handshake(reason: str) -> ErrorInfo:
    """A TLS error on an established connection that says nothing about the client."""
    what = f"the alert {reason}" if "ALERT" in reason else f"a record OpenSSL rejects ({reason})"
    return ErrorInfo.of(
        ErrorKind.PEER_CLOSED,
        f"The TLS connection broke after the handshake: the server sent {what}.",
        "The server (or a proxy or load balancer on the way) broke the TLS session: check "
        "the broker's log and whatever terminates TLS in front of it.",
    )


def peer_closed(*, after_handshake: bool) -> ErrorInfo:
    if after_handshake:
        return ErrorInfo.of(
            ErrorKind.PEER_CLOSED,
            "The server closed the connection right after the TLS handshake, without an alert.",
            "Check the broker's log: it may require a client certificate (--cert/--key) "
            "or reject this client.",
        )
    return ErrorInfo.of(
        ErrorKind.PEER_CLOSED, "The server closed the connection during the TLS handshake."
    )


def client_cert_error(reason: str, attempt: TlsAttempt) -> ErrorInfo:
    when = " after the handshake" if attempt.after_handshake else ""
    if attempt.client_subject is None:
        return ErrorInfo.of(
            ErrorKind.CLIENT_CERT_REQUIRED,
            f"The listener requires a client certificate and none was sent "
            f"(the server answered{when} with {reason}).",
        )
    return ErrorInfo.of(
        ErrorKind.CLIENT_CERT_REJECTED,
        f"The server rejected the client certificate {attempt.client_subject}{when} "
        f"with the alert {reason}.",
        CLIENT_REJECTION_HINTS.get(reason),
    )


# --- verify: OpenSSL's verify codes, when the certificates do not say more --------------

OPENSSL_VERIFY_CODES: dict[int, ErrorKind] = {
    2: ErrorKind.UNKNOWN_CA,  # unable to get issuer certificate
    7: ErrorKind.CA_ROTATED,  # certificate signature failure: same issuer name, other key
    9: ErrorKind.CERT_NOT_YET_VALID,
    10: ErrorKind.CERT_EXPIRED,
    18: ErrorKind.SELF_SIGNED_LEAF,
    19: ErrorKind.UNKNOWN_CA,  # self-signed certificate in certificate chain
    20: ErrorKind.UNKNOWN_CA,  # unable to get local issuer certificate
    21: ErrorKind.UNKNOWN_CA,  # unable to verify the first certificate
    24: ErrorKind.CA_INVALID,  # invalid CA certificate
    32: ErrorKind.CA_INVALID,  # key usage does not include certificate signing
    62: ErrorKind.HOSTNAME_MISMATCH,
    64: ErrorKind.HOSTNAME_MISMATCH,  # IP address mismatch
    79: ErrorKind.CA_INVALID,  # invalid CA certificate (strict)
}


def verify_code_kind(code: int | None) -> ErrorKind:
    """The kind OpenSSL's verify code names; an unknown code is a CA problem."""
    return OPENSSL_VERIFY_CODES.get(code if code is not None else -1, ErrorKind.CA_INVALID)


# --- mqtt: CONNACK ------------------------------------------------------------------------

# MQTT 3.1.1 CONNACK return codes (section 3.2.2.3) and what they mean here.
V311_RETURN_CODES: dict[int, tuple[str, ErrorKind]] = {
    1: ("Connection Refused, unacceptable protocol version", ErrorKind.PROTOCOL_UNSUPPORTED),
    2: ("Connection Refused, identifier rejected", ErrorKind.CLIENT_ID_REJECTED),
    3: ("Connection Refused, Server unavailable", ErrorKind.SERVER_UNAVAILABLE),
    4: ("Connection Refused, bad user name or password", ErrorKind.BAD_CREDENTIALS),
    5: ("Connection Refused, not authorized", ErrorKind.NOT_AUTHORIZED),
}
# MQTT 5 CONNACK reason codes (section 3.2.2.2); unlisted failures are
# "the server will not serve this client now".
V5_CONNACK_KINDS: dict[int, ErrorKind] = {
    0x81: ErrorKind.PROTOCOL_UNSUPPORTED,  # Malformed Packet
    0x82: ErrorKind.PROTOCOL_UNSUPPORTED,  # Protocol Error
    0x84: ErrorKind.PROTOCOL_UNSUPPORTED,  # Unsupported Protocol Version
    0x85: ErrorKind.CLIENT_ID_REJECTED,  # Client Identifier not valid
    0x86: ErrorKind.BAD_CREDENTIALS,  # Bad User Name or Password
    0x87: ErrorKind.NOT_AUTHORIZED,  # Not authorized
    0x8A: ErrorKind.NOT_AUTHORIZED,  # Banned
    0x8C: ErrorKind.BAD_AUTH_METHOD,  # Bad authentication method
    0x95: ErrorKind.PROTOCOL_UNSUPPORTED,  # Packet too large
    0x9A: ErrorKind.PROTOCOL_UNSUPPORTED,  # Retain not supported
    0x9B: ErrorKind.PROTOCOL_UNSUPPORTED,  # QoS not supported
}
V311_UNSUPPORTED_VERSION = 1
V5_UNSUPPORTED_VERSION = 0x84


class Connack(NamedTuple):
    """A CONNACK as the broker sent it."""

    version: str
    code: int
    reason: str
    properties: dict[str, int | str]
    answered_in_v311: bool = False  # a v3.1.1-only broker answering a v5 CONNECT

    @property
    def in_v5_form(self) -> bool:
        return self.version == "5" and not self.answered_in_v311

    @property
    def accepted(self) -> bool:
        return self.code == 0

    @property
    def refuses_version(self) -> bool:
        if self.in_v5_form:
            return self.code == V5_UNSUPPORTED_VERSION
        return self.code == V311_UNSUPPORTED_VERSION

    @property
    def kind(self) -> ErrorKind:
        if self.in_v5_form:
            return V5_CONNACK_KINDS.get(self.code, ErrorKind.SERVER_UNAVAILABLE)
        return V311_RETURN_CODES.get(self.code, ("", ErrorKind.SERVER_UNAVAILABLE))[1]

    def code_text(self) -> str:
        if self.in_v5_form:
            return f"0x{self.code:02X} {self.reason}"
        text = f"return code {self.code}, {self.reason}"
        return f"{text}, in MQTT 3.1.1 form" if self.answered_in_v311 else text


def v311_return_code_name(code: int) -> str:
    if code == 0:
        return "Connection Accepted"
    return V311_RETURN_CODES.get(code, ("Unknown",))[0]


def connack_error(connack: Connack, *, sat: bool, username: str | None) -> ErrorInfo:
    """The ``mqtt`` stage failure for a refused CONNACK; the hint fits how the client signed in."""
    kind = connack.kind
    said = f"The broker refused the MQTT {connack.version} CONNECT: {connack.code_text()}"
    detail = connack.properties.get("reason_string")
    hint = None
    if kind in (ErrorKind.NOT_AUTHORIZED, ErrorKind.BAD_CREDENTIALS):
        if sat:
            hint = (
                "The broker did not accept the service account token: create a current one "
                f"(kubectl create token SA -n {aio.NAMESPACE} --audience {aio.SAT_AUDIENCE}) "
                "and check that the listener's BrokerAuthentication admits that service account."
            )
        elif username is None:
            hint = "The broker refuses anonymous clients: pass --username and --password-file."
        else:
            hint = (
                f"Check the password of {username!r} (--password-file or "
                "$PROBE_MQTT_PASSWORD) and the broker's authorization rules for it."
            )
    return ErrorInfo.of(kind, said + (f", saying {detail!r}." if detail else "."), hint)


def sat_needs_v5(connack: Connack) -> ErrorInfo:
    return ErrorInfo.of(
        ErrorKind.PROTOCOL_UNSUPPORTED,
        f"The broker refused MQTT 5 ({connack.code_text()}), and K8S-SAT "
        "authentication needs MQTT 5: MQTT 3.1.1 cannot carry the token.",
        "Use a broker listener that speaks MQTT 5 (Azure IoT Operations does).",
    )


def no_connack_hint(version: str, *, sat: bool) -> str:
    if version == "5" and sat:
        return (
            "A broker that does not know MQTT 5 enhanced authentication may stay silent: check "
            "that this listener uses K8S-SAT authentication (an MQTT 3.1.1-only broker, such as "
            "amqtt, never answers a v5 CONNECT with properties)."
        )
    return "Check the broker's log; try --mqtt-version 3.1.1 if it is an MQTT 3.1.1-only broker."


# --- what a port says in cleartext -------------------------------------------------------


# The first byte of a TLS record: change_cipher_spec, alert, handshake, application_data.
TLS_RECORD_TYPES = frozenset({0x14, 0x15, 0x16, 0x17})


def describe_cleartext(data: bytes) -> str | None:
    """A few words on a cleartext answer to an MQTT CONNECT; None when nothing came,
    or when the answer is TLS after all."""
    if not data:
        return None
    if data[:2] == b"\x20\x02" and len(data) >= 4:
        return (
            f"it answered a cleartext MQTT CONNECT with CONNACK (return code {data[3]}): "
            "a plain MQTT listener without TLS"
        )
    if data.startswith(b"HTTP/"):
        status = data.split(b"\r\n", 1)[0].decode("ascii", "replace")
        return f"it answered in cleartext HTTP ({status!r}): an HTTP server"
    if data.startswith(b"SSH-"):
        return "it sent an SSH banner: an SSH server"
    if len(data) >= 3 and data[0] in TLS_RECORD_TYPES and data[1] == 3:
        return None  # a TLS record (an alert, most likely): the port does speak TLS
    shown = data[:16]
    printable = all(32 <= b < 127 or b in b"\r\n\t" for b in shown)
    return f"it answered in cleartext: {shown!r}" if printable else f"it answered {shown.hex(' ')}"

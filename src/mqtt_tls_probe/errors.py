"""Stages, error kinds, exit codes, and the one exception type that carries them.

Rule: every name here is part of the contract in ``shared/spec/probe-cli.md``.
Add, never rename. Each kind has a home stage (``KIND_STAGE``); an error is
attributed to the stage that was running when it happened (``ErrorInfo.stage``,
by default the kind's home), and the exit code follows that stage
(``EXIT_CODES``): ``malformed_packet`` is exit 7 in ``mqtt`` and 8 in ``roundtrip``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Stage(StrEnum):
    """The stages of ``probe connect``, in the order they run."""

    TRUST = "trust"
    RESOLVE = "resolve"
    TCP = "tcp"
    TLS = "tls"
    VERIFY = "verify"
    MQTT = "mqtt"
    ROUNDTRIP = "roundtrip"


class ErrorKind(StrEnum):
    """Stable, machine-readable reasons for a failed stage (``error.kind``)."""

    # trust
    TRUST_BUNDLE_NOT_FOUND = "trust_bundle_not_found"
    TRUST_BUNDLE_KEY_MISSING = "trust_bundle_key_missing"
    TRUST_BUNDLE_INVALID = "trust_bundle_invalid"
    CLUSTER_UNREACHABLE = "cluster_unreachable"
    CLUSTER_FORBIDDEN = "cluster_forbidden"
    KUBECONFIG_INVALID = "kubeconfig_invalid"
    # resolve, tcp
    DNS_FAILURE = "dns_failure"
    CONNECTION_REFUSED = "connection_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    NETWORK_UNREACHABLE = "network_unreachable"
    # tls
    NOT_TLS = "not_tls"
    PEER_CLOSED = "peer_closed"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    PROTOCOL_VERSION = "protocol_version"
    CLIENT_CERT_REQUIRED = "client_cert_required"
    CLIENT_CERT_REJECTED = "client_cert_rejected"
    UNSUPPORTED_SERVER_KEY = "unsupported_server_key"
    NO_SHARED_CIPHER = "no_shared_cipher"
    # verify
    UNKNOWN_CA = "unknown_ca"
    CA_ROTATED = "ca_rotated"
    INCOMPLETE_CHAIN = "incomplete_chain"
    CERT_EXPIRED = "cert_expired"
    CERT_NOT_YET_VALID = "cert_not_yet_valid"
    CA_EXPIRED = "ca_expired"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    SELF_SIGNED_LEAF = "self_signed_leaf"
    CA_INVALID = "ca_invalid"
    # mqtt
    PROTOCOL_UNSUPPORTED = "protocol_unsupported"
    BAD_CREDENTIALS = "bad_credentials"
    NOT_AUTHORIZED = "not_authorized"
    BAD_AUTH_METHOD = "bad_auth_method"
    CLIENT_ID_REJECTED = "client_id_rejected"
    SERVER_UNAVAILABLE = "server_unavailable"
    NO_CONNACK = "no_connack"
    CONNECTION_DROPPED = "connection_dropped"
    MALFORMED_PACKET = "malformed_packet"
    # roundtrip
    SUBSCRIBE_REFUSED = "subscribe_refused"
    PUBLISH_REFUSED = "publish_refused"
    MESSAGE_NOT_RECEIVED = "message_not_received"


_K = ErrorKind
KIND_STAGE: dict[ErrorKind, Stage] = {
    **dict.fromkeys(
        (
            _K.TRUST_BUNDLE_NOT_FOUND,
            _K.TRUST_BUNDLE_KEY_MISSING,
            _K.TRUST_BUNDLE_INVALID,
            _K.CLUSTER_UNREACHABLE,
            _K.CLUSTER_FORBIDDEN,
            _K.KUBECONFIG_INVALID,
        ),
        Stage.TRUST,
    ),
    _K.DNS_FAILURE: Stage.RESOLVE,
    **dict.fromkeys((_K.CONNECTION_REFUSED, _K.CONNECT_TIMEOUT, _K.NETWORK_UNREACHABLE), Stage.TCP),
    **dict.fromkeys(
        (
            _K.NOT_TLS,
            _K.PEER_CLOSED,
            _K.HANDSHAKE_TIMEOUT,
            _K.PROTOCOL_VERSION,
            _K.CLIENT_CERT_REQUIRED,
            _K.CLIENT_CERT_REJECTED,
            _K.UNSUPPORTED_SERVER_KEY,
            _K.NO_SHARED_CIPHER,
        ),
        Stage.TLS,
    ),
    **dict.fromkeys(
        (
            _K.UNKNOWN_CA,
            _K.CA_ROTATED,
            _K.INCOMPLETE_CHAIN,
            _K.CERT_EXPIRED,
            _K.CERT_NOT_YET_VALID,
            _K.CA_EXPIRED,
            _K.HOSTNAME_MISMATCH,
            _K.SELF_SIGNED_LEAF,
            _K.CA_INVALID,
        ),
        Stage.VERIFY,
    ),
    **dict.fromkeys(
        (
            _K.PROTOCOL_UNSUPPORTED,
            _K.BAD_CREDENTIALS,
            _K.NOT_AUTHORIZED,
            _K.BAD_AUTH_METHOD,
            _K.CLIENT_ID_REJECTED,
            _K.SERVER_UNAVAILABLE,
            _K.NO_CONNACK,
            _K.CONNECTION_DROPPED,
            _K.MALFORMED_PACKET,
        ),
        Stage.MQTT,
    ),
    **dict.fromkeys(
        (_K.SUBSCRIBE_REFUSED, _K.PUBLISH_REFUSED, _K.MESSAGE_NOT_RECEIVED), Stage.ROUNDTRIP
    ),
}

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
# stdout was closed, or its reader went away (| head): as a process SIGPIPE ends, 128 + 13.
EXIT_OUTPUT_LOST = 141
EXIT_CODES: dict[Stage, int] = {
    Stage.TRUST: 3,
    Stage.RESOLVE: 4,
    Stage.TCP: 4,
    Stage.TLS: 5,
    Stage.VERIFY: 6,
    Stage.MQTT: 7,
    Stage.ROUNDTRIP: 8,
}

# The fallback next step for each kind. Raise sites usually pass a hint built
# from what they saw (names, files, codes); these cover the rest.
DEFAULT_HINTS: dict[ErrorKind, str] = {
    _K.TRUST_BUNDLE_NOT_FOUND: (
        "Pass the broker's CA with --ca-file PATH, or point --namespace/--configmap "
        "at the trust bundle ConfigMap."
    ),
    _K.TRUST_BUNDLE_KEY_MISSING: "Name the key that holds the CA with --configmap-key.",
    _K.TRUST_BUNDLE_INVALID: (
        "The trust bundle must hold PEM certificates (-----BEGIN CERTIFICATE-----); "
        "check it with: probe bundle -v"
    ),
    _K.CLUSTER_UNREACHABLE: (
        "Check that the API server is reachable (kubectl cluster-info) or pass --ca-file."
    ),
    _K.CLUSTER_FORBIDDEN: (
        "Grant the identity 'get' on configmaps in the namespace, or pass --ca-file."
    ),
    _K.KUBECONFIG_INVALID: "Fix the kubeconfig, or choose one with --kubeconfig and --context.",
    _K.DNS_FAILURE: "Check the host name, or use the broker's IP address.",
    _K.CONNECTION_REFUSED: (
        "Nothing listens there: check the port (AIO's TLS listener is 18883) and that the "
        "broker or its port-forward is running."
    ),
    _K.CONNECT_TIMEOUT: (
        "Packets are dropped on the way: check firewalls and network policies, or raise --timeout."
    ),
    _K.NETWORK_UNREACHABLE: "Check the route to the broker (VPN, interface, IPv4 versus IPv6).",
    _K.NOT_TLS: "This port does not speak TLS: use the broker's TLS port (AIO: 18883).",
    _K.PEER_CLOSED: (
        "The server dropped the handshake: check the broker's log for the TLS error "
        "and that this port is its TLS listener."
    ),
    _K.HANDSHAKE_TIMEOUT: (
        "The server accepted TCP but never answered the TLS hello: check that this is a "
        "TLS listener, or raise --timeout."
    ),
    _K.PROTOCOL_VERSION: "Lower --tls-min, or enable a newer TLS version on the broker.",
    _K.CLIENT_CERT_REQUIRED: "The listener requires a client certificate: pass --cert and --key.",
    _K.CLIENT_CERT_REJECTED: (
        "Use a client certificate issued by a CA the listener trusts, still valid, "
        "with extended key usage clientAuth."
    ),
    _K.UNSUPPORTED_SERVER_KEY: (
        "The server's certificate uses a key or curve this client cannot use: have the broker "
        "use an ECDSA P-256/P-384 or RSA 2048+ certificate (the quickstart CA issues P-256)."
    ),
    _K.NO_SHARED_CIPHER: (
        "The server and this client share no cipher suite or group: compare the broker's TLS "
        "settings with this client's (probe tls HOST:PORT lists what the broker accepts)."
    ),
    _K.UNKNOWN_CA: "Trust the CA that issued the server's certificate (--ca-file or the cluster).",
    _K.CA_ROTATED: (
        "The CA was re-created: fetch the current bundle (probe bundle --out ca.crt) and "
        "replace the client's copy."
    ),
    _K.INCOMPLETE_CHAIN: (
        "The server must send its intermediate CA certificate after its own certificate."
    ),
    _K.CERT_EXPIRED: "Renew the server certificate (cert-manager: check the Certificate resource).",
    _K.CERT_NOT_YET_VALID: "Check the clocks of this machine and of the issuer.",
    _K.CA_EXPIRED: (
        "The CA itself has expired: re-create it and fetch the new bundle "
        "(the quickstart CA lives 30 days)."
    ),
    _K.HOSTNAME_MISMATCH: "Connect with a name the certificate lists, or pass --server-name NAME.",
    _K.SELF_SIGNED_LEAF: (
        "The server presents a self-signed certificate: trust that exact certificate, "
        "or have the broker use one issued by your CA."
    ),
    _K.CA_INVALID: (
        "The trusted certificate is not a usable CA: it needs basicConstraints CA:TRUE "
        "and keyUsage keyCertSign."
    ),
    _K.PROTOCOL_UNSUPPORTED: "Retry with --mqtt-version 3.1.1, or enable MQTT 5 on the broker.",
    _K.BAD_CREDENTIALS: "Check --username and the password file, or the token of --sat-file.",
    _K.NOT_AUTHORIZED: (
        "The broker knows the client but does not allow it: check the broker's "
        "authentication and authorization policy."
    ),
    _K.BAD_AUTH_METHOD: (
        "The listener does not accept this authentication method: use username and "
        "password, or a listener with K8S-SAT authentication."
    ),
    _K.CLIENT_ID_REJECTED: "Choose another --client-id (1-23 letters and digits are always safe).",
    _K.SERVER_UNAVAILABLE: "The broker is up but not serving: check its health and logs.",
    _K.NO_CONNACK: (
        "The broker accepted the connection but never answered CONNECT: try "
        "--mqtt-version 3.1.1, or check the broker's log."
    ),
    _K.CONNECTION_DROPPED: "Check the broker's log for why it closed the connection.",
    _K.MALFORMED_PACKET: (
        "The broker broke the MQTT protocol: check that this port is an MQTT listener and "
        "look in the broker's log; report the packet to the broker's maintainers."
    ),
    _K.SUBSCRIBE_REFUSED: (
        "Allow the client to subscribe to this topic, or choose one with --topic."
    ),
    _K.PUBLISH_REFUSED: "Allow the client to publish to this topic, or choose one with --topic.",
    _K.MESSAGE_NOT_RECEIVED: (
        "The broker accepted the message but did not deliver it: check the topic's "
        "authorization for subscribers."
    ),
}


class ErrorInfo(NamedTuple):
    """Why a stage failed: the one error value of every report (``error`` in JSON).

    The pure core returns it; adapters raise it wrapped in ``ProbeError``.
    """

    stage: Stage
    kind: ErrorKind
    message: str
    hint: str

    @classmethod
    def of(
        cls, kind: ErrorKind, message: str, hint: str | None = None, stage: Stage | None = None
    ) -> ErrorInfo:
        """The error of ``kind``; the stage defaults to the kind's home, the hint per kind."""
        return cls(stage or KIND_STAGE[kind], kind, message, hint or DEFAULT_HINTS[kind])

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.stage]


class ProbeError(Exception):
    """An expected failure, raised by adapters: it carries one ``ErrorInfo``."""

    def __init__(
        self, kind: ErrorKind, message: str, hint: str | None = None, stage: Stage | None = None
    ) -> None:
        self.info = ErrorInfo.of(kind, message, hint, stage)
        super().__init__(message)

    @classmethod
    def from_info(cls, info: ErrorInfo) -> ProbeError:
        return cls(info.kind, info.message, info.hint, info.stage)

    @property
    def kind(self) -> ErrorKind:
        return self.info.kind

    @property
    def message(self) -> str:
        return self.info.message

    @property
    def hint(self) -> str:
        return self.info.hint

    @property
    def stage(self) -> Stage:
        return self.info.stage

    @property
    def exit_code(self) -> int:
        return self.info.exit_code


class UsageError(Exception):
    """Bad flags or arguments, found past the parser (exit 2, nothing else done)."""

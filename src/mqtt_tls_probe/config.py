"""What a run is asked to do: the option types, and the policy that builds them from flags.

Rule: everything a command line (or the exporter's module file, or ``probe
demo``) says is turned into a frozen ``ProbeConfig`` here, before any network
I/O. Bad combinations are ``UsageError`` (exit 2). The only I/O is reading the
local files the flags name (password, token, client certificate and key), and
creating the ``--tls-keylog`` file (mode 0600), last, once every check has passed.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple, TypeVar

from mqtt_tls_probe import aio
from mqtt_tls_probe.core import names
from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.model import ListenerInfo

DEFAULT_HOST = "localhost"
DEFAULT_TIMEOUT = 10.0
MIN_TIMEOUT = 0.01
MAX_TIMEOUT = 3600.0  # an hour per stage; beyond, socket and thread waits overflow
PASSWORD_VARIABLE = "PROBE_MQTT_PASSWORD"  # noqa: S105 (a variable name)
TLS_VERSIONS = ("1.2", "1.3")
MQTT_VERSIONS = ("5", "3.1.1")


class ClientIdentity(NamedTuple):
    """A client certificate and its key, checked to belong together."""

    cert_file: Path
    key_file: Path
    subject: str


class TlsOptions(NamedTuple):
    server_name: str
    tls_min: str | None = None
    alpn: tuple[str, ...] = ()
    client: ClientIdentity | None = None
    tls_max: str | None = None
    ciphers: str | None = None  # an OpenSSL cipher list: TLS 1.2 suites (set_ciphers)
    keylog: Path | None = None  # NSS key log file, created empty (0600) by the builder


class SatRequest(NamedTuple):
    """``--sat-serviceaccount [NS/]NAME``: a token to mint for this account and audience."""

    namespace: str
    name: str
    audience: str = aio.SAT_AUDIENCE


class MqttOptions(NamedTuple):
    client_id: str
    version: str = "5"
    username: str | None = None
    password: bytes | None = None
    sat_token: bytes | None = None
    keepalive: int = 60
    sat_request: SatRequest | None = None  # minted in the trust stage, then sat_token

    def __repr__(self) -> str:  # the secrets stay out of logs and tracebacks
        shown = self._replace(
            password=b"<hidden>" if self.password is not None else None,
            sat_token=b"<hidden>" if self.sat_token is not None else None,
        )
        fields = ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields, shown, strict=True)
        )
        return f"MqttOptions({fields})"


class ClusterOptions(NamedTuple):
    """Where the trust bundle lives in the cluster, and how to reach the cluster."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str = aio.NAMESPACE
    configmap: str | None = None  # None: the quickstart name, then the later-release name
    configmap_key: str = aio.TRUST_BUNDLE_KEY

    @property
    def configmap_candidates(self) -> tuple[str, ...]:
        if self.configmap is not None:
            return (self.configmap,)
        return (aio.TRUST_BUNDLE_CONFIGMAP, aio.LATER_TRUST_BUNDLE_CONFIGMAP)


class TrustOptions(NamedTuple):
    """The trust anchor: a file, the cluster, or nothing at all (--insecure)."""

    ca_file: Path | None = None
    insecure: bool = False
    cluster: ClusterOptions = ClusterOptions()


class ForwardRequest(NamedTuple):
    """``--port-forward``: reach the Service ``namespace/service`` through a ready pod."""

    namespace: str
    service: str


class ProbeConfig(NamedTuple):
    host: str
    port: int
    trust: TrustOptions
    tls: TlsOptions
    mqtt: MqttOptions
    version_fallback: bool = True  # retry 3.1.1 once when the broker refuses MQTT 5
    topic: str | None = None  # set: run the round trip on this topic
    roundtrip: bool = False
    timeout: float = DEFAULT_TIMEOUT
    trace: bool = False  # --trace: report the handshake message by message
    port_forward: ForwardRequest | None = None  # --port-forward: tcp goes through a pod
    plain: bool = False  # a listener port without TLS (--discover): no tls, no verify
    listener: ListenerInfo | None = None  # --discover: the listener port probed
    credential_hint: str | None = None  # --discover: the flag for the port's credential

    @property
    def server_name(self) -> str:
        return self.tls.server_name


class ConnectInputs(NamedTuple):
    """The raw inputs of ``probe connect``, as the flags give them (None: flag absent)."""

    target: str = DEFAULT_HOST
    port: int | None = None
    ca_file: Path | None = None
    insecure: bool = False
    cluster: ClusterOptions = ClusterOptions()
    server_name: str | None = None
    cert: Path | None = None
    key: Path | None = None
    tls_min: str | None = None
    alpn: tuple[str, ...] = ()
    mqtt_version: str | None = None  # None: 5, with one 3.1.1 retry
    client_id: str | None = None
    username: str | None = None
    password_file: Path | None = None
    sat_file: Path | None = None
    sat_serviceaccount: str | None = None  # [NS/]NAME
    sat_audience: str | None = None
    roundtrip: bool = False
    topic: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    tls_max: str | None = None
    ciphers: str | None = None
    tls_keylog: Path | None = None
    force: bool = False  # --force: replace an existing --tls-keylog file
    trace: bool = False
    port_forward: bool = False


def build_probe_config(
    inputs: ConnectInputs, environ: Mapping[str, str] | None = None
) -> ProbeConfig:
    """The policy of ``probe connect``: turn its flags into a checked ``ProbeConfig``.

    - ``--cert`` and ``--key`` go together, and the key must belong to the certificate;
    - the password comes from ``--password-file`` (which needs ``--username``), else
      from ``$PROBE_MQTT_PASSWORD``, read only with a user name: a variable left in a
      CI environment must not break runs that sign in some other way;
    - ``--sat-file`` needs MQTT 5; only a default version falls back to 3.1.1;
    - ``--sat-serviceaccount [NS/]NAME`` (NS defaults to ``--namespace``) mints the
      token instead of reading it: not with ``--sat-file``, not with MQTT 3.1.1;
      ``--sat-audience`` (default ``aio-internal``) needs it;
    - the client id defaults to ``probe-`` and 8 random hex digits; ``""`` asks an
      MQTT 5 broker to assign one;
    - ``--topic`` implies ``--roundtrip``;
    - every value fits what carries it: host names (IDNA) and ALPN ids for TLS, MQTT
      strings (UTF-8, no NUL, 65,535 bytes) and topic names without wildcards, a
      finite ``--timeout``;
    - ``--tls-min``/``--tls-max``/``--ciphers`` must leave something the local OpenSSL
      can offer (``adapters.tls_settings.check_client_limits`` says why not);
    - ``--port-forward``: the target's host is a Service name, ``SERVICE`` or
      ``SERVICE.NAMESPACE[.svc...]`` (namespace default ``--namespace``), never an IP;
    - ``--tls-keylog FILE`` is created here, empty and mode 0600; an existing FILE is
      refused unless ``--force`` (then replaced, never appended to).

    Raises:
        UsageError: a bad value or combination; nothing has touched the network.
    """
    from mqtt_tls_probe.adapters import files

    env = os.environ if environ is None else environ
    host, port = parse_target(inputs.target, inputs.port)
    timeout = check_timeout(inputs.timeout)
    if (inputs.cert is None) != (inputs.key is None):
        raise UsageError("--cert and --key go together: pass both, or neither")
    if inputs.sat_file is not None and inputs.mqtt_version == "3.1.1":
        raise UsageError("--sat-file needs MQTT 5: MQTT 3.1.1 cannot carry the token")
    sat_request = _sat_request(inputs)
    forward = forward_request(inputs, host)
    if inputs.tls_min is not None and inputs.tls_min not in TLS_VERSIONS:
        raise UsageError(f"--tls-min must be one of {', '.join(TLS_VERSIONS)}")
    if inputs.tls_max is not None and inputs.tls_max not in TLS_VERSIONS:
        raise UsageError(f"--tls-max must be one of {', '.join(TLS_VERSIONS)}")
    from mqtt_tls_probe.adapters import tls_settings

    tls_settings.check_client_limits(inputs.tls_min, inputs.tls_max, inputs.ciphers)
    if inputs.mqtt_version is not None and inputs.mqtt_version not in MQTT_VERSIONS:
        raise UsageError(f"--mqtt-version must be one of {', '.join(MQTT_VERSIONS)}")
    server_name = host if inputs.server_name is None else check_server_name(inputs.server_name)
    alpn = tuple(_flag("--alpn", names.alpn_protocol, p) for p in inputs.alpn)
    client = None
    if inputs.cert is not None and inputs.key is not None:
        client = files.load_client_identity(inputs.cert, inputs.key, timeout)
    mqtt = _mqtt_options(inputs, env, timeout)._replace(sat_request=sat_request)
    roundtrip = inputs.roundtrip or inputs.topic is not None
    if inputs.topic is not None:
        _flag("--topic", names.mqtt_topic_name, inputs.topic)
    elif roundtrip:
        _flag("--client-id", _default_topic_name, mqtt.client_id)
    if inputs.tls_keylog is not None:  # last: no other usage error may leave it behind
        tls_settings.create_keylog(inputs.tls_keylog, force=inputs.force)
    return ProbeConfig(
        host=host,
        port=port,
        trust=TrustOptions(
            ca_file=inputs.ca_file, insecure=inputs.insecure, cluster=inputs.cluster
        ),
        tls=TlsOptions(
            server_name=server_name.removesuffix("."),  # a target's FQDN dot, as above
            tls_min=inputs.tls_min,
            alpn=alpn,
            client=client,
            tls_max=inputs.tls_max,
            ciphers=inputs.ciphers,
            keylog=inputs.tls_keylog,
        ),
        mqtt=mqtt,
        version_fallback=inputs.mqtt_version is None,
        topic=inputs.topic,
        roundtrip=roundtrip,
        timeout=timeout,
        trace=inputs.trace,
        port_forward=forward,
    )


def _mqtt_options(inputs: ConnectInputs, env: Mapping[str, str], timeout: float) -> MqttOptions:
    """The MQTT identity: client id, user name, password and token, each checked to fit MQTT."""
    from mqtt_tls_probe.adapters import files

    client_id = new_client_id() if inputs.client_id is None else inputs.client_id
    _flag("--client-id", lambda v: names.mqtt_string(v, "the client id"), client_id)
    if inputs.username is not None:
        _flag("--username", lambda v: names.mqtt_string(v, "the user name"), inputs.username)
    password = None
    if inputs.password_file is not None:
        if inputs.username is None:
            raise UsageError("--password-file needs --username")
        password = files.read_secret_file(inputs.password_file, "password", timeout)
    elif inputs.username is not None and PASSWORD_VARIABLE in env:
        # The variable's bytes as the environment holds them (os.environ decoded them so).
        password = env[PASSWORD_VARIABLE].encode("utf-8", "surrogateescape")
    if password is not None:
        _flag("--password-file", lambda v: names.mqtt_binary(v, "the password"), password)
    token = None
    if inputs.sat_file is not None:
        token = files.read_secret_file(inputs.sat_file, "token", timeout)
        _flag("--sat-file", lambda v: names.mqtt_binary(v, "the token"), token)
    return MqttOptions(
        client_id=client_id,
        version=inputs.mqtt_version or "5",
        username=inputs.username,
        password=password,
        sat_token=token,
    )


def _sat_request(inputs: ConnectInputs) -> SatRequest | None:
    """``--sat-serviceaccount [NS/]NAME`` and ``--sat-audience``, checked."""
    account = inputs.sat_serviceaccount
    if account is None:
        if inputs.sat_audience is not None:
            raise UsageError("--sat-audience needs --sat-serviceaccount")
        return None
    if inputs.sat_file is not None:
        raise UsageError("--sat-serviceaccount and --sat-file both give the token: pick one")
    if inputs.mqtt_version == "3.1.1":
        raise UsageError("--sat-serviceaccount needs MQTT 5: MQTT 3.1.1 cannot carry the token")
    namespace, _, name = account.rpartition("/")
    namespace = namespace or inputs.cluster.namespace
    for value, what in ((namespace, "namespace"), (name, "service account name")):
        if not _is_dns_name(value):
            raise UsageError(
                f"--sat-serviceaccount: {names.excerpt(value) or 'an empty'} {what} is not a "
                "Kubernetes name (lowercase letters, digits, '-' and '.'): write [NAMESPACE/]NAME"
            )
    audience = aio.SAT_AUDIENCE if inputs.sat_audience is None else inputs.sat_audience
    if not audience or not audience.isprintable() or len(audience) > 253:
        raise UsageError("--sat-audience must be a non-empty printable string")
    return SatRequest(namespace, name, audience)


def forward_request(inputs: ConnectInputs, host: str) -> ForwardRequest | None:
    """``--port-forward``'s Service for the target ``host`` (None: no ``--port-forward``)."""
    if not inputs.port_forward:
        return None
    if names_is_ip(host):
        raise UsageError(
            "--port-forward needs a Service name as the target (SERVICE[.NAMESPACE]), "
            f"not the address {host}"
        )
    labels = host.removesuffix(".").split(".")
    service = labels[0]
    namespace = labels[1] if len(labels) > 1 else inputs.cluster.namespace
    for value in (service, namespace):
        if not _is_dns_name(value) or "." in value:
            raise UsageError(f"--port-forward: {names.excerpt(value)} is not a Kubernetes name")
    return ForwardRequest(namespace, service)


def names_is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_dns_name(value: str) -> bool:
    """A Kubernetes object name (RFC 1123 subdomain): what a namespace or account name is."""
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    return (
        0 < len(value) <= 253
        and set(value) <= allowed
        and value[0].isalnum()
        and value[-1].isalnum()
    )


_Value = TypeVar("_Value")


def _flag(flag: str, check: Callable[[_Value], _Value], value: _Value) -> _Value:
    """``check(value)``, its ``ValueError`` turned into the usage error of ``flag``."""
    try:
        return check(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from exc


def _default_topic_name(client_id: str) -> str:
    # The round trip's default topic, as adapters.mqtt.default_topic builds it.
    try:
        return names.mqtt_topic_name(f"probe/{client_id}", "the default topic probe/<client-id>")
    except ValueError as exc:
        raise ValueError(f"{exc}; choose one with --topic") from exc


def check_server_name(name: str) -> str:
    """A ``--server-name``: a host name (IDNA-encoded when not ASCII) or an IP address.

    SNI carries no trailing dot (RFC 6066), and certificates list none: one is dropped.

    Raises:
        UsageError: not a valid host name.
    """
    return _flag("--server-name", names.host_name, name).removesuffix(".")


def check_timeout(seconds: float) -> float:
    """A ``--timeout``: finite, from 0.01 s to an hour.

    Raises:
        UsageError: NaN, infinite, or out of that range.
    """
    if not math.isfinite(seconds) or not MIN_TIMEOUT <= seconds <= MAX_TIMEOUT:
        raise UsageError(
            f"--timeout must be a number of seconds from {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g}, "
            f"not {seconds!r}"
        )
    return seconds


def new_client_id(prefix: str = "probe") -> str:
    # os.urandom, not secrets: the id is no secret, and secrets costs 8 ms of start-up.
    return f"{prefix}-{os.urandom(4).hex()}"


def parse_target(target: str, port: int | None) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port).

    The host comes back as the resolver and TLS take it: an IP literal, or a
    host name in ASCII (non-ASCII names IDNA-encoded).

    Raises:
        UsageError: an unparsable target or host name, a scoped IPv6 address,
            or a port given twice with two values.
    """
    target = target.strip()
    host, target_port = target, None
    if target.startswith("["):
        end = target.find("]")
        if end < 0 or (end + 1 < len(target) and target[end + 1] != ":"):
            raise UsageError(f"cannot parse the target {names.excerpt(target)}: write [IPv6]:PORT")
        host = target[1:end]
        rest = target[end + 2 :]
        target_port = _parse_port(rest, target) if rest else None
        if ":" not in host:
            raise UsageError(
                f"the target {names.excerpt(target)} puts brackets around something other "
                "than an IPv6 address: write HOST:PORT"
            )
    elif target.count(":") == 1:
        host, rest = target.split(":")
        target_port = _parse_port(rest, target)
    elif target.count(":") > 1:
        try:
            ipaddress.IPv6Address(target)
        except ValueError as exc:
            raise UsageError(
                f"cannot parse the target {names.excerpt(target)}: write [IPv6]:PORT"
            ) from exc
    if not host:
        raise UsageError(f"the target {names.excerpt(target)} names no host")
    try:
        host = names.host_name(host)
    except ValueError as exc:
        raise UsageError(f"the target: {exc}") from exc
    if target_port is not None and port is not None and target_port != port:
        raise UsageError(f"the target says port {target_port} and --port says {port}: pick one")
    return host, target_port or port or aio.BROKER_PORT


def format_target(host: str, port: int) -> str:
    """The inverse of ``parse_target``: ``host:port``, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_port(text: str, target: str) -> int:
    # ASCII digits only: str.isdigit() also takes "²" and other scripts' digits.
    if not (text.isascii() and text.isdigit() and len(text) <= 5) or not 0 < int(text) < 65536:
        raise UsageError(
            f"invalid port {names.excerpt(text)} in the target {names.excerpt(target)}"
        )
    return int(text)

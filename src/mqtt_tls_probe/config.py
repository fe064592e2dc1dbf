"""What a probe run is asked to do, parsed and checked before any I/O."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from mqtt_tls_probe import aio
from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.tls import TlsOptions

DEFAULT_HOST = "localhost"
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class MqttOptions:
    client_id: str
    version: str = "5"
    username: str | None = None
    password: bytes | None = field(default=None, repr=False)
    sat_token: bytes | None = field(default=None, repr=False)
    keepalive: int = 60


@dataclass(frozen=True)
class ClusterOptions:
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


@dataclass(frozen=True)
class TrustOptions:
    """The trust anchor: a file, the cluster, or nothing at all (--insecure)."""

    ca_file: Path | None = None
    insecure: bool = False
    cluster: ClusterOptions = field(default_factory=ClusterOptions)


@dataclass(frozen=True)
class ProbeConfig:
    host: str
    port: int
    trust: TrustOptions
    tls: TlsOptions
    mqtt: MqttOptions
    version_fallback: bool = True  # retry 3.1.1 once when the broker refuses MQTT 5
    topic: str | None = None  # set: run the round trip on this topic
    roundtrip: bool = False
    timeout: float = DEFAULT_TIMEOUT

    @property
    def server_name(self) -> str:
        return self.tls.server_name


def parse_target(target: str, port: int | None) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port).

    Raises:
        UsageError: an unparsable target, or a port given twice with two values.
    """
    target = target.strip()
    host, target_port = target, None
    if target.startswith("["):
        end = target.find("]")
        if end < 0 or (end + 1 < len(target) and target[end + 1] != ":"):
            raise UsageError(f"cannot parse the target {target!r}: write [IPv6]:PORT")
        host = target[1:end]
        rest = target[end + 2 :]
        target_port = _parse_port(rest, target) if rest else None
    elif target.count(":") == 1:
        host, rest = target.split(":")
        target_port = _parse_port(rest, target)
    elif target.count(":") > 1:
        try:
            ipaddress.IPv6Address(target)
        except ValueError as exc:
            raise UsageError(f"cannot parse the target {target!r}: write [IPv6]:PORT") from exc
    if not host:
        raise UsageError(f"the target {target!r} names no host")
    if target_port is not None and port is not None and target_port != port:
        raise UsageError(f"the target says port {target_port} and --port says {port}: pick one")
    return host, target_port or port or aio.BROKER_PORT


def _parse_port(text: str, target: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"invalid port {text!r} in the target {target!r}")
    return int(text)

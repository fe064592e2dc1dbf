"""Azure IoT Operations broker listeners -> the targets a scan probes.

Rule: pure, and lenient on the way in: a BrokerListener, BrokerAuthentication
or Service is JSON from a cluster that may be half-configured or of another
release, so every field is read defensively (a wrong shape becomes a
``problem`` on the port, never an exception). Enum values are compared
case-insensitively: real clusters write ``ClusterIp`` and ``loadBalancer``.

Shapes (``mqttbroker.iotoperations.azure.com`` ``v1``/``v1beta1``):
- BrokerListener ``spec``: ``serviceName`` (absent: the listener's name),
  ``serviceType`` ``ClusterIp|LoadBalancer|NodePort``, ``ports[]`` with
  ``port``, ``nodePort``, ``protocol`` ``Mqtt|WebSockets``,
  ``authenticationRef``, ``tls`` (absent: no TLS) with ``mode``
  ``Automatic|Manual`` and ``manual.secretRef`` (older: ``secretName``).
- BrokerAuthentication ``spec.authenticationMethods[]``: ``method``
  ``ServiceAccountToken|X509|Custom``, ``serviceAccountTokenSettings.audiences``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mqtt_tls_probe import aio

SERVICE_TYPES = {"clusterip": "ClusterIp", "loadbalancer": "LoadBalancer", "nodeport": "NodePort"}
METHODS = {
    "serviceaccounttoken": "ServiceAccountToken",
    "x509": "X509",
    "custom": "Custom",
}


class AddressSource:
    CLUSTER_DNS = "cluster_dns"
    LOAD_BALANCER = "load_balancer"
    NODE_PORT = "node_port"
    PORT_FORWARD = "port_forward"


@dataclass(frozen=True)
class ListenerPort:
    """One port of one BrokerListener, as the cluster describes it."""

    listener: str
    service: str
    service_type: str  # ClusterIp, LoadBalancer or NodePort (normalised); "" if unknown
    port: int
    node_port: int | None = None
    protocol: str = "Mqtt"
    tls: bool = False
    tls_mode: str | None = None
    authentication_ref: str | None = None
    authentication: tuple[str, ...] = ()  # the methods of the BrokerAuthentication
    audiences: tuple[str, ...] = ()  # of its ServiceAccountToken method
    problem: str | None = None  # why this port cannot be probed as it is

    @property
    def needs_token(self) -> bool:
        return "ServiceAccountToken" in self.authentication

    @property
    def needs_client_certificate(self) -> bool:
        return "X509" in self.authentication

    def credential_hint(self) -> str | None:
        """The flag that supplies the credential this port expects, for an MQTT refusal."""
        if self.needs_token:
            audience = self.audiences[0] if self.audiences else aio.SAT_AUDIENCE
            return (
                f"The listener {self.listener} port {self.port} authenticates with service "
                f"account tokens (audience {audience}): pass --sat-file TOKEN_FILE or "
                f"--sat-serviceaccount [NAMESPACE/]NAME."
            )
        if self.needs_client_certificate:
            return (
                f"The listener {self.listener} port {self.port} authenticates with X.509 "
                "client certificates: pass --cert and --key."
            )
        if "Custom" in self.authentication:
            return (
                f"The listener {self.listener} port {self.port} uses custom authentication: "
                "pass the credentials its authentication server expects (--username, "
                "--password-file)."
            )
        return None


@dataclass(frozen=True)
class DiscoveredTarget:
    """Where to dial a listener port from here, and the name its certificate lists."""

    port: ListenerPort
    host: str
    dial_port: int
    server_name: str
    address_source: str
    problem: str | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.dial_port}"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mappings(value: object) -> list[Mapping[str, Any]]:
    """The objects of a JSON list; anything else (a wrong shape) is no objects."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _items(document: object) -> list[Mapping[str, Any]]:
    return _mappings(_mapping(document).get("items"))


def _name(item: Mapping[str, Any]) -> str | None:
    return _text(_mapping(item.get("metadata")).get("name"))


def _port_number(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    return None


def authentication_methods(document: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(methods, service-account-token audiences) of a BrokerAuthentication object."""
    spec = _mapping(_mapping(document).get("spec"))
    methods: list[str] = []
    audiences: list[str] = []
    for entry in _mappings(spec.get("authenticationMethods")):
        method = _text(entry.get("method"))
        if method is None:
            continue
        normalised = METHODS.get(method.lower(), method)
        methods.append(normalised)
        if normalised == "ServiceAccountToken":
            settings = _mapping(entry.get("serviceAccountTokenSettings"))
            listed = settings.get("audiences")
            audiences += [a for a in (listed if isinstance(listed, list) else []) if _text(a)]
    if "ServiceAccountToken" in methods and not audiences:
        audiences = [aio.SAT_AUDIENCE]  # the default the broker applies
    return tuple(dict.fromkeys(methods)), tuple(dict.fromkeys(audiences))


def listener_ports(listeners: object, authentications: Mapping[str, object]) -> list[ListenerPort]:
    """Every port of every BrokerListener in a list document, with its authentication.

    ``authentications`` maps a BrokerAuthentication's name to its object.
    """
    found: list[ListenerPort] = []
    for item in _items(listeners):
        name = _name(item) or "(unnamed)"
        spec = _mapping(item.get("spec"))
        service = _text(spec.get("serviceName")) or name
        raw_type = _text(spec.get("serviceType")) or "ClusterIp"  # the CRD's default
        service_type = SERVICE_TYPES.get(raw_type.lower(), "")
        ports = spec.get("ports")
        if not isinstance(ports, list) or not ports:
            found.append(
                ListenerPort(name, service, service_type, 0, problem="the listener has no ports")
            )
            continue
        for entry in ports:
            found.append(
                _listener_port(
                    name, service, service_type, raw_type, _mapping(entry), authentications
                )
            )
    return found


def _listener_port(  # noqa: PLR0917 (one listener's facts, read once above)
    name: str,
    service: str,
    service_type: str,
    raw_type: str,
    entry: Mapping[str, Any],
    authentications: Mapping[str, object],
) -> ListenerPort:
    number = _port_number(entry.get("port"))
    protocol = _text(entry.get("protocol")) or "Mqtt"
    tls = _mapping(entry.get("tls")) if entry.get("tls") is not None else None
    reference = _text(entry.get("authenticationRef"))
    methods: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    problem = None
    if reference is not None:
        if reference in authentications:
            methods, audiences = authentication_methods(authentications[reference])
        else:
            problem = f"its BrokerAuthentication {reference} was not found"
    if number is None:
        problem = f"the port number {entry.get('port')!r} is not valid"
    elif not service_type:
        problem = f"the service type {raw_type!r} is unknown"
    elif protocol.lower() == "websockets":
        problem = "MQTT over WebSockets is not probed (only MQTT over TCP)"
    return ListenerPort(
        listener=name,
        service=service,
        service_type=service_type,
        port=number or 0,
        node_port=_port_number(entry.get("nodePort")),
        protocol="WebSockets" if protocol.lower() == "websockets" else "Mqtt",
        tls=tls is not None,
        tls_mode=_text(tls.get("mode")) if tls is not None else None,
        authentication_ref=reference,
        authentication=methods,
        audiences=audiences,
        problem=problem,
    )


def load_balancer_address(service: object) -> str | None:
    """The first ingress IP or host name of a LoadBalancer Service's status."""
    status = _mapping(_mapping(service).get("status"))
    for entry in _mappings(_mapping(status.get("loadBalancer")).get("ingress")):
        address = _text(entry.get("ip")) or _text(entry.get("hostname"))
        if address is not None:
            return address
    return None


def service_node_port(service: object, port: int) -> int | None:
    """The nodePort the Service assigned to ``port`` (when the listener does not say)."""
    spec = _mapping(_mapping(service).get("spec"))
    for entry in _mappings(spec.get("ports")):
        if _port_number(entry.get("port")) == port:
            return _port_number(entry.get("nodePort"))
    return None


def plan_target(
    port: ListenerPort,
    *,
    namespace: str,
    service: object | None,
    in_cluster: bool,
    node_address: str | None,
) -> DiscoveredTarget:
    """How to reach ``port`` from here.

    - ClusterIp: the service's DNS name from a pod; from outside, a port-forward
      (the forward listens on loopback).
    - LoadBalancer: the Service's ingress address (IP or host name).
    - NodePort: a node's address and the node port.

    The server name is always the service name as the listener gives it: that
    is what the broker's certificate lists, whatever address is dialled.
    """
    dns = f"{port.service}.{namespace}"
    problem = port.problem
    if port.service_type == "ClusterIp":
        if in_cluster:
            return _target(port, dns, port.port, AddressSource.CLUSTER_DNS, problem)
        return _target(port, "127.0.0.1", port.port, AddressSource.PORT_FORWARD, problem)
    if port.service_type == "LoadBalancer":
        address = load_balancer_address(service)
        if address is None:
            problem = (
                problem or f"the LoadBalancer Service {port.service} has no ingress address yet"
            )
        return _target(port, address or dns, port.port, AddressSource.LOAD_BALANCER, problem)
    node_port = port.node_port or service_node_port(service, port.port)
    if node_port is None:
        problem = problem or f"the NodePort Service {port.service} has no node port for {port.port}"
    elif node_address is None:
        problem = problem or "no node address is known for the NodePort"
    return _target(
        port, node_address or dns, node_port or port.port, AddressSource.NODE_PORT, problem
    )


def _target(
    port: ListenerPort, host: str, dial_port: int, source: str, problem: str | None
) -> DiscoveredTarget:
    return DiscoveredTarget(port, host, dial_port, port.service, source, problem)


def plan_targets(
    ports: Sequence[ListenerPort],
    services: Mapping[str, object],
    *,
    namespace: str,
    in_cluster: bool,
    node_address: str | None,
) -> list[DiscoveredTarget]:
    """``plan_target`` for every port, with the Services by name."""
    return [
        plan_target(
            port,
            namespace=namespace,
            service=services.get(port.service),
            in_cluster=in_cluster,
            node_address=node_address,
        )
        for port in ports
    ]

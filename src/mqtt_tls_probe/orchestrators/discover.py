"""``--discover``: listener ports -> ``probe cluster --listeners`` reports.

Rule: a failure to read the cluster is the report's ``error`` (a trust-stage
kind, exit 3), never an exception; a port that cannot be probed as it is
(WebSockets, a LoadBalancer without an ingress address, a missing
BrokerAuthentication) is listed with its ``problem`` and is not probed.
"""

from __future__ import annotations

from collections.abc import Mapping

from mqtt_tls_probe.adapters.discovery import Discovery, discover
from mqtt_tls_probe.config import ClusterOptions
from mqtt_tls_probe.core.listeners import DiscoveredTarget
from mqtt_tls_probe.errors import ProbeError
from mqtt_tls_probe.model import DiscoveredListener, ListenerInfo, ListenersReport


def listener_info(target: DiscoveredTarget) -> ListenerInfo:
    port = target.port
    return ListenerInfo(
        name=port.listener,
        service=port.service,
        service_type=port.service_type,
        port=port.port,
        protocol=port.protocol,
        tls=port.tls,
        authentication=port.authentication,
        address_source=target.address_source,
    )


def described(target: DiscoveredTarget) -> DiscoveredListener:
    return DiscoveredListener(
        listener=listener_info(target),
        address=target.address,
        server_name=target.server_name,
        audiences=target.port.audiences,
        credential=target.port.credential_hint(),
        problem=target.problem,
    )


def listeners_report(
    options: ClusterOptions, timeout: float, environ: Mapping[str, str] | None = None
) -> ListenersReport:
    """``probe cluster --listeners``: what ``--discover`` would probe, and how."""
    try:
        found: Discovery = discover(options, timeout, environ)
    except ProbeError as error:
        return ListenersReport("", options.namespace, "", (), error.info)
    return ListenersReport(
        found.origin,
        found.namespace,
        found.api_version,
        tuple(described(t) for t in found.targets),
    )

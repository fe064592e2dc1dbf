"""``--discover``: listener ports -> ``probe cluster --listeners`` reports, and probes.

Rule: a failure to read the cluster is the report's ``error`` (a trust-stage
kind, exit 3), never an exception; a port that cannot be probed as it is
(WebSockets, a LoadBalancer without an ingress address, a missing
BrokerAuthentication) is listed with its ``problem`` and is not probed.

Each probed port gets the run's own inputs (``ConnectInputs``) with its
address: a port-forward port targets ``SERVICE.NAMESPACE`` through
``--port-forward``; the server name is the listener's service name unless
``--server-name`` says otherwise; a port without TLS is probed in plain MQTT
(``ProbeConfig.plain``, a ``no_tls`` warning); a token minted with
``--sat-serviceaccount`` takes the audience of the port's BrokerAuthentication
unless ``--sat-audience`` says otherwise; when the run lacks the credential
the port expects, an MQTT refusal's hint names the flag that supplies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mqtt_tls_probe.adapters.discovery import Discovery, discover
from mqtt_tls_probe.config import ClusterOptions, ConnectInputs, ProbeConfig, build_probe_config
from mqtt_tls_probe.core.listeners import AddressSource, DiscoveredTarget
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


@dataclass(frozen=True)
class DiscoveredProbe:
    """One listener port: its probe's name and config, or (``config`` None) why not."""

    name: str
    config: ProbeConfig | None
    listener: DiscoveredListener


def probe_configs(discovery: Discovery, inputs: ConnectInputs) -> list[DiscoveredProbe]:
    """A probe for every port of ``discovery``, built from the run's ``inputs``.

    Raises:
        UsageError: the run's inputs do not build (the same for every port).
    """
    found = []
    for target in discovery.targets:
        entry = described(target)
        if target.problem is not None:
            found.append(DiscoveredProbe(target.address, None, entry))
            continue
        config = _config(target, discovery.namespace, inputs)
        name = f"{config.host}:{config.port}"
        found.append(DiscoveredProbe(name, config, entry))
    return found


def _config(target: DiscoveredTarget, namespace: str, inputs: ConnectInputs) -> ProbeConfig:
    port = target.port
    forward = target.address_source == AddressSource.PORT_FORWARD
    host = f"{port.service}.{namespace}" if forward else target.host
    audience = inputs.sat_audience
    if inputs.sat_serviceaccount is not None and audience is None and port.audiences:
        audience = port.audiences[0]
    built = build_probe_config(
        inputs._replace(
            target=f"[{host}]" if ":" in host else host,
            port=target.dial_port,
            server_name=inputs.server_name or target.server_name,
            port_forward=forward or inputs.port_forward,
            sat_audience=audience,
        )
    )
    return built._replace(
        plain=not port.tls,
        listener=listener_info(target),
        credential_hint=_missing_credential(target, inputs),
    )


def _missing_credential(target: DiscoveredTarget, inputs: ConnectInputs) -> str | None:
    port = target.port
    has_token = inputs.sat_file is not None or inputs.sat_serviceaccount is not None
    if port.needs_token and not has_token:
        return port.credential_hint()
    if port.needs_client_certificate and inputs.cert is None:
        return port.credential_hint()
    if "Custom" in port.authentication and inputs.username is None:
        return port.credential_hint()
    return None

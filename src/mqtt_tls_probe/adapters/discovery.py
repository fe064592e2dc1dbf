"""``--discover``: the broker listeners, their authentication and Services, read from the cluster.

Rule: reads only, each one a verb and resource the identity needs (``list``
brokerlisteners and brokerauthentications, ``get`` services); never a
Secret. A 403 (or 401) is ``cluster_forbidden`` naming that verb and
resource (``forbidden_error``). BrokerListeners are read from the
``mqttbroker.iotoperations.azure.com`` group at ``v1``, falling back to
``v1beta1`` when the server does not serve ``v1`` (404); the authentications
are read at the same version. A Service that is absent is no Service (the
port's plan says what that means); the JSON is shaped-checked by
``core.listeners``.

In a pod (``KUBERNETES_SERVICE_HOST`` set and no ``--kubeconfig``) a ClusterIp
listener is dialled by its cluster DNS name; outside, through the built-in
port-forward. A NodePort listener is dialled at the API server's host from
the kubeconfig: right for single-node dev clusters (k3s, AKS Edge Essentials),
where the node is the API server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from mqtt_tls_probe.adapters.cluster import ApiError, ClusterClient, forbidden_error
from mqtt_tls_probe.config import ClusterOptions
from mqtt_tls_probe.core.listeners import DiscoveredTarget, listener_ports, plan_targets
from mqtt_tls_probe.errors import ErrorKind, ProbeError

GROUP = "mqttbroker.iotoperations.azure.com"
VERSIONS = ("v1", "v1beta1")


@dataclass(frozen=True)
class Discovery:
    origin: str
    namespace: str
    api_version: str
    targets: tuple[DiscoveredTarget, ...]
    in_cluster: bool


def in_cluster(options: ClusterOptions, environ: Mapping[str, str] | None = None) -> bool:
    """In a pod: ``KUBERNETES_SERVICE_HOST`` set and no ``--kubeconfig``."""
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and options.kubeconfig is None


def _list_path(version: str, namespace: str, resource: str) -> str:
    return f"/apis/{GROUP}/{version}/namespaces/{quote(namespace, safe='')}/{resource}"


def service_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/services/{quote(name, safe='')}"


def discover(
    options: ClusterOptions, timeout: float, environ: Mapping[str, str] | None = None
) -> Discovery:
    """Every listener port in ``options.namespace`` as a target, within ``timeout`` seconds.

    Raises:
        ProbeError: ``cluster_forbidden`` (the verb and resource named),
            ``cluster_unreachable``, ``kubeconfig_invalid``.
    """
    client = ClusterClient(options, timeout, one_deadline=True)
    try:
        return _discover(client, options.namespace, in_cluster(options, environ))
    finally:
        client.close()


def _discover(client: ClusterClient, namespace: str, inside: bool) -> Discovery:
    version, listeners = _listeners(client, namespace)
    try:
        authentications = client.get(_list_path(version, namespace, "brokerauthentications"))
    except ApiError as error:
        if error.status != 404:
            raise _failure(error, "list", "brokerauthentications", namespace) from error
        authentications = {}
    by_name = _by_name(authentications)
    ports = listener_ports(listeners, by_name)
    services: dict[str, object] = {}
    for name in dict.fromkeys(p.service for p in ports if p.service_type != "ClusterIp"):
        try:
            services[name] = client.get(service_path(namespace, name))
        except ApiError as error:
            if error.status != 404:
                raise _failure(error, "get", "services", namespace) from error
    node_address = urlsplit(client.transport.host).hostname
    targets = plan_targets(
        ports, services, namespace=namespace, in_cluster=inside, node_address=node_address
    )
    return Discovery(client.origin, namespace, version, tuple(targets), inside)


def _listeners(client: ClusterClient, namespace: str) -> tuple[str, object]:
    for version in VERSIONS:
        try:
            return version, client.get(_list_path(version, namespace, "brokerlisteners"))
        except ApiError as error:
            if error.status != 404:
                raise _failure(error, "list", "brokerlisteners", namespace) from error
    raise ProbeError(
        ErrorKind.CLUSTER_UNREACHABLE,
        f"The API server serves no BrokerListener resources ({GROUP} {' or '.join(VERSIONS)}) "
        f"in the namespace {namespace} ({client.origin}).",
        "Check that Azure IoT Operations is installed there "
        "(kubectl get brokerlisteners -A), or pass --namespace.",
    )


def _by_name(document: object) -> dict[str, object]:
    items = document.get("items") if isinstance(document, dict) else None
    found: dict[str, object] = {}
    for item in items if isinstance(items, list) else []:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(name, str) and name:
            found[name] = item
    return found


def _failure(error: ApiError, verb: str, resource: str, namespace: str) -> ProbeError:
    if error.status in (401, 403):
        return forbidden_error(error, verb, resource, namespace)
    return ProbeError(
        ErrorKind.CLUSTER_UNREACHABLE,
        f"The API server failed to {verb} {resource} in {namespace}: {error}.",
    )

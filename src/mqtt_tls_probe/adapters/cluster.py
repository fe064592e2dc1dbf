"""Reads from the cluster with the official Kubernetes client's loader and ``rest`` layer.

Rule: the cluster is hostile input like any other. The kubeconfig is checked
before the loader reads it (``kubeconfig_files``), the loader runs within the
deadline (``kube_loader``), each GET ends by its deadline with a capped body
(``kube_http``), and whatever JSON comes back is handed on as data whose shape
the reader checks (``core.trust_bundle``, ``orchestrators.cluster_checks``).
Strings from the cluster reach messages clipped to ``MESSAGE_LIMIT``
characters, never escaped here (the renderers escape).

Nothing here imports ``ApiClient``, its models or the OAuth stack
(``kube_modules`` says how); only commands that read the cluster import this
module. A request is never retried.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

from mqtt_tls_probe.adapters.kube_http import ApiTransport, parse_json
from mqtt_tls_probe.adapters.kube_loader import load_cluster
from mqtt_tls_probe.config import ClusterOptions
from mqtt_tls_probe.core.trust_bundle import bundle_from_configmap, clip
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import TrustBundle

METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class ApiError(Exception):
    """The API server answered with an error ``Status``."""

    status: int
    reason: str
    message: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}"


class ClusterClient:
    """An authenticated client for one cluster, chosen the way kubectl chooses.

    Each GET gets ``timeout`` seconds; with ``one_deadline`` the load and every
    GET share one deadline instead, ``timeout`` seconds from the start (a stage).
    """

    def __init__(
        self, options: ClusterOptions, timeout: float, *, one_deadline: bool = False
    ) -> None:
        self.timeout = timeout
        self._deadline = time.monotonic() + timeout if one_deadline else None
        loaded = load_cluster(options, timeout)
        self.origin = loaded.origin
        self.configuration: Any = loaded.configuration  # for the port-forward's WebSocket
        self.headers = loaded.headers
        try:
            self._transport = ApiTransport(loaded.configuration, loaded.headers)
        except Exception as exc:  # a proxy scheme without its package, a bad setting
            raise ProbeError(
                ErrorKind.KUBECONFIG_INVALID,
                f"The connection settings of {self.origin} cannot be used: {clip(str(exc))}.",
            ) from exc

    def get(self, path: str, *, accept: str = "application/json") -> Any:
        """GET ``path`` from the API server and return its JSON value, whatever its shape.

        Raises:
            ApiError: the server answered with an error status.
            ProbeError: ``cluster_unreachable`` (refused, timed out, TLS, too large, not JSON).
        """
        budget = self.timeout
        if self._deadline is not None:
            budget = self._deadline - time.monotonic()
        answer = self._transport.get(path, accept, budget, self.timeout)
        if not 200 <= answer.status < 300:
            raise _api_error(answer.status, answer.body, path)
        return parse_json(answer, path)

    def post(self, path: str, document: Any) -> Any:
        """POST ``document`` as JSON to ``path`` and return the answer's JSON value.

        Raises:
            ApiError: the server answered with an error status.
            ProbeError: ``cluster_unreachable``.
        """
        body = json.dumps(document).encode()
        answer = self._transport.post(path, body, self._budget(), self.timeout)
        if not 200 <= answer.status < 300:
            raise _api_error(answer.status, answer.body, path)
        return parse_json(answer, path)

    def _budget(self) -> float:
        if self._deadline is not None:
            return self._deadline - time.monotonic()
        return self.timeout

    @property
    def transport(self) -> ApiTransport:
        return self._transport

    def close(self) -> None:
        self._transport.close()


def _api_error(status: int, body: bytes, path: str) -> ApiError:
    """The ``Status`` of an error answer; its reason and message clipped, whatever its shape."""
    text = body[:4096].decode("utf-8", "replace")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        return ApiError(status, "", clip(text), path)
    reason = document.get("reason", "")
    message = document.get("message", text)
    return ApiError(status, clip(str(reason), 100), clip(str(message)), path)


def forbidden_error(error: ApiError, verb: str, resource: str, namespace: str) -> ProbeError:
    """``cluster_forbidden``, naming what the identity needs."""
    if error.status == 401:
        return ProbeError(
            ErrorKind.CLUSTER_FORBIDDEN,
            f"The API server did not accept the credentials (401 Unauthorized): {error.message}",
            "The token or client certificate has expired or is wrong: log in again "
            "(e.g. az aks get-credentials) or refresh the kubeconfig.",
        )
    return ProbeError(
        ErrorKind.CLUSTER_FORBIDDEN,
        f"This identity may not {verb} {resource} in the namespace {namespace} (403): "
        f"{error.message}",
        f"Grant it: kubectl create role probe-reader --verb={verb} --resource={resource} "
        f"-n {namespace}, then bind the role to the identity (kubectl create rolebinding).",
    )


# --- the trust bundle ---------------------------------------------------------------


def configmap_path(namespace: str, name: str) -> str:
    # Quoted: a name never adds path segments of its own.
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/configmaps/{quote(name, safe='')}"


class FoundConfigMap(NamedTuple):  # not a dataclass: 0.6 ms less at import
    name: str
    document: Any  # the API's JSON, shape unchecked
    note: str  # which of the default names was used, when not the first


def find_trust_configmap(client: ClusterClient, options: ClusterOptions) -> FoundConfigMap:
    """The trust bundle's ConfigMap object.

    With the default name, a missing quickstart ConfigMap falls back to the
    name later releases use; an explicit ``--configmap`` turns that off.

    Raises:
        ApiError: the API server answered with an error other than 404.
        ProbeError: ``trust_bundle_not_found``, or ``cluster_unreachable``.
    """
    namespace = options.namespace
    missing: list[str] = []
    for name in options.configmap_candidates:
        try:
            document = client.get(configmap_path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                missing.append(name)
                continue
            raise
        note = f"{missing[0]} is absent, using {name} (later releases)" if missing else ""
        return FoundConfigMap(name, document, note)
    names = " or ".join(missing)
    raise ProbeError(
        ErrorKind.TRUST_BUNDLE_NOT_FOUND,
        f"No ConfigMap {names} in the namespace {namespace} ({client.origin}).",
        "Check where Azure IoT Operations is installed (kubectl get configmap -A | grep "
        "trust-bundle) and pass --namespace/--configmap, or pass --ca-file.",
    )


def read_trust_bundle(options: ClusterOptions, timeout: float) -> TrustBundle:
    """The CA certificates of the trust bundle ConfigMap, all within ``timeout`` seconds.

    Raises:
        ProbeError: a ``trust`` kind.
    """
    client = ClusterClient(options, timeout, one_deadline=True)
    try:
        found = find_trust_configmap(client, options)
    except ApiError as error:
        raise configmap_failure(error, options.namespace) from error
    finally:
        client.close()
    return bundle_from_configmap(
        found.document, options.namespace, found.name, options.configmap_key, found.note
    )


def configmap_failure(error: ApiError, namespace: str) -> ProbeError:
    """What an API error on the trust bundle's ConfigMap means for the trust stage."""
    if error.status in (401, 403):
        return forbidden_error(error, "get", "configmaps", namespace)
    name = unquote(error.path.rsplit("/", 1)[-1])
    return ProbeError(
        ErrorKind.CLUSTER_UNREACHABLE,
        f"The API server failed to read the ConfigMap {namespace}/{name}: {error}.",
    )

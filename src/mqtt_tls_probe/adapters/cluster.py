"""Reads from the cluster with the official Kubernetes client.

Two facts about the client shape this module:
- ``import kubernetes`` runs a package ``__init__`` that imports every
  subpackage (dynamic, watch, stream, leaderelection, informer...), and its
  typed API classes import a pydantic model for every resource of their group
  (``CoreV1Api`` alone: about 0.7 s). The probe needs the kubeconfig loader
  and ``ApiClient``, so ``_client_modules`` loads those modules only, and GETs
  go through ``ApiClient.param_serialize``/``call_api`` with the JSON parsed
  here. Only commands that read the cluster import this module.
- Kubeconfig resolution follows kubectl: ``--kubeconfig``, else every path
  of ``$KUBECONFIG`` (the first file naming a current-context wins), else
  ``~/.kube/config``, else the in-cluster service account.

Every request is bounded by the caller's timeout and never retried.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mqtt_tls_probe.config import ClusterOptions
from mqtt_tls_probe.core.trust_bundle import bundle_from_configmap
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import TrustBundle

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Tests (and unusual pods) point the in-cluster path elsewhere with this.
SERVICE_ACCOUNT_DIR_ENV = "PROBE_SERVICE_ACCOUNT_DIR"
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


def _client_modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """kube_config, incluster_config and api_client, without the rest of the package."""
    if "kubernetes" not in sys.modules:
        spec = importlib.util.find_spec("kubernetes")
        if spec is None:  # pragma: no cover (a declared dependency)
            raise ModuleNotFoundError("kubernetes")
        # An empty package object with the real search path: submodules load
        # normally, the package __init__ (and its imports) does not run.
        sys.modules["kubernetes"] = importlib.util.module_from_spec(spec)
    from kubernetes.client import api_client
    from kubernetes.config import incluster_config, kube_config

    return kube_config, incluster_config, api_client


class ClusterClient:
    """An authenticated client for one cluster, chosen the way kubectl chooses."""

    def __init__(self, options: ClusterOptions, timeout: float) -> None:
        self.timeout = timeout
        self.options = options
        self.origin = ""  # where the credentials came from, for messages
        self._api = self._connect(options)

    # --- kubeconfig ------------------------------------------------------------

    def _connect(self, options: ClusterOptions) -> Any:
        kube_config, incluster_config, api_client = _client_modules()
        from kubernetes.client.configuration import Configuration

        # type.__call__ skips Configuration's copy of a process-wide default.
        configuration = type.__call__(Configuration)
        paths = _kubeconfig_paths(options.kubeconfig)
        in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
        if not paths and not in_cluster:
            raise ProbeError(
                ErrorKind.KUBECONFIG_INVALID,
                "No kubeconfig was found ($KUBECONFIG unset or empty, no ~/.kube/config) "
                "and this is not a pod.",
                "Pass --kubeconfig PATH, or --ca-file with the CA instead of the cluster.",
            )
        try:
            if paths:
                context = options.context or _first_current_context(paths)
                self._check_context(kube_config, paths, context)
                kube_config.load_kube_config(
                    config_file=os.pathsep.join(str(p) for p in paths),
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
                self.origin = f"context {context} of {', '.join(str(p) for p in paths)}"
            else:
                directory = Path(os.environ.get(SERVICE_ACCOUNT_DIR_ENV, SERVICE_ACCOUNT_DIR))
                incluster_config.InClusterConfigLoader(
                    token_filename=str(directory / "token"),
                    cert_filename=str(directory / "ca.crt"),
                ).load_and_set(configuration)
                self.origin = f"the in-cluster service account ({directory})"
        except ProbeError:
            raise
        except Exception as exc:  # ConfigException, yaml errors, bad base64...
            raise ProbeError(
                ErrorKind.KUBECONFIG_INVALID,
                f"The cluster configuration cannot be used: {_one_line(exc)}.",
            ) from exc
        configuration.retries = 0  # one attempt: --timeout bounds the stage
        return api_client.ApiClient(configuration=configuration)

    @staticmethod
    def _check_context(kube_config: ModuleType, paths: list[Path], context: str | None) -> None:
        contexts, _ = kube_config.list_kube_config_contexts(os.pathsep.join(map(str, paths)))
        names = [c["name"] for c in contexts or []]
        if context is None:
            raise ProbeError(
                ErrorKind.KUBECONFIG_INVALID,
                f"The kubeconfig sets no current context; it has: {', '.join(names) or 'none'}.",
                "Choose one with --context NAME.",
            )
        if context not in names:
            raise ProbeError(
                ErrorKind.KUBECONFIG_INVALID,
                f"The kubeconfig has no context {context!r}; it has: {', '.join(names) or 'none'}.",
                "Pass one of those with --context, or fix --kubeconfig.",
            )

    # --- requests ----------------------------------------------------------------

    def get(self, path: str, *, accept: str = "application/json") -> dict[str, Any]:
        """GET ``path`` from the API server and return its JSON.

        Raises:
            ApiError: the server answered with an error status.
            ProbeError: ``cluster_unreachable`` (refused, timed out, TLS failure).
        """
        method, url, headers, _body, _post = self._api.param_serialize(
            method="GET",
            resource_path=path,
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(
                method, url, header_params=headers, _request_timeout=self.timeout
            )
            response.read()
        except Exception as exc:  # urllib3 transport errors, ApiException(status=0) for TLS
            raise self._unreachable(exc) from exc
        text = response.data.decode("utf-8", "replace") if response.data else ""
        if not 200 <= response.status < 300:
            raise _api_error(response.status, text, path)
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ProbeError(
                ErrorKind.CLUSTER_UNREACHABLE,
                f"The API server answered {path} with something that is not JSON.",
            ) from exc
        if not isinstance(document, dict):
            raise ProbeError(ErrorKind.CLUSTER_UNREACHABLE, f"Unexpected answer for {path}.")
        return document

    def _unreachable(self, exc: Exception) -> ProbeError:
        import ssl

        from urllib3 import exceptions

        host = self._api.configuration.host
        causes = _causes(exc)
        cause = causes[-1]
        if any(isinstance(c, exceptions.SSLError | ssl.SSLError) for c in causes):
            return ProbeError(
                ErrorKind.CLUSTER_UNREACHABLE,
                f"The TLS connection to the API server {host} failed: {_one_line(cause)}.",
                "The kubeconfig's certificate-authority-data does not match the API server, "
                "or the server is not the one meant: check with kubectl cluster-info.",
            )
        if any(isinstance(c, exceptions.TimeoutError | TimeoutError) for c in causes):
            return ProbeError(
                ErrorKind.CLUSTER_UNREACHABLE,
                f"The API server {host} did not answer within {self.timeout:g} s.",
            )
        return ProbeError(
            ErrorKind.CLUSTER_UNREACHABLE,
            f"The API server {host} cannot be reached: {_one_line(cause)}.",
        )


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: urllib3's ``reason``, then Python's cause chain."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        reason = getattr(current, "reason", None)
        wrapped = reason if isinstance(reason, BaseException) else None
        current = wrapped or current.__cause__ or current.__context__
    return chain


def _kubeconfig_paths(explicit: Path | None) -> list[Path]:
    """The kubeconfig files kubectl would read, in its order; [] means in-cluster."""
    if explicit is not None:
        if not explicit.is_file():
            raise ProbeError(
                ErrorKind.KUBECONFIG_INVALID,
                f"The kubeconfig {explicit} does not exist or is not a file.",
                "Check --kubeconfig.",
            )
        return [explicit]
    listed = os.environ.get("KUBECONFIG", "")
    if listed:
        return [
            Path(p).expanduser()
            for p in listed.split(os.pathsep)
            if p and Path(p).expanduser().is_file()
        ]
    default = Path("~/.kube/config").expanduser()
    return [default] if default.is_file() else []


def _first_current_context(paths: list[Path]) -> str | None:
    import yaml  # the kubeconfig loader has imported it already

    for path in paths:
        with path.open() as file:
            document = yaml.safe_load(file) or {}
        if isinstance(document, dict) and document.get("current-context"):
            return str(document["current-context"])
    return None


def _api_error(status: int, text: str, path: str) -> ApiError:
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason, message = str(body.get("reason", "")), str(body.get("message", text[:200]))
    return ApiError(status, reason, message, path)


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


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
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


@dataclass(frozen=True)
class FoundConfigMap:
    name: str
    document: dict[str, Any]
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
    """The CA certificates of the trust bundle ConfigMap.

    Raises:
        ProbeError: a ``trust`` kind.
    """
    client = ClusterClient(options, timeout)
    try:
        found = find_trust_configmap(client, options)
    except ApiError as error:
        raise configmap_failure(error, options.namespace) from error
    return bundle_from_configmap(
        found.document, options.namespace, found.name, options.configmap_key, found.note
    )


def configmap_failure(error: ApiError, namespace: str) -> ProbeError:
    """What an API error on the trust bundle's ConfigMap means for the trust stage."""
    if error.status in (401, 403):
        return forbidden_error(error, "get", "configmaps", namespace)
    name = error.path.rsplit("/", 1)[-1]
    return ProbeError(
        ErrorKind.CLUSTER_UNREACHABLE,
        f"The API server failed to read the ConfigMap {namespace}/{name}: {error}.",
    )

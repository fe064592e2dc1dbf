"""K8S-SAT minting: a short-lived service account token from the TokenRequest API.

Rule: ``--sat-serviceaccount [NS/]NAME`` asks the API server for a token
(``POST /api/v1/namespaces/NS/serviceaccounts/NAME/token``, the API
``kubectl create token`` uses:
https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-request-v1/)
with one audience and ten minutes of life. The token stays in memory: it is
never written to disk, to a report or to a message. The request needs
``create`` on ``serviceaccounts/token``; a 403 names that verb and resource.
"""

from __future__ import annotations

from urllib.parse import quote

from mqtt_tls_probe.adapters.cluster import ApiError, ClusterClient, forbidden_error
from mqtt_tls_probe.config import ClusterOptions, SatRequest
from mqtt_tls_probe.core.trust_bundle import clip
from mqtt_tls_probe.errors import ErrorKind, ProbeError

EXPIRATION_SECONDS = 600


def token_path(namespace: str, name: str) -> str:
    # Quoted: a name never adds path segments of its own.
    return (
        f"/api/v1/namespaces/{quote(namespace, safe='')}/serviceaccounts/"
        f"{quote(name, safe='')}/token"
    )


def token_request(audience: str) -> dict[str, object]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": [audience], "expirationSeconds": EXPIRATION_SECONDS},
    }


def mint_token(cluster: ClusterOptions, request: SatRequest, timeout: float) -> bytes:
    """A new token for ``request``'s service account and audience, within ``timeout`` seconds.

    Raises:
        ProbeError: ``cluster_forbidden`` (naming ``create serviceaccounts/token``),
            or ``cluster_unreachable`` (also: no such account, an answer without a token;
            the message says which).
    """
    client = ClusterClient(cluster, timeout, one_deadline=True)
    try:
        answer = client.post(
            token_path(request.namespace, request.name), token_request(request.audience)
        )
    except ApiError as error:
        if error.status in (401, 403):
            raise forbidden_error(
                error, "create", "serviceaccounts/token", request.namespace
            ) from error
        raise ProbeError(
            ErrorKind.CLUSTER_UNREACHABLE,
            f"The API server refused a token for the service account "
            f"{request.namespace}/{request.name}: {error}.",
            f"Check the name and namespace: kubectl get serviceaccount -n {request.namespace}.",
        ) from error
    finally:
        client.close()
    token = _token_of(answer)
    if token is None:
        raise ProbeError(
            ErrorKind.CLUSTER_UNREACHABLE,
            f"The API server's TokenRequest answer for {clip(request.namespace)}/"
            f"{clip(request.name)} holds no status.token.",
        )
    return token.encode()


def _token_of(answer: object) -> str | None:
    if not isinstance(answer, dict):
        return None
    status = answer.get("status")
    token = status.get("token") if isinstance(status, dict) else None
    return token if isinstance(token, str) and token and token.isascii() else None

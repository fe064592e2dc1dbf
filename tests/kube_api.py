"""A small Kubernetes API server for the tests: HTTPS on 127.0.0.1, a bearer token,
the real paths, real object JSON and ``Status`` errors shaped as the API server
shapes them. The official client reaches it through real kubeconfig files or the
in-cluster files.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mqtt_tls_probe.dev.pki import create_root_ca, issue_server_certificate

from .kube_portforward import accept_key, choose_subprotocol, serve_forward

TOKEN = "probe-test-token"
METADATA_ONLY = "as=PartialObjectMetadata"


@dataclass
class Request:
    path: str
    accept: str
    authorized: bool
    method: str = "GET"
    body: bytes = b""
    content_type: str = ""


def jwt_token(audience: list[str], subject: str, expires_in: float = 600) -> str:
    """A token shaped like a Kubernetes service account JWT (the signature is not checked)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {
        "aud": audience,
        "exp": int(time.time() + expires_in),
        "sub": subject,
        "iss": "https://kubernetes.default.svc.cluster.local",
    }
    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


@dataclass
class FakeApiServer:
    """Objects by API path; ``raw`` paths answer 200 with those bytes as they are (wrong
    shapes, not JSON); ``forbidden`` paths answer 403; the rest 404."""

    directory: Path
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)
    identity: str = "system:serviceaccount:azure-iot-operations:probe"
    service_accounts: set[tuple[str, str]] = field(default_factory=set)  # (ns, name)
    minted: list[str] = field(default_factory=list)  # the tokens the TokenRequest API issued
    # (namespace, pod, pod port) -> the local port of the server posing as that pod's port;
    # a pod port not listed answers on the error channel as the kubelet does.
    pod_ports: dict[tuple[str, str, int], int] = field(default_factory=dict)
    forwards: list[str] = field(default_factory=list)  # the portforward paths upgraded

    def __post_init__(self) -> None:
        self.ca = create_root_ca("kubernetes-ca")
        self.directory.mkdir(parents=True, exist_ok=True)
        cert = self.directory / "apiserver.crt"
        key = self.directory / "apiserver.key"
        leaf = issue_server_certificate(self.ca, ["localhost", "127.0.0.1"])
        cert.write_bytes(leaf.cert_pem() + self.ca.cert_pem())
        key.write_bytes(leaf.key_pem())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # --- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def certificate_files(self) -> tuple[Path, Path]:
        """The server's certificate chain and key, for another server posing as this one."""
        return self.directory / "apiserver.crt", self.directory / "apiserver.key"

    # --- objects ------------------------------------------------------------------

    def add_configmap(
        self,
        namespace: str,
        name: str,
        data: dict[str, str] | None = None,
        binary_data: dict[str, bytes] | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": _metadata(namespace, name),
            "data": data or {},
        }
        if binary_data:
            body["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary_data.items()}
        self.objects[f"/api/v1/namespaces/{namespace}/configmaps/{name}"] = body

    def add_secret(self, namespace: str, name: str) -> None:
        self.objects[f"/api/v1/namespaces/{namespace}/secrets/{name}"] = {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": _metadata(namespace, name),
            "type": "kubernetes.io/tls",
            "data": {"tls.key": base64.b64encode(b"PRIVATE KEY MATERIAL").decode()},
        }

    def add_issuer(
        self,
        namespace: str,
        name: str,
        secret_name: str,
        ready: str = "True",
        reason: str = "KeyPairVerified",
        message: str = "Signing CA verified",
    ) -> None:
        conditions = [{"type": "Ready", "status": ready, "reason": reason, "message": message}]
        self.objects[f"/apis/cert-manager.io/v1/namespaces/{namespace}/issuers/{name}"] = {
            "kind": "Issuer",
            "apiVersion": "cert-manager.io/v1",
            "metadata": _metadata(namespace, name),
            "spec": {"ca": {"secretName": secret_name}},
            "status": {"conditions": conditions} if ready else {},
        }

    def add_cluster_issuer(self, name: str, secret_name: str) -> None:
        """A Ready cluster-scoped ClusterIssuer, as later releases install."""
        self.objects[f"/apis/cert-manager.io/v1/clusterissuers/{name}"] = {
            "kind": "ClusterIssuer",
            "apiVersion": "cert-manager.io/v1",
            "metadata": {"name": name, "creationTimestamp": "2026-11-20T10:00:00Z"},
            "spec": {"ca": {"secretName": secret_name}},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "KeyPairVerified",
                     "message": "Signing CA verified"}
                ]
            },
        }  # fmt: skip

    def add_endpoint_slice(
        self, namespace: str, service: str, pods: dict[str, bool], ports: list[dict[str, Any]]
    ) -> None:
        """An EndpointSlice of ``service``: ``pods`` maps each pod to its ``ready`` condition."""
        path = (
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
            f"?labelSelector=kubernetes.io%2Fservice-name%3D{service}"
        )
        endpoints = [
            {
                "addresses": [f"10.42.0.{index + 10}"],
                "conditions": {"ready": ready, "serving": ready, "terminating": False},
                "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod},
            }
            for index, (pod, ready) in enumerate(pods.items())
        ]
        self.objects[path] = {
            "kind": "EndpointSliceList",
            "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"resourceVersion": "7"},
            "items": [
                {
                    "kind": "EndpointSlice",
                    "apiVersion": "discovery.k8s.io/v1",
                    "metadata": {
                        **_metadata(namespace, f"{service}-abcde"),
                        "labels": {"kubernetes.io/service-name": service},
                    },
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                }
            ],
        }

    def secret_data_requested(self) -> bool:
        """True when any request for a Secret asked for more than its metadata."""
        return any("/secrets/" in r.path and METADATA_ONLY not in r.accept for r in self.requests)

    # --- client configuration ---------------------------------------------------------

    def kubeconfig(
        self,
        path: Path,
        *,
        current: str | None = "aio",
        contexts: dict[str, str] | None = None,
        ca_pem: bytes | None = None,
        server: str | None = None,
        user: dict[str, Any] | None = None,
    ) -> Path:
        """A kubeconfig (JSON is YAML) whose contexts map to tokens; "aio" uses the good one.

        ``user`` replaces every context's user entry (an ``exec`` plugin, a ``tokenFile``).
        """
        contexts = contexts if contexts is not None else {"aio": TOKEN}
        ca_data = base64.b64encode(ca_pem or self.ca.cert_pem()).decode()
        document: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fake",
                    "cluster": {
                        "server": server or self.url,
                        "certificate-authority-data": ca_data,
                    },
                }
            ],
            "users": [
                {"name": f"user-{n}", "user": user if user is not None else {"token": t}}
                for n, t in contexts.items()
            ],
            "contexts": [
                {"name": n, "context": {"cluster": "fake", "user": f"user-{n}"}} for n in contexts
            ],
        }
        if current is not None:
            document["current-context"] = current
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
        return path

    def service_account_dir(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        (path / "token").write_text(TOKEN)
        (path / "ca.crt").write_bytes(self.ca.cert_pem())
        return path


def _resource(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "singularName": kind.lower(), "namespaced": True, "kind": kind,
            "verbs": ["get", "list"]}  # fmt: skip


_DISCOVERY: dict[str, dict[str, Any]] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "cert-manager.io",
                "versions": [{"groupVersion": "cert-manager.io/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "cert-manager.io/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [_resource("configmaps", "ConfigMap"), _resource("secrets", "Secret")],
    },
    "/apis/cert-manager.io/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "cert-manager.io/v1",
        "resources": [_resource("issuers", "Issuer")],
    },
}


def _metadata(namespace: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "uid": "0b7e7c1e-5b2a-4a7e-9a57-1c2d3e4f5a6b",
        "resourceVersion": "4242",
        "creationTimestamp": "2026-11-20T10:00:00Z",
    }


def _status(code: int, reason: str, message: str, details: dict[str, str] | None) -> bytes:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return json.dumps(body).encode()


def _handler(api: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            del format, args  # quiet

        def do_POST(self) -> None:
            """The TokenRequest API: a JWT-shaped token with the audiences asked for."""
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            authorized = scheme.lower() == "bearer" and token == TOKEN
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(min(length, 1 << 20))
            content_type = self.headers.get("Content-Type", "")
            api.requests.append(Request(self.path, "", authorized, "POST", body, content_type))
            code, answer = self._token_answer(authorized, body, content_type)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def _token_answer(
            self, authorized: bool, body: bytes, content_type: str
        ) -> tuple[int, bytes]:
            if not authorized:
                return 401, _status(401, "Unauthorized", "Unauthorized", None)
            parts = self.path.strip("/").split("/")
            if (
                len(parts) != 7
                or parts[:3] != ["api", "v1", "namespaces"]
                or parts[4:] != ["serviceaccounts", parts[5], "token"]
            ):
                return 404, _status(404, "NotFound", "the server could not find it", None)
            namespace, name = parts[3], parts[5]
            if self.path in api.forbidden:
                message = (
                    f'serviceaccounts "{name}" is forbidden: User "{api.identity}" cannot '
                    f'create resource "serviceaccounts/token" in API group "" in the '
                    f'namespace "{namespace}"'
                )
                return 403, _status(403, "Forbidden", message, {"name": name})
            if (namespace, name) not in api.service_accounts:
                message = f'serviceaccounts "{name}" not found'
                return 404, _status(404, "NotFound", message, {"name": name})
            request = json.loads(body) if content_type == "application/json" else None
            spec = request.get("spec") if isinstance(request, dict) else None
            if (
                not isinstance(spec, dict)
                or not isinstance(request, dict)
                or (request.get("kind") != "TokenRequest")
            ):
                return 400, _status(400, "BadRequest", "not a TokenRequest", None)
            audiences = spec.get("audiences") or ["https://kubernetes.default.svc"]
            seconds = spec.get("expirationSeconds", 3600)
            subject = f"system:serviceaccount:{namespace}:{name}"
            issued = jwt_token(audiences, subject, seconds)
            api.minted.append(issued)
            answer = {
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace},
                "spec": spec,
                "status": {"token": issued, "expirationTimestamp": "2026-11-29T23:59:00Z"},
            }
            return 201, json.dumps(answer).encode()

        def do_GET(self) -> None:
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            # The scheme is case-insensitive (RFC 7235); the in-cluster loader sends "bearer".
            authorized = scheme.lower() == "bearer" and token == TOKEN
            accept = self.headers.get("Accept", "")
            api.requests.append(Request(self.path, accept, authorized))
            upgrade = self.headers.get("Upgrade", "").lower() == "websocket"
            if authorized and upgrade and "/portforward?" in self.path:
                if self.path.split("?")[0] not in api.forbidden:
                    self._port_forward()
                    return
                message = (
                    f'pods "{self.path.split("/")[6]}" is forbidden: User "{api.identity}" '
                    'cannot create resource "pods/portforward" in API group ""'
                )
                body = _status(403, "Forbidden", message, None)
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            code, body = self._answer(authorized, accept)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _port_forward(self) -> None:
            """The 101 upgrade, then one forward stream (``tests.kube_portforward``)."""
            parts = self.path.split("?")[0].strip("/").split("/")
            namespace, pod = parts[3], parts[5]
            query = self.path.split("?", 1)[1]
            port = int(dict(p.split("=", 1) for p in query.split("&"))["ports"])
            protocol = choose_subprotocol(self.headers.get("Sec-WebSocket-Protocol", ""))
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept_key(self.headers["Sec-WebSocket-Key"]))
            if protocol is not None:
                self.send_header("Sec-WebSocket-Protocol", protocol)
            self.end_headers()
            self.wfile.flush()
            api.forwards.append(self.path)
            self.close_connection = True

            def upstream() -> socket.socket | str:
                local = api.pod_ports.get((namespace, pod, port))
                refused = (
                    f"error forwarding port {port} to pod {pod}, uid : failed to connect to "
                    f'localhost:{port} inside namespace "{namespace}": connection refused'
                )
                if local is None:
                    return refused
                try:
                    return socket.create_connection(("127.0.0.1", local), timeout=5)
                except OSError:
                    return refused

            serve_forward(self.connection, port, upstream)

        def _answer(self, authorized: bool, accept: str) -> tuple[int, bytes]:
            if not authorized:
                return 401, _status(401, "Unauthorized", "Unauthorized", None)
            path = self.path.split("?")[0]
            if path in _DISCOVERY:  # what kubectl reads before any GET
                return 200, json.dumps(_DISCOVERY[path]).encode()
            if self.path in api.raw:
                return 200, api.raw[self.path]
            resource, name, namespace = _parse(self.path)
            if self.path in api.forbidden:
                message = (
                    f'{resource} "{name}" is forbidden: User "{api.identity}" cannot get '
                    f'resource "{resource}" in API group "{_group(self.path)}" in the '
                    f'namespace "{namespace}"'
                )
                return 403, _status(403, "Forbidden", message, {"name": name, "kind": resource})
            found = api.objects.get(self.path)
            if found is None:
                message = f'{resource} "{name}" not found'
                return 404, _status(404, "NotFound", message, {"name": name, "kind": resource})
            if METADATA_ONLY in accept:
                found = {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": found["metadata"],
                }
            return 200, json.dumps(found).encode()

    return Handler


def _parse(path: str) -> tuple[str, str, str]:
    parts = path.split("?", maxsplit=1)[0].strip("/").split("/")
    namespace = parts[parts.index("namespaces") + 1] if "namespaces" in parts else ""
    if len(parts) < 2:
        return parts[0], "", namespace
    return parts[-2], parts[-1], namespace


def _group(path: str) -> str:
    return path.split("/")[2] if path.startswith("/apis/") else ""

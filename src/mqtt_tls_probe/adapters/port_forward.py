"""The built-in port-forward: a Service's ready pod, reached through the API server.

Rule: behave as ``kubectl port-forward`` does, inside the run. The pod is a
ready endpoint of the Service's EndpointSlices (``conditions.ready`` true, a
``targetRef`` of kind Pod; the slice's port matching the Service port by name,
or its only port, is the pod's port). The probe dials a listener on
127.0.0.1:0; every connection accepted there opens a forward of its own with
the official client's ``portforward_call``, which needs only the client's
``Configuration`` and the bearer header, not ``ApiClient``:
https://github.com/kubernetes-client/python/blob/v37.0.2/kubernetes/base/stream/ws_client.py#L346-L664
(``PortForward`` pumps the WebSocket to one end of a socket pair; this module
pumps that pair to the accepted connection). Its WebSocket connect has no
timeout of its own: it runs in the connection's worker and the caller waits
for it only until its deadline. The kubelet dials the pod's port when the
stream opens and reports a refusal as text on the port's error channel: that
text is kept and quoted. ``close`` ends the listener, every forward and every
worker.

Needs ``list`` on endpointslices, ``get`` on services (a Service with several
ports), ``get`` and ``create`` on ``pods/portforward``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mqtt_tls_probe.adapters.cluster import ApiError, ClusterClient, forbidden_error
from mqtt_tls_probe.adapters.discovery import service_path
from mqtt_tls_probe.core.trust_bundle import clip
from mqtt_tls_probe.errors import ErrorKind, ProbeError, Stage

_TICK = 0.05  # how often a pump looks at its stop flag
_RELEASE_WAIT = 0.5  # for the client's proxy thread to close its side
_CHUNK = 65536
_CLOSE_WAIT = 2.0  # for all the workers together, when the forwarder closes
SETTLE_FLOOR = 0.2  # seconds to wait for the kubelet's verdict on the pod's port
# The name the official client gives its proxy thread (ws_client.PortForward.__init__):
# https://github.com/kubernetes-client/python/blob/v37.0.2/kubernetes/base/stream/ws_client.py#L360-L366
PROXY_THREAD_PREFIX = "Kubernetes port forward proxy: "


def quiet_proxy_endings() -> None:
    """The client's proxy thread ending on a broken socket prints no traceback.

    ``PortForward._proxy`` lets any error of its sockets end the thread (a
    connection reset while a forward is closed, a WebSocket the API server
    dropped), and Python's default ``threading.excepthook`` prints it on stderr.
    The forward's end is already this module's business: the pump sees its
    socket close, and a failure is reported as a ``ProbeError``. Other threads'
    exceptions reach the previous hook unchanged. Installed once per hook.
    """
    previous = threading.excepthook
    if getattr(previous, "quiets_proxy_endings", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        thread = args.thread
        if (
            thread is not None
            and thread.name.startswith(PROXY_THREAD_PREFIX)
            and issubclass(args.exc_type, OSError | RuntimeError | ValueError)
        ):
            return
        previous(args)

    hook.quiets_proxy_endings = True  # type: ignore[attr-defined]
    threading.excepthook = hook


@dataclass(frozen=True)
class PodPort:
    namespace: str
    pod: str
    port: int


def slices_path(namespace: str, service: str) -> str:
    selector = quote(f"kubernetes.io/service-name={service}", safe="")
    return (
        f"/apis/discovery.k8s.io/v1/namespaces/{quote(namespace, safe='')}/endpointslices"
        f"?labelSelector={selector}"
    )


def _failure(error: ApiError, verb: str, resource: str, namespace: str) -> ProbeError:
    if error.status in (401, 403):
        info = forbidden_error(error, verb, resource, namespace).info
        return ProbeError(info.kind, info.message, info.hint, Stage.TCP)
    return ProbeError(
        ErrorKind.CONNECTION_REFUSED,
        f"The API server failed to {verb} {resource} in {namespace}: {error}.",
    )


def find_pod(client: ClusterClient, namespace: str, service: str, port: int) -> PodPort:
    """A ready pod behind ``service`` and its port for the Service port ``port``.

    Raises:
        ProbeError: ``connection_refused`` (no ready pod, no such port),
            ``cluster_forbidden`` (in the tcp stage), ``cluster_unreachable``.
    """
    try:
        document = client.get(slices_path(namespace, service))
    except ApiError as error:
        raise _failure(error, "list", "endpointslices", namespace) from error
    slices = _mappings(document.get("items") if isinstance(document, dict) else None)
    wanted: str | None = None
    for piece in slices:
        ports = [p for p in _mappings(piece.get("ports")) if _number(p.get("port"))]
        if not ports:
            continue
        chosen: dict[str, Any] | None = ports[0]
        if len(ports) > 1:
            wanted = wanted if wanted is not None else _port_name(client, namespace, service, port)
            chosen = next((p for p in ports if p.get("name") == wanted), None)
        pod = _ready_pod(piece)
        if pod is not None and chosen is not None:
            return PodPort(namespace, pod, int(chosen["port"]))
    raise ProbeError(
        ErrorKind.CONNECTION_REFUSED,
        f"No ready pod serves the Service {namespace}/{service} port {port} "
        "(its EndpointSlices list none).",
        f"Check the broker's pods: kubectl get endpointslices -n {namespace} "
        f"-l kubernetes.io/service-name={service}",
    )


def _port_name(client: ClusterClient, namespace: str, service: str, port: int) -> str:
    try:
        document = client.get(service_path(namespace, service))
    except ApiError as error:
        raise _failure(error, "get", "services", namespace) from error
    spec = document.get("spec") if isinstance(document, dict) else None
    for entry in _mappings(spec.get("ports") if isinstance(spec, dict) else None):
        if entry.get("port") == port:
            name = entry.get("name")
            return name if isinstance(name, str) else ""
    raise ProbeError(
        ErrorKind.CONNECTION_REFUSED,
        f"The Service {namespace}/{service} has no port {port}.",
        f"List its ports: kubectl get service {service} -n {namespace} -o yaml",
    )


def _ready_pod(piece: dict[str, Any]) -> str | None:
    for endpoint in _mappings(piece.get("endpoints")):
        conditions = endpoint.get("conditions")
        ready = isinstance(conditions, dict) and conditions.get("ready") is True
        target = endpoint.get("targetRef")
        if ready and isinstance(target, dict) and target.get("kind") == "Pod":
            name = target.get("name")
            if isinstance(name, str) and name:
                return name
    return None


def _mappings(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def _release(forward: Any) -> None:
    """Close a ``PortForward``: our end of each port's socket pair, then, once its proxy
    thread had a moment to close the other end and the WebSocket, whatever is left (a proxy
    that died on an error leaves them open)."""
    forward.close()
    ports = list(forward.local_ports.values())
    until = time.monotonic() + _RELEASE_WAIT
    while time.monotonic() < until and any(p.python.fileno() != -1 for p in ports):
        time.sleep(0.005)
    if all(p.python.fileno() == -1 for p in ports):
        return  # the proxy closed its side and is closing the WebSocket
    for port in ports:  # the proxy died (or hangs): close what it left
        with contextlib.suppress(OSError):
            port.python.close()
    with contextlib.suppress(Exception):  # websocket-client's own errors
        forward.websocket.close(timeout=0)


@dataclass
class _Stream:
    """One accepted connection and its forward."""

    done: threading.Event = field(default_factory=threading.Event)  # open, or failed
    forward: Any = None  # kubernetes PortForward
    failure: str | None = None  # why it could not open
    opened_in: float = 0.0
    closed: bool = False


class Forwarder:
    """A loopback listener whose every connection is forwarded to ``target``."""

    def __init__(self, client: ClusterClient, target: PodPort) -> None:
        self.target = target
        self._configuration = client.configuration
        self._headers = client.headers
        self._lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}  # by the accepted connection's peer port
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port: int = self._listener.getsockname()[1]
        self._spawn(self._accept, "port-forward listener")

    @property
    def url(self) -> str:
        t = self.target
        return (
            f"{self._configuration.host}/api/v1/namespaces/{quote(t.namespace, safe='')}"
            f"/pods/{quote(t.pod, safe='')}/portforward"
        )

    def _spawn(self, work: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=work, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._listener], [], [], _TICK)
            if not ready:
                continue
            try:
                connection, peer = self._listener.accept()
            except OSError:  # closed
                return
            stream = _Stream()
            with self._lock:
                self._sockets.append(connection)
                self._streams[peer[1]] = stream
            self._spawn(self._serve, "port-forward stream", connection, stream)

    def _serve(self, connection: socket.socket, stream: _Stream) -> None:
        from mqtt_tls_probe.adapters.kube_modules import client_modules

        client_modules()  # the client's packages, registered as the loader needs them
        from kubernetes.stream.ws_client import portforward_call

        quiet_proxy_endings()

        started = time.monotonic()
        try:
            stream.forward = portforward_call(  # type: ignore[no-untyped-call]
                self._configuration,
                "GET",
                self.url,
                headers={"authorization": self._headers.get("authorization", "")},
                query_params=[("ports", str(self.target.port))],
            )
        except Exception as exc:  # ApiException(status=0, reason=...), whatever failed
            stream.failure = " ".join(str(getattr(exc, "reason", exc) or exc).split())
            stream.done.set()
            connection.close()
            return
        stream.opened_in = time.monotonic() - started
        stream.done.set()
        if self._stopping.is_set() or stream.closed:
            _release(stream.forward)
            return
        try:
            self._pump(connection, stream.forward.socket(self.target.port))
        finally:
            _release(stream.forward)
            with contextlib.suppress(OSError):
                connection.close()

    def _pump(self, connection: socket.socket, pod: Any) -> None:
        ends = [connection, pod]
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select(ends, [], [], _TICK)
                for end in ready:
                    data = end.recv(_CHUNK)
                    if not data:
                        return
                    (pod if end is connection else connection).sendall(data)
            except (OSError, ValueError):  # either end closed under us
                return

    def error_of(self, stream: _Stream) -> str | None:
        forward = stream.forward
        if forward is None:
            return None
        text: str | None = forward.error(self.target.port)
        return text

    def wait_open(self, local_port: int, deadline: float) -> _Stream:
        """The stream of the connection from ``local_port``, once its forward is open.

        Raises:
            ProbeError: ``connect_timeout``, ``connection_refused``, ``cluster_forbidden``.
        """
        stream = None
        while stream is None:
            with self._lock:
                stream = self._streams.get(local_port)
            if stream is None:
                if time.monotonic() >= deadline:
                    raise self._timed_out()
                time.sleep(0.005)
        if not stream.done.wait(max(deadline - time.monotonic(), 0)):
            stream.closed = True
            raise self._timed_out()
        if stream.failure is not None:
            raise self._open_failed(stream.failure)
        return stream

    def settle(self, stream: _Stream, deadline: float) -> None:
        """Wait briefly for the kubelet's error on the pod's port; raise it when it comes.

        Raises:
            ProbeError: ``connection_refused`` quoting the error channel's text.
        """
        window = max(SETTLE_FLOOR, 2 * stream.opened_in)
        until = min(deadline, time.monotonic() + window)
        while True:
            text = self.error_of(stream)
            if text:
                t = self.target
                raise ProbeError(
                    ErrorKind.CONNECTION_REFUSED,
                    f"The port-forward to pod {t.namespace}/{t.pod} port {t.port} failed: "
                    f"{clip(text)}",
                    "Check that the broker listens on that port in the pod "
                    f"(kubectl describe pod {t.pod} -n {t.namespace}).",
                )
            if time.monotonic() >= until:
                return
            time.sleep(0.01)

    def _timed_out(self) -> ProbeError:
        t = self.target
        return ProbeError(
            ErrorKind.CONNECT_TIMEOUT,
            f"The port-forward to pod {t.namespace}/{t.pod} port {t.port} did not open in time.",
            "Check that the API server is reachable and the pod runs, or raise --timeout.",
        )

    def _open_failed(self, reason: str) -> ProbeError:
        t = self.target
        message = (
            f"The API server refused the port-forward to pod {t.namespace}/{t.pod} "
            f"port {t.port}: {clip(reason)}"
        )
        if "403" in reason or "401" in reason:
            return ProbeError(
                ErrorKind.CLUSTER_FORBIDDEN,
                message,
                "Grant it: kubectl create role probe-forward --verb=get,create "
                f"--resource=pods/portforward -n {t.namespace}, then bind the role.",
                Stage.TCP,
            )
        return ProbeError(ErrorKind.CONNECTION_REFUSED, message)

    def close(self) -> None:
        """End the listener, every forward and every worker (bounded)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
            streams = list(self._streams.values())
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for stream in streams:
            stream.closed = True
        # One bound for all of them: a worker stuck in the client's WebSocket connect
        # (which has no timeout) is a daemon and is left behind, not waited for in turn.
        until = time.monotonic() + _CLOSE_WAIT
        for thread in threads:
            thread.join(max(0.0, until - time.monotonic()))

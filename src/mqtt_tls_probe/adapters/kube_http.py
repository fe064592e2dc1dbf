"""Requests to the Kubernetes API, bounded in time and size, through the client's ``rest`` layer.

GETs read objects; one POST creates a TokenRequest (``--sat-serviceaccount``).

Rule: a request ends by its deadline, connect, TLS handshake, headers and body
together, however slowly the server drips them; its body is read in chunks and
refused past ``MAX_BODY`` (a ConfigMap holds at most 1 MiB), never buffered
whole; no retry, no redirect. What goes wrong is ``cluster_unreachable``
saying what happened: refused, not answered in time, TLS, too large.

``kubernetes.client.rest.RESTClientObject`` builds the connection pool from the
loaded ``Configuration`` (CA, client certificate, ``tls-server-name``, proxies),
as ``ApiClient`` would. urllib3's timeouts are per socket operation, so a
server sending a byte per second never times out: a watchdog timer shuts the
request's socket down at the deadline, and the blocked read returns. To know
that socket, the pool's connection classes are subclassed to hand each new
socket (``_new_conn``, where the TCP connection is made, before TLS) and each
reused one (``request``) to the watchdog of the running request:
https://github.com/urllib3/urllib3/blob/2.8.0/src/urllib3/connection.py#L233-L266
The watchdog holds a duplicate of the descriptor (``shutdown`` acts on the
connection, and an ``SSLSocket`` cannot be ``dup()``-ed), closed after the request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from typing import Any, NamedTuple

from mqtt_tls_probe.adapters.kube_modules import (
    bind_urllib3_http2,
    client_modules,
    defer_urllib3_http2,
)
from mqtt_tls_probe.errors import ErrorKind, ProbeError

defer_urllib3_http2()  # before urllib3's first import: kube_modules says why
import urllib3  # noqa: E402
from urllib3 import exceptions  # noqa: E402

bind_urllib3_http2()

MAX_BODY = 4 * 1024 * 1024
_CHUNK = 64 * 1024
USER_AGENT = "mqtt-tls-probe"


class Answer(NamedTuple):  # not a dataclass: 0.6 ms less at import
    status: int
    body: bytes


class _Watchdog:
    """Shuts the running request's sockets down when its time is up."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0), self._fire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        try:
            duplicate = socket.socket(fileno=socket.dup(sock.fileno()))
        except OSError:  # already closed: nothing left to interrupt
            return
        with self._lock:
            self._sockets.append(duplicate)
            if self.fired:
                _shut(duplicate)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> _Watchdog:
        _RUNNING.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _RUNNING.watchdog = None
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the connection is gone already
        sock.shutdown(socket.SHUT_RDWR)


_RUNNING = threading.local()  # .watchdog: the running request's, in its thread


def _watch(sock: socket.socket | None) -> None:
    watchdog: _Watchdog | None = getattr(_RUNNING, "watchdog", None)
    if watchdog is not None and sock is not None:
        watchdog.watch(sock)


class _Watched:
    """Mixed into a urllib3 connection class: its sockets go to the running watchdog."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _watch(self.sock)  # a kept-alive connection's socket; None before the first connect
        return super().request(*args, **kwargs)  # type: ignore[misc]


def _watch_pools(pool_manager: Any) -> None:
    """Make every pool the manager creates use watched connections (plain, TLS, proxies, SOCKS)."""
    classes = dict(pool_manager.pool_classes_by_scheme)
    for scheme, pool in classes.items():
        base = pool.ConnectionCls
        connection = type(f"Watched{base.__name__}", (_Watched, base), {})
        classes[scheme] = type(f"Watched{pool.__name__}", (pool,), {"ConnectionCls": connection})
    pool_manager.pool_classes_by_scheme = classes


class ApiTransport:
    """The HTTP side of one cluster: its address, its credentials, its connection pool."""

    def __init__(self, configuration: Any, headers: dict[str, str]) -> None:
        self.host: str = configuration.host
        self._headers = {"User-Agent": USER_AGENT, **headers}
        self._rest = client_modules().rest.RESTClientObject(configuration)
        _watch_pools(self._rest.pool_manager)

    def get(self, path: str, accept: str, budget: float, timeout: float) -> Answer:
        """GET ``path`` within ``budget`` seconds from now (``timeout`` is what messages say).

        Raises:
            ProbeError: ``cluster_unreachable``.
        """
        return self.request("GET", path, accept, budget, timeout)

    def post(self, path: str, body: bytes, budget: float, timeout: float) -> Answer:
        """POST the JSON ``body`` to ``path``, bounded as ``get``; never retried.

        Raises:
            ProbeError: ``cluster_unreachable``.
        """
        return self.request("POST", path, "application/json", budget, timeout, body=body)

    def request(
        self,
        method: str,
        path: str,
        accept: str,
        budget: float,
        timeout: float,
        *,
        body: bytes | None = None,
    ) -> Answer:
        """One request within ``budget`` seconds, its answer's body capped at ``MAX_BODY``.

        Raises:
            ProbeError: ``cluster_unreachable``.
        """
        if budget <= 0:
            raise self._timed_out(path, timeout)
        started = time.monotonic()
        with _Watchdog(budget) as watchdog:
            try:
                return self._exchange(method, path, accept, budget, body)
            except ProbeError:
                raise
            except Exception as exc:  # urllib3 and ssl errors, and the watchdog's shutdown
                if watchdog.fired or time.monotonic() - started >= budget:
                    raise self._timed_out(path, timeout) from exc
                raise self._unreachable(exc) from exc

    def _exchange(
        self, method: str, path: str, accept: str, timeout: float, body: bytes | None
    ) -> Answer:
        headers = {**self._headers, "Accept": accept}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self._rest.pool_manager.request(
            method,
            self.host + path,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
            redirect=False,
            preload_content=False,
            decode_content=False,
        )
        try:
            body = _read_capped(response, self.host + path)
        except BaseException:
            response.close()  # a half-read body: the connection cannot be reused
            raise
        response.release_conn()
        return Answer(response.status, body)

    def close(self) -> None:
        self._rest.pool_manager.clear()

    def _timed_out(self, path: str, timeout: float) -> ProbeError:
        return ProbeError(
            ErrorKind.CLUSTER_UNREACHABLE,
            f"The API server {self.host} did not answer {path} within {timeout:g} s.",
            "Check that the API server is reachable (kubectl cluster-info), or raise --timeout.",
        )

    def _unreachable(self, exc: Exception) -> ProbeError:
        host = self.host
        causes = _causes(exc)
        cause = _one_line(causes[-1])
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return ProbeError(
                ErrorKind.CLUSTER_UNREACHABLE,
                f"The API server {host} refused the connection: nothing listens there.",
                "Check the kubeconfig's server address and that the cluster runs "
                "(kubectl cluster-info).",
            )
        if any(isinstance(c, exceptions.NameResolutionError | socket.gaierror) for c in causes):
            return ProbeError(
                ErrorKind.CLUSTER_UNREACHABLE,
                f"The API server's name in {host} does not resolve: {cause}.",
            )
        if any(isinstance(c, exceptions.SSLError | ssl.SSLError) for c in causes):
            return ProbeError(
                ErrorKind.CLUSTER_UNREACHABLE,
                f"The TLS connection to the API server {host} failed: {cause}.",
                "The kubeconfig's certificate-authority-data does not match the API server, "
                "or the server is not the one meant: check with kubectl cluster-info.",
            )
        return ProbeError(
            ErrorKind.CLUSTER_UNREACHABLE,
            f"The API server {host} cannot be reached: {cause}.",
        )


def _read_capped(response: Any, url: str) -> bytes:
    """The body, in chunks; refused once it passes ``MAX_BODY``, whatever it declared."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large(url, f"it declares {int(declared)} bytes")
    body = bytearray()
    for chunk in response.stream(_CHUNK, decode_content=False):
        body += chunk
        if len(body) > MAX_BODY:
            raise _too_large(url, "it kept sending")
    return bytes(body)


def _too_large(url: str, what: str) -> ProbeError:
    return ProbeError(
        ErrorKind.CLUSTER_UNREACHABLE,
        f"The API server's answer to {url} is larger than {MAX_BODY // (1024 * 1024)} MiB "
        f"({what}), the most the probe reads: a ConfigMap holds at most 1 MiB.",
        "Something other than a Kubernetes API server answers there: check the kubeconfig's "
        "server address and proxy.",
    )


def parse_json(answer: Answer, path: str) -> Any:
    """The JSON value of a 2xx answer.

    Raises:
        ProbeError: ``cluster_unreachable``: not JSON (or nested beyond reason).
    """
    try:
        return json.loads(answer.body)
    except (ValueError, RecursionError) as exc:
        raise ProbeError(
            ErrorKind.CLUSTER_UNREACHABLE,
            f"The API server answered {path} with something that is not JSON.",
        ) from exc


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


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__

"""Start and stop an exporter: the HTTP server (a thread per request) and the background loop.

Rule: ``start_exporter`` returns a running exporter and a ``stop``; the CLI
and the tests call the same function. The server is the standard library's
wsgiref with prometheus_client's ``ThreadingWSGIServer`` (``ThreadingMixIn``
with daemon threads, the class ``start_wsgi_server`` uses:
https://github.com/prometheus/client_python/blob/master/prometheus_client/exposition.py).
``start_wsgi_server`` itself serves one registry at every path, so it does not fit.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.exposition import ThreadingWSGIServer

from mqtt_tls_probe.config import format_target
from mqtt_tls_probe.exporter.app import ExporterApp
from mqtt_tls_probe.exporter.collector import FamiliesCollector
from mqtt_tls_probe.exporter.loop import BackgroundLoop, EventLog, TargetSource
from mqtt_tls_probe.exporter.own_metrics import ExporterMetrics
from mqtt_tls_probe.exporter.probing import ProbeGate
from mqtt_tls_probe.exporter.settings import ExporterSettings

_POLL = 0.1  # how soon serve_forever notices shutdown()


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (the app logs requests with -v); a slow client is cut off."""

    timeout = 30  # seconds to send the request and read the answer (a socket timeout)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def _no_log(event: str, **fields: object) -> None:
    del event, fields


@dataclass
class RunningExporter:
    """A serving exporter; ``stop`` ends the loop and the server, each wait bounded."""

    server: WSGIServer
    thread: threading.Thread
    background: BackgroundLoop | None
    metrics: ExporterMetrics

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{format_target(self.host, self.port)}"

    def stop(self, timeout: float = 5.0) -> None:
        if self.background is not None:
            self.background.stop(timeout)
        self.server.shutdown()
        self.thread.join(timeout)
        self.server.server_close()


def start_exporter(
    settings: ExporterSettings,
    *,
    target_source: TargetSource | None = None,
    log: EventLog = _no_log,
    verbose: bool = False,
) -> RunningExporter:
    """Bind, start serving in a thread, and start the background loop over ``target_source``.

    Raises:
        OSError: the address cannot be bound.
    """
    metrics = ExporterMetrics(settings.modules)
    gate = ProbeGate(settings.max_concurrent)
    background = None
    if target_source is not None:
        background = BackgroundLoop(target_source, settings.interval, gate, metrics, log)
        metrics.registry.register(FamiliesCollector(background.families))
    app = ExporterApp(settings, gate, metrics, log, verbose=verbose)
    server = make_server(
        settings.host,
        settings.port,
        app,
        server_class=_server_class(settings.host, settings.port),
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(
        target=server.serve_forever, args=(_POLL,), name="probe-exporter-http", daemon=True
    )
    thread.start()
    if background is not None:
        background.start()
    return RunningExporter(server, thread, background, metrics)


def _server_class(host: str, port: int) -> type[WSGIServer]:
    """``ThreadingWSGIServer`` for the address family ``host`` resolves to (IPv6 too)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    return Server

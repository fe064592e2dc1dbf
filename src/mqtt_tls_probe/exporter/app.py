"""The exporter's WSGI application: ``/probe`` (blackbox style), ``/metrics``, and refusals.

Rule: ``GET /probe?target=HOST:PORT&module=NAME`` runs one probe and answers
with its metrics from a fresh ``CollectorRegistry``, served by
``prometheus_client.make_wsgi_app`` (content negotiation, OpenMetrics and gzip
come with it). Everything is checked before the network is touched, and
refused in plain text: a missing or unparsable target, an unknown module or a
repeated parameter is 400, a target outside the allow-list 403, a full cap
503; any other path 404. Secrets never reach a response or a log line: only
targets, module names, outcomes and error kinds do.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import make_wsgi_app

from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.exporter.collector import registry_of
from mqtt_tls_probe.exporter.loop import EventLog
from mqtt_tls_probe.exporter.modules import DEFAULT_MODULE
from mqtt_tls_probe.exporter.own_metrics import ExporterMetrics
from mqtt_tls_probe.exporter.probing import ProbeGate, timed_probe
from mqtt_tls_probe.exporter.settings import ExporterSettings
from mqtt_tls_probe.exporter.targets import normalize_target
from mqtt_tls_probe.output.prometheus import report_metrics

_MAX_QUERY = 4096  # a target and a module name; anything longer is not a request of ours
_INDEX = (
    "mqtt-tls-probe exporter\n\n"
    "/probe?target=HOST:PORT&module=NAME  one probe, its metrics (module default: default)\n"
    "/metrics                             the exporter's own metrics and background results\n"
)


class _Refusal(Exception):
    """A request answered without probing: an HTTP status and one line of text."""

    def __init__(self, status: str, text: str, outcome: str, module: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.outcome = outcome
        self.module = module


class ExporterApp:
    """Routes requests; ``metrics_app`` serves the exporter's own registry."""

    def __init__(
        self,
        settings: ExporterSettings,
        gate: ProbeGate,
        metrics: ExporterMetrics,
        log: EventLog,
        *,
        verbose: bool = False,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.metrics = metrics
        self.log = log
        self.verbose = verbose
        self.metrics_app: WSGIApplication = make_wsgi_app(metrics.registry)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self.metrics_app(environ, start_response)
        if path == "/probe":
            return self.probe(environ, start_response)
        if path == "/":
            return _text(start_response, "200 OK", _INDEX)
        return _text(start_response, "404 Not Found", "not found: use /probe or /metrics\n")

    def probe(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            return _text(start_response, "405 Method Not Allowed", "use GET\n", [("Allow", "GET")])
        try:
            module_name, target = self._checked_request(environ.get("QUERY_STRING", ""))
        except _Refusal as refusal:
            return self._refuse(refusal, start_response)
        if not self.gate.try_enter():
            busy = _Refusal(
                "503 Service Unavailable", "too many probes running", "busy", module_name
            )
            return self._refuse(busy, start_response, [("Retry-After", "1")])
        module = self.settings.modules[module_name]
        try:
            with self.metrics.in_flight.track_inprogress():
                timed = timed_probe(lambda: module.config_for(target))
        except UsageError as exc:  # the module's secret file went away since the start
            self.metrics.record_refusal(module_name, "error")
            self.log("probe-config-failed", module=module_name, error=str(exc))
            return _text(
                start_response, "500 Internal Server Error", f"module {module_name}: {exc}\n"
            )
        except Exception as exc:
            self.metrics.internal_errors.inc()
            self.metrics.record_refusal(module_name, "error")
            self.log("probe-failed", target=target, module=module_name, error=type(exc).__name__)
            return _text(start_response, "500 Internal Server Error", "internal error\n")
        finally:
            self.gate.leave()
        self.metrics.record_probe(module_name, timed.report, timed.seconds)
        self._log_request(
            "success" if timed.report.ok else "failure",
            module=module_name,
            target=target,
            kind=str(timed.report.error.kind) if timed.report.error else None,
        )
        registry = registry_of(report_metrics(timed.report, timed.seconds))
        page: Iterable[bytes] = make_wsgi_app(registry)(environ, start_response)
        return page

    def _refuse(
        self,
        refusal: _Refusal,
        start_response: StartResponse,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        self.metrics.record_refusal(refusal.module, refusal.outcome)
        self._log_request(refusal.outcome, module=refusal.module, status=refusal.status)
        return _text(start_response, refusal.status, refusal.text + "\n", headers)

    def _checked_request(self, query: str) -> tuple[str, str]:
        """(module, normalized target) of an acceptable request."""
        if len(query) > _MAX_QUERY:
            raise _Refusal("400 Bad Request", "query string too long", "bad_request")
        params = parse_qs(query, keep_blank_values=True)
        modules = params.get("module", [DEFAULT_MODULE])
        targets = params.get("target", [])
        if len(modules) != 1 or len(targets) != 1:
            raise _Refusal(
                "400 Bad Request", "give exactly one target= and at most one module=", "bad_request"
            )
        module = modules[0] or DEFAULT_MODULE
        if module not in self.settings.modules:
            known = ", ".join(sorted(self.settings.modules))
            raise _Refusal("400 Bad Request", f"unknown module (known: {known})", "bad_request")
        try:
            target = normalize_target(targets[0])
        except UsageError as exc:
            raise _Refusal("400 Bad Request", str(exc), "bad_request", module) from exc
        if not self.settings.allow.allows(target):
            raise _Refusal(
                "403 Forbidden",
                f"target {target} is not allowed (--allow-target, config allow_targets)",
                "forbidden",
                module,
            )
        return module, target

    def _log_request(self, outcome: str, **fields: object) -> None:
        if self.verbose:
            self.log("probe-request", outcome=outcome, **fields)


def _text(
    start_response: StartResponse,
    status: str,
    text: str,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = text.encode("utf-8", "replace")
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *(headers or []),
        ],
    )
    return [body]

"""``probe cluster --listeners``, and the ``listener``/``forward`` parts of a probe report.

Rule: read the report, compute nothing; the text lines are escaped by the caller.
"""

from __future__ import annotations

from typing import Any

from mqtt_tls_probe.model import ForwardInfo, ListenerInfo, ListenersReport


def listener_json(info: ListenerInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "service": info.service,
        "service_type": info.service_type,
        "port": info.port,
        "protocol": info.protocol,
        "tls": info.tls,
        "authentication": list(info.authentication),
        "address_source": info.address_source,
    }


def forward_json(info: ForwardInfo) -> dict[str, Any]:
    return {"namespace": info.namespace, "pod": info.pod, "port": info.port}


def render_json(report: ListenersReport) -> dict[str, Any]:
    from mqtt_tls_probe.output.json_doc import error_json

    return {
        "ok": report.ok,
        "namespace": report.namespace,
        "origin": report.origin,
        "api_version": report.api_version,
        "listeners": [
            {
                "listener": listener_json(found.listener),
                "address": found.address,
                "server_name": found.server_name,
                "audiences": list(found.audiences),
                "credential": found.credential,
                "probed": found.problem is None,
                "problem": found.problem,
            }
            for found in report.listeners
        ],
        "error": error_json(report.error),
        "exit_code": report.exit_code,
    }


def render_text(report: ListenersReport) -> list[str]:
    origin = f" ({report.origin})" if report.origin else ""
    lines = [f"probe cluster --listeners: namespace {report.namespace}{origin}"]
    if report.error is not None:
        e = report.error
        return [
            *lines,
            "",
            f"FAILED: {e.kind} (exit {e.exit_code})",
            f"cause: {e.message}",
            f"hint:  {e.hint}",
        ]
    if not report.listeners:
        lines.append("  no BrokerListener ports")
    for found in report.listeners:
        info = found.listener
        tls = "TLS" if info.tls else "no TLS"
        auth = ", ".join(info.authentication) or "no authentication"
        via = info.address_source.replace("_", " ")
        lines.append(
            f"  {info.name}/{info.port} {info.service_type} {info.service} {info.protocol}, "
            f"{tls}, {auth}"
        )
        if found.problem is not None:
            lines.append(f"      not probed: {found.problem}")
        else:
            lines.append(f"      probe {found.address} via {via}, server name {found.server_name}")
        if found.credential is not None:
            lines.append(f"      expects: {found.credential}")
    probed = sum(1 for f in report.listeners if f.problem is None)
    lines += ["", f"{probed} of {len(report.listeners)} port(s) can be probed (exit 0)"]
    return lines

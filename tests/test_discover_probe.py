"""--discover end to end: every listener port found in the (suite's) cluster is probed as it
must be: a TLS ClusterIp port through the port-forward, a plain port at its LoadBalancer
ingress in plain MQTT (a no_tls warning), a WebSockets port not at all; and the exporter's
--discover source, round after round."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.adapters.discovery import discover
from mqtt_tls_probe.config import ClusterOptions, ConnectInputs
from mqtt_tls_probe.dev.pki import PkiFiles
from mqtt_tls_probe.exporter.discovered import discovered_targets
from mqtt_tls_probe.exporter.modules import Module
from mqtt_tls_probe.exporter.server import start_exporter
from mqtt_tls_probe.exporter.settings import ExporterSettings
from mqtt_tls_probe.orchestrators.connect import run_probe
from mqtt_tls_probe.orchestrators.discover import probe_configs
from mqtt_tls_probe.output.json_doc import report_json

from . import aio_resources as aio
from .brokers import mosquitto
from .kube_api import FakeApiServer
from .test_exporter import get, value, wait_for

NS = "azure-iot-operations"
POD = "aio-broker-frontend-0"
BASE = f"/apis/{aio.GROUP}/v1/namespaces/{NS}"


@pytest.fixture
def cluster(pki: PkiFiles, tmp_path: Path) -> Iterator[tuple[FakeApiServer, int, int]]:
    """The API server, a TLS mosquitto (the pod of aio-broker) and a plain one (the LB)."""
    tls = [f"certfile {pki.server_cert}", f"keyfile {pki.server_key}", "allow_anonymous true"]
    with contextlib.ExitStack() as stack:
        tls_port = stack.enter_context(mosquitto(tmp_path / "tls", tls))
        plain_port = stack.enter_context(mosquitto(tmp_path / "plain", ["allow_anonymous true"]))
        api = stack.enter_context(FakeApiServer(tmp_path / "apiserver"))
        listeners = [
            aio.broker_listener("default", {
                "serviceName": "aio-broker", "serviceType": "ClusterIp",
                "ports": [{"port": 18883, "protocol": "Mqtt", "tls": {"mode": "Automatic"}}],
            }),
            aio.broker_listener("plain", {
                "serviceName": "aio-broker-plain", "serviceType": "LoadBalancer",
                "ports": [{"port": plain_port, "protocol": "Mqtt"},
                          {"port": 9001, "protocol": "WebSockets"}],
            }),
        ]  # fmt: skip
        api.objects[f"{BASE}/brokerlisteners"] = aio.items(
            "BrokerListener", listeners, f"{aio.GROUP}/v1"
        )
        api.objects[f"{BASE}/brokerauthentications"] = aio.items(
            "BrokerAuthentication", [], f"{aio.GROUP}/v1"
        )
        api.objects[f"/api/v1/namespaces/{NS}/services/aio-broker-plain"] = aio.service(
            "aio-broker-plain", "LoadBalancer",
            [{"name": "mqtt", "port": plain_port}, {"name": "ws", "port": 9001}],
            ingress=[{"ip": "127.0.0.1"}],
        )  # fmt: skip
        api.add_endpoint_slice(NS, "aio-broker", {POD: True}, [{"name": "m", "port": 18883}])
        api.pod_ports[(NS, POD, 18883)] = tls_port
        yield api, tls_port, plain_port


def _inputs(api: FakeApiServer, pki: PkiFiles, tmp_path: Path) -> ConnectInputs:
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    return ConnectInputs(
        ca_file=pki.ca_cert,
        server_name="localhost",  # what the suite's certificate lists (--server-name wins)
        cluster=ClusterOptions(kubeconfig=kubeconfig),
        timeout=5.0,
    )


def test_every_port_probed_as_it_must_be(
    cluster: tuple[FakeApiServer, int, int], pki: PkiFiles, tmp_path: Path
) -> None:
    api, _, plain_port = cluster
    inputs = _inputs(api, pki, tmp_path)
    found = discover(inputs.cluster, 5, environ={})
    probes = {p.listener.listener.port: p for p in probe_configs(found, inputs)}
    assert sorted(probes) == sorted([18883, plain_port, 9001])
    websockets = probes[9001]
    assert websockets.config is None
    assert websockets.listener.problem is not None
    assert "WebSockets" in websockets.listener.problem

    forwarded = probes[18883]
    assert forwarded.config is not None
    assert forwarded.name == "aio-broker.azure-iot-operations:18883"
    doc = report_json(run_probe(forwarded.config))
    assert doc["ok"], doc["error"]
    assert doc["listener"] == {
        "name": "default", "service": "aio-broker", "service_type": "ClusterIp",
        "port": 18883, "protocol": "Mqtt", "tls": True, "authentication": [],
        "address_source": "port_forward",
    }  # fmt: skip
    assert doc["forward"] == {"namespace": NS, "pod": POD, "port": 18883}
    assert list(doc)[-1] == "exit_code"

    plain = probes[plain_port]
    assert plain.config is not None
    assert plain.name == f"127.0.0.1:{plain_port}"
    doc = report_json(run_probe(plain.config))
    assert doc["ok"], doc["error"]
    assert doc["exit_code"] == 0
    stages = {s["name"]: s for s in doc["stages"]}
    assert stages["tls"]["skipped"]
    assert stages["verify"]["skipped"]
    assert "does not use TLS" in stages["tls"]["detail"]
    assert stages["mqtt"]["ok"]
    assert [w["code"] for w in doc["warnings"]] == ["no_tls"]
    assert doc["listener"]["address_source"] == "load_balancer"
    assert doc["listener"]["tls"] is False
    assert doc["tls"] is None
    assert "forward" not in doc


def test_a_missing_credential_names_its_flag(pki: PkiFiles, tmp_path: Path) -> None:
    """A port whose BrokerAuthentication wants a token; the run has none; mosquitto (without
    anonymous access) refuses: the hint names --sat-file/--sat-serviceaccount."""
    tls = [f"certfile {pki.server_cert}", f"keyfile {pki.server_key}", "allow_anonymous false"]
    with (
        mosquitto(tmp_path / "broker", tls) as port,
        FakeApiServer(tmp_path / "apiserver") as api,
    ):
        listener = aio.broker_listener("lb", {
            "serviceName": "aio-lb", "serviceType": "LoadBalancer",
            "ports": [{"port": port, "authenticationRef": "default", "tls": {"mode": "Automatic"}}],
        })  # fmt: skip
        api.objects[f"{BASE}/brokerlisteners"] = aio.items("L", [listener], "v1")
        api.objects[f"{BASE}/brokerauthentications"] = aio.items(
            "A", [aio.default_authentication()], "v1"
        )
        api.objects[f"/api/v1/namespaces/{NS}/services/aio-lb"] = aio.service(
            "aio-lb", "LoadBalancer", [{"port": port}], ingress=[{"ip": "127.0.0.1"}]
        )
        inputs = _inputs(api, pki, tmp_path)
        (only,) = probe_configs(discover(inputs.cluster, 5, environ={}), inputs)
        assert only.config is not None
        doc = report_json(run_probe(only.config))
    assert doc["exit_code"] == 7
    assert doc["listener"]["authentication"] == ["ServiceAccountToken"]
    assert "--sat-serviceaccount" in doc["error"]["hint"]
    assert "audience aio-internal" in doc["error"]["hint"]


def test_the_exporter_discovers_round_after_round(
    cluster: tuple[FakeApiServer, int, int], pki: PkiFiles, tmp_path: Path
) -> None:
    api, _, plain_port = cluster
    default = Module("default", _inputs(api, pki, tmp_path))
    settings = ExporterSettings(modules={"default": default}, port=0, interval=0.2)
    events: list[tuple[str, dict[str, Any]]] = []
    running = start_exporter(
        settings,
        target_source=discovered_targets(default, environ={}),
        log=lambda event, **fields: events.append((event, fields)),
        verbose=True,
    )
    forwarded = "aio-broker.azure-iot-operations:18883"
    plain = f"127.0.0.1:{plain_port}"
    try:

        def both_probed() -> bool:
            page = get(f"{running.url}/metrics")[2]
            return all(value(page, "probe_success", target=t) == 1 for t in (forwarded, plain))

        wait_for(both_probed, "a round over the discovered listeners")
        lists = sum(1 for r in api.requests if r.path == f"{BASE}/brokerlisteners")
        deadline = time.monotonic() + 10
        while sum(1 for r in api.requests if r.path == f"{BASE}/brokerlisteners") == lists:
            assert time.monotonic() < deadline, "no second round"
            time.sleep(0.05)
    finally:
        running.stop()
    assert not [e for e in events if e[0] == "background-source-failed"]


def _scan(api: FakeApiServer, pki: PkiFiles, tmp_path: Path, *args: str) -> Any:
    from .helpers import probe

    kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig"))
    return probe(
        "scan", "--discover", "--kubeconfig", kubeconfig, "--ca-file", str(pki.ca_cert),
        "--server-name", "localhost", "--timeout", "5", *args,
    )  # fmt: skip


def test_scan_discover_end_to_end(
    cluster: tuple[FakeApiServer, int, int], pki: PkiFiles, tmp_path: Path
) -> None:
    import json

    api, _, plain_port = cluster
    result = _scan(api, pki, tmp_path, "--output", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    by_source = {t["listener"]["address_source"]: t for t in doc["targets"]}
    assert sorted(by_source) == ["load_balancer", "port_forward"]
    forwarded = by_source["port_forward"]
    assert forwarded["ok"]
    assert forwarded["forward"]["pod"] == POD
    plain = by_source["load_balancer"]
    assert plain["ok"]
    assert plain["target"]["port"] == plain_port
    assert [w["code"] for w in plain["warnings"]] == ["no_tls"]
    assert doc["summary"] == {"total": 2, "passed": 2, "failed": 0, "by_kind": {}}
    # The WebSockets port is named on stderr, with why; it does not change the exit code.
    assert "not probed: listener plain port 9001 (Service aio-broker-plain): MQTT over " in (
        result.stderr
    )


def test_scan_discover_require_tls_fails_the_plain_port(
    cluster: tuple[FakeApiServer, int, int], pki: PkiFiles, tmp_path: Path
) -> None:
    import json

    api, _, plain_port = cluster
    result = _scan(api, pki, tmp_path, "--require-tls", "--output", "json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 5
    failed = [t for t in doc["targets"] if not t["ok"]]
    assert [t["target"]["port"] for t in failed] == [plain_port]
    assert failed[0]["error"]["kind"] == "not_tls"


def test_scan_discover_usage_and_cluster_errors(
    cluster: tuple[FakeApiServer, int, int], pki: PkiFiles, tmp_path: Path
) -> None:
    api, _, _ = cluster
    named = _scan(api, pki, tmp_path, "127.0.0.1:1")
    assert named.exit_code == 2
    assert "name none" in named.stderr
    from .helpers import probe

    assert probe("scan", "127.0.0.1:1", "--require-tls").exit_code == 2
    api.forbidden.add(f"{BASE}/brokerlisteners")
    forbidden = _scan(api, pki, tmp_path)
    assert forbidden.exit_code == 3
    assert "may not list brokerlisteners" in forbidden.stderr


def test_scan_discover_text_marks_the_plain_port(
    cluster: tuple[FakeApiServer, int, int], pki: PkiFiles, tmp_path: Path
) -> None:
    api, _, plain_port = cluster
    result = _scan(api, pki, tmp_path)
    assert result.exit_code == 0, result.stdout
    (line,) = [x for x in result.stdout.splitlines() if f":{plain_port}" in x]
    assert "PASS" in line
    assert line.endswith("no TLS (plain MQTT)")
    forwarded = next(x for x in result.stdout.splitlines() if "aio-broker." in x)
    assert "no TLS" not in forwarded


@pytest.mark.parametrize(("flag", "expected"), [(None, "aio-mq"), ("other", "other")])
def test_minted_token_takes_the_listener_audience(
    pki: PkiFiles, tmp_path: Path, flag: str | None, expected: str
) -> None:
    with FakeApiServer(tmp_path / "apiserver") as api:
        listener = aio.broker_listener("lb", {
            "serviceName": "aio-lb", "serviceType": "LoadBalancer",
            "ports": [{"port": 8883, "authenticationRef": "sat", "tls": {"mode": "Automatic"}}],
        })  # fmt: skip
        sat = aio.broker_authentication("sat", [{
            "method": "ServiceAccountToken",
            "serviceAccountTokenSettings": {"audiences": ["aio-mq", "aio-internal"]},
        }])  # fmt: skip
        api.objects[f"{BASE}/brokerlisteners"] = aio.items("L", [listener], "v1")
        api.objects[f"{BASE}/brokerauthentications"] = aio.items("A", [sat], "v1")
        api.objects[f"/api/v1/namespaces/{NS}/services/aio-lb"] = aio.service(
            "aio-lb", "LoadBalancer", [{"port": 8883}], ingress=[{"ip": "127.0.0.1"}]
        )
        inputs = _inputs(api, pki, tmp_path)._replace(sat_serviceaccount="probe", sat_audience=flag)
        (only,) = probe_configs(discover(inputs.cluster, 5, environ={}), inputs)
    assert only.config is not None
    request = only.config.mqtt.sat_request
    assert request is not None
    assert (request.namespace, request.name, request.audience) == (NS, "probe", expected)
    assert only.config.credential_hint is None  # the run brings the credential

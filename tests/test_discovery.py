"""--discover's reads, and ``probe cluster --listeners``, against the suite's API server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.adapters.discovery import discover, in_cluster
from mqtt_tls_probe.config import ClusterOptions
from mqtt_tls_probe.errors import ProbeError

from . import aio_resources as aio
from .helpers import probe, probe_json
from .kube_api import FakeApiServer

NS = "azure-iot-operations"
V1 = f"/apis/{aio.GROUP}/v1/namespaces/{NS}"
SERVICES = f"/api/v1/namespaces/{NS}/services"


def populate(api: FakeApiServer, version: str = "v1") -> None:
    base = f"/apis/{aio.GROUP}/{version}/namespaces/{NS}"
    listeners = [
        aio.default_listener(),
        aio.load_balancer_listener(),
        aio.node_port_listener(),
        aio.manual_tls_listener(),
        aio.broker_listener(
            "ws", {"serviceName": "aio-ws", "serviceType": "ClusterIp",
                   "ports": [{"port": 9001, "protocol": "WebSockets"}]},
        ),
    ]  # fmt: skip
    group_version = f"{aio.GROUP}/{version}"
    api.objects[f"{base}/brokerlisteners"] = aio.items("BrokerListener", listeners, group_version)
    api.objects[f"{base}/brokerauthentications"] = aio.items(
        "BrokerAuthentication",
        [aio.default_authentication(), aio.x509_authentication()],
        group_version,
    )
    api.objects[f"{SERVICES}/aio-broker-loadbalancer"] = aio.service(
        "aio-broker-loadbalancer",
        "LoadBalancer",
        [{"name": "p1883", "port": 1883}, {"name": "p8883", "port": 8883}],
        ingress=[{"ip": "192.0.2.10"}],
    )
    api.objects[f"{SERVICES}/aio-broker-nodeport"] = aio.service(
        "aio-broker-nodeport", "NodePort", [{"port": 1884, "nodePort": 31884}]
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeApiServer]:
    with FakeApiServer(tmp_path / "apiserver") as server:
        yield server


def _options(api: FakeApiServer, tmp_path: Path) -> ClusterOptions:
    return ClusterOptions(kubeconfig=api.kubeconfig(tmp_path / "kubeconfig"))


def _by_port(targets: Any) -> dict[int, Any]:
    return {t.port.port: t for t in targets}


def test_every_listener_port_becomes_a_target(api: FakeApiServer, tmp_path: Path) -> None:
    populate(api)
    found = discover(_options(api, tmp_path), 5, environ={})
    assert found.api_version == "v1"
    assert not found.in_cluster
    targets = _by_port(found.targets)
    assert sorted(targets) == [1883, 1884, 8883, 8885, 9001, 18883]
    default = targets[18883]
    assert (default.address_source, default.host, default.server_name) == (
        "port_forward", "127.0.0.1", "aio-broker",
    )  # fmt: skip
    assert default.port.authentication == ("ServiceAccountToken",)
    assert default.port.tls
    assert default.problem is None
    plain = targets[1883]
    assert (plain.address, plain.address_source, plain.port.tls) == (
        "192.0.2.10:1883", "load_balancer", False,
    )  # fmt: skip
    assert targets[8883].port.audiences == ("aio-internal",)
    node = targets[1884]
    # The API server's host stands for the node (single-node dev clusters).
    assert (node.address, node.address_source) == ("127.0.0.1:31884", "node_port")
    assert node.port.authentication == ("X509",)
    assert "--cert and --key" in (node.port.credential_hint() or "")
    assert targets[9001].problem is not None
    assert "WebSockets" in targets[9001].problem
    # Only the Services that are not ClusterIp were read; never a Secret.
    paths = [r.path for r in api.requests]
    assert sorted(p for p in paths if "/services/" in p) == [
        f"{SERVICES}/aio-broker-loadbalancer", f"{SERVICES}/aio-broker-nodeport",
    ]  # fmt: skip
    assert not any("secrets" in p for p in paths)


def test_in_a_pod_cluster_ip_is_dialled_by_dns(tmp_path: Path) -> None:
    options = ClusterOptions()
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster(options, environ)
    assert not in_cluster(ClusterOptions(kubeconfig=tmp_path / "k"), environ)
    from mqtt_tls_probe.core.listeners import listener_ports, plan_targets

    ports = listener_ports(aio.items("BrokerListener", [aio.default_listener()], "v1"), {})
    (target,) = plan_targets(ports, {}, namespace=NS, in_cluster=True, node_address=None)
    assert target.address == "aio-broker.azure-iot-operations:18883"
    assert target.address_source == "cluster_dns"


def test_v1beta1_is_the_fallback(api: FakeApiServer, tmp_path: Path) -> None:
    populate(api, "v1beta1")
    found = discover(_options(api, tmp_path), 5, environ={})
    assert found.api_version == "v1beta1"
    assert len(found.targets) == 6
    assert [r.path for r in api.requests][:2] == [
        f"{V1}/brokerlisteners",
        f"/apis/{aio.GROUP}/v1beta1/namespaces/{NS}/brokerlisteners",
    ]


@pytest.mark.parametrize(
    ("path", "verb", "resource"),
    [
        (f"{V1}/brokerlisteners", "list", "brokerlisteners"),
        (f"{V1}/brokerauthentications", "list", "brokerauthentications"),
        (f"{SERVICES}/aio-broker-loadbalancer", "get", "services"),
    ],
)
def test_forbidden_names_the_verb_and_resource(
    api: FakeApiServer, tmp_path: Path, path: str, verb: str, resource: str
) -> None:
    populate(api)
    api.forbidden.add(path)
    with pytest.raises(ProbeError) as raised:
        discover(_options(api, tmp_path), 5, environ={})
    assert raised.value.kind == "cluster_forbidden"
    assert f"may not {verb} {resource} in the namespace {NS}" in raised.value.message
    assert f"--verb={verb} --resource={resource}" in str(raised.value.hint)


def test_no_broker_listeners_served(api: FakeApiServer, tmp_path: Path) -> None:
    with pytest.raises(ProbeError) as raised:
        discover(_options(api, tmp_path), 5, environ={})
    assert raised.value.kind == "cluster_unreachable"
    assert "serves no BrokerListener" in raised.value.message


def test_cluster_listeners_json_and_text(api: FakeApiServer, tmp_path: Path) -> None:
    populate(api)
    config = str(api.kubeconfig(tmp_path / "kubeconfig"))
    code, doc = probe_json("cluster", "--listeners", "--kubeconfig", config)
    assert code == 0
    assert doc["api_version"] == "v1"
    first = doc["listeners"][0]
    assert first["listener"] == {
        "name": "default",
        "service": "aio-broker",
        "service_type": "ClusterIp",
        "port": 18883,
        "protocol": "Mqtt",
        "tls": True,
        "authentication": ["ServiceAccountToken"],
        "address_source": "port_forward",
    }
    assert first["probed"]
    assert first["server_name"] == "aio-broker"
    assert "--sat-serviceaccount" in first["credential"]
    ws = next(e for e in doc["listeners"] if e["listener"]["name"] == "ws")
    assert not ws["probed"]
    assert "WebSockets" in ws["problem"]
    text = probe("cluster", "--listeners", "--kubeconfig", config)
    assert text.exit_code == 0
    assert "default/18883 ClusterIp aio-broker Mqtt, TLS, ServiceAccountToken" in text.stdout
    assert "probe 192.0.2.10:1883 via load balancer, server name aio-broker-loadbalancer" in (
        text.stdout
    )
    assert "not probed: MQTT over WebSockets" in text.stdout
    assert "5 of 6 port(s) can be probed" in text.stdout


def test_cluster_listeners_forbidden_exits_3(api: FakeApiServer, tmp_path: Path) -> None:
    populate(api)
    api.forbidden.add(f"{V1}/brokerlisteners")
    config = str(api.kubeconfig(tmp_path / "kubeconfig"))
    code, doc = probe_json("cluster", "--listeners", "--kubeconfig", config)
    assert code == 3
    assert doc["error"]["kind"] == "cluster_forbidden"
    assert "list brokerlisteners" in doc["error"]["message"]
    assert json.dumps(doc).count("secret") == 0

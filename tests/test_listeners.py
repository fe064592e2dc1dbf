"""Discovery's pure part: BrokerListener/BrokerAuthentication/Service JSON -> scan targets."""

from __future__ import annotations

from typing import Any

import pytest

from mqtt_tls_probe.core.listeners import (
    AddressSource,
    ListenerPort,
    authentication_methods,
    listener_ports,
    plan_targets,
)

from . import aio_resources as aio

LISTENERS = aio.items(
    "BrokerListener",
    [
        aio.default_listener(),
        aio.load_balancer_listener(),
        aio.node_port_listener(),
        aio.manual_tls_listener(),
    ],
    f"{aio.GROUP}/v1",
)
AUTHENTICATIONS = {"default": aio.default_authentication(), "x509": aio.x509_authentication()}
SERVICES: dict[str, object] = {
    "aio-broker-loadbalancer": aio.service(
        "aio-broker-loadbalancer",
        "LoadBalancer",
        [{"port": 1883}, {"port": 8883}],
        ingress=[{"ip": "20.1.2.3"}],
    ),
    "aio-broker-nodeport": aio.service(
        "aio-broker-nodeport", "NodePort", [{"port": 1884, "nodePort": 31884}]
    ),
}


def _ports() -> list[ListenerPort]:
    return listener_ports(LISTENERS, AUTHENTICATIONS)


def test_every_port_of_every_listener_with_its_authentication() -> None:
    ports = {(p.listener, p.port): p for p in _ports()}
    assert set(ports) == {
        ("default", 18883),
        ("loadbalancer-listener", 1883),
        ("loadbalancer-listener", 8883),
        ("aio-broker-nodeport", 1884),
        ("manual-tls", 8885),
    }
    default = ports["default", 18883]
    assert (default.service, default.service_type, default.tls) == ("aio-broker", "ClusterIp", True)
    assert default.authentication == ("ServiceAccountToken",)
    assert default.audiences == ("aio-internal",)
    assert default.needs_token
    plain = ports["loadbalancer-listener", 1883]
    assert (plain.service_type, plain.tls, plain.authentication) == ("LoadBalancer", False, ())
    assert plain.credential_hint() is None
    node = ports["aio-broker-nodeport", 1884]
    assert node.service == "aio-broker-nodeport"  # no serviceName: the listener's name
    assert node.node_port == 31884
    assert node.authentication == ("X509",)
    assert "--cert and --key" in (node.credential_hint() or "")
    manual = ports["manual-tls", 8885]
    assert (manual.tls, manual.tls_mode) == (True, "Manual")
    assert all(p.problem is None for p in ports.values())


def test_targets_from_outside_the_cluster() -> None:
    targets = plan_targets(
        _ports(),
        SERVICES,
        namespace="azure-iot-operations",
        in_cluster=False,
        node_address="192.0.2.10",
    )
    by_port = {t.port.port: t for t in targets}
    assert by_port[18883].address_source == AddressSource.PORT_FORWARD
    assert by_port[18883].server_name == "aio-broker"
    assert by_port[8883].address == "20.1.2.3:8883"
    assert by_port[8883].server_name == "aio-broker-loadbalancer"
    assert by_port[8883].address_source == AddressSource.LOAD_BALANCER
    assert by_port[1884].address == "192.0.2.10:31884"
    assert by_port[1884].address_source == AddressSource.NODE_PORT
    assert all(t.problem is None for t in targets)


def test_targets_from_a_pod() -> None:
    targets = plan_targets(
        _ports(), SERVICES, namespace="azure-iot-operations", in_cluster=True, node_address=None
    )
    by_port = {t.port.port: t for t in targets}
    assert by_port[18883].address == "aio-broker.azure-iot-operations:18883"
    assert by_port[18883].address_source == AddressSource.CLUSTER_DNS
    assert by_port[8885].address == "aio-broker-manual.azure-iot-operations:8885"
    # The LoadBalancer path stays the LoadBalancer path, from a pod too.
    assert by_port[8883].address == "20.1.2.3:8883"


def test_missing_addresses_are_problems_not_guesses() -> None:
    no_ingress = {
        "aio-broker-loadbalancer": aio.service("aio-broker-loadbalancer", "LoadBalancer", [])
    }
    targets = plan_targets(
        _ports(), no_ingress, namespace="ns", in_cluster=False, node_address=None
    )
    by_port = {t.port.port: t for t in targets}
    assert "no ingress address yet" in (by_port[8883].problem or "")
    assert "no node address" in (by_port[1884].problem or "")


@pytest.mark.parametrize(
    ("spec_type", "expected"),
    [("ClusterIp", "ClusterIp"), ("clusterIP", "ClusterIp"), ("LOADBALANCER", "LoadBalancer")],
)
def test_service_types_compare_case_insensitively(spec_type: str, expected: str) -> None:
    listener = aio.broker_listener("l", {"serviceType": spec_type, "ports": [{"port": 1}]})
    [port] = listener_ports(aio.items("BrokerListener", [listener], "v1"), {})
    assert port.service_type == expected


@pytest.mark.parametrize(
    "document",
    [
        None,
        "a string",
        {"items": "not a list"},
        {"items": [1, "x", None]},
        {"items": [{"metadata": "x", "spec": "y"}]},
        {"items": [{"spec": {"ports": [{"port": "eighty"}, None, {"port": 70000}]}}]},
        {"items": [{"spec": {"serviceType": "Ingress", "ports": [{"port": 1}]}}]},
    ],
)
def test_wrong_shapes_become_problems_never_exceptions(document: Any) -> None:
    for port in listener_ports(document, {"default": "not an object"}):
        assert port.problem is not None


def test_a_missing_authentication_and_websockets_are_problems() -> None:
    listener = aio.broker_listener(
        "ws",
        {
            "ports": [
                {"port": 1, "authenticationRef": "gone"},
                {"port": 2, "protocol": "WebSockets"},
            ]
        },
    )
    first, second = listener_ports(aio.items("BrokerListener", [listener], "v1"), {})
    assert "gone was not found" in (first.problem or "")
    assert "WebSockets" in (second.problem or "")


def test_authentication_methods_defaults_and_shapes() -> None:
    sat_without_audiences = aio.broker_authentication("a", [{"method": "serviceAccountToken"}])
    assert authentication_methods(sat_without_audiences) == (
        ("ServiceAccountToken",),
        ("aio-internal",),
    )
    custom = aio.broker_authentication("c", [{"method": "Custom"}, {"method": 5}, {}])
    assert authentication_methods(custom) == (("Custom",), ())
    assert authentication_methods({"spec": "nonsense"}) == ((), ())

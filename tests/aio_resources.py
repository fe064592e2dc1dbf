"""Kubernetes objects shaped like a real Azure IoT Operations cluster's, for discovery tests.

The default listener, a LoadBalancer with 1883 (no TLS, no authentication,
"testing only") and 8883 (TLS and authentication), a NodePort 1884 -> 31884,
and a Manual TLS port, as the AIO docs' examples configure them.
"""

from __future__ import annotations

from typing import Any

from mqtt_tls_probe.aio import NAMESPACE

GROUP = "mqttbroker.iotoperations.azure.com"


def _metadata(name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": "1"}


def broker_listener(name: str, spec: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "BrokerListener",
        "metadata": _metadata(name),
        "spec": {"brokerRef": "default", **spec},
    }


def default_listener() -> dict[str, Any]:
    return broker_listener(
        "default",
        {
            "serviceName": "aio-broker",
            "serviceType": "ClusterIp",
            "ports": [
                {
                    "port": 18883,
                    "authenticationRef": "default",
                    "protocol": "Mqtt",
                    "tls": {
                        "mode": "Automatic",
                        "certManagerCertificateSpec": {
                            "issuerRef": {
                                "group": "cert-manager.io",
                                "kind": "ClusterIssuer",
                                "name": "azure-iot-operations-aio-certificate-issuer",
                            }
                        },
                    },
                }
            ],
        },
    )


def load_balancer_listener() -> dict[str, Any]:
    return broker_listener(
        "loadbalancer-listener",
        {
            "serviceName": "aio-broker-loadbalancer",
            "serviceType": "loadBalancer",  # as Microsoft's own YAML writes it
            "ports": [
                {"port": 1883, "protocol": "Mqtt"},
                {
                    "port": 8883,
                    "authenticationRef": "default",
                    "protocol": "Mqtt",
                    "tls": {"mode": "Automatic"},
                },
            ],
        },
    )


def node_port_listener() -> dict[str, Any]:
    # No serviceName: the listener's name is the service name.
    return broker_listener(
        "aio-broker-nodeport",
        {
            "serviceType": "NodePort",
            "ports": [{"port": 1884, "nodePort": 31884, "authenticationRef": "x509"}],
        },
    )


def manual_tls_listener() -> dict[str, Any]:
    return broker_listener(
        "manual-tls",
        {
            "serviceName": "aio-broker-manual",
            "serviceType": "ClusterIp",
            "ports": [
                {
                    "port": 8885,
                    "tls": {"mode": "Manual", "manual": {"secretName": "broker-server-cert"}},
                }
            ],
        },
    )


def broker_authentication(name: str, methods: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "BrokerAuthentication",
        "metadata": _metadata(name),
        "spec": {"authenticationMethods": methods},
    }


def default_authentication() -> dict[str, Any]:
    return broker_authentication(
        "default",
        [
            {
                "method": "ServiceAccountToken",
                "serviceAccountTokenSettings": {"audiences": ["aio-internal"]},
            }
        ],
    )


def x509_authentication() -> dict[str, Any]:
    return broker_authentication(
        "x509",
        [{"method": "X509", "x509Settings": {"trustedClientCaCert": "client-ca"}}],
    )


def items(kind: str, objects: list[dict[str, Any]], group_version: str) -> dict[str, Any]:
    return {
        "apiVersion": group_version,
        "kind": f"{kind}List",
        "metadata": {"resourceVersion": "1"},
        "items": objects,
    }


def service(
    name: str,
    service_type: str,
    ports: list[dict[str, Any]],
    ingress: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name),
        "spec": {"type": service_type, "ports": ports, "clusterIP": "10.0.0.9"},
        "status": {"loadBalancer": {"ingress": ingress} if ingress else {}},
    }
    return body

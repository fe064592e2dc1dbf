"""Facts about Azure IoT Operations that the probe's defaults are made of.

Rule: one place for names that Azure IoT Operations chose; everything else
imports them from here.
"""

from __future__ import annotations

BROKER_PORT = 18883
NAMESPACE = "azure-iot-operations"

# The quickstart (test-only) CA of the preview releases.
QUICKSTART_CA_CN = "Azure IoT Operations Quickstart Root CA - Not for Production"
TRUST_BUNDLE_CONFIGMAP = "aio-ca-trust-bundle-test-only"
TRUST_BUNDLE_KEY = "ca.crt"
CA_SECRET = "aio-ca-key-pair-test-only"  # noqa: S105 (a name, not a secret)
CA_ISSUER = "aio-ca-issuer"

# Later releases keep the bundle under this name (same namespace, same key),
# sign with a ClusterIssuer, and keep the CA's key pair in cert-manager's namespace.
LATER_TRUST_BUNDLE_CONFIGMAP = "azure-iot-operations-aio-ca-trust-bundle"
LATER_CA_CLUSTER_ISSUER = "azure-iot-operations-aio-certificate-issuer"
LATER_CA_SECRET = "azure-iot-operations-aio-ca-certificate"  # noqa: S105 (a name)
LATER_CA_SECRET_NAMESPACE = "cert-manager"  # noqa: S105 (a namespace)

# The broker's service name: what its certificate lists, never "localhost".
BROKER_SERVICE = "aio-broker"

# K8S-SAT: MQTT 5 enhanced authentication with a service account token.
SAT_AUTH_METHOD = "K8S-SAT"
SAT_AUDIENCE = "aio-internal"

QUICKSTART_CA_DAYS = 30
EXPIRY_WARNING_DAYS = 7

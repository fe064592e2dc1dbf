"""A trust bundle from bytes or from a ConfigMap object: the CA certificates it holds.

Rule: pure; the bytes and the ConfigMap's JSON come from the adapters. A
bundle that holds no usable certificate is a ``ProbeError`` of the trust
stage, saying what is there instead (never its content).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography import x509

from mqtt_tls_probe.core.certinfo import describe_content, parse_certificates
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import TrustBundle, TrustSource


def parse_bundle(data: bytes, where: str) -> list[x509.Certificate]:
    """The certificates of a bundle.

    Raises:
        ProbeError: ``trust_bundle_invalid``, saying what the data holds instead.
    """
    try:
        certs = parse_certificates(data)
    except ValueError as exc:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{where} holds a PEM certificate block that does not parse: {exc}.",
        ) from exc
    if not certs:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{where} holds no certificate: {describe_content(data)}.",
        )
    return certs


def bundle_from_configmap(
    configmap: dict[str, Any], namespace: str, name: str, key: str, note: str = ""
) -> TrustBundle:
    """The bundle under ``key`` of a ConfigMap object (``data``, else ``binaryData``).

    Raises:
        ProbeError: ``trust_bundle_key_missing`` or ``trust_bundle_invalid``.
    """
    data = configmap.get("data") or {}
    binary = configmap.get("binaryData") or {}
    where = f"configmap {namespace}/{name}[{key}]"
    if key in data:
        raw = str(data[key]).encode()
    elif key in binary:
        try:
            raw = base64.b64decode(binary[key], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise ProbeError(
                ErrorKind.TRUST_BUNDLE_INVALID, f"{where} in binaryData is not valid base64."
            ) from exc
    else:
        keys = sorted([*data, *binary])
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_KEY_MISSING,
            f"The ConfigMap {namespace}/{name} has no key {key!r}; its keys: "
            f"{', '.join(keys) or 'none'}.",
            f"Pass the key that holds the CA: --configmap-key {keys[0]}"
            if keys
            else "The ConfigMap is empty: check the component that fills it (trust-manager).",
        )
    return TrustBundle(TrustSource.CLUSTER, where, tuple(parse_bundle(raw, where)), note)

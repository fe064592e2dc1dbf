"""A trust bundle from bytes or from a ConfigMap object: the CA certificates it holds.

Rule: pure; the bytes and the ConfigMap's JSON come from the adapters. A
certificate ``cryptography`` cannot parse is skipped (kept in
``TrustBundle.unparseable``, for the findings) and the rest is used; a bundle
that holds no usable certificate is a ``ProbeError`` of the trust stage,
saying what is there instead (never its content).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mqtt_tls_probe.core.certinfo import (
    describe_content,
    read_certificates,
    unparseable,
    usable,
)
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import TrustBundle, TrustSource


def read_bundle(source: TrustSource, where: str, data: bytes, note: str = "") -> TrustBundle:
    """The bundle in ``data``: the certificates cryptography reads, the others skipped.

    Raises:
        ProbeError: ``trust_bundle_invalid``, saying what the data holds instead.
    """
    found = read_certificates(data)
    certs, skipped = usable(found), unparseable(found)
    if not found:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{where} holds no certificate: {describe_content(data)}.",
        )
    if not certs:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{where} holds {len(found)} certificate(s), and cryptography can parse none of "
            f"them: {skipped[0].reason}.",
        )
    return TrustBundle(source, where, tuple(certs), note, tuple(skipped))


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
    return read_bundle(TrustSource.CLUSTER, where, raw, note)

"""A trust bundle from bytes or from a ConfigMap object: the CA certificates it holds.

Rule: pure; the bytes and the ConfigMap's JSON come from the adapters. A
certificate ``cryptography`` cannot parse is skipped (kept in
``TrustBundle.unparseable``, for the findings) and the rest is used; a bundle
that holds no usable certificate is a ``ProbeError`` of the trust stage,
saying what is there instead (never its content).
The ConfigMap's JSON is untrusted: every field is checked for its shape before
use, and a wrong shape is ``trust_bundle_invalid`` naming the field and what it holds.
"""

from __future__ import annotations

import base64
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


MESSAGE_LIMIT = 300  # characters of a string from outside (cluster, file) in a message


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, marked when cut; control characters stay (data)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def json_type(value: object) -> str:
    """What a JSON value is, for messages about a wrong shape: "a list", "a string"..."""
    names = (
        (bool, "a boolean"),
        (dict, "an object"),
        (list, "a list"),
        (str, "a string"),
        (int | float, "a number"),
    )
    if value is None:
        return "null"
    return next((name for kind, name in names if isinstance(value, kind)), "something else")


class _WrongShape(Exception):
    """A field of the ConfigMap's JSON holds another kind of value than Kubernetes writes."""


def _string_map(configmap: dict[str, Any], field: str, where: str) -> dict[str, Any]:
    """``data`` or ``binaryData``: absent or null is empty, anything but an object is wrong."""
    value = configmap.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _WrongShape(f"{where}: the ConfigMap's {field} is {json_type(value)}, not an object")
    return value


def _value_under(mapping: dict[str, Any], key: str, field: str, where: str) -> str:
    value = mapping[key]
    if not isinstance(value, str):
        raise _WrongShape(f"{where} in {field} is {json_type(value)}, not a string")
    return value


def bundle_from_configmap(
    configmap: object, namespace: str, name: str, key: str, note: str = ""
) -> TrustBundle:
    """The bundle under ``key`` of a ConfigMap object (``data``, else ``binaryData``).

    Raises:
        ProbeError: ``trust_bundle_key_missing`` or ``trust_bundle_invalid`` (also for
            an object of the wrong shape, naming the field).
    """
    try:
        return _bundle_from_configmap(configmap, namespace, name, key, note)
    except _WrongShape as wrong:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{wrong}.",
            f"Look at it: kubectl get configmap {name} -n {namespace} -o yaml (data maps each "
            "key to PEM text); if kubectl shows it well-formed, something else answers there.",
        ) from wrong


def _bundle_from_configmap(
    configmap: object, namespace: str, name: str, key: str, note: str
) -> TrustBundle:
    where = f"configmap {namespace}/{name}[{key}]"
    if not isinstance(configmap, dict):
        raise _WrongShape(
            f"The API server answered for the ConfigMap {namespace}/{name} with "
            f"{json_type(configmap)}, not an object"
        )
    data = _string_map(configmap, "data", where)
    binary = _string_map(configmap, "binaryData", where)
    if key in data:
        raw = _value_under(data, key, "data", where).encode()
    elif key in binary:
        encoded = _value_under(binary, key, "binaryData", where)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError as exc:  # binascii.Error, or a non-ASCII character
            raise ProbeError(
                ErrorKind.TRUST_BUNDLE_INVALID, f"{where} in binaryData is not valid base64."
            ) from exc
    else:
        keys = sorted(clip(str(k), 100) for k in [*data, *binary])
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_KEY_MISSING,
            clip(
                f"The ConfigMap {namespace}/{name} has no key {key!r}; its keys: "
                f"{', '.join(keys) or 'none'}.",
                1000,
            ),
            f"Pass the key that holds the CA: --configmap-key {keys[0]}"
            if keys
            else "The ConfigMap is empty: check the component that fills it (trust-manager).",
        )
    return read_bundle(TrustSource.CLUSTER, where, raw, note)

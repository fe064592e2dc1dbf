"""Kubernetes service account tokens (K8S-SAT): their claims, and what is wrong with them.

Rule: pure; the token itself is never returned or reported, only its claims
(the MQTT adapter alone sends it, over a verified TLS connection).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime

from mqtt_tls_probe import aio
from mqtt_tls_probe.core.moments import iso
from mqtt_tls_probe.model import Finding, FindingCode, SatClaims


def decode_claims(token: bytes) -> SatClaims | None:
    """The JWT claims of ``token``, decoded without verifying its signature; None if not a JWT.

    The token is whatever a file held: a claim of the wrong type or out of
    range (a numeric ``aud``, an ``exp`` of NaN or year 10^9) is recorded in
    ``invalid`` and left out, never raised.
    """
    parts = token.split(b".")
    if len(parts) != 3:
        return None
    payload = parts[1] + b"=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: [[[[... nested
        return None
    if not isinstance(claims, dict):
        return None
    invalid: list[str] = []
    return SatClaims(
        audiences=_audiences(claims.get("aud"), invalid),
        subject=_text_claim(claims, "sub", invalid),
        expires=_time_claim(claims, "exp", invalid),
        issuer=_text_claim(claims, "iss", invalid),
        invalid=tuple(invalid),
    )


def _audiences(audience: object, invalid: list[str]) -> tuple[str, ...]:
    """RFC 7519 §4.1.3: one string, or an array of strings."""
    if audience is None:
        return ()
    if isinstance(audience, str):
        return (audience,)
    if isinstance(audience, list):
        if all(isinstance(a, str) for a in audience):
            return tuple(audience)
        invalid.append("aud is a list holding something other than strings")
        return ()
    invalid.append(f"aud is {_json_type(audience)}, not a string or a list of strings")
    return ()


def _text_claim(claims: dict[str, object], name: str, invalid: list[str]) -> str | None:
    value = claims.get(name)
    if value is None or isinstance(value, str):
        return value
    invalid.append(f"{name} is {_json_type(value)}, not a string")
    return None


def _time_claim(claims: dict[str, object], name: str, invalid: list[str]) -> datetime | None:
    """RFC 7519 §2 NumericDate: seconds since the epoch, within what a date can hold."""
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int in Python, not a number in JSON.
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        invalid.append(f"{name} is {_json_type(value)}, not a time in seconds")
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        invalid.append(f"{name} is {_number(value)} seconds, beyond any date")
        return None


_JSON_TYPES: dict[type, str] = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}


def _json_type(value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # nan, inf: Python's json reads them, JSON has no such numbers
    return _JSON_TYPES.get(type(value), "null")


def _number(value: float) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 20 else f"{text[:6]}... ({len(text)} digits)"


def claim_findings(claims: SatClaims | None, now: datetime) -> list[Finding]:
    if claims is None:
        return [
            Finding(
                FindingCode.SAT_NOT_JWT,
                "The --sat-file token is not a JWT: its claims are unknown.",
            )
        ]
    found = [
        Finding(
            FindingCode.SAT_CLAIM_INVALID,
            f"The service account token's claim {problem}: is this a Kubernetes token?",
        )
        for problem in claims.invalid
    ]
    if claims.expires is not None and claims.expires <= now:
        found.append(
            Finding(
                FindingCode.SAT_EXPIRED,
                f"The service account token expired at {iso(claims.expires)}: create a new one "
                f"(kubectl create token SA -n {aio.NAMESPACE} --audience {aio.SAT_AUDIENCE}).",
            )
        )
    if aio.SAT_AUDIENCE not in claims.audiences:
        found.append(
            Finding(
                FindingCode.SAT_AUDIENCE,
                f"The token's audience is {', '.join(claims.audiences) or 'empty'}, without "
                f"'{aio.SAT_AUDIENCE}', which the default listener expects: create it with "
                f"--audience {aio.SAT_AUDIENCE}.",
            )
        )
    return found

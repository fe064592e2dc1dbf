"""Kubernetes service account tokens (K8S-SAT): their claims, and what is wrong with them.

Rule: pure; the token itself is never returned or reported, only its claims
(the MQTT adapter alone sends it, over a verified TLS connection).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from mqtt_tls_probe import aio
from mqtt_tls_probe.core.certinfo import iso
from mqtt_tls_probe.model import Finding, FindingCode, SatClaims


def decode_claims(token: bytes) -> SatClaims | None:
    """The JWT claims of ``token``, decoded without verifying its signature; None if not a JWT."""
    parts = token.split(b".")
    if len(parts) != 3:
        return None
    payload = parts[1] + b"=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    audience = claims.get("aud", [])
    audiences = (audience,) if isinstance(audience, str) else tuple(str(a) for a in audience)
    expiry = claims.get("exp")
    return SatClaims(
        audiences=audiences,
        subject=str(claims["sub"]) if "sub" in claims else None,
        expires=datetime.fromtimestamp(expiry, UTC) if isinstance(expiry, int | float) else None,
        issuer=str(claims["iss"]) if "iss" in claims else None,
    )


def claim_findings(claims: SatClaims | None, now: datetime) -> list[Finding]:
    if claims is None:
        return [
            Finding(
                FindingCode.SAT_NOT_JWT,
                "The --sat-file token is not a JWT: its claims are unknown.",
            )
        ]
    found = []
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

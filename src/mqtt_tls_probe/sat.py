"""Kubernetes service account tokens (K8S-SAT): read the file, decode the claims.

Rule: the token itself never leaves this process except as MQTT authentication
data over a verified TLS connection; only its claims are reported.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from pathlib import Path

from mqtt_tls_probe import aio
from mqtt_tls_probe.certinfo import iso
from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.model import Finding, SatClaims


def read_secret_file(path: Path, what: str) -> bytes:
    """A password or token file, without the one trailing newline editors and kubectl leave."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise UsageError(f"the {what} file {path} is empty")
    return data


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
            Finding("sat_not_jwt", "The --sat-file token is not a JWT: its claims are unknown.")
        ]
    found = []
    if claims.expires is not None and claims.expires <= now:
        found.append(
            Finding(
                "sat_expired",
                f"The service account token expired at {iso(claims.expires)}: create a new one "
                f"(kubectl create token SA -n {aio.NAMESPACE} --audience {aio.SAT_AUDIENCE}).",
            )
        )
    if aio.SAT_AUDIENCE not in claims.audiences:
        found.append(
            Finding(
                "sat_audience",
                f"The token's audience is {', '.join(claims.audiences) or 'empty'}, without "
                f"'{aio.SAT_AUDIENCE}', which the default listener expects: create it with "
                f"--audience {aio.SAT_AUDIENCE}.",
            )
        )
    return found

"""The trust and verify stages of a success, from certificates read by ``core.lightcert``.

Rule: pure, and free of ``cryptography``. When OpenSSL has verified the chain,
what the report says about it (the trust anchors' findings, the chain's
expiry, the quickstart CA, a strict verifier's verdict) is computed here from
the light facts, in the same words as the ``cryptography`` path
(``core.cert_findings``). Whatever cannot be settled here (the strict verifier's
verdict when ``strict_accepts`` is unsure) returns None: the caller then takes
the ``cryptography`` path for the whole stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mqtt_tls_probe.core import cert_findings
from mqtt_tls_probe.core.lightcert import (
    LightCert,
    can_sign_certificates,
    is_ca,
    is_quickstart_ca,
)
from mqtt_tls_probe.core.strict_profile import strict_accepts
from mqtt_tls_probe.model import Finding


def display_name(cert: LightCert) -> str:
    """The name a detail line gives a certificate: its CN, else its whole subject."""
    return cert.common_name or cert.subject_text


def anchor_warnings(anchors: Sequence[LightCert], now: datetime) -> list[Finding]:
    """What the trust stage warns about its anchors (expiry, CA fitness)."""
    warnings = []
    for anchor in anchors:
        found = cert_findings.certificate_findings(
            not_before=anchor.not_before,
            not_after=anchor.not_after,
            is_ca=is_ca(anchor),
            can_sign=can_sign_certificates(anchor),
            quickstart=is_quickstart_ca(anchor),
            serial=anchor.serial,
            now=now,
            as_trust_anchor=True,
        )
        for finding in found:
            reported = cert_findings.trusted_ca_finding(finding, display_name(anchor))
            if reported is not None:
                warnings.append(reported)
    return warnings


def chain_warnings(
    path: Sequence[LightCert], anchor: LightCert, server_name: str, now: datetime
) -> list[Finding] | None:
    """The findings about a chain OpenSSL verified, or None when only cryptography can tell.

    ``path`` is OpenSSL's verified chain without its last certificate, ``anchor``.
    """
    if not strict_accepts(path, anchor, server_name, now):
        return None  # perhaps a strict verifier's rejection: cryptography says which
    warnings = []
    for cert in path:  # the anchor's own expiry is the trust stage's to report
        soon = cert_findings.expires_soon(
            subject=cert.subject_text, is_ca=is_ca(cert), not_after=cert.not_after, now=now
        )
        if soon is not None:
            warnings.append(soon)
    if any(is_quickstart_ca(cert) for cert in [*path, anchor]):
        warnings.append(cert_findings.QUICKSTART_CHAIN)
    return warnings

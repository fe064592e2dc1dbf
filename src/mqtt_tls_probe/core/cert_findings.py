"""The findings about certificates, from their facts alone.

Rule: pure and free of ``cryptography``. ``certinfo`` and ``verify`` pass the
facts cryptography reads; connect's light path (``core.lightcert``) passes
the facts its DER reader reads; both say the same words.
"""

from __future__ import annotations

from datetime import datetime

from mqtt_tls_probe.aio import EXPIRY_WARNING_DAYS
from mqtt_tls_probe.core.moments import days_until, iso
from mqtt_tls_probe.model import Finding, FindingCode


def certificate_findings(
    *,
    not_before: datetime,
    not_after: datetime,
    is_ca: bool,
    can_sign: bool,
    quickstart: bool,
    serial: int,
    now: datetime,
    as_trust_anchor: bool = False,
) -> tuple[Finding, ...]:
    """Expiry, and for a certificate meant as a trust anchor, its CA fitness."""
    findings = []
    left = days_until(not_after, now)
    if now < not_before:
        findings.append(Finding(FindingCode.NOT_YET_VALID, f"not valid before {iso(not_before)}"))
    elif left < 0 or now > not_after:
        findings.append(Finding(FindingCode.EXPIRED, f"expired on {iso(not_after)}"))
    elif left < EXPIRY_WARNING_DAYS:
        findings.append(
            Finding(
                FindingCode.EXPIRES_SOON,
                f"expires in {left} day{'s' if left != 1 else ''} ({iso(not_after)})",
            )
        )
    if as_trust_anchor:
        if not is_ca:
            findings.append(
                Finding(FindingCode.NOT_A_CA, "not a CA (basicConstraints CA:TRUE missing)")
            )
        elif not can_sign:
            findings.append(Finding(FindingCode.NO_CERT_SIGN, "keyUsage lacks keyCertSign"))
    if quickstart:
        findings.append(
            Finding(
                FindingCode.QUICKSTART_CA, "Azure IoT Operations quickstart CA: not for production"
            )
        )
    if serial <= 0:
        findings.append(
            Finding(
                FindingCode.NEGATIVE_SERIAL,
                "the serial number is negative or zero, which RFC 5280 forbids: cryptography "
                "will refuse such certificates in a future release",
            )
        )
    return tuple(findings)


def expires_soon(
    *, subject: str, is_ca: bool, not_after: datetime, now: datetime
) -> Finding | None:
    """A certificate of the server's chain that expires within the warning window."""
    left = days_until(not_after, now)
    if not 0 <= left < EXPIRY_WARNING_DAYS:
        return None
    role = "CA" if is_ca else "certificate"
    return Finding(
        FindingCode.EXPIRES_SOON,
        f"The {role} {subject} expires in {left} day(s), on {iso(not_after)}.",
    )


QUICKSTART_CHAIN = Finding(
    FindingCode.QUICKSTART_CA,
    "The chain ends at the Azure IoT Operations quickstart CA: for tests only, "
    "not for production (it lives 30 days).",
)


def trusted_ca_finding(anchor_finding: Finding, name: str) -> Finding | None:
    """A trust anchor's own finding as connect's trust stage reports it, or None."""
    from mqtt_tls_probe.model import TRUST_ANCHOR_FINDINGS

    code = TRUST_ANCHOR_FINDINGS.get(anchor_finding.code)
    if code is None:
        return None
    return Finding(code, f"Trusted CA {name}: {anchor_finding.message}.")

"""``probe bundle``: the trust bundle's CA certificates, described, and written out on request."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mqtt_tls_probe.adapters.trust import load_trust
from mqtt_tls_probe.config import ClusterOptions, TrustOptions
from mqtt_tls_probe.core.certinfo import describe_all, to_pem, unparseable_finding
from mqtt_tls_probe.errors import ProbeError
from mqtt_tls_probe.model import BundleReport


def bundle_report(
    ca_file: Path | None,
    cluster: ClusterOptions,
    timeout: float,
    now: datetime | None = None,
    *,
    out: Path | None = None,
) -> BundleReport:
    """Read the bundle, describe its CAs, and write its PEM to ``out`` when given."""
    try:
        bundle = load_trust(TrustOptions(ca_file=ca_file, cluster=cluster), timeout)
    except ProbeError as error:
        return BundleReport(None, (), error.info)
    described = describe_all(bundle.certificates, now or datetime.now(UTC), as_trust_anchor=True)
    skipped = tuple(
        unparseable_finding(item, f"a certificate of {bundle.location}", "it is skipped")
        for item in bundle.unparseable
    )
    if out is not None:
        out.write_bytes(to_pem(bundle.certificates))
    return BundleReport(bundle, described, written=out, findings=skipped)

"""``probe bundle``: the trust bundle's CA certificates, described, and written out on request."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mqtt_tls_probe.adapters import files
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
    force: bool = False,
) -> BundleReport:
    """Read the bundle, describe its CAs, and write its PEM to ``out`` when given.

    ``out`` is checked before the bundle is read: an existing file is replaced
    only with ``force`` (atomically, never through a symbolic link).

    Raises:
        UsageError: ``out`` exists (without ``force``) or cannot be written.
    """
    if out is not None:
        files.check_output_path(out, replace=force)
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
        files.write_file(out, to_pem(bundle.certificates), replace=force)
    return BundleReport(bundle, described, written=out, findings=skipped)

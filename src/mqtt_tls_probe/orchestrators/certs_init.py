"""``probe certs init``: write the development PKI and describe what was made."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from mqtt_tls_probe.core import names
from mqtt_tls_probe.core.certinfo import describe, parse_certificates
from mqtt_tls_probe.dev.pki import init_pki
from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.model import CertsInitReport

MIN_DAYS = 0.01
MAX_DAYS = 3650  # ten years: plenty for a development PKI, far from datetime's limits


def certs_init(
    directory: Path,
    *,
    days: float,
    extra_sans: Sequence[str] = (),
    client: bool = False,
    force: bool = False,
    now: datetime | None = None,
) -> CertsInitReport:
    """Create the PKI (see ``dev.pki.init_pki``) and report its files and certificates.

    Raises:
        UsageError: ``days`` is not from 0.01 to 3650, a SAN is no host name or IP
            address, a file exists and ``force`` is false, or the directory
            cannot be written; nothing is written in the first three cases.
    """
    if not math.isfinite(days) or not MIN_DAYS <= days <= MAX_DAYS:
        raise UsageError(f"--days must be a number of days from {MIN_DAYS:g} to {MAX_DAYS}")
    sans = tuple(_san(name) for name in extra_sans)
    files = init_pki(directory, days=days, extra_sans=sans, client=client, force=force)
    written = [files.ca_cert, files.ca_key, files.server_cert, files.server_key]
    if client:
        written += [files.client_cert, files.client_key]
    moment = now or datetime.now(UTC)
    ca = parse_certificates(files.ca_cert.read_bytes())[0]
    server = parse_certificates(files.server_cert.read_bytes())[0]
    return CertsInitReport(
        directory, tuple(written), describe(ca, moment), describe(server, moment)
    )


def _san(name: str) -> str:
    """A ``--san``: an IP address, or a DNS name (IDNA-encoded; ``*.`` allowed) as X.509 takes it.

    Raises:
        UsageError: neither.
    """
    try:
        return names.host_name(name, wildcard=True).removesuffix(".")
    except ValueError as exc:
        raise UsageError(f"--san: {exc}") from exc

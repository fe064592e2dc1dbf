"""``probe certs init``: write the development PKI and describe what was made."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from mqtt_tls_probe.core.certinfo import describe, parse_certificates
from mqtt_tls_probe.dev.pki import init_pki
from mqtt_tls_probe.model import CertsInitReport


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
        UsageError: a file exists and ``force`` is false; nothing is written then.
    """
    files = init_pki(directory, days=days, extra_sans=extra_sans, client=client, force=force)
    written = [files.ca_cert, files.ca_key, files.server_cert, files.server_key]
    if client:
        written += [files.client_cert, files.client_key]
    moment = now or datetime.now(UTC)
    ca = parse_certificates(files.ca_cert.read_bytes())[0]
    server = parse_certificates(files.server_cert.read_bytes())[0]
    return CertsInitReport(
        directory, tuple(written), describe(ca, moment), describe(server, moment)
    )

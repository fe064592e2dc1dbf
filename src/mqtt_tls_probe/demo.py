"""``probe demo``: a temporary PKI, the harness broker, one full probe, then stop."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mqtt_tls_probe.config import MqttOptions, ProbeConfig, TrustOptions
from mqtt_tls_probe.harness import running_broker
from mqtt_tls_probe.model import ProbeReport
from mqtt_tls_probe.pki import init_pki
from mqtt_tls_probe.probe import run_probe
from mqtt_tls_probe.tls import TlsOptions


def run_demo(timeout: float) -> tuple[ProbeReport, list[str]]:
    """Probe a harness broker on a free loopback port; returns the report and what was set up."""
    with tempfile.TemporaryDirectory(prefix="probe-demo-") as scratch:
        pki = init_pki(Path(scratch))
        with running_broker(pki) as handle:
            notes = [
                f"demo: made a quickstart-profile PKI in {scratch}",
                f"demo: started the harness broker (amqtt) on mqtts://{handle.address}",
                f"demo: probe connect {handle.address} --ca-file {pki.ca_cert} --roundtrip",
                "",
            ]
            config = ProbeConfig(
                host=handle.host,
                port=handle.port,
                trust=TrustOptions(ca_file=pki.ca_cert),
                tls=TlsOptions(server_name=handle.host),
                mqtt=MqttOptions(client_id=f"probe-demo-{os.urandom(4).hex()}"),
                roundtrip=True,
                timeout=timeout,
            )
            report = run_probe(config)
    return report, notes

"""``probe demo``: a temporary PKI, the harness broker, one full probe, then stop."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mqtt_tls_probe.config import ConnectInputs, build_probe_config, new_client_id
from mqtt_tls_probe.dev.harness import running_broker
from mqtt_tls_probe.dev.pki import init_pki
from mqtt_tls_probe.model import DemoReport
from mqtt_tls_probe.orchestrators.connect import run_probe


def run_demo(timeout: float) -> DemoReport:
    """Probe a harness broker on a free loopback port; the report says what was set up."""
    with tempfile.TemporaryDirectory(prefix="probe-demo-") as scratch:
        pki = init_pki(Path(scratch))
        with running_broker(pki) as handle:
            notes = (
                f"demo: made a quickstart-profile PKI in {scratch}",
                f"demo: started the harness broker (amqtt) on mqtts://{handle.address}",
                f"demo: probe connect {handle.address} --ca-file {pki.ca_cert} --roundtrip",
                "",
            )
            # Exactly the policy of `probe connect` with the flags the note shows.
            inputs = ConnectInputs(
                target=handle.address,
                ca_file=pki.ca_cert,
                client_id=new_client_id("probe-demo"),
                roundtrip=True,
                timeout=timeout,
            )
            report = run_probe(build_probe_config(inputs))
    return DemoReport(notes, report)

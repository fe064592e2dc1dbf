"""``probe exporter --discover``: the broker's listener ports, listed again every round.

Rule: a ``TargetSource`` (``exporter.loop``) that reads the BrokerListeners
with the default module's cluster flags each round and returns one probe per
port that can be probed, built from the default module's inputs
(``orchestrators.discover.probe_configs``). The exporter runs in a pod, so
ClusterIp ports are dialled by their cluster DNS names (no port-forward, no
``pods/portforward`` permission); ports with a problem are left out. A round
whose reads fail raises, and the loop keeps the previous round's results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mqtt_tls_probe.config import ProbeConfig
from mqtt_tls_probe.exporter.loop import TargetSource
from mqtt_tls_probe.exporter.modules import Module


def discovered_targets(module: Module, environ: Mapping[str, str] | None = None) -> TargetSource:
    """The source of ``--discover``: every probeable listener port, read each round."""
    inputs = module.inputs

    def source() -> Sequence[tuple[str, ProbeConfig]]:
        from mqtt_tls_probe.adapters.discovery import discover
        from mqtt_tls_probe.orchestrators.discover import probe_configs

        found = discover(inputs.cluster, inputs.timeout, environ)
        return [
            (probe.name, probe.config)
            for probe in probe_configs(found, inputs)
            if probe.config is not None
        ]

    return source

"""mqtt-tls-probe: can a client reach this MQTT broker over TLS, and if not, exactly why?

The library's public surface is ``run_probe(ProbeConfig) -> ProbeReport``
(``build_probe_config`` turns connect's flags into a ``ProbeConfig``), with
``ProbeError``, ``ErrorKind`` and ``Stage`` for failures. Names are loaded on
first use, so that ``import mqtt_tls_probe`` (which every ``probe`` command
does) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mqtt_tls_probe.config import ConnectInputs, ProbeConfig, build_probe_config
    from mqtt_tls_probe.errors import ErrorKind, ProbeError, Stage
    from mqtt_tls_probe.model import ProbeReport
    from mqtt_tls_probe.orchestrators.connect import run_probe

__version__ = "0.1.0"
__all__ = [
    "ConnectInputs",
    "ErrorKind",
    "ProbeConfig",
    "ProbeError",
    "ProbeReport",
    "Stage",
    "build_probe_config",
    "run_probe",
]

_HOMES = {
    "ConnectInputs": "mqtt_tls_probe.config",
    "ProbeConfig": "mqtt_tls_probe.config",
    "build_probe_config": "mqtt_tls_probe.config",
    "ErrorKind": "mqtt_tls_probe.errors",
    "ProbeError": "mqtt_tls_probe.errors",
    "Stage": "mqtt_tls_probe.errors",
    "ProbeReport": "mqtt_tls_probe.model",
    "run_probe": "mqtt_tls_probe.orchestrators.connect",
}


def __getattr__(name: str) -> Any:  # PEP 562: import on first use
    if name not in _HOMES:
        raise AttributeError(f"module 'mqtt_tls_probe' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)

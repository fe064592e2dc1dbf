"""The command line (typer): parse flags, build the config, call an orchestrator, render, exit.

Rule: no policy here. Each command module turns its flags into inputs for
``config.py`` (or an orchestrator's arguments), calls one orchestrator and
hands the report to ``output.render``. Heavy modules are imported inside the
commands that need them: the CLI's cold start is measured (bench/).
"""

from mqtt_tls_probe.cli import (
    broker,
    bundle,
    certs,
    cluster,
    connect,
    demo,
    exporter,
    inspect,
    scan,
    tls,
)
from mqtt_tls_probe.cli.app import app, console_main, main

__all__ = [
    "app",
    "broker",
    "bundle",
    "certs",
    "cluster",
    "connect",
    "console_main",
    "demo",
    "exporter",
    "inspect",
    "main",
    "scan",
    "tls",
]

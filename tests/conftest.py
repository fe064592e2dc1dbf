"""Fixtures shared by the suite: a clean environment, a PKI, the harness broker, the CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from mqtt_tls_probe.cli import app
from mqtt_tls_probe.harness import BrokerHandle, running_broker
from mqtt_tls_probe.pki import PkiFiles, init_pki

# Variables that would make a run depend on the machine it runs on.
_AMBIENT = (
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "PROBE_MQTT_PASSWORD",
    "PROBE_SERVICE_ACCOUNT_DIR",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AIO_") or name in _AMBIENT:
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.kube/config of the developer's


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """A quickstart-profile PKI with a client certificate."""
    return init_pki(tmp_path_factory.mktemp("pki"), client=True)


@pytest.fixture(scope="session")
def harness(pki: PkiFiles) -> Iterator[BrokerHandle]:
    """The amqtt harness broker on an ephemeral loopback port, for the whole session."""
    with running_broker(pki) as handle:
        yield handle


def probe(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; bugs raise instead of turning into exit 1."""
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def probe_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Run the CLI with --output json; stdout must hold exactly one JSON object."""
    result = probe(*args, "--output", "json", env=env)
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    assert document["exit_code"] == result.exit_code
    return result.exit_code, document


def stage(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in document["stages"] if s["name"] == name)

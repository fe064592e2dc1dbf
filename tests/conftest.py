"""Fixtures shared by the suite: a clean environment, a PKI, the harness broker.

Helper functions live in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqtt_tls_probe.dev.harness import BrokerHandle, running_broker
from mqtt_tls_probe.dev.pki import PkiFiles, init_pki

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

"""``--repeat N --interval S``: an intermittent failure caught, counted and timed.

The broker here refuses every third TLS connection: a proxy that closes it at
once, in front of the suite's MQTT 5 server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mqtt_tls_probe.dev.pki import PkiFiles

from .helpers import probe, probe_json
from .mqtt5_server import Behaviour, mqtt5_session
from .scan_servers import EveryThirdRefused
from .servers import TcpServer, free_port, server_context, tls_handler


@pytest.fixture
def flaky(pki: PkiFiles) -> Iterator[tuple[str, EveryThirdRefused]]:
    context = server_context(pki.server_cert, pki.server_key)
    with TcpServer(tls_handler(context, mqtt5_session(Behaviour()))) as broker:
        proxy = EveryThirdRefused(broker.port)
        with TcpServer(proxy) as front:
            yield front.address, proxy


def _check_percentiles(stages: dict[str, dict[str, Any]]) -> None:
    for name, times in stages.items():
        assert set(times) == {"p50", "p90", "p99", "max", "samples"}, name
        assert 0 <= times["p50"] <= times["p90"] <= times["p99"] <= times["max"], name


def test_connect_repeat_counts_runs_and_times_stages(
    pki: PkiFiles, flaky: tuple[str, EveryThirdRefused]
) -> None:
    address, proxy = flaky
    args = ("connect", address, "--ca-file", str(pki.ca_cert), "--timeout", "2")
    code, doc = probe_json(*args, "--repeat", "9", "--interval", "0")
    repeat = doc["repeat"]
    assert {k: repeat[k] for k in ("runs", "passed", "failed", "by_kind")} == {
        "runs": 9,
        "passed": 6,
        "failed": 3,
        "by_kind": {"peer_closed": 3},
    }
    assert proxy.tls_connections == 9
    stages = repeat["stages"]
    assert list(stages) == ["trust", "resolve", "tcp", "tls", "verify", "mqtt"]
    assert stages["tls"]["samples"] == 9  # the refused handshakes count with their time
    assert stages["mqtt"]["samples"] == 6
    _check_percentiles(stages)
    # The rest of the document is the last run's: the ninth connection, refused.
    assert doc["error"]["kind"] == "peer_closed"
    assert doc["ok"] is False
    assert code == 5  # non-zero because a run failed: the lowest code among the runs


def test_connect_repeat_text_shows_the_table(
    pki: PkiFiles, flaky: tuple[str, EveryThirdRefused]
) -> None:
    address, _ = flaky
    args = ("connect", address, "--ca-file", str(pki.ca_cert), "--repeat", "4", "--interval", "0")
    result = probe(*args)
    lines = result.stdout.splitlines()
    assert "repeat: 4 runs, 3 passed, 1 failed (peer_closed 1)" in lines
    header = lines.index("repeat: 4 runs, 3 passed, 1 failed (peer_closed 1)") + 1
    assert lines[header].split() == [
        "stage",
        "p50",
        "ms",
        "p90",
        "ms",
        "p99",
        "ms",
        "max",
        "ms",
        "runs",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 : header + 7]}
    assert rows["tls"][-1] == "4"
    assert rows["mqtt"][-1] == "3"
    assert lines[0].startswith("probe connect")  # the last run, as connect prints it
    assert "OK:" in result.stdout  # ... which passed,
    assert lines[-1] == "exit 5: at least one run failed (the lowest exit code)"
    assert result.exit_code == 5  # but the third did not


def test_scan_repeat_gives_each_target_its_series(
    pki: PkiFiles, flaky: tuple[str, EveryThirdRefused]
) -> None:
    address, proxy = flaky
    refused = f"127.0.0.1:{free_port()}"
    args = ("scan", address, refused, "--ca-file", str(pki.ca_cert), "--repeat", "3")
    result = probe(*args, "--interval", "0", "--output", "json")
    doc = json.loads(result.stdout)
    flaky_target, refused_target = doc["targets"]
    assert flaky_target["repeat"]["runs"] == 3
    assert flaky_target["repeat"]["by_kind"] == {"peer_closed": 1}
    assert flaky_target["exit_code"] == 5
    assert flaky_target["ok"] is False
    assert refused_target["repeat"]["by_kind"] == {"connection_refused": 3}
    assert refused_target["exit_code"] == 4
    assert proxy.tls_connections == 3
    # Targets are counted once each, by the failure that decided their code.
    assert doc["summary"] == {
        "total": 2,
        "passed": 0,
        "failed": 2,
        "by_kind": {"connection_refused": 1, "peer_closed": 1},
    }
    assert result.exit_code == doc["exit_code"] == 4


def test_rounds_are_started_interval_seconds_apart(pki: PkiFiles) -> None:
    refused = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    args = ("connect", refused, "--ca-file", str(pki.ca_cert), "--repeat", "3", "--interval", "0.3")
    code, doc = probe_json(*args)
    assert time.monotonic() - started >= 2 * 0.3  # three rounds, two intervals
    assert doc["repeat"]["runs"] == 3
    assert code == 4


def test_without_repeat_connect_has_no_repeat_key(pki: PkiFiles) -> None:
    _, doc = probe_json("connect", f"127.0.0.1:{free_port()}", "--ca-file", str(pki.ca_cert))
    assert "repeat" not in doc

"""``probe exporter`` over real HTTP on 127.0.0.1, probing real brokers and servers.

Each test starts the exporter in-process on an ephemeral port with
``start_exporter`` (what the command calls) and reads its pages with urllib;
the pages are parsed with prometheus_client's own parsers.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from mqtt_tls_probe.config import ConnectInputs, ProbeConfig
from mqtt_tls_probe.dev.harness import BrokerHandle
from mqtt_tls_probe.dev.pki import PkiFiles, create_root_ca, issue_server_certificate
from mqtt_tls_probe.exporter.loop import static_targets
from mqtt_tls_probe.exporter.modules import Module
from mqtt_tls_probe.exporter.server import RunningExporter, start_exporter
from mqtt_tls_probe.exporter.settings import ExporterSettings
from mqtt_tls_probe.exporter.targets import AllowList

from .brokers import harness_serving
from .helpers import write_pem
from .mqtt5_server import Behaviour, mqtt5_session
from .servers import TcpServer, free_port, hold, server_context, tls_handler

Labels = dict[str, str]
Events = list[tuple[str, dict[str, object]]]
_WAIT = 15.0  # the longest any test waits for the background loop or a subprocess


# --- helpers ------------------------------------------------------------------------------


def module(name: str = "default", **inputs: Any) -> Module:
    return Module(name, ConnectInputs(**{"timeout": 5.0, **inputs}))


def settings(*modules: Module, **changes: Any) -> ExporterSettings:
    return ExporterSettings(modules={m.name: m for m in modules}, port=0, **changes)


@contextlib.contextmanager
def serving(
    config: ExporterSettings,
    source: Callable[[], Sequence[tuple[str, ProbeConfig]]] | None = None,
    events: Events | None = None,
) -> Iterator[RunningExporter]:
    def log(event: str, **fields: object) -> None:
        if events is not None:
            events.append((event, fields))

    running = start_exporter(config, target_source=source, log=log, verbose=True)
    try:
        yield running
    finally:
        running.stop()


def get(url: str, *, accept: str | None = None, method: str = "GET") -> tuple[int, Any, str]:
    """(status, headers, body) of one request; HTTP errors are answers too."""
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(url, headers=headers, method=method)  # noqa: S310 (http://127.0.0.1)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read().decode()


def probe_page(exporter: RunningExporter, target: str, module_name: str | None = None) -> str:
    query = f"target={target}" + (f"&module={module_name}" if module_name else "")
    status, _, body = get(f"{exporter.url}/probe?{query}")
    assert status == 200, body
    return body


def samples(text: str) -> list[tuple[str, Labels, float]]:
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample ``name`` whose labels include ``labels`` (None: absent)."""
    found = [v for n, ls, v in samples(text) if n == name and labels.items() <= ls.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def labels_of(text: str, name: str) -> list[Labels]:
    return [ls for n, ls, _ in samples(text) if n == name]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _WAIT
    while not condition():
        assert time.monotonic() < deadline, f"waited {_WAIT} s for {what}"
        time.sleep(0.05)


# --- /probe ----------------------------------------------------------------------------------


def test_a_good_broker(harness: BrokerHandle, pki: PkiFiles) -> None:
    with serving(settings(module(ca_file=pki.ca_cert))) as exporter:
        text = probe_page(exporter, harness.address)
        status, headers, openmetrics = get(
            f"{exporter.url}/probe?target={harness.address}",
            accept="application/openmetrics-text; version=1.0.0",
        )
    assert value(text, "probe_success") == 1
    assert 0 < (value(text, "probe_duration_seconds") or 0) < 5
    assert value(text, "probe_exit_code") == 0
    stages = [ls["stage"] for ls in labels_of(text, "probe_stage_duration_seconds")]
    assert stages == ["trust", "resolve", "tcp", "tls", "verify", "mqtt"]
    assert labels_of(text, "probe_error_info") == []
    assert labels_of(text, "probe_tls_version_info")[0]["version"] in {"TLS 1.2", "TLS 1.3"}
    assert value(text, "probe_mqtt_version_info", version="3.1.1") == 1  # amqtt: 3.1.1 only
    assert value(text, "probe_mqtt_connack_reason_code") == 0
    roles = [ls["role"] for ls in labels_of(text, "probe_cert_not_after_timestamp_seconds")]
    assert roles[0] == "leaf"
    [bundle] = labels_of(text, "probe_trust_bundle_cert_not_after_timestamp_seconds")
    assert "Quickstart Root CA" in bundle["subject"]
    # content negotiation, from make_wsgi_app
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    names = {f.name for f in openmetrics_families(openmetrics)}  # type: ignore[no-untyped-call]
    assert "probe_success" in names


def test_an_expired_leaf_keeps_its_expiry_metrics(tmp_path: Path) -> None:
    ca = create_root_ca()
    expired = issue_server_certificate(
        ca, ["127.0.0.1"], not_before=datetime.now(UTC) - timedelta(days=40), days=30
    )
    not_after = expired.certificate.not_valid_after_utc.timestamp()
    with (
        harness_serving(tmp_path / "pki", [expired, ca], ca) as broker,
        serving(settings(module(ca_file=broker.ca_file))) as exporter,
    ):
        text = probe_page(exporter, broker.address)
    assert value(text, "probe_success") == 0
    assert value(text, "probe_exit_code") == 6
    assert value(text, "probe_error_info", stage="verify", kind="cert_expired") == 1
    assert value(text, "probe_cert_not_after_timestamp_seconds", role="leaf") == not_after
    assert value(text, "probe_cert_not_after_timestamp_seconds", role="root") is not None
    assert value(text, "probe_ssl_earliest_cert_expiry") == not_after
    assert not_after < time.time()


def test_a_verify_failure_with_a_module_from_the_config_file(
    harness: BrokerHandle, pki: PkiFiles, tmp_path: Path
) -> None:
    from mqtt_tls_probe.exporter.modules import load_config_file

    write_pem(tmp_path / "other-ca.crt", create_root_ca("Some Other Root CA"))
    config = tmp_path / "exporter.yaml"
    config.write_text("modules:\n  wrong:\n    ca_file: other-ca.crt\n    timeout: 5\n")
    loaded = load_config_file(config)
    with serving(settings(module(ca_file=pki.ca_cert), *loaded.modules.values())) as exporter:
        text = probe_page(exporter, harness.address, "wrong")
        good = probe_page(exporter, harness.address)  # the default module still trusts the CA
    assert value(text, "probe_success") == 0
    assert value(text, "probe_error_info", stage="verify", kind="unknown_ca") == 1
    assert value(text, "probe_cert_not_after_timestamp_seconds", role="leaf") is not None
    [bundle] = labels_of(text, "probe_trust_bundle_cert_not_after_timestamp_seconds")
    assert bundle["subject"] == "CN=Some Other Root CA"
    assert value(good, "probe_success") == 1


def test_an_mqtt_refusal_keeps_the_chain(pki: PkiFiles) -> None:
    context = server_context(pki.server_cert, pki.server_key)
    refusing = tls_handler(context, after=mqtt5_session(Behaviour(connack_code=0x87)))
    with (
        TcpServer(refusing) as server,
        serving(settings(module(ca_file=pki.ca_cert))) as exporter,
    ):
        text = probe_page(exporter, server.address)
    assert value(text, "probe_success") == 0
    assert value(text, "probe_error_info", stage="mqtt", kind="not_authorized") == 1
    assert value(text, "probe_mqtt_connack_reason_code") == 0x87
    assert value(text, "probe_mqtt_version_info", version="5") == 1
    assert value(text, "probe_cert_not_after_timestamp_seconds", role="leaf") is not None
    assert value(text, "probe_stage_duration_seconds", stage="verify") is not None


def test_secrets_are_read_for_every_probe_and_never_shown(pki: PkiFiles, tmp_path: Path) -> None:
    token = tmp_path / "broker-sat"
    token.write_text("first-secret-token-7f3a\n")
    behaviour = Behaviour(token=b"first-secret-token-7f3a")
    context = server_context(pki.server_cert, pki.server_key)
    events: Events = []
    with (
        TcpServer(tls_handler(context, after=mqtt5_session(behaviour))) as server,
        serving(settings(module(ca_file=pki.ca_cert, sat_file=token)), events=events) as exporter,
    ):
        accepted = probe_page(exporter, server.address)
        token.write_text("rotated-secret-token-9c1d\n")  # the kubelet rotated it
        refused = probe_page(exporter, server.address)
        _, _, own = get(f"{exporter.url}/metrics")
    assert value(accepted, "probe_success") == 1
    assert value(refused, "probe_success") == 0
    assert value(refused, "probe_mqtt_connack_reason_code") == 0x87
    assert behaviour.seen.count("CONNECT") == 2
    for page in (accepted, refused, own, repr(events)):
        assert "secret-token" not in page


# --- refusals --------------------------------------------------------------------------------


def test_a_target_outside_the_allow_list_is_403_without_a_connection(pki: PkiFiles) -> None:
    allow = AllowList.of(["aio-broker:*"])
    with (
        TcpServer(hold) as server,
        serving(settings(module(ca_file=pki.ca_cert), allow=allow)) as exporter,
    ):
        status, _, body = get(f"{exporter.url}/probe?target={server.address}")
        _, _, own = get(f"{exporter.url}/metrics")
        assert server.accepted == 0
    assert status == 403
    assert f"target {server.address} is not allowed" in body
    outcome = {"module": "default", "outcome": "forbidden"}
    assert value(own, "mqtt_tls_probe_exporter_requests_total", **outcome) == 1


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/probe?target=127.0.0.1:1&module=nope", 400, "unknown module (known: default)"),
        ("/probe", 400, "exactly one target="),
        ("/probe?target=a:1&target=b:2", 400, "exactly one target="),
        ("/probe?target=127.0.0.1:99999", 400, "invalid port"),
        ("/probe?target=", 400, "names no host"),
        ("/nope", 404, "not found"),
        ("/probe/", 404, "not found"),
    ],
)
def test_bad_requests(pki: PkiFiles, path: str, status: int, says: str) -> None:
    with serving(settings(module(ca_file=pki.ca_cert))) as exporter:
        got, headers, body = get(exporter.url + path)
    assert (got, says in body) == (status, True), body
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_only_get(pki: PkiFiles) -> None:
    with serving(settings(module(ca_file=pki.ca_cert))) as exporter:
        status, headers, _ = get(f"{exporter.url}/probe?target=127.0.0.1:1", method="POST")
    assert status == 405
    assert headers["Allow"] == "GET"


def test_beyond_the_cap_is_503_at_once(pki: PkiFiles) -> None:
    slow = module(ca_file=pki.ca_cert, timeout=2.0)  # the TLS handshake waits out the timeout
    with (
        TcpServer(hold) as silent,
        serving(settings(slow, max_concurrent=1)) as exporter,
    ):
        first: queue.Queue[str] = queue.Queue()
        worker = threading.Thread(target=lambda: first.put(probe_page(exporter, silent.address)))
        worker.start()

        def one_in_flight() -> bool:
            page = get(f"{exporter.url}/metrics")[2]
            return value(page, "mqtt_tls_probe_exporter_probes_in_flight") == 1

        wait_for(one_in_flight, "the first probe to start")
        started = time.monotonic()
        status, headers, body = get(f"{exporter.url}/probe?target={silent.address}")
        refused_in = time.monotonic() - started
        worker.join(_WAIT)
        text = first.get(timeout=1)
    assert (status, body) == (503, "too many probes running\n")
    assert headers["Retry-After"] == "1"
    assert refused_in < 1.0
    assert value(text, "probe_error_info", stage="tls", kind="handshake_timeout") == 1


def test_concurrent_requests(harness: BrokerHandle, pki: PkiFiles) -> None:
    with serving(settings(module(ca_file=pki.ca_cert), max_concurrent=8)) as exporter:
        pages: queue.Queue[str] = queue.Queue()
        workers = [
            threading.Thread(target=lambda: pages.put(probe_page(exporter, harness.address)))
            for _ in range(8)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(_WAIT)
        _, _, own = get(f"{exporter.url}/metrics")
    results = [value(pages.get(timeout=1), "probe_success") for _ in workers]
    assert results == [1] * 8
    success = {"module": "default", "outcome": "success"}
    assert value(own, "mqtt_tls_probe_exporter_requests_total", **success) == 8
    assert value(own, "mqtt_tls_probe_exporter_probe_duration_seconds_count", module="default") == 8


# --- /metrics and the background loop ------------------------------------------------------------


def test_own_metrics(harness: BrokerHandle, pki: PkiFiles, tmp_path: Path) -> None:
    write_pem(tmp_path / "other-ca.crt", create_root_ca("Some Other Root CA"))
    wrong = module("wrong", ca_file=tmp_path / "other-ca.crt")
    with serving(settings(module(ca_file=pki.ca_cert), wrong)) as exporter:
        probe_page(exporter, harness.address)
        probe_page(exporter, harness.address, "wrong")
        get(f"{exporter.url}/probe?target={harness.address}&module=nope")
        status, headers, own = get(f"{exporter.url}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    requests = "mqtt_tls_probe_exporter_requests_total"
    assert value(own, requests, module="default", outcome="success") == 1
    assert value(own, requests, module="wrong", outcome="failure") == 1
    assert value(own, requests, module="", outcome="bad_request") == 1
    assert value(own, requests, module="wrong", outcome="busy") == 0  # present from the start
    errors = "mqtt_tls_probe_exporter_probe_errors_total"
    assert value(own, errors, module="wrong", stage="verify", kind="unknown_ca") == 1
    assert value(own, "mqtt_tls_probe_exporter_internal_errors_total") == 0
    assert (value(own, "process_resident_memory_bytes") or 0) > 0
    assert labels_of(own, "probe_success") == []  # no background loop: no target results


def test_the_background_loop_publishes_each_target(harness: BrokerHandle, pki: PkiFiles) -> None:
    default = module(ca_file=pki.ca_cert)
    refused = f"127.0.0.1:{free_port()}"  # nothing listens there
    source = static_targets([harness.address, refused], default)
    with serving(settings(default, interval=0.2), source) as exporter:

        def two_rounds_done() -> bool:
            page = get(f"{exporter.url}/metrics")[2]
            rounds = value(page, "mqtt_tls_probe_exporter_background_rounds_total") or 0
            return rounds >= 3 and len(labels_of(page, "probe_success")) == 2

        wait_for(two_rounds_done, "two complete rounds")
        _, _, own = get(f"{exporter.url}/metrics")
    assert value(own, "probe_success", target=harness.address) == 1
    assert value(own, "probe_success", target=refused) == 0
    assert value(own, "probe_error_info", target=refused, kind="connection_refused") == 1
    leaf = value(own, "probe_cert_not_after_timestamp_seconds", target=harness.address, role="leaf")
    assert leaf is not None
    assert value(own, "mqtt_tls_probe_exporter_background_targets") == 2
    assert (value(own, "mqtt_tls_probe_exporter_background_last_round_timestamp_seconds") or 0) > 0


def test_a_failing_source_keeps_results_and_a_dropped_target_goes(
    harness: BrokerHandle, pki: PkiFiles
) -> None:
    """The discovery hook's contract, with a source that changes and fails like an API server."""
    default = module(ca_file=pki.ca_cert)
    listed = [harness.address]
    failing = threading.Event()
    events: Events = []

    def source() -> Sequence[tuple[str, ProbeConfig]]:
        if failing.is_set():
            raise ConnectionError("API server unreachable")
        return [(t, default.config_for(t)) for t in listed]

    with serving(settings(default, interval=0.2), source, events) as exporter:

        def page() -> str:
            return get(f"{exporter.url}/metrics")[2]

        wait_for(lambda: value(page(), "probe_success", target=harness.address) == 1, "a result")
        failing.set()
        wait_for(
            lambda: (
                (value(page(), "mqtt_tls_probe_exporter_background_source_errors_total") or 0) >= 2
            ),
            "two failed rounds",
        )
        assert value(page(), "probe_success", target=harness.address) == 1  # kept
        listed.clear()
        failing.clear()
        wait_for(lambda: labels_of(page(), "probe_success") == [], "the target to drop out")
    assert ("background-source-failed", {"error": "ConnectionError: API server unreachable"}) in (
        events
    )


# --- the command --------------------------------------------------------------------------------


def test_help() -> None:
    from .helpers import probe

    result = probe("exporter", "--help")
    assert result.exit_code == 0
    for flag in ("--listen", "--config", "--allow-target", "--max-concurrent", "--target"):
        assert flag in result.stdout
    assert "Example" in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_serves_until_a_signal(
    harness: BrokerHandle, pki: PkiFiles, signum: signal.Signals
) -> None:
    command = [
        sys.executable, "-m", "mqtt_tls_probe", "exporter", "--listen", "127.0.0.1:0",
        "--ca-file", str(pki.ca_cert), "--target", harness.address, "--interval", "200ms",
        "--output", "json",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None

    def read_lines() -> None:
        for line in process.stdout or ():
            lines.put(line)

    reader = threading.Thread(target=read_lines)
    reader.start()
    try:
        started = json.loads(lines.get(timeout=_WAIT))
        assert started["event"] == "listening"
        assert started["modules"] == "default"
        url = started["url"]
        text = probe_page_at(url, harness.address)
        assert value(text, "probe_success") == 1
        wait_for(lambda: value(get(f"{url}/metrics")[2], "probe_success") == 1, "a round")
        process.send_signal(signum)
        assert process.wait(_WAIT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(_WAIT)
        reader.join(_WAIT)
        stderr = process.stderr.read() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
        if process.stdout:
            process.stdout.close()
    events = [json.loads(lines.get_nowait())["event"] for _ in range(lines.qsize())]
    assert events[-2:] == ["stopping", "stopped"]
    assert stderr == ""


def probe_page_at(url: str, target: str) -> str:
    status, _, body = get(f"{url}/probe?target={target}")
    assert status == 200, body
    return body


_LOADED = """
import sys
from mqtt_tls_probe.cli import main
sys.argv = ["probe", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(sorted({"prometheus_client", "mqtt_tls_probe.exporter", "yaml"} & set(sys.modules)))
"""


def test_connect_never_loads_prometheus_client(
    harness: BrokerHandle, pki: PkiFiles, tmp_path: Path
) -> None:
    def loaded(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", _LOADED, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout.strip().splitlines()[-1]

    connect = ["connect", harness.address, "--ca-file", str(pki.ca_cert)]
    assert loaded(*connect) == "[]"
    assert loaded(*connect, "--junit", str(tmp_path / "junit.xml")) == "[]"
    with socket.socket() as taken:  # the twin: the exporter loads it, then cannot bind
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        assert loaded("exporter", "--listen", listen) == (
            "['mqtt_tls_probe.exporter', 'prometheus_client']"
        )


def test_an_address_in_use_is_a_usage_error() -> None:
    from .helpers import probe

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = probe("exporter", "--listen", f"127.0.0.1:{taken.getsockname()[1]}")
    assert result.exit_code == 2
    assert "cannot listen on 127.0.0.1:" in result.stderr

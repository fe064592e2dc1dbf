"""--port-forward: the probe reaches a Service's ready pod through the API server's
port-forward WebSocket (the suite's server speaks its protocol; a local mosquitto is the pod)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqtt_tls_probe.dev.pki import PkiFiles

from .brokers import mosquitto
from .helpers import probe_json, stage
from .kube_api import FakeApiServer

NS = "azure-iot-operations"
POD = "aio-broker-frontend-0"
FORWARD = f"/api/v1/namespaces/{NS}/pods/{POD}/portforward"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeApiServer]:
    with FakeApiServer(tmp_path / "apiserver") as server:
        server.add_endpoint_slice(
            NS, "aio-broker", {"aio-broker-frontend-1": False, POD: True},
            [{"name": "mqtts", "port": 18883, "protocol": "TCP"}],
        )  # fmt: skip
        yield server


@pytest.fixture
def pod(pki: PkiFiles, tmp_path: Path) -> Iterator[int]:
    listener = [f"certfile {pki.server_cert}", f"keyfile {pki.server_key}", "allow_anonymous true"]
    with mosquitto(tmp_path / "broker", listener) as port:
        yield port


def _forward(api: FakeApiServer, tmp_path: Path, pki: PkiFiles, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    config = api.kubeconfig(tmp_path / "kubeconfig")
    return probe_json(
        "connect", "aio-broker:18883", "--port-forward", "--ca-file", str(pki.ca_cert),
        "--kubeconfig", str(config), "--timeout", "5", *args,
    )  # fmt: skip


def test_connect_through_the_port_forward(
    api: FakeApiServer, pki: PkiFiles, tmp_path: Path, pod: int
) -> None:
    api.pod_ports[(NS, POD, 18883)] = pod
    threads = threading.active_count()
    code, doc = _forward(api, tmp_path, pki, "--roundtrip", "--server-name", "localhost")
    assert code == 0, doc["error"]
    assert doc["forward"] == {"namespace": NS, "pod": POD, "port": 18883}
    tcp = stage(doc, "tcp")["detail"]
    assert f"connected to pod {NS}/{POD} port 18883 via port-forward" in tcp
    assert doc["target"]["host"] == "aio-broker"
    assert stage(doc, "verify")["ok"]
    assert stage(doc, "roundtrip")["ok"]
    assert all(p.startswith(f"{FORWARD}?ports=18883") for p in api.forwards)
    assert api.forwards  # the WebSocket was used
    assert "listener" not in doc  # only discovered targets carry one
    assert threading.active_count() <= threads + 1  # the forward's workers have ended


def test_error_frame_is_reported_with_its_text(
    api: FakeApiServer, pki: PkiFiles, tmp_path: Path
) -> None:
    code, doc = _forward(api, tmp_path, pki)  # nothing listens on the pod's port
    assert code == 4
    assert doc["error"]["kind"] == "connection_refused"
    assert doc["error"]["stage"] == "tcp"
    assert "error forwarding port 18883 to pod" in doc["error"]["message"]
    assert "connection refused" in doc["error"]["message"]
    assert stage(doc, "tls")["skipped"]


def test_no_ready_pod(api: FakeApiServer, pki: PkiFiles, tmp_path: Path) -> None:
    api.add_endpoint_slice(NS, "aio-broker", {POD: False}, [{"port": 18883}])
    code, doc = _forward(api, tmp_path, pki)
    assert code == 4
    assert doc["error"]["kind"] == "connection_refused"
    assert (
        "No ready pod serves the Service azure-iot-operations/aio-broker"
        in (doc["error"]["message"])
    )
    assert not api.forwards


@pytest.mark.parametrize(
    ("forbidden", "needs"),
    [
        (
            f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
            "?labelSelector=kubernetes.io%2Fservice-name%3Daio-broker",
            "list endpointslices",
        ),
        (FORWARD, "pods/portforward"),
    ],
)
def test_forbidden_names_what_is_needed(
    api: FakeApiServer, pki: PkiFiles, tmp_path: Path, forbidden: str, needs: str
) -> None:
    api.forbidden.add(forbidden)
    code, doc = _forward(api, tmp_path, pki)
    assert code == 4
    assert doc["error"]["kind"] == "cluster_forbidden"
    assert needs in doc["error"]["message"] + doc["error"]["hint"]


def test_an_address_is_a_usage_error() -> None:
    code, doc = probe_json("connect", "127.0.0.1:18883", "--port-forward")
    assert code == 2
    assert "Service name" in doc["error"]["message"]


@pytest.mark.parametrize(
    ("target", "namespace", "service"),
    [
        ("aio-broker:18883", NS, "aio-broker"),
        ("aio-broker.edge:18883", "edge", "aio-broker"),
        ("aio-broker.edge.svc.cluster.local:18883", "edge", "aio-broker"),
    ],
)
def test_the_target_names_the_service(target: str, namespace: str, service: str) -> None:
    from mqtt_tls_probe.config import ConnectInputs, ForwardRequest, build_probe_config

    config = build_probe_config(ConnectInputs(target=target, port_forward=True))
    assert config.port_forward == ForwardRequest(namespace, service)
    assert config.server_name == target.rsplit(":", 1)[0]


def test_scan_port_forward(api: FakeApiServer, pki: PkiFiles, tmp_path: Path, pod: int) -> None:
    api.pod_ports[(NS, POD, 18883)] = pod
    config = api.kubeconfig(tmp_path / "kubeconfig")
    code, doc = probe_json(
        "scan", "aio-broker:18883", "aio-broker.azure-iot-operations:18883", "--port-forward",
        "--ca-file", str(pki.ca_cert), "--kubeconfig", str(config), "--server-name", "localhost",
        "--timeout", "5",
    )  # fmt: skip
    assert code == 0, doc
    assert [t["forward"]["pod"] for t in doc["targets"]] == [POD, POD]
    assert len(api.forwards) == 2  # each target its own forward


def test_the_client_proxy_thread_ending_on_a_reset_prints_no_traceback() -> None:
    """A reset socket ends the client's proxy thread; the hook keeps it off stderr only."""
    import socket
    import struct
    import threading

    from mqtt_tls_probe.adapters.port_forward import PROXY_THREAD_PREFIX, quiet_proxy_endings

    seen: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.thread.name if args.thread else "")
    try:
        quiet_proxy_endings()
        quiet_proxy_endings()  # once per hook: not wrapped twice

        def read_after_reset() -> None:
            ours, theirs = socket.socketpair()
            with theirs:
                theirs.sendall(b"unread")
                ours.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ours.close()  # unread data and no linger: the peer's next read is a reset
                theirs.recv(1)  # raises here (ConnectionResetError on Linux)

        for name in (f"{PROXY_THREAD_PREFIX}18883", "another thread"):
            thread = threading.Thread(target=read_after_reset, name=name)
            thread.start()
            thread.join(5)
        assert seen == ["another thread"]  # the proxy's ending was kept quiet, no other
    finally:
        threading.excepthook = previous

"""--sat-serviceaccount: a token minted through the TokenRequest API, sent as K8S-SAT,
shown nowhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqtt_tls_probe.dev.pki import PkiFiles

from .helpers import probe, probe_json, stage
from .kube_api import FakeApiServer
from .mqtt5_server import Behaviour, mqtt5_session
from .servers import TcpServer, server_context, tls_handler

NS = "azure-iot-operations"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeApiServer]:
    with FakeApiServer(tmp_path / "apiserver") as server:
        server.service_accounts.add((NS, "probe-client"))
        server.service_accounts.add(("edge", "device"))
        yield server


class _Minted:
    """The server's K8S-SAT check: accepts exactly the token the fake API server minted."""

    def __init__(self, api: FakeApiServer) -> None:
        self.api = api

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes) and [other.decode()] == self.api.minted

    def __hash__(self) -> int:
        return 0


def _broker(pki: PkiFiles, behaviour: Behaviour) -> TcpServer:
    context = server_context(pki.server_cert, pki.server_key)
    return TcpServer(tls_handler(context, after=mqtt5_session(behaviour)))


def _connect(api: FakeApiServer, tmp_path: Path, address: str, ca: Path, *args: str) -> object:
    config = api.kubeconfig(tmp_path / "kubeconfig")
    return probe(
        "connect", address, "--ca-file", str(ca), "--kubeconfig", str(config), *args,
        "--output", "json",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("account", "audience", "path", "expected_audience"),
    [
        ("probe-client", None, f"/api/v1/namespaces/{NS}/serviceaccounts/probe-client/token",
         "aio-internal"),
        ("edge/device", "aio-mq", "/api/v1/namespaces/edge/serviceaccounts/device/token",
         "aio-mq"),
    ],
)  # fmt: skip
def test_minted_token_is_sent_as_k8s_sat_and_shown_nowhere(
    api: FakeApiServer,
    pki: PkiFiles,
    tmp_path: Path,
    account: str,
    audience: str | None,
    path: str,
    expected_audience: str,
) -> None:
    behaviour = Behaviour(token=_Minted(api))  # type: ignore[arg-type]
    extra = ["--sat-audience", audience] if audience else []
    with _broker(pki, behaviour) as broker:
        result = _connect(
            api, tmp_path, broker.address, pki.ca_cert, "--sat-serviceaccount", account, *extra
        )
    doc = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert result.exit_code == 0, doc["error"]  # type: ignore[attr-defined]
    assert len(api.minted) == 1
    token = api.minted[0]
    posts = [r for r in api.requests if r.method == "POST"]
    assert [r.path for r in posts] == [path]
    assert posts[0].content_type == "application/json"
    body = json.loads(posts[0].body)
    assert body == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": [expected_audience], "expirationSeconds": 600},
    }
    assert doc["mqtt"]["sat"]["aud"] == [expected_audience]
    assert "K8S-SAT authenticated" in stage(doc, "mqtt")["detail"]
    assert "K8S-SAT minted for" in stage(doc, "trust")["detail"]
    output = result.stdout + result.stderr  # type: ignore[attr-defined]
    assert token not in output
    assert token.split(".")[2] not in output
    assert not list(tmp_path.rglob("*token*"))  # nothing written to disk
    # The same run in text, verbose: still no token.
    with _broker(pki, Behaviour(token=_Minted(api))) as broker:  # type: ignore[arg-type]
        api.minted.clear()
        config = api.kubeconfig(tmp_path / "kubeconfig")
        text = probe(
            "connect", broker.address, "--ca-file", str(pki.ca_cert), "--kubeconfig",
            str(config), "--sat-serviceaccount", account, *extra, "-v",
        )  # fmt: skip
    assert text.exit_code == 0, text.stdout
    assert api.minted[0] not in text.stdout + text.stderr


def test_forbidden_names_create_serviceaccounts_token(
    api: FakeApiServer, pki: PkiFiles, tmp_path: Path
) -> None:
    api.forbidden.add(f"/api/v1/namespaces/{NS}/serviceaccounts/probe-client/token")
    config = api.kubeconfig(tmp_path / "kubeconfig")
    code, doc = probe_json(
        "connect", "127.0.0.1:1", "--ca-file", str(pki.ca_cert), "--kubeconfig", str(config),
        "--sat-serviceaccount", "probe-client",
    )  # fmt: skip
    assert code == 3
    assert doc["error"]["kind"] == "cluster_forbidden"
    assert "may not create serviceaccounts/token" in doc["error"]["message"]
    assert "--verb=create --resource=serviceaccounts/token" in doc["error"]["hint"]
    assert stage(doc, "tcp")["skipped"]


def test_unknown_service_account_is_reported(
    api: FakeApiServer, pki: PkiFiles, tmp_path: Path
) -> None:
    config = api.kubeconfig(tmp_path / "kubeconfig")
    code, doc = probe_json(
        "connect", "127.0.0.1:1", "--ca-file", str(pki.ca_cert), "--kubeconfig", str(config),
        "--sat-serviceaccount", "nobody",
    )  # fmt: skip
    assert code == 3
    assert doc["error"]["kind"] == "cluster_unreachable"
    assert f"{NS}/nobody" in doc["error"]["message"]
    assert "not found" in doc["error"]["message"]
    assert not api.minted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sat-serviceaccount", "a", "--sat-file", "token"], "pick one"),
        (["--sat-serviceaccount", "a", "--mqtt-version", "3.1.1"], "needs MQTT 5"),
        (["--sat-audience", "aio-internal"], "needs --sat-serviceaccount"),
        (["--sat-serviceaccount", "Bad/Name"], "not a Kubernetes name"),
        (["--sat-serviceaccount", "ns/"], "not a Kubernetes name"),
        (["--sat-serviceaccount", "a/b/c"], "not a Kubernetes name"),
    ],
)
def test_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("x.y.z")
    result = probe("connect", "--ca-file", "ca.crt", *args)
    assert result.exit_code == 2
    assert message in result.output

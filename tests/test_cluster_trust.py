"""Trust from the cluster: the official Kubernetes client against the suite's API server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqtt_tls_probe.aio import LATER_TRUST_BUNDLE_CONFIGMAP, NAMESPACE, TRUST_BUNDLE_CONFIGMAP
from mqtt_tls_probe.dev.harness import BrokerHandle
from mqtt_tls_probe.dev.pki import PkiFiles, create_root_ca

from .helpers import probe, probe_json, stage
from .kube_api import FakeApiServer
from .servers import TcpServer, free_port, hold

QUICKSTART_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{TRUST_BUNDLE_CONFIGMAP}"


@pytest.fixture
def api(tmp_path: Path, pki: PkiFiles) -> Iterator[FakeApiServer]:
    """An API server holding the quickstart trust bundle of the harness PKI."""
    with FakeApiServer(tmp_path / "apiserver") as server:
        server.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": pki.ca_cert.read_text()})
        yield server
    assert not server.secret_data_requested()


@pytest.fixture
def kubeconfig(api: FakeApiServer, tmp_path: Path) -> Path:
    return api.kubeconfig(tmp_path / "kubeconfig")


def test_connect_end_to_end_with_the_bundle_from_the_cluster(
    api: FakeApiServer, kubeconfig: Path, harness: BrokerHandle
) -> None:
    code, doc = probe_json("connect", harness.address, "--kubeconfig", str(kubeconfig))
    assert code == 0, doc["error"]
    assert doc["trust"]["source"] == "cluster"
    assert doc["trust"]["location"] == f"configmap {NAMESPACE}/{TRUST_BUNDLE_CONFIGMAP}[ca.crt]"
    assert [r.path for r in api.requests] == [QUICKSTART_PATH]
    assert all(r.authorized for r in api.requests)


def test_kubeconfig_env_with_several_paths_and_the_default_location(
    api: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kubectl's rule: every file of $KUBECONFIG; the first current-context wins.
    first = api.kubeconfig(tmp_path / "a", current=None, contexts={"other": "wrong-token"})
    second = api.kubeconfig(tmp_path / "b")
    monkeypatch.setenv(
        "KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), str(first), str(second)])
    )
    code, doc = probe_json("bundle")
    assert code == 0, doc["error"]
    monkeypatch.delenv("KUBECONFIG")
    api.kubeconfig(Path(os.environ["HOME"]) / ".kube" / "config")
    code, doc = probe_json("bundle")
    assert code == 0, doc["error"]


def test_in_cluster_service_account(
    api: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
    monkeypatch.setenv("PROBE_SERVICE_ACCOUNT_DIR", str(api.service_account_dir(tmp_path / "sa")))
    code, doc = probe_json("bundle")
    assert code == 0, doc["error"]
    assert doc["source"] == "cluster"


def test_context_selects_the_identity(api: FakeApiServer, tmp_path: Path) -> None:
    config = api.kubeconfig(tmp_path / "k", current="stale", contexts={"stale": "old", "aio": "x"})
    config = api.kubeconfig(
        tmp_path / "k",
        current="stale",
        contexts={"stale": "expired-token", "aio": "probe-test-token"},
    )
    code, doc = probe_json("bundle", "--kubeconfig", str(config))
    assert code == 3
    assert doc["error"]["kind"] == "cluster_forbidden"
    assert "401" in doc["error"]["message"]
    code, doc = probe_json("bundle", "--kubeconfig", str(config), "--context", "aio")
    assert code == 0


def test_unknown_context_lists_the_contexts(kubeconfig: Path) -> None:
    code, doc = probe_json("bundle", "--kubeconfig", str(kubeconfig), "--context", "nope")
    assert code == 3
    assert doc["error"]["kind"] == "kubeconfig_invalid"
    assert "'nope'" in doc["error"]["message"]
    assert "aio" in doc["error"]["message"]


def test_missing_and_broken_kubeconfig(tmp_path: Path) -> None:
    code, doc = probe_json("bundle", "--kubeconfig", str(tmp_path / "absent"))
    assert code == 3
    assert doc["error"]["kind"] == "kubeconfig_invalid"
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed")
    code, doc = probe_json("bundle", "--kubeconfig", str(broken))
    assert code == 3
    assert doc["error"]["kind"] == "kubeconfig_invalid"
    # No kubeconfig anywhere and not in a pod.
    code, doc = probe_json("bundle")
    assert doc["error"]["kind"] == "kubeconfig_invalid"
    assert "--ca-file" in doc["error"]["hint"]


def test_namespace_configmap_and_key(api: FakeApiServer, kubeconfig: Path, pki: PkiFiles) -> None:
    api.add_configmap("mqtt", "my-bundle", {"root.pem": pki.ca_cert.read_text()})
    args = ("bundle", "--kubeconfig", str(kubeconfig), "--namespace", "mqtt")
    code, doc = probe_json(*args, "--configmap", "my-bundle", "--configmap-key", "root.pem")
    assert code == 0, doc["error"]
    assert doc["location"] == "configmap mqtt/my-bundle[root.pem]"


def test_missing_configmap_is_not_found(api: FakeApiServer, kubeconfig: Path) -> None:
    code, doc = probe_json("bundle", "--kubeconfig", str(kubeconfig), "--namespace", "elsewhere")
    assert code == 3
    assert doc["error"]["kind"] == "trust_bundle_not_found"
    assert TRUST_BUNDLE_CONFIGMAP in doc["error"]["message"]
    assert LATER_TRUST_BUNDLE_CONFIGMAP in doc["error"]["message"]  # both names were tried


def test_later_release_name_is_found_and_said(
    tmp_path: Path, pki: PkiFiles, harness: BrokerHandle
) -> None:
    with FakeApiServer(tmp_path / "api") as api:
        api.add_configmap(
            NAMESPACE, LATER_TRUST_BUNDLE_CONFIGMAP, {"ca.crt": pki.ca_cert.read_text()}
        )
        config = api.kubeconfig(tmp_path / "k")
        code, doc = probe_json("connect", harness.address, "--kubeconfig", str(config))
        assert code == 0, doc["error"]
        assert LATER_TRUST_BUNDLE_CONFIGMAP in doc["trust"]["location"]
        assert "later releases" in stage(doc, "trust")["detail"]
        # The twin: an explicit --configmap turns the search off.
        code, doc = probe_json(
            "bundle", "--kubeconfig", str(config), "--configmap", TRUST_BUNDLE_CONFIGMAP
        )
        assert doc["error"]["kind"] == "trust_bundle_not_found"


def test_missing_key_lists_the_keys(api: FakeApiServer, kubeconfig: Path) -> None:
    api.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"root-ca.pem": "x", "README": "y"})
    code, doc = probe_json("bundle", "--kubeconfig", str(kubeconfig))
    assert code == 3
    assert doc["error"]["kind"] == "trust_bundle_key_missing"
    assert "README, root-ca.pem" in doc["error"]["message"]
    assert "--configmap-key README" in doc["error"]["hint"]


def test_a_value_without_certificates_is_invalid(api: FakeApiServer, kubeconfig: Path) -> None:
    api.add_configmap(
        NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": "-----BEGIN PRIVATE KEY-----\nAAAA\n"}
    )
    code, doc = probe_json("bundle", "--kubeconfig", str(kubeconfig))
    assert code == 3
    assert doc["error"]["kind"] == "trust_bundle_invalid"
    assert "private key" in doc["error"]["message"]


def test_forbidden_names_verb_resource_and_namespace(api: FakeApiServer, kubeconfig: Path) -> None:
    api.forbidden.add(QUICKSTART_PATH)
    code, doc = probe_json("connect", "--kubeconfig", str(kubeconfig))
    assert code == 3
    assert doc["error"]["kind"] == "cluster_forbidden"
    assert f"may not get configmaps in the namespace {NAMESPACE}" in doc["error"]["message"]
    assert "--verb=get --resource=configmaps" in doc["error"]["hint"]


def test_unreachable_api_server(api: FakeApiServer, tmp_path: Path) -> None:
    closed = api.kubeconfig(tmp_path / "closed", server=f"https://127.0.0.1:{free_port()}")
    code, doc = probe_json("bundle", "--kubeconfig", str(closed))
    assert code == 3
    assert doc["error"]["kind"] == "cluster_unreachable"
    # The API server's certificate from another CA than the kubeconfig says.
    other = api.kubeconfig(tmp_path / "other", ca_pem=create_root_ca("Not the API CA").cert_pem())
    code, doc = probe_json("bundle", "--kubeconfig", str(other))
    assert doc["error"]["kind"] == "cluster_unreachable"
    assert "certificate-authority-data" in doc["error"]["hint"]
    # An API server that never answers, bounded by --timeout.
    with TcpServer(hold) as silent:
        config = api.kubeconfig(tmp_path / "silent", server=f"https://{silent.address}")
        code, doc = probe_json("bundle", "--kubeconfig", str(config), "--timeout", "0.5")
    assert doc["error"]["kind"] == "cluster_unreachable"
    assert "0.5 s" in doc["error"]["message"]


def test_bundle_with_two_cas_trusts_and_shows_both(
    api: FakeApiServer, kubeconfig: Path, pki: PkiFiles, harness: BrokerHandle
) -> None:
    incoming = create_root_ca()  # a rotation in progress: old and new CA side by side
    bundle = incoming.cert_pem().decode() + pki.ca_cert.read_text()
    api.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": bundle})
    code, doc = probe_json("connect", harness.address, "--kubeconfig", str(kubeconfig))
    assert code == 0, doc["error"]
    assert len(doc["trust"]["certificates"]) == 2
    assert stage(doc, "trust")["detail"].startswith("2 CAs from configmap")
    text = probe("bundle", "--kubeconfig", str(kubeconfig))
    assert "(2 CA certificates)" in text.stdout
    assert text.stdout.count("SHA-256") == 2
    pem = probe("bundle", "--kubeconfig", str(kubeconfig), "--pem")
    assert pem.stdout.count("BEGIN CERTIFICATE") == 2

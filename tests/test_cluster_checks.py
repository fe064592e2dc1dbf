"""``probe cluster``: each check's outcomes against the suite's API server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.aio import (
    CA_ISSUER,
    CA_SECRET,
    LATER_CA_CLUSTER_ISSUER,
    LATER_CA_SECRET,
    LATER_CA_SECRET_NAMESPACE,
    LATER_TRUST_BUNDLE_CONFIGMAP,
    NAMESPACE,
    TRUST_BUNDLE_CONFIGMAP,
)
from mqtt_tls_probe.dev.pki import CertAndKey, create_root_ca

from .helpers import probe, probe_json
from .kube_api import FakeApiServer
from .servers import free_port

ISSUER_PATH = f"/apis/cert-manager.io/v1/namespaces/{NAMESPACE}/issuers/{CA_ISSUER}"
SECRET_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets/{CA_SECRET}"
BUNDLE_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{TRUST_BUNDLE_CONFIGMAP}"


def _healthy(api: FakeApiServer, ca: CertAndKey) -> None:
    api.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": ca.cert_pem().decode()})
    api.add_secret(NAMESPACE, CA_SECRET)
    api.add_issuer(NAMESPACE, CA_ISSUER, CA_SECRET)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FakeApiServer]:
    with FakeApiServer(tmp_path / "apiserver") as server:
        yield server
    # The CA's private key never leaves the cluster: only metadata was asked for.
    assert not server.secret_data_requested()


def _checks(api: FakeApiServer, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    config = api.kubeconfig(tmp_path / "kubeconfig")
    return probe_json("cluster", "--kubeconfig", str(config), *args)


def _status(doc: dict[str, Any], name: str) -> list[str]:
    return [c["status"] for c in doc["checks"] if c["name"] == name]


def _message(doc: dict[str, Any], name: str) -> str:
    return " ".join(c["message"] for c in doc["checks"] if c["name"] == name)


def test_healthy_quickstart_cluster_is_a_warning(api: FakeApiServer, tmp_path: Path) -> None:
    _healthy(api, create_root_ca())
    code, doc = _checks(api, tmp_path)
    assert code == 0
    assert doc["ok"] is True
    assert doc["status"] == "warning"
    assert set(doc) >= {"ok", "status", "checks", "exit_code"}
    assert all(set(c) == {"name", "status", "message", "hint"} for c in doc["checks"])
    statuses = {c["name"]: c["status"] for c in doc["checks"]}
    assert statuses == {
        "trust-bundle": "ok",
        "ca-expiry": "ok",
        "quickstart-ca": "warning",
        "ca-secret": "ok",
        "issuer": "ok",
    }
    assert "KeyPairVerified" in _message(doc, "issuer")
    assert "metadata only" in _message(doc, "ca-secret")
    assert [r.accept for r in api.requests if "/secrets/" in r.path] == [
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    ]


def test_own_ca_is_all_ok(api: FakeApiServer, tmp_path: Path) -> None:
    _healthy(api, create_root_ca("Contoso Production Root"))
    code, doc = _checks(api, tmp_path)
    assert (code, doc["status"]) == (0, "ok")
    text = probe("cluster", "--kubeconfig", str(tmp_path / "kubeconfig"))
    assert "status: ok (exit 0)" in text.stdout


def test_ca_expiry_per_ca(api: FakeApiServer, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    soon = create_root_ca("Expiring Root", days=3)
    gone = create_root_ca("Expired Root", not_before=now - timedelta(days=40), days=30)
    bundle = soon.cert_pem() + gone.cert_pem()
    api.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": bundle.decode()})
    api.add_secret(NAMESPACE, CA_SECRET)
    api.add_issuer(NAMESPACE, CA_ISSUER, CA_SECRET)
    code, doc = _checks(api, tmp_path)
    assert code == 3
    assert doc["status"] == "error"
    assert _status(doc, "ca-expiry") == ["warning", "error"]
    assert "Expiring Root" in _message(doc, "ca-expiry")
    assert "has expired" in _message(doc, "ca-expiry")


def test_later_release_layout(api: FakeApiServer, tmp_path: Path) -> None:
    """Later releases: another ConfigMap name, a ClusterIssuer, the Secret in cert-manager."""
    ca = create_root_ca("Contoso Production Root").cert_pem().decode()
    api.add_configmap(NAMESPACE, LATER_TRUST_BUNDLE_CONFIGMAP, {"ca.crt": ca})
    api.add_secret(LATER_CA_SECRET_NAMESPACE, LATER_CA_SECRET)
    api.add_cluster_issuer(LATER_CA_CLUSTER_ISSUER, LATER_CA_SECRET)
    code, doc = _checks(api, tmp_path)
    assert (code, doc["status"]) == (0, "ok"), doc["checks"]
    assert f"{LATER_CA_SECRET_NAMESPACE}/{LATER_CA_SECRET} exists" in _message(doc, "ca-secret")
    assert f"ClusterIssuer {LATER_CA_CLUSTER_ISSUER} is Ready" in _message(doc, "issuer")


def test_missing_secret_and_issuer(api: FakeApiServer, tmp_path: Path) -> None:
    api.add_configmap(
        NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": create_root_ca().cert_pem().decode()}
    )
    code, doc = _checks(api, tmp_path)
    assert code == 3
    assert _status(doc, "ca-secret") == ["error"]
    assert _status(doc, "issuer") == ["error"]
    assert "does not exist" in _message(doc, "issuer")
    assert LATER_CA_CLUSTER_ISSUER in _message(doc, "issuer")  # both layouts were looked for
    assert LATER_CA_SECRET in _message(doc, "ca-secret")


@pytest.mark.parametrize(
    ("secret_name", "ready", "reason", "message", "expected"),
    [
        ("other-secret", "True", "KeyPairVerified", "ok", "signs with the Secret 'other-secret'"),
        (
            CA_SECRET,
            "False",
            "ErrGetKeyPair",
            "secret not found",
            "ErrGetKeyPair: secret not found",
        ),
        (CA_SECRET, "", "", "", "no Ready condition"),
    ],
)
def test_issuer_problems(
    api: FakeApiServer,
    tmp_path: Path,
    secret_name: str,
    ready: str,
    reason: str,
    message: str,
    expected: str,
) -> None:
    _healthy(api, create_root_ca())
    api.add_issuer(NAMESPACE, CA_ISSUER, secret_name, ready=ready, reason=reason, message=message)
    code, doc = _checks(api, tmp_path)
    assert code == 3
    assert _status(doc, "issuer") == ["error"]
    assert expected in _message(doc, "issuer")


def test_checks_the_identity_may_not_run_are_skipped(api: FakeApiServer, tmp_path: Path) -> None:
    _healthy(api, create_root_ca("Contoso Production Root"))
    api.forbidden |= {SECRET_PATH, ISSUER_PATH}
    code, doc = _checks(api, tmp_path)
    assert code == 0
    assert doc["status"] == "skipped"
    assert _status(doc, "ca-secret") == ["skipped"]
    assert _status(doc, "issuer") == ["skipped"]
    assert "may not get secrets" in _message(doc, "ca-secret")


def test_forbidden_bundle_is_skipped_but_the_rest_runs(api: FakeApiServer, tmp_path: Path) -> None:
    _healthy(api, create_root_ca())
    api.forbidden.add(BUNDLE_PATH)
    code, doc = _checks(api, tmp_path)
    assert _status(doc, "trust-bundle") == ["skipped"]
    assert _status(doc, "ca-expiry") == ["skipped"]
    assert _status(doc, "issuer") == ["ok"]
    assert code == 0


def test_missing_bundle_is_an_error(api: FakeApiServer, tmp_path: Path) -> None:
    api.add_secret(NAMESPACE, CA_SECRET)
    api.add_issuer(NAMESPACE, CA_ISSUER, CA_SECRET)
    code, doc = _checks(api, tmp_path)
    assert code == 3
    assert _status(doc, "trust-bundle") == ["error"]


def test_unreachable_or_unauthenticated_cluster(api: FakeApiServer, tmp_path: Path) -> None:
    config = api.kubeconfig(tmp_path / "k", server=f"https://127.0.0.1:{free_port()}")
    code, doc = probe_json("cluster", "--kubeconfig", str(config))
    assert code == 3
    assert _status(doc, "trust-bundle") == ["error"]
    assert {c["status"] for c in doc["checks"][1:]} == {"skipped"}
    bad_token = api.kubeconfig(tmp_path / "t", contexts={"aio": "expired"})
    code, doc = probe_json("cluster", "--kubeconfig", str(bad_token))
    assert code == 3
    assert "401" in _message(doc, "trust-bundle")
    code, doc = probe_json("cluster", "--kubeconfig", str(tmp_path / "absent"))
    assert code == 3
    assert _status(doc, "trust-bundle") == ["error"]

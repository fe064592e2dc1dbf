"""The renderers, pinned from report factories (no server): text lines and JSON documents."""

from __future__ import annotations

import json

from mqtt_tls_probe.errors import ErrorInfo, ErrorKind
from mqtt_tls_probe.output import OutputFormat, render
from mqtt_tls_probe.output.json_doc import document

from . import factories

CONTRACT_KEYS = {
    "ok", "verified", "target", "trust", "stages", "tls", "chain", "mqtt", "error", "exit_code",
}  # fmt: skip
ADDED_KEYS = {"roundtrip", "warnings"}
CERT_KEYS = {
    "subject", "issuer", "serial", "not_before", "not_after", "days_left", "sans", "is_ca",
    "key", "sha256",
}  # fmt: skip


def test_passing_report_text() -> None:
    text = render(factories.passing_report(), OutputFormat.TEXT)
    lines = text.splitlines()
    assert lines[0] == "probe connect localhost:18883 (verifying the name aio-broker)"
    assert lines[1] == "  PASS  trust          0.0 ms  trust done"
    assert lines[6] == "  PASS  mqtt           5.0 ms  mqtt done"
    assert "warning: The chain ends at the quickstart CA." in lines
    assert lines[-1] == "OK: localhost:18883 accepts MQTT over TLS, verified against ca.crt."
    assert "SHA-256" not in text  # certificates only with -v


def test_verbose_text_lists_every_certificate() -> None:
    text = render(factories.passing_report(), OutputFormat.TEXT, verbose=True)
    assert text.count("SHA-256") == 3  # leaf and CA as sent, CA as trusted
    assert "server chain, as sent (leaf first):" in text
    assert "      SANs        DNS:aio-broker, IP:10.0.0.9" in text
    assert "      finding     quickstart CA: not for production" in text


def test_failure_text_says_stage_kind_cause_and_hint() -> None:
    lines = render(factories.verify_failure(), OutputFormat.TEXT).splitlines()
    assert "  FAIL  verify         1.5 ms  hostname_mismatch" in lines
    assert "  SKIP  mqtt" in lines
    assert lines[-3:] == [
        "FAILED at verify: hostname_mismatch (exit 6)",
        "cause: The server certificate is not valid for localhost: it lists DNS:aio-broker.",
        "hint:  Add --server-name aio-broker.",
    ]


def test_unverified_text() -> None:
    report = factories.passing_report(verified=False)
    text = render(report, OutputFormat.TEXT)
    assert "  WARN  verify" in text
    assert "OK, but UNVERIFIED" in text


def test_connect_json_has_the_contract_keys() -> None:
    doc = json.loads(render(factories.passing_report(), OutputFormat.JSON))
    assert set(doc) == CONTRACT_KEYS | ADDED_KEYS
    assert doc["ok"] is True
    assert doc["exit_code"] == 0
    assert doc["target"] == {"host": "localhost", "port": 18883, "server_name": "aio-broker"}
    assert all(set(c) >= CERT_KEYS for c in doc["chain"] + doc["trust"]["certificates"])
    assert doc["chain"][0]["not_after"] == "2026-12-20T00:00:00Z"
    assert doc["stages"][2] == {
        "name": "tcp", "ok": True, "skipped": False, "ms": 2.0, "detail": "tcp done",
    }  # fmt: skip
    assert doc["warnings"] == [
        {"code": "quickstart_ca", "message": "The chain ends at the quickstart CA."}
    ]


def test_failure_json_has_one_error_and_its_exit_code() -> None:
    doc = document(factories.verify_failure())
    assert doc["ok"] is False
    assert doc["error"] == {
        "stage": "verify",
        "kind": "hostname_mismatch",
        "message": "The server certificate is not valid for localhost: it lists DNS:aio-broker.",
        "hint": "Add --server-name aio-broker.",
    }
    assert doc["exit_code"] == 6
    assert [s["name"] for s in doc["stages"] if s["skipped"]] == ["mqtt"]


def test_every_report_shares_one_error_shape() -> None:
    error = ErrorInfo.of(ErrorKind.TRUST_BUNDLE_NOT_FOUND, "No ConfigMap.")
    bundle = document(factories.bundle_report(error))
    assert set(bundle["error"]) == set(document(factories.verify_failure())["error"])
    assert bundle["error"] == {
        "stage": "trust",
        "kind": "trust_bundle_not_found",
        "message": "No ConfigMap.",
        "hint": error.hint,
    }
    assert bundle["exit_code"] == 3
    text = render(factories.bundle_report(error), OutputFormat.TEXT)
    assert text.startswith("FAILED: trust_bundle_not_found (exit 3)\ncause: No ConfigMap.\n")


def test_bundle_outputs() -> None:
    report = factories.bundle_report()
    text = render(report, OutputFormat.TEXT)
    assert text.startswith("trust bundle: configmap ns/name[ca.crt] (1 CA certificate)\n")
    assert "note: a note" in text
    assert text.endswith("wrote the bundle's PEM to ca.crt\n")
    doc = document(report)
    assert doc["source"] == "cluster"
    assert doc["note"] == "a note"
    assert [c["subject"] for c in doc["certificates"]] == [factories.QUICKSTART]


def test_inspection_outputs() -> None:
    report = factories.inspection_report()
    lines = render(report, OutputFormat.TEXT).splitlines()
    assert lines[0] == "chain sent by localhost:18883 (not verified):"
    assert lines[1] == "  TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384"
    assert lines[-1] == "warning: not valid for localhost"
    doc = document(report)
    assert doc["origin"] == "server"
    assert doc["warnings"][0]["code"] == "hostname_mismatch"


def test_cluster_outputs() -> None:
    report = factories.cluster_report()
    lines = render(report, OutputFormat.TEXT).splitlines()
    assert lines[0] == "probe cluster: namespace azure-iot-operations (context aio of kubeconfig)"
    assert lines[1] == "  OK       trust-bundle   configmap: 1 CA"
    assert "hint: kubectl describe issuer" in lines[-3]
    assert lines[-1] == "status: error (exit 3)"
    doc = document(report)
    assert doc["status"] == "error"
    assert doc["ok"] is False
    assert doc["checks"][1] == {
        "name": "quickstart-ca", "status": "warning", "message": "quickstart CA",
        "hint": "bring your own",
    }  # fmt: skip

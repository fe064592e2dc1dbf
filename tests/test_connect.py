"""``probe connect`` end to end against real brokers: the happy paths and the basic failures."""

from __future__ import annotations

import re
from pathlib import Path

from mqtt_tls_probe.dev.harness import BrokerHandle
from mqtt_tls_probe.dev.pki import PkiFiles, create_root_ca, init_pki, issue_server_certificate

from .brokers import harness_serving, mosquitto
from .helpers import probe, probe_json, stage, write_pem
from .servers import free_port

# The contract's top-level keys (shared/spec/probe-cli.md), and the documented additions.
CONTRACT_KEYS = {
    "ok", "verified", "target", "trust", "stages", "tls", "chain", "mqtt", "error", "exit_code",
}  # fmt: skip
ADDED_KEYS = {"roundtrip", "warnings"}
CERT_KEYS = {
    "subject", "issuer", "serial", "not_before", "not_after", "days_left", "sans", "is_ca",
    "key", "sha256",
}  # fmt: skip
STAGES = ["trust", "resolve", "tcp", "tls", "verify", "mqtt"]


def test_success_json_has_the_contract_keys(harness: BrokerHandle, pki: PkiFiles) -> None:
    code, doc = probe_json("connect", harness.address, "--ca-file", str(pki.ca_cert))
    assert code == 0
    assert set(doc) == CONTRACT_KEYS | ADDED_KEYS
    assert doc["ok"] is True
    assert doc["verified"] is True
    assert doc["error"] is None
    assert doc["target"] == {"host": "127.0.0.1", "port": harness.port, "server_name": "127.0.0.1"}
    assert doc["trust"]["source"] == "file"
    assert [s["name"] for s in doc["stages"]] == STAGES
    assert all(s["ok"] and not s["skipped"] and s["ms"] >= 0 for s in doc["stages"])
    assert doc["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert set(doc["tls"]) == {"version", "cipher", "alpn"}
    leaf, root = doc["chain"]
    assert set(leaf) >= CERT_KEYS
    assert "IP:127.0.0.1" in leaf["sans"]
    assert leaf["is_ca"] is False
    assert root["is_ca"] is True
    assert leaf["key"] == "EC P-256"
    assert re.fullmatch(r"[0-9a-f]{64}", leaf["sha256"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", leaf["not_after"])
    assert {"version", "reason_code", "reason"} <= set(doc["mqtt"])


def test_success_text_shows_every_stage(harness: BrokerHandle, pki: PkiFiles) -> None:
    result = probe("connect", harness.address, "--ca-file", str(pki.ca_cert))
    assert result.exit_code == 0
    for name in STAGES:
        assert re.search(rf"PASS\s+{name}\s+[\d.]+ ms", result.stdout), name
    assert "OK:" in result.stdout
    assert "quickstart CA" in result.stdout  # the not-for-production warning


def test_default_mqtt5_falls_back_to_311_on_amqtt(harness: BrokerHandle, pki: PkiFiles) -> None:
    code, doc = probe_json("connect", harness.address, "--ca-file", str(pki.ca_cert))
    assert code == 0
    assert doc["mqtt"]["version"] == "3.1.1"
    assert doc["mqtt"]["fallback_from"] == "5"
    assert doc["mqtt"]["reason_code"] == 0
    assert "MQTT 5 refused" in stage(doc, "mqtt")["detail"]
    assert "retried with 3.1.1" in stage(doc, "mqtt")["detail"]


def test_explicit_mqtt5_is_not_retried(harness: BrokerHandle, pki: PkiFiles) -> None:
    """The twin of the fallback: asked for 5 explicitly, amqtt's refusal stands."""
    args = ("connect", harness.address, "--ca-file", str(pki.ca_cert), "--mqtt-version", "5")
    code, doc = probe_json(*args)
    assert code == 7
    assert doc["error"]["kind"] == "protocol_unsupported"
    assert doc["mqtt"]["reason_code"] == 1  # what amqtt sent, in 3.1.1 form
    assert doc["mqtt"]["fallback_from"] is None


def test_mqtt_311_on_request(harness: BrokerHandle, pki: PkiFiles) -> None:
    args = ("connect", harness.address, "--ca-file", str(pki.ca_cert), "--mqtt-version", "3.1.1")
    code, doc = probe_json(*args)
    assert code == 0
    assert doc["mqtt"] == {
        "version": "3.1.1",
        "reason_code": 0,
        "reason": "Connection Accepted",
        "fallback_from": None,
        "properties": {},
        "sat": None,
    }


def test_mosquitto_accepts_mqtt5_without_fallback(pki: PkiFiles, tmp_path: Path) -> None:
    listener = [f"certfile {pki.server_cert}", f"keyfile {pki.server_key}", "allow_anonymous true"]
    with mosquitto(tmp_path, listener) as port:
        code, doc = probe_json("connect", f"127.0.0.1:{port}", "--ca-file", str(pki.ca_cert))
    assert code == 0, doc["error"]
    assert doc["mqtt"]["version"] == "5"
    assert doc["mqtt"]["fallback_from"] is None
    assert doc["mqtt"]["reason"] == "Success"
    assert "maximum_qos" not in doc["mqtt"]["properties"] or doc["mqtt"]["properties"]
    assert "retried" not in stage(doc, "mqtt")["detail"]


def test_a_ca_that_did_not_sign_the_server_fails_verify(
    harness: BrokerHandle, tmp_path: Path
) -> None:
    other = init_pki(tmp_path / "other")
    code, doc = probe_json("connect", harness.address, "--ca-file", str(other.ca_cert))
    assert code == 6
    assert doc["error"]["stage"] == "verify"
    assert stage(doc, "mqtt")["skipped"] is True
    assert doc["chain"], "the chain as sent is reported even when verification fails"


def test_unrelated_ca_is_unknown_ca(tmp_path: Path) -> None:
    served_by = create_root_ca("Broker CA")
    leaf = issue_server_certificate(served_by, ["localhost", "127.0.0.1"])
    trusted = create_root_ca("Some Other CA")
    write_pem(tmp_path / "trusted.crt", trusted)
    with harness_serving(tmp_path / "broker", [leaf, served_by], served_by) as handle:
        code, doc = probe_json(
            "connect", handle.address, "--ca-file", str(tmp_path / "trusted.crt")
        )
    assert code == 6
    assert doc["error"]["kind"] == "unknown_ca"
    assert "Broker CA" in doc["error"]["message"]
    assert "Some Other CA" in doc["error"]["message"]


def test_closed_port_is_connection_refused(pki: PkiFiles) -> None:
    code, doc = probe_json("connect", f"127.0.0.1:{free_port()}", "--ca-file", str(pki.ca_cert))
    assert code == 4
    assert doc["error"]["kind"] == "connection_refused"
    assert [s["name"] for s in doc["stages"] if s["skipped"]] == ["tls", "verify", "mqtt"]


def test_invalid_name_is_dns_failure(pki: PkiFiles) -> None:
    code, doc = probe_json("connect", "broker.invalid", "--ca-file", str(pki.ca_cert))
    assert code == 4
    assert doc["error"]["kind"] == "dns_failure"
    assert doc["error"]["stage"] == "resolve"


def test_missing_ca_file_is_exit_3(tmp_path: Path) -> None:
    code, doc = probe_json("connect", "--ca-file", str(tmp_path / "absent.crt"))
    assert code == 3
    assert doc["error"]["kind"] == "trust_bundle_not_found"
    assert all(s["skipped"] for s in doc["stages"][1:])


def test_no_ca_file_and_no_cluster_is_exit_3() -> None:
    code, doc = probe_json("connect", "localhost")
    assert code == 3
    assert doc["error"]["stage"] == "trust"
    assert "--ca-file" in doc["error"]["hint"]


def test_bad_flag_is_usage_error() -> None:
    result = probe("connect", "--no-such-flag")
    assert result.exit_code == 2
    assert result.stdout == ""


def test_roundtrip_on_the_harness(harness: BrokerHandle, pki: PkiFiles) -> None:
    args = ("connect", harness.address, "--ca-file", str(pki.ca_cert), "--topic", "probe/t1")
    code, doc = probe_json(*args)
    assert code == 0
    assert stage(doc, "roundtrip")["ok"] is True
    assert doc["roundtrip"]["topic"] == "probe/t1"
    assert doc["roundtrip"]["receive_ms"] >= 0

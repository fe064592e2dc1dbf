"""The report -> metrics mapping (``output.prometheus``), pinned from report factories."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mqtt_tls_probe.errors import ErrorInfo, ErrorKind, Stage
from mqtt_tls_probe.exporter.collector import registry_of
from mqtt_tls_probe.model import MqttInfo
from mqtt_tls_probe.output.prometheus import MetricFamily, merge, report_metrics

from . import factories


def by_name(families: tuple[MetricFamily, ...]) -> dict[str, MetricFamily]:
    return {family.name: family for family in families}


def test_a_passing_report() -> None:
    report = factories.passing_report()
    families = by_name(report_metrics(report, 0.25))
    assert families["probe_success"].samples == (((), 1.0),)
    assert families["probe_duration_seconds"].samples == (((), 0.25),)
    assert families["probe_exit_code"].samples == (((), 0.0),)
    assert "probe_error_info" not in families  # no sample, no family
    assert families["probe_tls_version_info"].samples == ((("TLS 1.3",), 1.0),)
    stages = dict(families["probe_stage_duration_seconds"].samples)
    assert stages[("mqtt",)] == 0.005  # 5 ms
    leaf, ca = report.chain
    certs = families["probe_cert_not_after_timestamp_seconds"]
    assert certs.label_names == ("role", "subject", "sha256")
    assert certs.samples == (
        (("leaf", leaf.subject, leaf.sha256), leaf.not_after.timestamp()),
        (("root", ca.subject, ca.sha256), ca.not_after.timestamp()),
    )
    assert families["probe_ssl_earliest_cert_expiry"].samples == (
        ((), min(leaf.not_after, ca.not_after).timestamp()),
    )
    assert families["probe_mqtt_version_info"].samples == ((("5",), 1.0),)
    assert families["probe_mqtt_connack_reason_code"].samples == (((), 0.0),)


def test_a_verify_failure_keeps_the_chain_and_names_stage_and_kind() -> None:
    report = factories.verify_failure()
    families = by_name(report_metrics(report, 0.1))
    assert families["probe_success"].samples == (((), 0.0),)
    assert families["probe_exit_code"].samples == (((), 6.0),)
    assert families["probe_error_info"].samples == ((("verify", "hostname_mismatch"), 1.0),)
    assert len(families["probe_cert_not_after_timestamp_seconds"].samples) == 2
    assert ("mqtt",) not in dict(families["probe_stage_duration_seconds"].samples)  # skipped


def test_an_intermediate_and_an_mqtt_refusal() -> None:
    leaf, root = factories.cert(), factories.ca_cert()
    intermediate = factories.cert("CN=Intermediate", is_ca=True, self_signed=False)
    refused = ErrorInfo.of(ErrorKind.NOT_AUTHORIZED, "refused", stage=Stage.MQTT)
    report = factories.passing_report(
        chain=(leaf, intermediate, root), mqtt=MqttInfo("5", 0x87, "Not authorized"), error=refused
    )
    families = by_name(report_metrics(report, 0.1))
    roles = [labels[0] for labels, _ in families["probe_cert_not_after_timestamp_seconds"].samples]
    assert roles == ["leaf", "intermediate", "root"]
    assert families["probe_mqtt_connack_reason_code"].samples == (((), 135.0),)
    assert families["probe_error_info"].samples == ((("mqtt", "not_authorized"), 1.0),)


def test_labels_lead_and_merge_puts_each_name_once() -> None:
    one = report_metrics(factories.passing_report(), 0.1, {"target": "a:1"})
    two = report_metrics(factories.verify_failure(), 0.2, {"target": "b:2"})
    merged = by_name(merge(one + two))
    assert len(merged) == len(merge(one + two))
    assert merged["probe_success"].label_names == ("target",)
    assert merged["probe_success"].samples == ((("a:1",), 1.0), (("b:2",), 0.0))
    assert merged["probe_error_info"].label_names == ("target", "stage", "kind")


def test_hostile_subjects_are_escaped_by_prometheus_client() -> None:
    evil = 'CN=a"b\\c\nd\x1b[2J'
    report = factories.passing_report(chain=(factories.cert(evil),))
    text = generate_latest(registry_of(report_metrics(report, 0.1))).decode()
    [family] = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "probe_cert_not_after_timestamp_seconds"
    ]
    assert family.samples[0].labels["subject"] == evil  # round-trips intact
    assert "\nd" not in text  # the newline is escaped, the line not broken


def test_tls_version_names_follow_blackbox_exporter() -> None:
    report = factories.passing_report()
    for ours, theirs in (("TLSv1.2", "TLS 1.2"), ("TLSv1.3", "TLS 1.3"), ("SSLv3", "SSLv3")):
        tls = report.tls._replace(version=ours) if report.tls else None
        families = by_name(report_metrics(report._replace(tls=tls), 0.1))
        assert families["probe_tls_version_info"].samples == (((theirs,), 1.0),)

"""``--junit FILE``: JUnit XML that CI tools read back, from real runs and from report factories.

The documents parsed here are the probe's own output (S314 does not apply).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped, TestSuite

from mqtt_tls_probe.dev.harness import BrokerHandle
from mqtt_tls_probe.dev.pki import PkiFiles, create_root_ca, issue_server_certificate
from mqtt_tls_probe.model import Target
from mqtt_tls_probe.output import junit

from . import factories
from .brokers import harness_serving
from .helpers import probe, write_pem
from .servers import TcpServer, free_port, hold

STAGES = ["trust", "resolve", "tcp", "tls", "verify", "mqtt"]


def suites_of(path: Path) -> list[TestSuite]:
    ET.parse(path)  # noqa: S314 (ours): well-formed first, junitparser is lenient
    return list(JUnitXml.fromfile(str(path)))


def results(suite: TestSuite) -> dict[str, str]:
    """Stage -> "passed", "skipped" or the failure's type."""
    outcome = {}
    for case in suite:
        found = case.result
        if not found:
            outcome[case.name] = "passed"
        elif isinstance(found[0], Skipped):
            outcome[case.name] = "skipped"
        else:
            assert isinstance(found[0], Failure)
            outcome[case.name] = f"failure {found[0].type}"
    return outcome


# --- real runs ---------------------------------------------------------------------------


def test_a_passing_run_writes_one_passed_case_per_stage(
    harness: BrokerHandle, pki: PkiFiles, tmp_path: Path
) -> None:
    out = tmp_path / "junit.xml"
    args = ["connect", harness.address, "--ca-file", str(pki.ca_cert), "--roundtrip"]
    result = probe(*args, "--junit", str(out), "--output", "json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["ok"] is True  # stdout: the report, as without --junit
    [suite] = suites_of(out)
    assert suite.name == harness.address
    assert results(suite) == dict.fromkeys([*STAGES, "roundtrip"], "passed")
    assert (suite.tests, suite.failures, suite.skipped, suite.errors) == (7, 0, 0, 0)
    assert {case.classname for case in suite} == {harness.address}
    assert suite.time == pytest.approx(sum(case.time for case in suite), abs=0.01)
    assert datetime.fromisoformat(suite.timestamp) <= datetime.now(UTC)
    tls_case = next(case for case in suite if case.name == "tls")
    assert "TLSv1." in tls_case.system_out  # a passed stage's detail


def test_a_verify_failure_is_a_failure_with_kind_message_and_hint(
    harness: BrokerHandle, tmp_path: Path
) -> None:
    wrong_ca = write_pem(tmp_path / "other-ca.crt", create_root_ca("Some Other Root CA"))
    out = tmp_path / "junit.xml"
    plain = probe("connect", harness.address, "--ca-file", str(wrong_ca), "--output", "json")
    result = probe(
        "connect", harness.address, "--ca-file", str(wrong_ca), "--output", "json",
        "--junit", str(out),
    )  # fmt: skip
    assert result.exit_code == plain.exit_code == 6
    document, before = json.loads(result.stdout), json.loads(plain.stdout)
    assert document["error"] == before["error"]  # stdout is what it is without --junit
    assert [s["name"] for s in document["stages"]] == [s["name"] for s in before["stages"]]
    [suite] = suites_of(out)
    assert results(suite) == {
        **dict.fromkeys(STAGES[:4], "passed"),
        "verify": "failure unknown_ca",
        "mqtt": "skipped",
    }
    assert (suite.tests, suite.failures, suite.skipped, suite.errors) == (6, 1, 1, 0)
    failure = next(case for case in suite if case.name == "verify").result[0]
    assert failure.message == document["error"]["message"]
    assert failure.text == document["error"]["hint"]
    skipped = next(case for case in suite if case.name == "mqtt").result[0]
    assert skipped.message == "skipped after verify failed"


def test_ansi_escapes_in_a_certificate_name_still_give_valid_xml(tmp_path: Path) -> None:
    ca = create_root_ca()
    evil = "broker\x1b[2J\x1b]0;owned\x07-\x07name"
    leaf = issue_server_certificate(
        ca,
        ["localhost", "127.0.0.1"],
        common_name=evil,
        not_before=datetime.now(UTC) - timedelta(days=10),
        days=1,
    )
    out = tmp_path / "junit.xml"
    with harness_serving(tmp_path / "pki", [leaf, ca], ca) as broker:
        result = probe(
            "connect", broker.address, "--ca-file", str(broker.ca_file), "--junit", str(out)
        )
    assert result.exit_code == 6
    raw = out.read_bytes()
    assert b"\x1b" not in raw
    assert b"\x07" not in raw
    [suite] = suites_of(out)
    assert results(suite)["verify"] == "failure cert_expired"
    failure = next(case for case in suite if case.name == "verify").result[0]
    assert "CN=broker-#x07name" in failure.message  # escapes dropped, BEL shown


def test_an_unwritable_junit_path_is_a_usage_error_before_any_probe(
    pki: PkiFiles, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.xml"
    link.symlink_to(victim)
    with TcpServer(hold) as server:
        for path, why in (
            (link, "symbolic link"),
            (tmp_path, "directory"),
            (tmp_path / "missing" / "junit.xml", "No such file"),
        ):
            result = probe(
                "connect", server.address, "--ca-file", str(pki.ca_cert), "--junit", str(path)
            )
            assert result.exit_code == 2, path
            assert why in result.stderr
            assert result.stdout == ""
        assert server.accepted == 0  # refused before the probe ran
    assert victim.read_text() == "keep me"


def test_an_existing_file_is_replaced(harness: BrokerHandle, pki: PkiFiles, tmp_path: Path) -> None:
    out = tmp_path / "junit.xml"
    out.write_text("x" * 100_000)  # longer than the report: nothing of it may remain
    result = probe("connect", harness.address, "--ca-file", str(pki.ca_cert), "--junit", str(out))
    assert result.exit_code == 0
    assert b"x" * 50 not in out.read_bytes()
    assert len(suites_of(out)) == 1


# --- the renderer, from report factories ---------------------------------------------------


def test_suites_per_report_and_totals_on_testsuites() -> None:
    ipv6 = factories.passing_report(target=Target("::1", 8883, "aio-broker"))
    started = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    document = junit.render([factories.verify_failure(), ipv6], started)
    root = ET.fromstring(document)  # noqa: S314 (ours)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("12", "1", "1")
    first, second = JUnitXml.fromstring(document)
    assert first.name == "localhost:18883"
    assert second.name == "[::1]:8883"
    assert {case.classname for case in second} == {"[::1]:8883"}
    assert first.timestamp == "2026-11-29T12:00:00+00:00"
    out = root.find("testsuite/system-out")
    assert out is not None
    assert out.text == "warning quickstart_ca: The chain ends at the quickstart CA.\n"


def test_xml_text_drops_ansi_sequences_and_shows_other_forbidden_characters() -> None:
    assert junit.xml_text("a \x1b[31mred\x1b[0m b") == "a red b"
    assert junit.xml_text("bell\x07 nul\x00 del\x7f") == "bell#x07 nul#x00 del#x7F"
    assert junit.xml_text("title\x1b]0;x\x07end") == "titleend"
    assert junit.xml_text("surrogate \ud800 and \ufffe") == "surrogate #xD800 and #xFFFE"
    assert junit.xml_text("tab\tnewline\n é ✓ 😀") == "tab\tnewline\n é ✓ 😀"


def test_scan_writes_one_suite_per_target_in_input_order(
    harness: BrokerHandle, pki: PkiFiles, tmp_path: Path
) -> None:
    out = tmp_path / "scan.xml"
    closed = f"127.0.0.1:{free_port()}"
    args = ["scan", harness.address, closed, "--ca-file", str(pki.ca_cert), "--timeout", "2"]
    result = probe(*args, "--junit", str(out), "--output", "jsonl")
    assert result.exit_code == 4, result.stdout  # the lowest failing code: tcp
    assert len(result.stdout.splitlines()) == 2  # stdout is what it is without --junit
    good, refused = suites_of(out)
    assert harness.address in str(good.name)
    assert set(results(good).values()) == {"passed"}
    assert results(refused)["tcp"] == "failure connection_refused"
    assert results(refused)["mqtt"] == "skipped"


def test_scan_refuses_an_unwritable_junit_file_before_probing(
    pki: PkiFiles, tmp_path: Path
) -> None:
    with TcpServer(hold) as server:
        args = ["scan", server.address, "--ca-file", str(pki.ca_cert)]
        result = probe(*args, "--junit", str(tmp_path), "--timeout", "1")
        assert result.exit_code == 2
        assert server.accepted == 0


def test_connect_repeat_writes_junit_too(
    harness: BrokerHandle, pki: PkiFiles, tmp_path: Path
) -> None:
    """Review finding: --repeat ended the command before --junit was written."""
    out = tmp_path / "series.xml"
    args = ["connect", harness.address, "--ca-file", str(pki.ca_cert), "--repeat", "2"]
    result = probe(*args, "--interval", "0", "--junit", str(out))
    assert result.exit_code == 0, result.stdout
    [suite] = suites_of(out)
    assert set(results(suite).values()) == {"passed"}
    refused = probe(*args, "--interval", "0", "--junit", str(tmp_path))  # a directory
    assert refused.exit_code == 2

"""``probe scan`` against real servers on 127.0.0.1: a mix of outcomes, the exit rule,
the output shapes, the whole-target deadline, descriptors, and the targets file."""

from __future__ import annotations

import json
import math
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mqtt_tls_probe.cli import app
from mqtt_tls_probe.config import ConnectInputs
from mqtt_tls_probe.dev.harness import BrokerHandle
from mqtt_tls_probe.dev.pki import CertAndKey, PkiFiles, create_root_ca, issue_server_certificate
from mqtt_tls_probe.errors import ErrorInfo, ErrorKind, Stage
from mqtt_tls_probe.orchestrators.scan import run_scan
from mqtt_tls_probe.scan_config import build_scan_plan
from mqtt_tls_probe.scan_model import TargetOutcome

from . import factories
from .brokers import mosquitto
from .helpers import probe, write_pem
from .scan_servers import dribble, refuses_v5_then_silent
from .servers import TcpServer, free_port, hold, server_context, tls_handler, write_chain

CONTRACT_KEYS = {
    "ok", "verified", "target", "trust", "stages", "tls", "chain", "mqtt", "error", "exit_code",
    "roundtrip", "warnings",
}  # fmt: skip
LOCAL = ["localhost", "127.0.0.1"]
NOW = datetime.now(UTC)
DAY = timedelta(days=1)
MARGIN = 2.0  # seconds for start-up and unwinding on a busy 2-core machine


@pytest.fixture(scope="module")
def scan_ca() -> CertAndKey:
    return create_root_ca("Scan Test CA")


@pytest.fixture
def ca_file(tmp_path: Path, scan_ca: CertAndKey, pki: PkiFiles) -> Path:
    """Both CAs: the scan's own, and the harness broker's (one trust bundle for all targets)."""
    path = write_pem(tmp_path / "bundle.crt", scan_ca)
    path.write_bytes(path.read_bytes() + pki.ca_cert.read_bytes())
    return path


@pytest.fixture
def good_broker(tmp_path: Path, scan_ca: CertAndKey) -> Iterator[str]:
    """mosquitto with a TLS listener whose certificate the scan's CA issued."""
    cert_file, key_file = write_chain(tmp_path, [issue_server_certificate(scan_ca, LOCAL), scan_ca])
    listener = [f"certfile {cert_file}", f"keyfile {key_file}", "allow_anonymous true"]
    with mosquitto(tmp_path / "mosquitto", listener) as port:
        yield f"127.0.0.1:{port}"


@pytest.fixture
def expired_server(tmp_path: Path, scan_ca: CertAndKey) -> Iterator[str]:
    leaf = issue_server_certificate(scan_ca, LOCAL, not_before=NOW - 10 * DAY, days=5)
    context = server_context(*write_chain(tmp_path / "expired", [leaf, scan_ca]))
    with TcpServer(tls_handler(context)) as server:
        yield server.address


def _scan_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = probe("scan", *args, "--output", "json")
    document = json.loads(result.stdout)
    assert document["exit_code"] == result.exit_code
    return result.exit_code, document


def _kind(document: dict[str, Any]) -> str | None:
    return document["error"]["kind"] if document["error"] else None


# --- a mix of outcomes --------------------------------------------------------------------


def test_a_mix_is_reported_per_target_in_input_order(
    tmp_path: Path,
    ca_file: Path,
    good_broker: str,
    harness: BrokerHandle,
    expired_server: str,
) -> None:
    refused = f"127.0.0.1:{free_port()}"
    with TcpServer(hold) as silent:
        targets = [good_broker, harness.address, refused, silent.address, expired_server]
        code, doc = _scan_json(*targets, "--ca-file", str(ca_file), "--timeout", "0.5")
    assert set(doc) == {"targets", "summary", "exit_code"}
    found = doc["targets"]
    assert [f"{t['target']['host']}:{t['target']['port']}" for t in found] == targets
    assert all(set(t) == CONTRACT_KEYS for t in found)
    assert [_kind(t) for t in found] == [
        None,
        None,
        "connection_refused",
        "handshake_timeout",
        "cert_expired",
    ]
    assert [t["exit_code"] for t in found] == [0, 0, 4, 5, 6]
    assert found[0]["mqtt"]["version"] == "5"
    # The 3.1.1-only broker passes through connect's one retry with 3.1.1.
    assert found[1]["mqtt"]["version"] == "3.1.1"
    assert found[1]["mqtt"]["fallback_from"] == "5"
    assert found[4]["chain"][0]["days_left"] < 0
    assert doc["summary"] == {
        "total": 5,
        "passed": 2,
        "failed": 3,
        "by_kind": {"cert_expired": 1, "connection_refused": 1, "handshake_timeout": 1},
    }
    assert code == 4  # the lowest non-zero code: tcp (4) before tls (5) and verify (6)


def test_text_has_a_line_per_target_then_the_summary(
    ca_file: Path, good_broker: str, harness: BrokerHandle
) -> None:
    refused = f"127.0.0.1:{free_port()}"
    targets = [good_broker, harness.address, refused]
    result = probe("scan", *targets, "--ca-file", str(ca_file), "--mqtt-version", "5")
    lines = result.stdout.splitlines()
    by_target = {line.split()[0]: line for line in lines[:3]}
    assert set(by_target) == set(targets)
    assert re.fullmatch(r"\S+\s+PASS\s+TLSv1\.[23]\s+leaf \d+d\s+[\d.]+ ms", by_target[good_broker])
    assert re.fullmatch(
        r"\S+\s+FAIL\s+mqtt protocol_unsupported\s+TLSv1\.[23]\s+leaf \d+d\s+[\d.]+ ms",
        by_target[harness.address],
    )
    assert re.fullmatch(
        r"\S+\s+FAIL\s+tcp connection_refused\s+-\s+-\s+[\d.]+ ms", by_target[refused]
    )
    assert lines[3] == ""
    assert re.fullmatch(r"scan: 3 targets in [\d.]+ s: 1 passed, 2 failed \(exit 4\)", lines[4])
    assert lines[5] == "failed by kind: connection_refused 1, protocol_unsupported 1"
    assert result.exit_code == 4
    assert result.stderr == ""  # no progress line: stderr is not a terminal


def test_jsonl_is_one_connect_report_per_line_and_nothing_else(
    ca_file: Path, good_broker: str
) -> None:
    refused = f"127.0.0.1:{free_port()}"
    result = probe(
        "scan", good_broker, refused, good_broker, "--ca-file", str(ca_file), "-o", "jsonl"
    )
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 3  # the duplicate is probed twice; no summary line
    assert all(set(d) == CONTRACT_KEYS for d in documents)
    ports = sorted(d["target"]["port"] for d in documents)
    assert ports == sorted([int(good_broker.rsplit(":", 1)[1])] * 2 + [int(refused.rsplit(":")[1])])
    assert sorted(d["exit_code"] for d in documents) == [0, 0, 4]
    assert result.exit_code == 4


def test_a_trust_problem_fails_every_target_with_exit_3(tmp_path: Path, good_broker: str) -> None:
    missing = tmp_path / "absent.crt"
    code, doc = _scan_json(good_broker, f"127.0.0.1:{free_port()}", "--ca-file", str(missing))
    assert [_kind(t) for t in doc["targets"]] == ["trust_bundle_not_found"] * 2
    assert all(s["skipped"] for t in doc["targets"] for s in t["stages"][1:])
    assert code == 3


def test_the_exit_rule_puts_the_earliest_stage_first() -> None:
    """0 when all passed, else the lowest code: a trust problem outranks an MQTT refusal."""
    from mqtt_tls_probe.core.tally import ScanTally, lowest_failure

    def failing(kind: ErrorKind) -> TargetOutcome:
        report = factories.passing_report(error=ErrorInfo.of(kind, "m"))
        return TargetOutcome(0, report)

    tally = ScanTally()
    for outcome in (
        TargetOutcome(0, factories.passing_report()),
        failing(ErrorKind.NOT_AUTHORIZED),
        failing(ErrorKind.TRUST_BUNDLE_INVALID),
        failing(ErrorKind.NOT_AUTHORIZED),
    ):
        tally.add(outcome)
    summary = tally.summary()
    assert summary.exit_code == 3
    assert summary.by_kind == {"not_authorized": 2, "trust_bundle_invalid": 1}
    assert (summary.total, summary.passed, summary.failed) == (4, 1, 3)
    assert lowest_failure([0, 0]) == 0
    assert lowest_failure([8, 0, 7]) == 7


# --- the whole-target deadline ----------------------------------------------------------


def test_silent_targets_end_within_the_bound(ca_file: Path) -> None:
    with TcpServer(hold) as silent:
        started = time.monotonic()
        args = [silent.address] * 10 + ["--ca-file", str(ca_file), "--timeout", "0.5"]
        code, doc = _scan_json(*args, "--concurrency", "4")
        elapsed = time.monotonic() - started
    deadline = 5 * 0.5  # the default: the sum of the stage timeouts
    assert elapsed <= math.ceil(10 / 4) * deadline + MARGIN
    assert [_kind(t) for t in doc["targets"]] == ["handshake_timeout"] * 10
    assert code == 5


def test_the_deadline_is_enforced_from_outside_the_stage(
    ca_file: Path, tmp_path: Path, scan_ca: CertAndKey
) -> None:
    """The MQTT 3.1.1 retry waits again inside the mqtt stage, past the time the stage had:
    only the coordinator cutting the run's connections at the deadline ends it in time."""
    chain = [issue_server_certificate(scan_ca, LOCAL), scan_ca]
    context = server_context(*write_chain(tmp_path, chain))
    with TcpServer(tls_handler(context, refuses_v5_then_silent)) as server:
        started = time.monotonic()
        args = [server.address] * 6 + ["--ca-file", str(ca_file), "--timeout", "5"]
        code, doc = _scan_json(*args, "--target-timeout", "0.8", "--concurrency", "1")
        elapsed = time.monotonic() - started
    # Without the cut, each target would take 0.5 s more than its deadline: 7.8 s.
    assert elapsed <= math.ceil(6 / 1) * 0.8 + 1.5
    for target in doc["targets"]:
        assert target["error"]["stage"] == "mqtt"
        assert target["error"]["kind"] == "no_connack"
        assert "deadline of 0.8 s" in target["error"]["message"]
    assert code == 7


def test_an_abort_wakes_a_blocked_read_and_releases_its_duplicate() -> None:
    """The mechanism alone: a read blocked for 30 s returns as soon as the handle is cut."""
    import socket
    import threading

    from mqtt_tls_probe.adapters.abort import AbortHandle

    before = _open_descriptors()
    with TcpServer(hold) as silent:
        sock = socket.create_connection(("127.0.0.1", silent.port), timeout=30)
        handle = AbortHandle(30)
        handle.register(sock)
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(sock.recv(1)), daemon=True)
        reader.start()
        reader.join(0.2)
        assert reader.is_alive()  # blocked: the server says nothing
        handle.abort()
        reader.join(5)
        assert not reader.is_alive()
        assert got == [b""]  # the connection was shut down under it
        assert handle.expired()
        sock.close()
        handle.release()
    assert _open_descriptors() == before


def test_the_deadline_cuts_a_broker_that_never_answers_connect(
    ca_file: Path, tmp_path: Path, scan_ca: CertAndKey
) -> None:
    context = server_context(
        *write_chain(tmp_path, [issue_server_certificate(scan_ca, LOCAL), scan_ca])
    )
    with TcpServer(tls_handler(context, hold)) as server:
        args = [server.address, "--ca-file", str(ca_file), "--timeout", "5"]
        code, doc = _scan_json(*args, "--target-timeout", "0.6")
    (target,) = doc["targets"]
    assert target["error"]["stage"] == "mqtt"
    assert target["error"]["kind"] == "no_connack"
    assert "deadline of 0.6 s" in target["error"]["message"]
    assert [s["ok"] for s in target["stages"][:5]] == [True] * 5
    assert code == 7


def _open_descriptors() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_no_descriptor_survives_a_scan(ca_file: Path, good_broker: str, tmp_path: Path) -> None:
    before = _open_descriptors()
    with TcpServer(hold) as silent, TcpServer(dribble) as dribbling:
        targets = [good_broker, f"127.0.0.1:{free_port()}", silent.address, dribbling.address] * 3
        inputs = ConnectInputs(ca_file=ca_file, timeout=0.5)
        plan = build_scan_plan(inputs, targets, concurrency=4, target_timeout=0.8)
        report = run_scan(plan)
    assert _open_descriptors() == before
    kinds = [o.error.kind if o.error else None for o in report.outcomes]
    assert kinds == [None, "connection_refused", "handshake_timeout", "handshake_timeout"] * 3
    assert report.probes == 12


# --- targets file -------------------------------------------------------------------------


def _refused(count: int) -> list[str]:
    return [f"127.0.0.1:{free_port()}" for _ in range(count)]


def test_targets_file_comments_blank_lines_and_order(tmp_path: Path, ca_file: Path) -> None:
    first, second, third = _refused(3)
    listing = tmp_path / "targets.txt"
    listing.write_text(f"# brokers\n\n{second}\n   {third}   # trailing comment\n{second}\n")
    code, doc = _scan_json(first, "--targets-file", str(listing), "--ca-file", str(ca_file))
    ports = [t["target"]["port"] for t in doc["targets"]]
    assert ports == [int(t.rsplit(":", 1)[1]) for t in (first, second, third, second)]
    assert code == 4


def test_targets_from_standard_input(ca_file: Path) -> None:
    first, second = _refused(2)
    result = CliRunner().invoke(
        app,
        ["scan", "--targets-file", "-", "--ca-file", str(ca_file), "-o", "json"],
        input=f"{first}\n# nothing\n{second}\n",
        catch_exceptions=False,
    )
    doc = json.loads(result.stdout)
    assert [t["target"]["port"] for t in doc["targets"]] == [
        int(first.rsplit(":", 1)[1]),
        int(second.rsplit(":", 1)[1]),
    ]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("localhost:1883\n# fine\nlocalhost:99999\n", "line 3: invalid port '99999'"),
        ("localhost\nbroker-a broker-b\n", "line 2: one host[:port] per line"),
        ("a:1\nb:\x1b[31m\n", "line 2: one host[:port] per line"),
    ],
)
def test_a_bad_line_is_a_usage_error_naming_it(tmp_path: Path, content: str, said: str) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text(content)
    result = probe("scan", "--targets-file", str(listing), "--insecure")
    assert result.exit_code == 2
    assert said in result.stderr
    assert result.stdout == ""


def test_targets_file_size_is_bounded(tmp_path: Path) -> None:
    listing = tmp_path / "huge.txt"
    listing.write_text("localhost:1883\n" * 80_000)  # 1.2 MB
    result = probe("scan", "--targets-file", str(listing), "--insecure")
    assert result.exit_code == 2
    assert "larger than 1024 KiB" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--insecure"],  # no targets at all
        ["scan", "localhost", "--concurrency", "0"],
        ["scan", "localhost", "--concurrency", "1025"],
        ["scan", "localhost", "--target-timeout", "0"],
        ["scan", "localhost:1:2:x"],
        ["scan", "localhost", "--interval", "1"],  # --interval needs --repeat
        ["connect", "--interval", "1"],
        ["connect", "--repeat", "0"],
    ],
)
def test_usage_errors(args: list[str]) -> None:
    result = probe(*args)
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""


def test_jsonl_is_scans_alone() -> None:
    """connect refuses it; asked for a JSON format, the refusal is one JSON object."""
    result = probe("connect", "--output", "jsonl")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage"
    assert "'jsonl' is not one of 'text', 'json'" in error["message"]


# --- the progress line --------------------------------------------------------------------


def test_progress_line_only_on_a_terminal(ca_file: Path) -> None:
    target = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "mqtt_tls_probe", "scan", target, "--ca-file", str(ca_file)]
    controller, terminal = pty.openpty()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=terminal) as process:
        os.close(terminal)
        seen = _read_terminal(controller, process)
        stdout = process.stdout.read().decode() if process.stdout else ""
    assert process.returncode == 4
    assert re.search(r"scan: 1/1 targets, 1 failed, \d+ probes/s", seen)
    assert "\x1b[2K" in seen  # the line is cleared before the result and at the end
    assert "scan: 1 target in" in stdout
    piped = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert piped.returncode == 4
    assert piped.stderr == ""


def _read_terminal(controller: int, process: subprocess.Popen[bytes]) -> str:
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    process.wait(10)
    os.close(controller)
    return seen.decode(errors="replace")


# --- pure parts -----------------------------------------------------------------------


def test_percentiles_are_nearest_rank() -> None:
    from mqtt_tls_probe.core.tally import percentile, stage_times

    hundred = [float(n) for n in range(1, 101)]
    assert [percentile(hundred, p) for p in (50, 90, 99)] == [50.0, 90.0, 99.0]
    assert [percentile([1.0, 2.0, 3.0, 4.0], p) for p in (50, 90, 99)] == [2.0, 4.0, 4.0]
    times = stage_times([7.0, 1.0, 3.0])
    assert (times.p50, times.p90, times.p99, times.max, times.samples) == (3.0, 7.0, 7.0, 7.0, 3)


def test_a_series_counts_runs_and_keeps_the_earliest_failure() -> None:
    from mqtt_tls_probe.core.tally import RunTally

    tally = RunTally()
    mqtt_refused = factories.passing_report(error=ErrorInfo.of(ErrorKind.NOT_AUTHORIZED, "no"))
    tls_failed = factories.passing_report(stages=factories.stages(Stage.TLS))._replace(
        error=ErrorInfo.of(ErrorKind.PEER_CLOSED, "closed"),
    )
    for report in (factories.passing_report(), mqtt_refused, tls_failed, tls_failed):
        tally.add(report)
    summary = tally.summary()
    assert (summary.runs, summary.passed, summary.failed) == (4, 1, 3)
    assert summary.by_kind == {"peer_closed": 2, "not_authorized": 1}
    assert summary.exit_code == 5
    assert summary.error is not None
    assert summary.error.kind is ErrorKind.PEER_CLOSED
    assert summary.stages[Stage.TLS].samples == 4  # passed or failed, the stage ran
    assert summary.stages[Stage.MQTT].samples == 2  # skipped after a failed handshake


def test_help_names_every_scan_flag_with_an_example() -> None:
    result = probe("scan", "--help")
    assert result.exit_code == 0
    for flag in ("--targets-file", "--concurrency", "--target-timeout", "--repeat", "--interval"):
        assert flag in result.stdout, flag
    assert "jsonl" in result.stdout
    assert "Example" in result.stdout
    connect_help = probe("connect", "--help").stdout
    assert "--repeat" in connect_help
    assert "jsonl" not in connect_help

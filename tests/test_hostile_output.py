"""Hostile output (issue 9): text that cannot drive a terminal, and one JSON object always.

- Text: every value from outside is shown with its control characters
  escaped, in every report and with -v; an encoding that cannot show a
  character escapes it; a closed or broken stdout ends the run quietly (exit 141).
- JSON: exactly one object on stdout for every exit code, the parser's own
  errors (unknown flag, bad choice, missing argument, bad number) included.

The property test runs 200 examples, the same on every run; see
``helpers.property_settings`` to draw others from a seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from mqtt_tls_probe import cli
from mqtt_tls_probe.cli.application import requested_output
from mqtt_tls_probe.dev.pki import PkiFiles, create_root_ca, issue_server_certificate
from mqtt_tls_probe.errors import EXIT_OUTPUT_LOST, ErrorInfo, ErrorKind
from mqtt_tls_probe.model import Report
from mqtt_tls_probe.output import OutputFormat, render
from mqtt_tls_probe.output.escape import escape_controls

from . import factories
from .helpers import probe, property_settings
from .servers import TcpServer, server_context, tls_handler, write_chain


def raw_controls(text: str) -> list[str]:
    """The characters of ``text`` a terminal would act on (the line breaks excepted)."""
    return [c for c in text if c != "\n" and escape_controls(c) != c]


# --- text: one escaping function, applied to every value -------------------------------


def _reports() -> dict[str, Report]:
    error = ErrorInfo.of(ErrorKind.TRUST_BUNDLE_NOT_FOUND, "No ConfigMap.", "Pass --ca-file.")
    return {
        "connect": factories.full_report(),
        "connect-failed": factories.verify_failure(),
        "bundle": factories.bundle_report(),
        "bundle-failed": factories.bundle_report(error),
        "inspect": factories.inspection_report(),
        "cluster": factories.cluster_report(),
        "certs-init": factories.certs_init_report(),
        "demo": factories.demo_report(),
    }


@pytest.mark.parametrize("name", sorted(_reports()))
@pytest.mark.parametrize("verbose", [False, True])
def test_no_value_reaches_the_text_with_a_control_character(name: str, verbose: bool) -> None:
    report = factories.with_hostile_strings(_reports()[name])
    text = render(report, OutputFormat.TEXT, verbose=verbose)
    assert raw_controls(text) == []
    assert "\\x1b[2J" in text  # the values are there, escaped
    assert "\\x1b]0;owned\\x07" in text
    plain = render(_reports()[name], OutputFormat.TEXT, verbose=verbose)
    assert text.count("\n") == plain.count("\n")  # a value's newline never breaks a line


@pytest.mark.parametrize("name", sorted(_reports()))
def test_json_carries_the_same_values_escaped_by_json(name: str) -> None:
    report = factories.with_hostile_strings(_reports()[name])
    output = render(report, OutputFormat.JSON)
    assert raw_controls(output) == []
    assert isinstance(json.loads(output), dict)
    assert "\\u001b[2J" in output  # JSON's own escape


def test_the_escapes_are_exact() -> None:
    assert escape_controls("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert escape_controls("\x00\x07\t\r\n\x7f\x9b") == "\\x00\\x07\\x09\\x0d\\x0a\\x7f\\x9b"
    assert escape_controls("\u202eevil\u2066") == "\\u202eevil\\u2066"
    assert escape_controls("caf\udce9") == "caf\\xe9"  # an undecodable byte of a file name
    assert escape_controls("Zürich ☃ 東京") == "Zürich ☃ 東京"  # printable text stays


def test_pem_failure_on_stderr_is_escaped() -> None:
    from mqtt_tls_probe.output.text import pem_or_failure

    error = ErrorInfo.of(ErrorKind.TRUST_BUNDLE_INVALID, "bad\x1b[2J", "fix\x07")
    _, stderr = pem_or_failure(factories.bundle_report(error))
    assert raw_controls(stderr) == []
    assert "bad\\x1b[2J" in stderr


# --- the observed case: a server certificate's name on the cause line -----------------------


def test_a_hostile_name_in_the_server_certificate_is_escaped_on_the_cause_line(
    tmp_path: Path, pki: PkiFiles
) -> None:
    ca = create_root_ca("Evil\x1b[2J CA")
    leaf = issue_server_certificate(ca, ["\x1b[2Jevil.example"], common_name="\x1b[2J\x1b[H")
    cert_file, key_file = write_chain(tmp_path, [leaf, ca])
    ca_file = tmp_path / "evil-ca.crt"
    ca_file.write_bytes(ca.cert_pem())
    with TcpServer(tls_handler(server_context(cert_file, key_file))) as server:
        mismatch = probe("connect", server.address, "--ca-file", str(ca_file), "--timeout", "5")
        unknown = probe("connect", server.address, "--ca-file", str(pki.ca_cert), "-v")
    assert mismatch.exit_code == 6
    cause = next(line for line in mismatch.stdout.splitlines() if line.startswith("cause:"))
    assert "\\x1b[2Jevil.example" in cause
    assert unknown.exit_code == 6
    for result in (mismatch, unknown):
        assert raw_controls(result.stdout + result.stderr) == []
    assert "Evil\\x1b[2J CA" in unknown.stdout  # -v lists the chain


# --- text: certificates with arbitrary names, through inspect FILE --------------------------

_KEY = ec.generate_private_key(ec.SECP256R1())
_NOW = datetime.now(UTC)
_TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64)
_ASCII = st.text(st.characters(max_codepoint=127), min_size=1, max_size=40)
_ATTRIBUTES = st.lists(
    st.tuples(
        st.sampled_from(
            [
                NameOID.COMMON_NAME,
                NameOID.ORGANIZATION_NAME,
                NameOID.ORGANIZATIONAL_UNIT_NAME,
                NameOID.LOCALITY_NAME,
                NameOID.STATE_OR_PROVINCE_NAME,
                NameOID.PSEUDONYM,
            ]
        ),
        _TEXT,
    ),
    min_size=1,
    max_size=4,
)


def _certificate(subject: list[tuple[Any, str]], issuer: list[tuple[Any, str]], sans: Any) -> bytes:
    names: list[x509.GeneralName] = [x509.DNSName(s) for s in sans[0]]
    names += [x509.UniformResourceIdentifier(u) for u in sans[1]]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in subject]))
        .issuer_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in issuer]))
        .public_key(_KEY.public_key())
        .serial_number(1)
        .not_valid_before(_NOW - timedelta(days=1))
        .not_valid_after(_NOW + timedelta(days=1))
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(_KEY, hashes.SHA256()).public_bytes(Encoding.PEM)


@property_settings()
@given(
    subject=_ATTRIBUTES,
    issuer=_ATTRIBUTES,
    sans=st.tuples(st.lists(_ASCII, max_size=2), st.lists(_ASCII, max_size=1)),
)
def test_any_certificate_name_is_shown_without_control_characters(
    tmp_path_factory: pytest.TempPathFactory,
    subject: list[tuple[Any, str]],
    issuer: list[tuple[Any, str]],
    sans: Any,
) -> None:
    path = tmp_path_factory.getbasetemp() / "hostile-name.pem"
    path.write_bytes(_certificate(subject, issuer, sans))
    text = probe("inspect", str(path), "-v")
    assert text.exit_code == 0, text.stdout + text.stderr
    assert raw_controls(text.stdout + text.stderr) == []
    assert "Traceback" not in text.stdout + text.stderr
    document = probe("inspect", str(path), "-o", "json")
    assert document.exit_code == 0
    assert json.loads(document.stdout)["exit_code"] == 0


# --- JSON: one object for every exit, the parser's errors included --------------------------

PARSER_ERRORS = [
    ["connect", "--bogus"],  # unknown flag
    ["connect", "--mqtt-version", "4"],  # bad choice
    ["connect", "--port", "x"],  # bad int
    ["connect", "--port", "70000"],  # out of range
    ["connect", "--timeout", "nan"],  # a number the contract refuses
    ["connect", "--timeout"],  # a flag without its value
    ["inspect"],  # missing argument
    ["bundle", "extra"],  # unexpected argument
    ["nonsense"],  # unknown command
]
JSON_SPELLINGS = [
    ["--output", "json"],
    ["-o", "json"],
    ["--output=json"],
    ["-ojson"],
    ["-vo", "json"],
]


def _one_failure_object(stdout: str, kind: str, exit_code: int) -> dict[str, Any]:
    document = json.loads(stdout)  # one JSON value, and nothing else on stdout
    assert isinstance(document, dict)
    assert set(document) == {"ok", "error", "exit_code"}
    assert document["ok"] is False
    assert document["exit_code"] == exit_code
    assert set(document["error"]) == {"stage", "kind", "message", "hint"}
    assert document["error"]["stage"] is None
    assert document["error"]["kind"] == kind
    assert document["error"]["message"]
    assert document["error"]["hint"]
    return document


@pytest.mark.parametrize("args", PARSER_ERRORS, ids=" ".join)
@pytest.mark.parametrize("spelling", JSON_SPELLINGS, ids=" ".join)
def test_a_parser_error_in_json_mode_is_one_object(args: list[str], spelling: list[str]) -> None:
    argv = [*args[:1], *spelling, *args[1:]] if args[0] != "nonsense" else [*spelling, *args]
    result = probe(*argv)
    assert result.exit_code == 2
    _one_failure_object(result.stdout, "usage", 2)
    assert len(result.stderr.strip().splitlines()) == 1  # the one-line message


@pytest.mark.parametrize("args", PARSER_ERRORS, ids=" ".join)
def test_a_parser_error_in_text_mode_goes_to_stderr(args: list[str]) -> None:
    result = probe(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Error" in result.stderr


def test_a_usage_error_past_the_parser_in_json_mode_is_one_object() -> None:
    result = probe("connect", "--topic", "\x1b[2J#", "-o", "json")
    assert result.exit_code == 2
    document = _one_failure_object(result.stdout, "usage", 2)
    assert "--topic" in document["error"]["message"]
    assert "probe connect --help" in document["error"]["hint"]
    assert result.stderr.count("\n") == 1
    assert raw_controls(result.stderr) == []


def test_a_usage_error_in_text_mode_is_one_escaped_line_on_stderr() -> None:
    result = probe("connect", "--topic", "\x1b[2J#")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("probe: error: --topic: ")
    assert result.stderr.count("\n") == 1
    assert "\\x1b[2J" in result.stderr
    assert raw_controls(result.stderr) == []


def test_a_bug_in_json_mode_is_one_object_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom\x1b[2J")

    monkeypatch.setattr("mqtt_tls_probe.orchestrators.connect.run_probe", broken)
    monkeypatch.setattr(sys, "argv", ["probe", "connect", "--insecure", "-o", "json"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    document = _one_failure_object(out, "internal", 1)
    assert "RuntimeError: boom" in document["error"]["message"]
    assert err.count("\n") == 1
    assert "internal error: RuntimeError: boom\\x1b[2J" in err
    assert "Traceback" not in err


def test_help_still_works_and_exits_0() -> None:
    assert probe("connect", "-o", "json", "--help").exit_code == 0
    assert probe("--help").exit_code == 0


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["connect", "--output", "json"], "json"),
        (["connect", "--output=json", "-o", "text"], "text"),  # the last one wins
        (["connect", "-vojson"], "json"),
        (["connect", "-pojson"], "text"),  # -p takes a value: "ojson" is the port
        (["connect", "--", "-o", "json"], "text"),  # after --, arguments
        (["connect", "-o"], "text"),
        (["connect", "-o", "yaml"], "text"),
    ],
)
def test_the_requested_output_is_read_from_the_raw_arguments(argv: list[str], wanted: str) -> None:
    assert requested_output(argv) == OutputFormat(wanted)


# --- process level: encodings, closed and broken stdout ---------------------------------------


def _run(
    *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mqtt_tls_probe", *args],
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
        **kwargs,
    )


def test_an_ascii_terminal_gets_escapes_not_a_crash(tmp_path: Path) -> None:
    ca = create_root_ca("Zürich ☃ 東京 \x1b[2J")
    directory = tmp_path / "zertifikate-é"
    directory.mkdir()
    cert_file = directory / "ca.crt"
    cert_file.write_bytes(ca.cert_pem())
    env = {"PYTHONIOENCODING": "ascii"}
    result = _run("inspect", str(cert_file), capture_output=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii()
    text = result.stdout.decode("ascii")
    assert "Z\\xfcrich \\u2603" in text
    assert "\\x1b[2J" in text
    assert "zertifikate-\\xe9" in text
    refused = _run("connect", "--topic", "Zürich/#", capture_output=True, env=env)
    assert refused.returncode == 2
    assert refused.stderr.isascii()
    assert b"Traceback" not in refused.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["connect", "--insecure", "127.0.0.1:1", "--timeout", "2"],
        ["connect", "--insecure", "127.0.0.1:1", "--timeout", "2", "-o", "json"],
        ["connect", "--topic", "#", "-o", "json"],  # the usage error's object
        ["connect", "--bogus", "-o", "json"],  # the parser's
    ],
    ids=["text", "json", "usage", "parser"],
)
def test_a_broken_stdout_ends_quietly(args: list[str]) -> None:
    """Like ``probe ... | head -0``: the reader is gone before anything is written."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = _run(*args, stdout=writer, stderr=subprocess.PIPE)
    finally:
        os.close(writer)
    assert result.returncode == EXIT_OUTPUT_LOST
    assert b"Traceback" not in result.stderr
    assert b"Exception ignored" not in result.stderr
    assert b"BrokenPipe" not in result.stderr


def test_a_closed_stdout_ends_quietly() -> None:
    script = 'exec "$0" -m mqtt_tls_probe connect --insecure 127.0.0.1:1 --timeout 2 >&-'
    result = subprocess.run(
        ["sh", "-c", script, sys.executable], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == EXIT_OUTPUT_LOST
    assert result.stderr == b""


def test_a_closed_stderr_does_not_hide_the_exit_code() -> None:
    script = 'exec "$0" -m mqtt_tls_probe connect --topic "#" 2>&-'
    result = subprocess.run(
        ["sh", "-c", script, sys.executable], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stdout == b""


def test_a_parser_error_in_jsonl_mode_is_one_object_too() -> None:
    """``scan -o jsonl`` streams JSON: its readers get a failure as one JSON object as well."""
    result = probe("scan", "-o", "jsonl", "--no-such-flag")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["error"]["kind"] == "usage"
    assert document["exit_code"] == 2


@given(st.text())
def test_the_fast_path_of_escaping_changes_nothing(text: str) -> None:
    """Printable ASCII skips the regex; the answer is the regex's, whatever the text."""
    import re

    from mqtt_tls_probe.output import escape

    assert escape.escape_controls(text) == re.sub(escape._UNSAFE, escape._escape, text)

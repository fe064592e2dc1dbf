"""Hostile flag values (issue 9): each bad value is a usage error (exit 2) found before any I/O.

``connect`` runs here with a CA file that does not exist: a value that passes
the checks reaches the trust stage, which fails with exit 3 before any
network I/O. So exit 2 proves the value was refused first, and no run of
this module touches the network.

The property tests run 200 examples, the same on every run; see
``helpers.property_settings`` to draw others from a seed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import socket
import string
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from mqtt_tls_probe.config import ConnectInputs, build_probe_config, parse_target
from mqtt_tls_probe.core import sat
from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.model import FindingCode

from .helpers import probe, probe_json, property_settings

MISSING_CA = "/nonexistent/probe-tests/ca.crt"
NOW = datetime(2026, 11, 29, tzinfo=UTC)


def connect(*args: str) -> tuple[int, str, str]:
    """``probe connect --ca-file MISSING ARGS``: (exit code, stdout, stderr)."""
    result = probe("connect", "127.0.0.1:1", "--ca-file", MISSING_CA, *args)
    return result.exit_code, result.stdout, result.stderr


# --- connect: every observed crash is now a usage error -----------------------------------

BAD_CONNECT_FLAGS = [
    ("--alpn", ""),
    ("--alpn", "mqtté"),
    ("--alpn", "x" * 256),
    ("--alpn", "a\x1bb"),
    ("--server-name", "a..b"),
    ("--server-name", "*.example.com"),
    ("--server-name", "broker example"),
    ("--server-name", "\udcff"),
    ("--server-name", "x" * 64 + ".example"),
    ("--server-name", "fe80::1%eth0"),
    ("--timeout", "inf"),
    ("--timeout", "nan"),
    ("--timeout", "-inf"),
    ("--timeout", "1e300"),
    ("--timeout", "0"),
    ("--topic", "+"),
    ("--topic", "probe/#"),
    ("--topic", ""),
    ("--topic", "a\x00b"),
    ("--topic", "t" * 65536),
    ("--topic", "\udcff"),
    ("--client-id", "c" * 65536),
    ("--client-id", "é" * 32768),  # 65,536 bytes in UTF-8
    ("--client-id", "\udcff\udcfe"),  # bytes the shell could not decode
    ("--client-id", "a\x00b"),
    ("--username", "u" * 65536),
    ("--username", "\udcfe"),
]


@pytest.mark.parametrize(("flag", "value"), BAD_CONNECT_FLAGS, ids=repr)
def test_a_bad_connect_value_is_a_usage_error(flag: str, value: str) -> None:
    code, out, err = connect(f"{flag}={value}")
    assert code == 2, err
    assert out == ""
    assert err.count("\n") <= 4
    assert "Traceback" not in err
    assert flag in err or "the topic" in err


@pytest.mark.parametrize(
    "target", ["[::1%lo]:1", "::1%lo", "[fe80::1%25eth0]:18883", "[broker]:1", "a..b:1", "x y"]
)
def test_a_bad_target_is_a_usage_error(target: str) -> None:
    result = probe("connect", target, "--ca-file", MISSING_CA)
    code, out, err = result.exit_code, result.stdout, result.stderr
    assert code == 2, err
    assert out == ""
    assert "target" in err


def test_a_scoped_ipv6_target_says_why() -> None:
    _, _, err = connect("--server-name=::1%lo")
    assert "scoped IPv6 address" in err
    with pytest.raises(UsageError, match="zones"):
        parse_target("[::1%lo]:1", None)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--alpn", "mqtt"),
        ("--alpn", "x" * 255),
        ("--server-name", "aio-broker.azure-iot-operations"),
        ("--server-name", "my_broker"),
        ("--server-name", "10.0.0.1"),
        ("--topic", "probe/é/" + "t" * 60000),
        ("--client-id", ""),
        ("--client-id", "é" * 32767),
        ("--username", "system:serviceaccount:ns:name"),
        ("--timeout", "0.01"),
        ("--timeout", "3600"),
    ],
)
def test_the_edges_of_what_is_allowed_pass(flag: str, value: str) -> None:
    """The twin of the refusals: a value just inside a limit reaches the trust stage (exit 3)."""
    code, _, err = connect(f"{flag}={value}")
    assert code == 3, err


def test_a_non_ascii_server_name_is_sent_idna_encoded() -> None:
    config = build_probe_config(ConnectInputs(server_name="bücher.example."), environ={})
    assert config.server_name == "xn--bcher-kva.example"
    target = build_probe_config(ConnectInputs(target="bücher.example:8883"), environ={})
    assert (target.host, target.server_name) == ("xn--bcher-kva.example", "xn--bcher-kva.example")


def test_a_wildcard_in_the_default_topic_needs_topic() -> None:
    code, _, err = connect("--client-id=sensor/#", "--roundtrip")
    assert code == 2
    assert "--topic" in err
    assert connect("--client-id=sensor/#")[0] == 3  # no round trip: a fine client id
    assert connect("--client-id=sensor/#", "--topic=probe/x")[0] == 3


def test_a_port_in_other_digits_is_a_usage_error() -> None:
    for target in ("host:²", "host:١٢", "host:" + "1" * 5000, "host:0", "host:65536"):
        result = probe("connect", target, "--ca-file", MISSING_CA)
        assert result.exit_code == 2, target


# --- secrets: the token, the password ---------------------------------------------------


@pytest.mark.parametrize(("size", "code"), [(65535, 3), (65536, 2), (70000, 2)])
def test_a_token_over_65535_bytes_is_a_usage_error(tmp_path: Path, size: int, code: int) -> None:
    token = tmp_path / "token"
    token.write_bytes(b"t" * size)
    exit_code, _, err = connect("--sat-file", str(token))
    assert exit_code == code, err
    if code == 2:
        assert str(token) in err or "token" in err


def test_one_trailing_newline_does_not_count(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_bytes(b"t" * 65535 + b"\n")
    assert connect("--sat-file", str(token))[0] == 3


def test_a_password_over_65535_bytes_is_a_usage_error(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_bytes(b"p" * 65536)
    assert connect("--username=u", "--password-file", str(password))[0] == 2
    env = {"PROBE_MQTT_PASSWORD": "p" * 65536}
    result = probe("connect", "--ca-file", MISSING_CA, "--username=u", env=env)
    assert result.exit_code == 2


def test_the_password_variable_keeps_the_bytes_the_environment_holds() -> None:
    inputs = ConnectInputs(username="u", insecure=True)
    config = build_probe_config(inputs, environ={"PROBE_MQTT_PASSWORD": "pw\udcff"})
    assert config.mqtt.password == b"pw\xff"


# --- the token's claims: an odd claim is a finding, never a crash -------------------------


def jwt(claims: Any) -> bytes:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return b"eyJhbGciOiJSUzI1NiJ9." + payload + b".c2ln"


@pytest.mark.parametrize(
    ("claims", "fragment"),
    [
        ({"aud": 5}, "aud is a number"),
        ({"aud": {"aio-internal": 1}}, "aud is an object"),
        ({"aud": ["aio-internal", 7]}, "aud is a list holding"),
        ({"exp": 1e300}, "beyond any date"),
        ({"exp": 10**30}, "beyond any date"),
        ({"exp": -(10**18)}, "beyond any date"),
        ({"exp": math.nan}, "exp is nan"),
        ({"exp": math.inf}, "exp is inf"),
        ({"exp": True}, "exp is a boolean"),
        ({"exp": "tomorrow"}, "exp is a string"),
        ({"sub": ["a"]}, "sub is a list"),
        ({"iss": None, "sub": 3}, "sub is a number"),
    ],
)
def test_an_odd_claim_is_a_finding(claims: dict[str, Any], fragment: str) -> None:
    decoded = sat.decode_claims(jwt(claims))
    assert decoded is not None
    findings = sat.claim_findings(decoded, NOW)
    odd = [f.message for f in findings if f.code is FindingCode.SAT_CLAIM_INVALID]
    assert len(odd) == 1
    assert fragment in odd[0]


def test_well_formed_claims_have_no_odd_finding() -> None:
    decoded = sat.decode_claims(jwt({"aud": "aio-internal", "exp": 2e9, "sub": "s", "iss": "i"}))
    assert decoded is not None
    assert decoded.invalid == ()
    assert decoded.audiences == ("aio-internal",)
    assert decoded.expires == datetime.fromtimestamp(2e9, UTC)


def test_a_deeply_nested_payload_is_no_jwt() -> None:
    payload = base64.urlsafe_b64encode(b"[" * 40000).rstrip(b"=")
    assert sat.decode_claims(b"a." + payload + b".c") is None


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=12,
)
CLAIMS = st.dictionaries(
    st.sampled_from(["aud", "exp", "sub", "iss", "iat", "nbf"]) | st.text(max_size=5), JSON_VALUES
)


@property_settings()
@given(claims=CLAIMS | JSON_VALUES)
def test_any_claims_decode_without_raising(claims: Any) -> None:
    decoded = sat.decode_claims(jwt(claims))
    findings = sat.claim_findings(decoded, NOW)
    assert all(f.message for f in findings)
    if decoded is not None:
        assert all(isinstance(a, str) for a in decoded.audiences)


@property_settings()
@given(token=st.binary(max_size=300) | st.builds(lambda b: b"a." + b + b".c", st.binary()))
def test_any_token_bytes_decode_without_raising(token: bytes) -> None:
    sat.claim_findings(sat.decode_claims(token), NOW)


# --- certs init ----------------------------------------------------------------------


@pytest.mark.parametrize("days", ["1e9", "nan", "inf", "3651", "0", "-1"])
def test_certs_init_days_are_bounded(tmp_path: Path, days: str) -> None:
    result = probe("certs", "init", str(tmp_path / "pki"), "--days", days)
    assert result.exit_code == 2, result.stderr
    assert not (tmp_path / "pki").exists()


def test_certs_init_accepts_ten_years(tmp_path: Path) -> None:
    code, doc = probe_json("certs", "init", str(tmp_path / "pki"), "--days", "3650")
    assert code == 0
    assert doc["ca"]["days_left"] >= 3649


@pytest.mark.parametrize("san", ["", "a..b", "bad name", "::1%lo", "*", "a.*.example", "\udcff"])
def test_certs_init_refuses_a_san_that_is_no_name(tmp_path: Path, san: str) -> None:
    result = probe("certs", "init", str(tmp_path / "pki"), f"--san={san}")
    assert result.exit_code == 2, result.stderr
    assert "--san" in result.stderr
    assert not (tmp_path / "pki").exists()


def test_certs_init_idna_encodes_a_non_ascii_san(tmp_path: Path) -> None:
    args = ("--san", "bücher.example", "--san", "*.aio.example", "--san", "fd00::1")
    code, doc = probe_json("certs", "init", str(tmp_path / "pki"), *args)
    assert code == 0
    sans = doc["server"]["sans"]
    assert {"DNS:xn--bcher-kva.example", "DNS:*.aio.example", "IP:fd00::1"} <= set(sans)


# --- properties: arbitrary values through the in-process CLI ------------------------------

# Characters that broke things, mixed into arbitrary text (Hypothesis leaves surrogates out).
_TRICKY = st.sampled_from(list("\x00\x1b\x7f\x85\u202e\udcff\udc80+#%.:[]/*é\n\r\t -"))
HOSTILE_TEXT = st.text(st.characters() | _TRICKY, max_size=40) | st.builds(
    lambda piece, count: piece * count, st.sampled_from(["a", "é", "+", "."]), st.integers(1, 70000)
)
NUMBERS = st.sampled_from(["inf", "-inf", "nan", "1e9", "1e400", "0", "-1", "0.5", "1e-9", "x"])
CONNECT_FLAGS = ["--alpn", "--server-name", "--topic", "--client-id", "--username", "--tls-min"]
CONNECT_ARGS = st.lists(
    st.tuples(st.sampled_from(CONNECT_FLAGS), HOSTILE_TEXT)
    | st.tuples(st.sampled_from(["--timeout", "--port"]), NUMBERS | HOSTILE_TEXT),
    max_size=4,
)


def assert_one_json_object(stdout: str, exit_code: int) -> dict[str, Any]:
    document = json.loads(stdout)  # exactly one JSON value, nothing else on stdout
    assert isinstance(document, dict)
    assert document["exit_code"] == exit_code
    return document


def assert_clean_text(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text
        raw = [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
        assert raw == [], text


@property_settings()
@given(target=HOSTILE_TEXT, args=CONNECT_ARGS, json_mode=st.booleans())
def test_connect_with_any_values_exits_with_a_contract_code(
    target: str, args: list[tuple[str, str]], json_mode: bool
) -> None:
    argv = ["connect", f"--ca-file={MISSING_CA}", *(f"{f}={v}" for f, v in args), "--", target]
    if json_mode:
        argv[1:1] = ["-o", "json"]
    result = probe(*argv)
    assert result.exit_code in {2, 3}, result.stderr  # refused, or stopped at the trust stage
    if json_mode:
        document = assert_one_json_object(result.stdout, result.exit_code)
        assert document["error"]["kind"] in {"usage", "trust_bundle_not_found"}
    else:
        assert_clean_text(result.stdout, result.stderr)


def test_a_target_after_double_dash_is_read_as_the_target() -> None:
    """The property above passes TARGET after ``--``: that reaches the target check."""
    assert probe("connect", "--ca-file", MISSING_CA, "--", "-x").exit_code == 2
    assert probe("connect", "--ca-file", MISSING_CA, "--", "localhost").exit_code == 3


@property_settings()
@given(host=HOSTILE_TEXT, port=st.none() | st.integers(1, 65535))
def test_parse_target_returns_an_ascii_host_or_a_usage_error(host: str, port: int | None) -> None:
    with contextlib.suppress(UsageError):
        parsed_host, parsed_port = parse_target(host, port)
        assert parsed_host
        assert parsed_host.isascii()
        assert parsed_host.isprintable()
        assert 0 < parsed_port < 65536


@property_settings()
@given(
    source=HOSTILE_TEXT,
    server_name=st.none() | HOSTILE_TEXT,
    timeout=st.none() | NUMBERS,
    json_mode=st.booleans(),
)
def test_inspect_with_any_file_name_exits_with_a_contract_code(
    source: str, server_name: str | None, timeout: str | None, json_mode: bool
) -> None:
    # Always a path (it holds a /): a host:port would be resolved, and that is the network.
    argv = ["inspect", "--", "/nonexistent/" + source]
    if server_name is not None:
        argv[1:1] = [f"--server-name={server_name}"]
    if timeout is not None:
        argv[1:1] = [f"--timeout={timeout}"]
    if json_mode:
        argv[1:1] = ["--output=json"]
    result = probe(*argv)
    assert result.exit_code in {2, 3}, result.stderr
    if json_mode:
        assert_one_json_object(result.stdout, result.exit_code)
    else:
        assert_clean_text(result.stdout, result.stderr)


@property_settings()
@given(ca_file=HOSTILE_TEXT, out=st.none() | HOSTILE_TEXT, json_mode=st.booleans())
def test_bundle_with_any_paths_exits_with_a_contract_code(
    tmp_path_factory: pytest.TempPathFactory, ca_file: str, out: str | None, json_mode: bool
) -> None:
    workdir = tmp_path_factory.getbasetemp() / "bundle-property"
    workdir.mkdir(exist_ok=True)
    argv = ["bundle", f"--ca-file={workdir}/missing/{ca_file}"]
    if out is not None:  # inside the work directory: never a file elsewhere
        argv.append(f"--out={workdir}/{out.replace('/', '_')}")
    if json_mode:
        argv.append("-ojson")
    result = probe(*argv)
    assert result.exit_code in {2, 3}, result.stderr
    if json_mode:
        assert_one_json_object(result.stdout, result.exit_code)
    else:
        assert_clean_text(result.stdout, result.stderr)


_NAME_CHARACTERS = st.characters(codec="utf-8") | _TRICKY.filter(lambda c: c not in "\udcff\udc80")
SANS = st.lists(
    st.text(string.ascii_letters + string.digits + ".-*_é", max_size=20) | HOSTILE_TEXT,
    max_size=3,
)


@property_settings()
@given(
    name=st.text(_NAME_CHARACTERS, max_size=30),
    days=st.none() | NUMBERS | st.floats(allow_nan=True).map(repr),
    sans=SANS,
    force=st.booleans(),
    json_mode=st.booleans(),
)
def test_certs_init_with_any_values_exits_with_a_contract_code(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    days: str | None,
    sans: list[str],
    force: bool,
    json_mode: bool,
) -> None:
    base = tmp_path_factory.getbasetemp() / "certs-property"
    base.mkdir(exist_ok=True)
    # One path component under the work directory, never "." or "..": no file elsewhere.
    argv = ["certs", "init", "--", str(base / ("d" + name.replace("/", "_")))]
    argv[2:2] = [f"--san={s}" for s in sans]
    if days is not None:
        argv[2:2] = [f"--days={days}"]
    if force:
        argv[2:2] = ["--force"]
    if json_mode:
        argv[2:2] = ["--output", "json"]
    result = probe(*argv)
    assert result.exit_code in {0, 2}, result.stderr
    if json_mode:
        document = assert_one_json_object(result.stdout, result.exit_code)
        if result.exit_code == 0:
            for path in document["files"]:
                assert Path(path).parent.resolve().is_relative_to(base.resolve())
    else:
        assert_clean_text(result.stdout, result.stderr)


def test_every_san_the_property_accepts_is_in_the_certificate(tmp_path: Path) -> None:
    """A SAN that passes is written as X.509 takes it (the twin of the refusals)."""
    code, doc = probe_json("certs", "init", str(tmp_path / "pki"), "--san", "Bücher.Example.")
    assert code == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "pki" / "server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "xn--bcher-kva.example" in names.get_values_for_type(x509.DNSName)
    assert "DNS:xn--bcher-kva.example" in doc["server"]["sans"]


# --- broker: a place it cannot listen ----------------------------------------------------


@pytest.mark.parametrize("where", ["busy-port", "foreign-host"])
def test_broker_where_it_cannot_listen_is_a_usage_error(tmp_path: Path, where: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        host, port = ("127.0.0.1", busy) if where == "busy-port" else ("192.0.2.1", "0")
        command = ["broker", "--certs", str(tmp_path / "pki"), "--host", host, "--port", port]
        result = subprocess.run(  # a subprocess: a broker that did start would run until killed
            [sys.executable, "-m", "mqtt_tls_probe", *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on {host}:{port}" in result.stderr
    assert "Traceback" not in result.stderr

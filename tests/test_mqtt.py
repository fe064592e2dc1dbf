"""The MQTT stage and the round trip: every mqtt and roundtrip kind, for real."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.dev.harness import BrokerHandle
from mqtt_tls_probe.dev.pki import PkiFiles

from .brokers import mosquitto
from .helpers import connect_json, probe, probe_json, stage
from .mqtt5_server import Behaviour, mqtt5_session
from .servers import TcpServer, server_context, tls_handler

PASSWORD = "correct horse battery staple"
TOKEN_SUBJECT = "system:serviceaccount:azure-iot-operations:probe"


def make_token(audience: list[str], expires_in: float = 3600) -> str:
    """A token shaped like a Kubernetes service account JWT (the signature is not checked)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {
        "aud": audience,
        "exp": int(time.time() + expires_in),
        "sub": TOKEN_SUBJECT,
        "iss": "https://kubernetes.default.svc.cluster.local",
    }
    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "broker-sat"
    path.write_text(make_token(["aio-internal"]) + "\n")  # as kubectl create token > file
    return path


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    return path


# --- mosquitto: passwords, ACLs, an unknown auth method --------------------------------


@pytest.fixture
def secured_mosquitto(pki: PkiFiles, tmp_path: Path) -> Iterator[str]:
    """mosquitto with TLS, a password file, anonymous access off, and an ACL."""
    passwords = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "operator", PASSWORD], check=True
    )
    acl = tmp_path / "acl"
    acl.write_text("user operator\ntopic readwrite probe/#\ntopic read denied/#\n")
    listener = [
        f"certfile {pki.server_cert}",
        f"keyfile {pki.server_key}",
        "allow_anonymous false",
        f"password_file {passwords}",
        f"acl_file {acl}",
    ]
    with mosquitto(tmp_path / "broker", listener) as port:
        yield f"127.0.0.1:{port}"


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_password_good_bad_and_missing(
    secured_mosquitto: str, pki: PkiFiles, password_file: Path, tmp_path: Path, version: str
) -> None:
    base = ("--mqtt-version", version, "--username", "operator")
    code, doc = connect_json(
        secured_mosquitto, pki.ca_cert, *base, "--password-file", str(password_file)
    )
    assert code == 0, doc["error"]
    assert doc["mqtt"]["version"] == version

    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    code, doc = connect_json(secured_mosquitto, pki.ca_cert, *base, "--password-file", str(wrong))
    assert code == 7
    assert doc["error"]["kind"] == "not_authorized"
    # The code as the broker sent it: 0x87 in MQTT 5, return code 5 in 3.1.1.
    assert doc["mqtt"]["reason_code"] == (0x87 if version == "5" else 5)

    code, doc = connect_json(
        secured_mosquitto, pki.ca_cert, "--mqtt-version", version, "--username", "operator"
    )
    assert code == 7
    assert doc["error"]["kind"] == "not_authorized"


def test_password_from_the_environment(
    secured_mosquitto: str, pki: PkiFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_MQTT_PASSWORD", PASSWORD)
    code, doc = connect_json(secured_mosquitto, pki.ca_cert, "--username", "operator")
    assert code == 0, doc["error"]


def test_publish_denied_by_acl_is_publish_refused(
    secured_mosquitto: str, pki: PkiFiles, password_file: Path
) -> None:
    creds = ("--username", "operator", "--password-file", str(password_file))
    code, doc = connect_json(secured_mosquitto, pki.ca_cert, *creds, "--topic", "probe/allowed")
    assert code == 0, doc["error"]
    code, doc = connect_json(secured_mosquitto, pki.ca_cert, *creds, "--topic", "denied/t")
    assert code == 8
    assert doc["error"]["kind"] == "publish_refused"
    assert "0x87" in doc["error"]["message"]
    assert stage(doc, "roundtrip")["ok"] is False


def test_sat_to_mosquitto_is_bad_auth_method(
    pki: PkiFiles, tmp_path: Path, token_file: Path
) -> None:
    listener = [f"certfile {pki.server_cert}", f"keyfile {pki.server_key}", "allow_anonymous true"]
    with mosquitto(tmp_path / "broker", listener) as port:
        code, doc = connect_json(f"127.0.0.1:{port}", pki.ca_cert, "--sat-file", str(token_file))
    assert code == 7
    assert doc["error"]["kind"] == "bad_auth_method"
    assert doc["mqtt"]["reason_code"] == 0x8C


def test_mosquitto_connack_properties_are_reported(pki: PkiFiles, tmp_path: Path) -> None:
    listener = [f"certfile {pki.server_cert}", f"keyfile {pki.server_key}", "allow_anonymous true"]
    with mosquitto(tmp_path / "broker", listener) as port:
        code, doc = connect_json(f"127.0.0.1:{port}", pki.ca_cert, "--client-id", "")
    assert code == 0, doc["error"]
    # An empty client id makes an MQTT 5 broker assign one, and say so in CONNACK.
    assert doc["mqtt"]["properties"]["assigned_client_identifier"]


# --- amqtt: MQTT 3.1.1 only ------------------------------------------------------------


def test_amqtt_never_answers_a_v5_connect_with_properties(
    harness: BrokerHandle, pki: PkiFiles, token_file: Path
) -> None:
    started = time.monotonic()
    code, doc = connect_json(
        harness.address, pki.ca_cert, "--sat-file", str(token_file), "--timeout", "1"
    )
    assert time.monotonic() - started < 5
    assert code == 7
    assert doc["error"]["kind"] == "no_connack"
    assert "within 1 s" in doc["error"]["message"]
    assert doc["mqtt"] is None


# --- the suite's MQTT 5 server: K8S-SAT and the failures on demand -----------------------


@pytest.fixture
def serve(pki: PkiFiles) -> Iterator[Any]:
    servers: list[TcpServer] = []

    def start(behaviour: Behaviour) -> str:
        context = server_context(pki.server_cert, pki.server_key)
        server = TcpServer(tls_handler(context, after=mqtt5_session(behaviour)))
        servers.append(server.__enter__())
        return server.address

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def _eventually(condition: Callable[[], bool], limit: float = 3.0) -> bool:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _token(path: Path) -> bytes:
    return path.read_bytes().strip()


@pytest.mark.parametrize("challenge", [False, True])
def test_k8s_sat_accepted_with_claims_reported(
    serve: Any, pki: PkiFiles, token_file: Path, challenge: bool
) -> None:
    behaviour = Behaviour(token=_token(token_file), challenge=challenge)
    code, doc = connect_json(
        serve(behaviour), pki.ca_cert, "--sat-file", str(token_file), "--roundtrip"
    )
    assert code == 0, doc["error"]
    sat = doc["mqtt"]["sat"]
    assert sat["aud"] == ["aio-internal"]
    assert sat["sub"] == TOKEN_SUBJECT
    assert sat["exp"].endswith("Z")
    assert doc["warnings"] == [w for w in doc["warnings"] if w["code"] == "quickstart_ca"]
    props = doc["mqtt"]["properties"]
    assert props["maximum_qos"] == 1
    assert props["receive_maximum"] == 20
    assert props["topic_alias_maximum"] == 5
    assert props["assigned_client_identifier"] == "assigned-by-server"
    if challenge:  # the broker's AUTH packet was answered with the same token
        assert behaviour.auth_replies == [_token(token_file)]
        assert "1 AUTH exchange" in stage(doc, "mqtt")["detail"]
    # A clean goodbye; the server's thread may still be reading it.
    assert _eventually(lambda: behaviour.seen[-1:] == ["DISCONNECT"])


@pytest.mark.parametrize(("code", "kind"), [(0x87, "not_authorized"), (0x86, "bad_credentials")])
def test_k8s_sat_refused(
    serve: Any, pki: PkiFiles, tmp_path: Path, token_file: Path, code: int, kind: str
) -> None:
    other = tmp_path / "other-token"
    other.write_text(make_token(["aio-mq"], expires_in=-60))
    address = serve(Behaviour(token=_token(token_file), bad_token_code=code))
    exit_code, doc = connect_json(address, pki.ca_cert, "--sat-file", str(other))
    assert exit_code == 7
    assert doc["error"]["kind"] == kind
    assert doc["mqtt"]["reason_code"] == code
    warnings = {w["code"] for w in doc["warnings"]}
    assert {"sat_expired", "sat_audience"} <= warnings  # said before the broker refused


def test_sat_is_never_retried_as_311(serve: Any, pki: PkiFiles, token_file: Path) -> None:
    behaviour = Behaviour(token=_token(token_file), connack_code=0x84)
    code, doc = connect_json(serve(behaviour), pki.ca_cert, "--sat-file", str(token_file))
    assert code == 7
    assert doc["error"]["kind"] == "protocol_unsupported"
    assert "K8S-SAT" in doc["error"]["message"]
    assert behaviour.seen.count("CONNECT") == 1


@pytest.mark.parametrize(
    ("connack", "kind"),
    [
        (0x85, "client_id_rejected"),
        (0x88, "server_unavailable"),
        (0x89, "server_unavailable"),
        (0x8A, "not_authorized"),
        (0x84, "protocol_unsupported"),
    ],
)
def test_connack_codes(serve: Any, pki: PkiFiles, connack: int, kind: str) -> None:
    code, doc = connect_json(
        serve(Behaviour(connack_code=connack)), pki.ca_cert, "--mqtt-version", "5"
    )
    assert code == 7
    assert doc["error"]["kind"] == kind
    assert doc["mqtt"]["reason_code"] == connack


def test_no_connack_within_the_timeout(serve: Any, pki: PkiFiles) -> None:
    code, doc = connect_json(serve(Behaviour(silent=True)), pki.ca_cert, "--timeout", "0.5")
    assert code == 7
    assert doc["error"]["kind"] == "no_connack"


def test_connection_dropped_after_connect(serve: Any, pki: PkiFiles) -> None:
    code, doc = connect_json(serve(Behaviour(drop_after_connect=True)), pki.ca_cert)
    assert code == 7
    assert doc["error"]["kind"] == "connection_dropped"


def test_broker_disconnect_is_reported_with_its_reason(serve: Any, pki: PkiFiles) -> None:
    code, doc = connect_json(
        serve(Behaviour(disconnect_on_subscribe=0x8B)), pki.ca_cert, "--roundtrip"
    )
    # It happened during the round trip: that stage fails, and its exit code is the run's.
    assert code == 8
    assert doc["error"]["kind"] == "connection_dropped"
    assert doc["error"]["stage"] == "roundtrip"
    assert "DISCONNECT 0x8B Server shutting down" in doc["error"]["message"]
    assert stage(doc, "roundtrip")["ok"] is False


def test_subscribe_refused(serve: Any, pki: PkiFiles) -> None:
    code, doc = connect_json(serve(Behaviour(suback_code=0x87)), pki.ca_cert, "--roundtrip")
    assert code == 8
    assert doc["error"]["kind"] == "subscribe_refused"
    assert "SUBACK 0x87" in doc["error"]["message"]


def test_message_not_received(serve: Any, pki: PkiFiles) -> None:
    code, doc = connect_json(
        serve(Behaviour(deliver=False)), pki.ca_cert, "--roundtrip", "--timeout", "0.5"
    )
    assert code == 8
    assert doc["error"]["kind"] == "message_not_received"
    # The twin: the same server delivering completes the round trip.
    code, doc = connect_json(serve(Behaviour()), pki.ca_cert, "--roundtrip", "--timeout", "0.5")
    assert code == 0, doc["error"]


# --- secrets and inputs ----------------------------------------------------------------------


def test_secrets_never_reach_any_output(
    serve: Any, secured_mosquitto: str, pki: PkiFiles, password_file: Path, tmp_path: Path
) -> None:
    token = make_token(["aio-internal"])
    (tmp_path / "t").write_text(token)
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-" + PASSWORD)
    runs = [
        (
            "connect",
            secured_mosquitto,
            "--username",
            "operator",
            "--password-file",
            str(password_file),
        ),
        ("connect", secured_mosquitto, "--username", "operator", "--password-file", str(wrong)),
        ("connect", serve(Behaviour(token=token.encode())), "--sat-file", str(tmp_path / "t")),
        ("connect", serve(Behaviour(token=b"other")), "--sat-file", str(tmp_path / "t")),
    ]
    for args in runs:
        for output in ("text", "json"):
            result = probe(*args, "--ca-file", str(pki.ca_cert), "-v", "--output", output)
            for secret in (PASSWORD, token, token.split(".")[2]):
                assert secret not in result.stdout
                assert secret not in result.stderr


def test_the_password_is_never_an_argument() -> None:
    result = probe("connect", "--username", "operator", "--password", PASSWORD)
    assert result.exit_code == 2
    assert PASSWORD not in result.stdout


def test_sat_with_mqtt_311_is_a_usage_error(token_file: Path) -> None:
    result = probe("connect", "--sat-file", str(token_file), "--mqtt-version", "3.1.1")
    assert result.exit_code == 2
    assert "MQTT 3.1.1 cannot carry" in result.stderr


def test_aio_environment_variables_and_flags_win(
    harness: BrokerHandle, pki: PkiFiles, tmp_path: Path
) -> None:
    env = {
        "AIO_BROKER_HOSTNAME": "127.0.0.1",
        "AIO_BROKER_TCP_PORT": str(harness.port),
        "AIO_TLS_CA_FILE": str(pki.ca_cert),
        "AIO_MQTT_CLIENT_ID": "from-the-environment",
    }
    code, doc = probe_json("connect", "--mqtt-version", "3.1.1", "--roundtrip", env=env)
    assert code == 0, doc["error"]
    assert doc["target"]["port"] == harness.port
    assert doc["roundtrip"]["topic"] == "probe/from-the-environment"
    # A flag wins over its variable: here a CA file that does not exist.
    code, doc = probe_json("connect", "--ca-file", str(tmp_path / "absent.crt"), env=env)
    assert code == 3


def test_password_variable_without_a_user_name_is_ignored(
    harness: BrokerHandle, pki: PkiFiles, password_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_MQTT_PASSWORD", PASSWORD)
    code, doc = connect_json(harness.address, pki.ca_cert)
    assert code == 0, doc["error"]
    # The twin: the password file, explicit, does need a user name.
    result = probe("connect", harness.address, "--password-file", str(password_file))
    assert result.exit_code == 2
    assert "--password-file needs --username" in result.stderr

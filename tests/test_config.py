"""The policy that turns connect's flags into a ProbeConfig (``config.build_probe_config``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mqtt_tls_probe.config import ConnectInputs, build_probe_config, parse_target
from mqtt_tls_probe.dev.pki import PkiFiles, create_root_ca, issue_client_certificate
from mqtt_tls_probe.errors import UsageError


def test_defaults() -> None:
    config = build_probe_config(ConnectInputs(), environ={})
    assert (config.host, config.port, config.server_name) == ("localhost", 18883, "localhost")
    assert config.mqtt.version == "5"
    assert config.version_fallback is True
    assert re.fullmatch(r"probe-[0-9a-f]{8}", config.mqtt.client_id)
    assert config.roundtrip is False
    assert config.mqtt.password is None


def test_an_explicit_version_is_never_retried() -> None:
    config = build_probe_config(ConnectInputs(mqtt_version="5"), environ={})
    assert config.version_fallback is False
    assert build_probe_config(ConnectInputs(mqtt_version="3.1.1"), environ={}).mqtt.version == (
        "3.1.1"
    )


def test_topic_implies_roundtrip_and_server_name_defaults_to_the_host() -> None:
    config = build_probe_config(ConnectInputs(target="[::1]:8883", topic="t/1"), environ={})
    assert config.roundtrip is True
    assert (config.host, config.port, config.server_name) == ("::1", 8883, "::1")
    named = build_probe_config(ConnectInputs(server_name="aio-broker"), environ={})
    assert named.server_name == "aio-broker"


def test_an_empty_client_id_is_kept() -> None:
    assert build_probe_config(ConnectInputs(client_id=""), environ={}).mqtt.client_id == ""


def test_password_sources(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    from_file = ConnectInputs(username="operator", password_file=secret)
    assert build_probe_config(from_file, environ={}).mqtt.password == b"s3cret"
    from_env = ConnectInputs(username="operator")
    env = {"PROBE_MQTT_PASSWORD": "from-env"}
    assert build_probe_config(from_env, environ=env).mqtt.password == b"from-env"
    # Without a user name the variable is ignored (it may be a CI leftover)...
    assert build_probe_config(ConnectInputs(), environ=env).mqtt.password is None
    # ...and a password file is a usage error.
    with pytest.raises(UsageError, match="needs --username"):
        build_probe_config(ConnectInputs(password_file=secret), environ={})


def test_token_file_keeps_the_token_without_its_newline(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("a.b.c\r\n")
    config = build_probe_config(ConnectInputs(sat_file=token), environ={})
    assert config.mqtt.sat_token == b"a.b.c"
    assert "a.b.c" not in repr(config)  # secrets stay out of reprs and logs


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        (ConnectInputs(cert=Path("c.pem")), "go together"),
        (ConnectInputs(key=Path("k.pem")), "go together"),
        (ConnectInputs(sat_file=Path("t"), mqtt_version="3.1.1"), "MQTT 3.1.1 cannot carry"),
        (ConnectInputs(tls_min="1.1"), "--tls-min"),
        (ConnectInputs(mqtt_version="4"), "--mqtt-version"),
        (ConnectInputs(target="host:80", port=81), "pick one"),
        (ConnectInputs(target="host:1:2:x"), "cannot parse"),
        (ConnectInputs(target=":1883"), "names no host"),
        (ConnectInputs(target="host:0"), "invalid port"),
        (ConnectInputs(password_file=Path("/nonexistent"), username="u"), "cannot read"),
    ],
)
def test_usage_errors(inputs: ConnectInputs, says: str) -> None:
    with pytest.raises(UsageError, match=re.escape(says)):
        build_probe_config(inputs, environ={})


def test_client_certificate_and_key_must_belong_together(pki: PkiFiles, tmp_path: Path) -> None:
    config = build_probe_config(ConnectInputs(cert=pki.client_cert, key=pki.client_key), environ={})
    assert config.tls.client is not None
    assert config.tls.client.subject == "CN=probe-client"
    other = issue_client_certificate(create_root_ca())
    (tmp_path / "other.key").write_bytes(other.key_pem())
    with pytest.raises(UsageError, match="does not belong"):
        build_probe_config(
            ConnectInputs(cert=pki.client_cert, key=tmp_path / "other.key"), environ={}
        )


@pytest.mark.parametrize(
    ("target", "port", "expected"),
    [
        ("broker", None, ("broker", 18883)),
        ("broker:8883", None, ("broker", 8883)),
        ("broker", 8883, ("broker", 8883)),
        ("[::1]:1", None, ("::1", 1)),
        ("[::1]", None, ("::1", 18883)),
        ("fe80::1", None, ("fe80::1", 18883)),
        (" 10.0.0.1:1883 ", None, ("10.0.0.1", 1883)),
    ],
)
def test_parse_target(target: str, port: int | None, expected: tuple[str, int]) -> None:
    assert parse_target(target, port) == expected

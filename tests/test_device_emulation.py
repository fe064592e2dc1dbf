"""``--tls-max``, ``--ciphers``, ``--tls-keylog`` on ``connect``: a device's limits, its secrets."""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from mqtt_tls_probe.config import ConnectInputs, build_probe_config
from mqtt_tls_probe.dev.pki import PkiFiles
from mqtt_tls_probe.errors import UsageError

from .brokers import mosquitto
from .helpers import connect_json, probe
from .servers import TcpServer, hold

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def broker(pki: PkiFiles, tmp_path: Path) -> object:
    """mosquitto on TLS 1.2 and 1.3 (its default), with the quickstart-profile PKI."""
    listener = [f"certfile {pki.server_cert}", f"keyfile {pki.server_key}", "allow_anonymous true"]
    with mosquitto(tmp_path / "broker", listener) as port:
        yield f"127.0.0.1:{port}"


# --- device emulation ---------------------------------------------------------------


def test_tls_max_12_negotiates_tls12_with_a_13_capable_broker(broker: str, pki: PkiFiles) -> None:
    code, doc = connect_json(broker, pki.ca_cert)
    assert code == 0
    assert doc["tls"]["version"] == "TLSv1.3"
    code, doc = connect_json(broker, pki.ca_cert, "--tls-max", "1.2")
    assert code == 0, doc["error"]
    assert doc["tls"]["version"] == "TLSv1.2"


def test_a_device_with_one_suite_gets_in(broker: str, pki: PkiFiles) -> None:
    suite = "ECDHE-ECDSA-AES128-GCM-SHA256"
    code, doc = connect_json(broker, pki.ca_cert, "--tls-max", "1.2", "--ciphers", suite)
    assert code == 0, doc["error"]
    assert doc["tls"]["cipher"] == suite


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--tls-max", "1.2", "--tls-min", "1.3"), "no TLS version is left"),
        (("--ciphers", "NOT-A-CIPHER"), "selects no TLS 1.2 suite"),
        (("--ciphers", "TLS_AES_128_GCM_SHA256"), "selects no TLS 1.2 suite"),
        (("--ciphers", "DES-CBC3-SHA"), "security level 2"),
        (("--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256", "--tls-min", "1.3"), "TLS 1.3 suites"),
        (("--tls-max", "1.1"), "1.1"),
    ],
)
def test_a_combination_the_local_openssl_cannot_offer_is_a_usage_error(
    pki: PkiFiles, args: tuple[str, ...], says: str
) -> None:
    with TcpServer(hold) as server:
        result = probe("connect", server.address, "--ca-file", str(pki.ca_cert), *args)
        accepted = server.accepted
    assert result.exit_code == 2
    assert says in result.stderr
    assert result.stdout == ""
    assert accepted == 0  # found before any I/O


def test_the_builder_checks_the_limits_before_anything_else() -> None:
    with pytest.raises(UsageError, match="--tls-max must be one of"):
        build_probe_config(ConnectInputs(tls_max="1.4"), environ={})
    config = build_probe_config(
        ConnectInputs(tls_max="1.2", ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"), environ={}
    )
    assert config.tls.tls_max == "1.2"
    assert config.tls.ciphers == "ECDHE-ECDSA-AES128-GCM-SHA256"


# --- the key log ---------------------------------------------------------------------------

NSS_LINE = re.compile(r"^(?P<label>[A-Z_0-9]+) (?P<random>[0-9a-f]{64}) (?P<secret>[0-9a-f]+)$")


def _labels(path: Path) -> set[str]:
    labels = set()
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        match = NSS_LINE.match(line)
        assert match is not None, line
        labels.add(match["label"])
    return labels


def test_keylog_holds_the_session_secrets_in_nss_format(
    broker: str, pki: PkiFiles, tmp_path: Path
) -> None:
    keylog = tmp_path / "keys.log"
    result = probe("connect", broker, "--ca-file", str(pki.ca_cert), "--tls-keylog", str(keylog))
    assert result.exit_code == 0, result.stdout
    assert keylog.stat().st_mode & 0o777 == 0o600
    assert {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    } <= _labels(keylog)
    assert f"warning: The TLS secrets of this session are in {keylog}" in result.stdout
    assert "decrypt" in result.stdout
    # TLS 1.2 writes the master secret under the client random.
    keylog12 = tmp_path / "keys12.log"
    code, doc = connect_json(broker, pki.ca_cert, "--tls-max", "1.2", "--tls-keylog", str(keylog12))
    assert code == 0
    assert _labels(keylog12) == {"CLIENT_RANDOM"}
    assert "tls_keylog" in [w["code"] for w in doc["warnings"]]


def test_an_existing_keylog_is_refused_unless_forced(
    broker: str, pki: PkiFiles, tmp_path: Path
) -> None:
    keylog = tmp_path / "keys.log"
    keylog.write_text("keep me\n")
    keylog.chmod(0o644)
    args = ("connect", broker, "--ca-file", str(pki.ca_cert), "--tls-keylog", str(keylog))
    refused = probe(*args)
    assert refused.exit_code == 2
    assert "exists" in refused.stderr
    assert "--force" in refused.stderr
    assert keylog.read_text() == "keep me\n"  # not appended to
    forced = probe(*args, "--force")
    assert forced.exit_code == 0
    assert "keep me" not in keylog.read_text()
    assert keylog.stat().st_mode & 0o777 == 0o600
    assert "CLIENT_TRAFFIC_SECRET_0" in _labels(keylog)


def test_a_keylog_path_that_is_a_symlink_is_not_followed(pki: PkiFiles, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "keys.log"
    link.symlink_to(target)
    result = probe(
        "connect", "127.0.0.1:1", "--ca-file", str(pki.ca_cert), "--tls-keylog", str(link)
    )
    assert result.exit_code == 2
    assert not target.exists()
    directory = tmp_path / "a-directory"
    directory.mkdir()
    args = ("--ca-file", str(pki.ca_cert), "--tls-keylog", str(directory), "--force")
    result = probe("connect", "127.0.0.1:1", *args)
    assert result.exit_code == 2
    assert "is a directory" in result.stderr
    assert directory.is_dir()


def test_sslkeylogfile_in_the_environment_is_ignored(
    broker: str, pki: PkiFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain SSLContext never reads $SSLKEYLOGFILE: secrets go only where --tls-keylog says."""
    # The control: here, as documented, create_default_context() does honour the variable.
    control = tmp_path / "control.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(control))
    ssl.create_default_context()
    assert control.exists()
    ambient = tmp_path / "ambient.log"
    env = {**os.environ, "SSLKEYLOGFILE": str(ambient)}
    command = [sys.executable, "-m", "mqtt_tls_probe", "connect", broker]
    command += ["--ca-file", str(pki.ca_cert)]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not ambient.exists()
    explicit = tmp_path / "explicit.log"
    result = subprocess.run(
        [*command, "--tls-keylog", str(explicit)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not ambient.exists()
    assert "CLIENT_TRAFFIC_SECRET_0" in _labels(explicit)

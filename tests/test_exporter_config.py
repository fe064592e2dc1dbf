"""The exporter's settings: the module file, the allow-list, --listen and --interval."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqtt_tls_probe.dev.pki import PkiFiles
from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.exporter.modules import MAX_CONFIG_BYTES, load_config_file
from mqtt_tls_probe.exporter.settings import parse_interval, parse_listen
from mqtt_tls_probe.exporter.targets import DEFAULT_ALLOW_TARGETS, AllowList, normalize_target

from .helpers import probe


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exporter.yaml"
    path.write_text(text)
    return path


def test_a_full_module_file(pki: PkiFiles, tmp_path: Path) -> None:
    (tmp_path / "password").write_text("s3cret\n")
    (tmp_path / "token").write_text("a.b.c\n")
    config = write(
        tmp_path,
        f"""
allow_targets: ["aio-broker*:*", "127.0.0.1:*"]
modules:
  internal:
    ca_file: {pki.ca_cert}
    server_name: aio-broker
    mqtt_version: "5"
    sat_file: token              # relative: to the file's directory
    roundtrip: true
    topic: probe/exporter
    timeout: 5
  mtls:
    cluster: {{namespace: other, configmap: my-bundle, configmap_key: root.crt}}
    cert: {pki.client_cert}
    key: {pki.client_key}
    tls_min: 1.3                 # a YAML number means the version
    alpn: [mqtt]
    mqtt_version: 3.1.1
    username: probe
    password_file: password
""",
    )
    loaded = load_config_file(config)
    assert loaded.allow_targets == ("aio-broker*:*", "127.0.0.1:*")
    internal = loaded.modules["internal"].config_for("aio-broker:18883")
    assert internal.server_name == "aio-broker"
    assert internal.mqtt.sat_token == b"a.b.c"
    assert not internal.version_fallback
    assert (internal.roundtrip, internal.topic, internal.timeout) == (True, "probe/exporter", 5.0)
    mtls = loaded.modules["mtls"].config_for("[::1]:8883")
    assert (mtls.host, mtls.port, mtls.server_name) == ("::1", 8883, "::1")
    assert mtls.trust.cluster.configmap_candidates == ("my-bundle",)
    assert mtls.trust.cluster.namespace == "other"
    assert mtls.tls.tls_min == "1.3"
    assert mtls.tls.client is not None
    assert mtls.mqtt.password == b"s3cret"
    assert mtls.mqtt.version == "3.1.1"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("modules: {m: {timeout: fast}}", "modules.m.timeout: expected a number"),
        ("modules: {m: {timeout: 0}}", "modules.m.timeout"),
        ("modules: {m: {roundtrip: 'yes'}}", "modules.m.roundtrip: expected true or false"),
        ("modules: {m: {mqtt_version: 4}}", "modules.m.mqtt_version: expected one of 5, 3.1.1"),
        ("modules: {m: {tls_min: '1.1'}}", "modules.m.tls_min"),
        ("modules: {m: {ca_flie: ca.crt}}", "modules.m.ca_flie: unknown key"),
        ("modules: {m: {cluster: {contxt: x}}}", "modules.m.cluster.contxt: unknown key"),
        ("modules: {m: {alpn: [mqtt, 3]}}", "modules.m.alpn[1]: expected a non-empty string"),
        ("modules: {m: {sat_serviceaccount: probe}}", "sat_serviceaccount: the exporter does"),
        ("modules: {m: {sat_audience: aio-internal}}", "sat_audience: the exporter does not mint"),
        ("modules: {m: {ca_file: a, cluster: {}}}", "modules.m.cluster: give ca_file or cluster"),
        ("modules: {m: {username: u, password_file: p}}", "modules.m: cannot read the password"),
        ("modules: {m: {password_file: p}}", "modules.m: --password-file needs --username"),
        ("modules: {m: {cert: c.pem}}", "modules.m: --cert and --key go together"),
        ("modules: {m: {sat_file: t, mqtt_version: 3.1.1}}", "modules.m: --sat-file needs MQTT 5"),
        ("modules: {default: {timeout: 1}}", "modules.default: the module 'default' is set"),
        ("modules: {'bad name': {}}", "modules.bad name: a module name"),
        ("modules: [a, b]", "modules: expected a mapping, got list"),
        ("module: {}", "module: unknown key"),
        ("allow_targets: 127.0.0.1:*", "allow_targets: expected a list of strings"),
        ("modules: {m: [", "not valid YAML"),
    ],
)
def test_a_file_that_does_not_validate_names_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(UsageError) as raised:
        load_config_file(write(tmp_path, text))
    assert named in str(raised.value)
    assert str(tmp_path / "exporter.yaml") in str(raised.value)


def test_an_empty_file_adds_nothing_and_a_huge_one_is_refused(tmp_path: Path) -> None:
    loaded = load_config_file(write(tmp_path, "# nothing yet\n"))
    assert (dict(loaded.modules), loaded.allow_targets) == ({}, ())
    with pytest.raises(UsageError, match="larger than"):
        load_config_file(write(tmp_path, "#" * (MAX_CONFIG_BYTES + 1)))
    with pytest.raises(UsageError, match="cannot read the config file"):
        load_config_file(tmp_path / "missing.yaml")


def test_the_command_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = write(tmp_path, "modules:\n  internal:\n    timeout: soon\n")
    result = probe("exporter", "--config", str(config))
    assert result.exit_code == 2
    assert "modules.internal.timeout" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--discover", "--target", "127.0.0.1:1"],
        ["--listen", "9883"],
        ["--interval", "60s"],  # no loop to pace
        ["--target", "127.0.0.1:1", "--interval", "soon"],
        ["--target", "host:1:2:x"],
        ["--mqtt-version", "3.1.1", "--sat-file", "t"],
        ["--password-file", "p"],
    ],
)
def test_usage_errors_of_the_command(args: list[str]) -> None:
    result = probe("exporter", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""


def test_discover_or_target_not_both() -> None:
    result = probe("exporter", "--discover", "--target", "127.0.0.1:1")
    assert "pick one" in result.stderr


def test_the_default_allow_list() -> None:
    allow = AllowList.of(DEFAULT_ALLOW_TARGETS)
    for target in (
        "127.0.0.1:18883",
        "[::1]:8883",
        "LOCALHOST:1",
        "aio-broker:18883",
        "aio-broker.azure-iot-operations.svc.cluster.local:18883",
    ):
        assert allow.allows(normalize_target(target)), target
    for target in (
        "10.0.0.1:18883",
        "127.0.0.1.nip.io:18883",
        "1:18883",  # what fnmatch would let "[::1]:*" match, brackets read as a class
        "[::2]:18883",
        "aio-brokers:18883",
        "example.com:443",
    ):
        assert not allow.allows(normalize_target(target)), target


def test_targets_are_normalized_before_matching() -> None:
    assert normalize_target("Aio-Broker") == "aio-broker:18883"
    assert normalize_target("::1") == "[::1]:18883"
    assert AllowList.of(["*:8883"]).allows(normalize_target("[fe80::1]:8883"))
    with pytest.raises(UsageError):
        normalize_target("host:99999")


def test_listen_and_interval() -> None:
    assert parse_listen("0.0.0.0:9883") == ("0.0.0.0", 9883)
    assert parse_listen("[::]:0") == ("::", 0)
    for bad in ("9883", ":9883", "host:", "host:65536"):
        with pytest.raises(UsageError):
            parse_listen(bad)
    assert parse_interval("60s") == 60.0
    assert parse_interval("1m") == 60.0
    assert parse_interval("200ms") == pytest.approx(0.2)
    assert parse_interval("0.5") == 0.5
    for bad in ("0s", "-1s", "soon", "1d"):
        with pytest.raises(UsageError):
            parse_interval(bad)

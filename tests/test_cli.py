"""The command line as a user meets it: help, demo, usage errors and bugs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mqtt_tls_probe import cli
from mqtt_tls_probe.dev.harness import BrokerHandle
from mqtt_tls_probe.dev.pki import PkiFiles

from .helpers import probe

COMMANDS = [
    ["connect"],
    ["bundle"],
    ["inspect"],
    ["certs", "init"],
    ["broker"],
    ["cluster"],
    ["demo"],
    ["tls"],
]


def test_demo_runs_every_stage_in_a_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mqtt_tls_probe", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("trust", "resolve", "tcp", "tls", "verify", "mqtt", "roundtrip"):
        assert f"PASS  {name}" in result.stdout
    assert "Traceback" not in result.stderr


def test_help_describes_every_command_with_an_example() -> None:
    top = probe("--help")
    assert top.exit_code == 0
    assert "Example" in top.stdout
    for command in COMMANDS:
        result = probe(*command, "--help")
        assert result.exit_code == 0, command
        assert "Example" in result.stdout, command


def test_usage_errors_exit_2_without_output_on_stdout(tmp_path: pytest.TempPathFactory) -> None:
    for args in (
        ["connect", "--mqtt-version", "4"],
        ["connect", "--cert", "only-a-cert.pem"],
        ["connect", "--sat-file", "t", "--mqtt-version", "3.1.1"],
        ["connect", "host:1:2:x"],
        ["connect", "host:80", "--port", "81"],
        ["nonsense"],
    ):
        result = probe(*args)
        assert result.exit_code == 2, args
        assert result.stdout == "", args


def test_a_bug_exits_1_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("mqtt_tls_probe.orchestrators.connect.run_probe", broken)
    monkeypatch.setattr(sys, "argv", ["probe", "connect", "--insecure"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err
    assert "Traceback" not in err
    monkeypatch.setattr(sys, "argv", ["probe", "connect", "--insecure", "-v"])
    with pytest.raises(SystemExit):
        cli.main()
    assert "Traceback" in capsys.readouterr().err


_LOADED_HEAVY = """
import sys
from mqtt_tls_probe.cli import main
sys.argv = ["probe", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = {"kubernetes", "amqtt", "pydantic", "yaml"}
print(sorted(heavy & {name.split(".")[0] for name in sys.modules}), file=sys.stderr)
"""


def _heavy_modules(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _LOADED_HEAVY, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stderr.strip().splitlines()[-1]


def test_connect_imports_neither_the_kubernetes_client_nor_amqtt(
    harness: BrokerHandle, pki: PkiFiles
) -> None:
    assert _heavy_modules("connect", harness.address, "--ca-file", str(pki.ca_cert)) == "[]"
    assert (
        _heavy_modules("connect", harness.address, "--ca-file", str(pki.ca_cert), "-o", "json")
        == "[]"
    )
    # The twin: reading the cluster does load its adapter (and fails here, before the
    # client itself: no kubeconfig; tests/test_cluster_imports.py covers a full read).
    assert "yaml" in _heavy_modules("bundle")


def test_a_run_imports_and_builds_only_the_command_it_names() -> None:
    import subprocess
    import sys

    script = (
        "import sys; from mqtt_tls_probe.cli.application import _invoked\n"
        "trimmed = _invoked(['connect', 'broker:8883', '--insecure'])\n"
        "names = [c.callback.__name__ for c in trimmed.registered_commands]\n"
        "print(names, trimmed.registered_groups)\n"
        "print(sorted(m for m in sys.modules if m.startswith('mqtt_tls_probe.cli.')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    commands, modules = run.stdout.splitlines()
    assert commands == "['connect'] []"
    assert modules == str(
        [
            "mqtt_tls_probe.cli.application",
            "mqtt_tls_probe.cli.connect",
            "mqtt_tls_probe.cli.options",
        ]
    )


def test_help_and_unknown_names_get_the_whole_app_in_help_order() -> None:
    from mqtt_tls_probe.cli.application import COMMAND_MODULES, _invoked, app

    for argv in ([], ["--help"], ["certs", "init"], ["conect"], ["-o", "json"]):
        assert _invoked(argv) is app
    names = [
        c.callback.__module__.rpartition(".")[2] for c in app.registered_commands if c.callback
    ]
    assert names == [m for m in COMMAND_MODULES if m != "certs"]  # certs is a group


def test_the_console_entry_collects_no_garbage_until_a_command_runs_long() -> None:
    """console_main turns the collector off; scan, series, exporter and broker turn it on."""
    import gc

    from .helpers import probe as run_cli

    gc.disable()
    try:
        run_cli("connect", "127.0.0.1:1", "--insecure", "--timeout", "1")
        assert not gc.isenabled()  # a single probe ends before garbage matters
        run_cli("scan", "127.0.0.1:1", "--insecure", "--timeout", "1")
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # the start-up's objects stay out of collections
    finally:
        gc.unfreeze()
        gc.enable()

"""Cold start of ``probe connect`` next to peer MQTT clients, on one local TLS broker.

    uv run python bench/bench_connect.py [--runs 20]

Makes a PKI with ``probe certs init``, starts mosquitto with a TLS listener on
127.0.0.1 (an ephemeral port, TCP_NODELAY), then runs each command ``--runs``
times after two warm-ups, interleaved run by run, and prints the median, p90
and minimum wall time and the peak RSS:

- ``probe connect --ca-file`` (text report), and with ``--output json``;
- ``mosquitto_pub --cafile`` (Debian's mosquitto-clients), ``amqtt_pub``
  (installed with amqtt), the MQTT.js CLI ``mqtt pub`` (npm, installed into
  bench/.cache on first use), each publishing one QoS 0 message over TLS;
- the import floor: a bare interpreter, and one that only imports typer,
  paho-mqtt, ssl and cryptography.x509, the libraries ``probe connect`` needs.

Then the ratios the cold-start issue sets: ``probe connect`` text at most 0.9
times the import floor's median, JSON at most 1.05 times (JSON needs
cryptography.x509, which the floor imports too), and at most 32 MB.

Bytecode is compiled first, as ``pip install`` does: where
PYTHONDONTWRITEBYTECODE is set, nothing else would ever write it. Results go
to bench/results/connect.json as well.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from timing import (
    BIN,
    CACHE,
    check_ratio,
    check_rss,
    compile_bytecode,
    measure_all,
    runs_from_argv,
    write_results,
)

TEXT = "probe connect (text)"
JSON = "probe connect --output json"
FLOOR = "floor: import typer, paho, ssl, cryptography.x509"
TARGETS = {TEXT: 0.9, JSON: 1.05}  # times the import floor's median
TARGET_RSS_MB = 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mosquitto(certs: Path) -> Iterator[int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        sys.exit("bench: mosquitto is needed (apt-get install mosquitto mosquitto-clients)")
    port = free_port()
    config = certs / "mosquitto.conf"
    config.write_text(
        f"user root\nlistener {port} 127.0.0.1\ncertfile {certs / 'server.crt'}\n"
        f"keyfile {certs / 'server.key'}\nallow_anonymous true\nset_tcp_nodelay true\n"
        "persistence false\nlog_dest none\n"
    )
    process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.02)
        else:
            sys.exit("bench: mosquitto did not start")
        yield port
    finally:
        process.terminate()
        process.wait(5)


def mqttjs() -> Path | None:
    """The MQTT.js CLI, installed with npm into bench/.cache when npm is there."""
    cli = CACHE / "mqttjs" / "node_modules" / ".bin" / "mqtt"
    if cli.exists():
        return cli
    npm = shutil.which("npm")
    if npm is None:
        return None
    print("bench: installing the MQTT.js CLI with npm (once)...", file=sys.stderr)
    result = subprocess.run(
        [npm, "install", "--prefix", str(CACHE / "mqttjs"), "--no-audit", "--no-fund", "mqtt@5"],
        capture_output=True,
        check=False,
    )
    return cli if result.returncode == 0 and cli.exists() else None


def main() -> None:
    runs = runs_from_argv(__doc__.splitlines()[0])
    compile_bytecode()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as scratch:
        certs = Path(scratch)
        init = [str(BIN / "probe"), "certs", "init", str(certs), "--force"]
        subprocess.run(init, check=True, capture_output=True)
        ca = str(certs / "ca.crt")
        with mosquitto(certs) as port:
            target = f"127.0.0.1:{port}"
            probe = f"{BIN / 'probe'} connect {target} --ca-file {ca}"
            publish = "-t bench -m x"
            commands = {
                TEXT: probe,
                JSON: f"{probe} --output json",
                "mosquitto_pub --cafile": (
                    f"mosquitto_pub --cafile {ca} -h 127.0.0.1 -p {port} {publish}"
                ),
                "amqtt_pub": f"{BIN / 'amqtt_pub'} --url mqtts://{target} --ca-file {ca} {publish}",
            }
            cli = mqttjs()
            if cli is not None:
                commands["MQTT.js mqtt pub"] = (
                    f"{cli} pub -h 127.0.0.1 -p {port} -l mqtts --cafile {ca} {publish}"
                )
            commands["floor: python -c pass"] = f"{python} -c pass"
            commands[FLOOR] = (
                f"{python} -c 'import typer, paho.mqtt.client, ssl, cryptography.x509'"
            )
            results = measure_all(commands, runs)
    ratios = {}
    for name, most in TARGETS.items():
        ratios[f"{name} / floor"] = check_ratio(results, name, FLOOR, most)
        check_rss(results, name, TARGET_RSS_MB)
    write_results("connect", runs, results, ratios=ratios)


if __name__ == "__main__":
    main()

"""Hostile clusters for the tests: API servers that drip, flood or lie, hostile kubeconfigs,
and a way to run the CLI in a child process measuring its wall time and peak memory.

The hostile API servers speak TLS with the certificate of a ``FakeApiServer``,
so the kubeconfig it writes (its CA, its token) reaches them; what they send
after the request is the hostility. Every one stops when the client goes away
or the server's ``with`` block ends, and none sends for longer than
``_SEND_LIMIT`` seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .kube_api import FakeApiServer
from .servers import Handler, TcpServer, server_context, tls_handler

_SEND_LIMIT = 30.0
DRIP_INTERVAL = 0.5  # 2 bytes a second, as observed


def _read_request(conn: socket.socket) -> bool:
    """Read one request's head (bounded); False when the client went away first."""
    head = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        head += chunk
    return True


def _drip(conn: socket.socket, stopping: threading.Event, data: bytes) -> None:
    """Send ``data`` two bytes at a time, one pair per ``DRIP_INTERVAL``."""
    ends = time.monotonic() + _SEND_LIMIT
    for index in range(0, len(data), 2):
        if stopping.wait(DRIP_INTERVAL) or time.monotonic() > ends:
            return
        conn.sendall(data[index : index + 2])


def drip_headers(conn: socket.socket, stopping: threading.Event) -> None:
    """A status line and headers, never finished: 2 bytes a second."""
    if _read_request(conn):
        _drip(conn, stopping, b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"s" * 10_000)


def drip_body(conn: socket.socket, stopping: threading.Event) -> None:
    """Honest headers, then a JSON body at 2 bytes a second."""
    if _read_request(conn):
        body = b'{"kind": "ConfigMap", "data": {"ca.crt": "' + b"A" * 10_000 + b'"}}'
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        conn.sendall(head.encode() + b"\r\n\r\n")
        _drip(conn, stopping, body)


def endless_chunked(conn: socket.socket, stopping: threading.Event) -> None:
    """A chunked body that never ends, as fast as the client reads it."""
    if not _read_request(conn):
        return
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\n[\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"1," * 32768)
    ends = time.monotonic() + _SEND_LIMIT
    while not stopping.is_set() and time.monotonic() < ends:
        conn.sendall(chunk)


def huge_declared(conn: socket.socket, stopping: threading.Event) -> None:
    """A Content-Length of 10 GB, then a body as fast as the client reads it."""
    if not _read_request(conn):
        return
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
    ends = time.monotonic() + _SEND_LIMIT
    while not stopping.is_set() and time.monotonic() < ends:
        conn.sendall(b" " * 65536)


def posing_as(api: FakeApiServer, behaviour: Handler) -> TcpServer:
    """A TLS server with ``api``'s certificate that answers every request with ``behaviour``."""
    return TcpServer(tls_handler(server_context(*api.certificate_files), behaviour))


# --- hostile kubeconfigs -------------------------------------------------------------------


def alias_bomb(path: Path) -> Path:
    """A 1 KB kubeconfig whose aliases expand to 9**9 strings when the entry is formatted."""
    lines = ["apiVersion: v1", "kind: Config", "current-context: aio"]
    lines.append('x0: &x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
    lines += [f"x{n}: &x{n} [{','.join([f'*x{n - 1}'] * 9)}]" for n in range(1, 9)]
    lines.append("contexts: [{name: aio, context: {cluster: c, user: u}, bomb: *x8}]")
    lines.append("clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}, bomb: *x8}]")
    lines.append("users: [{name: u, user: {token: t}, bomb: *x8}]")
    path.write_text("\n".join(lines) + "\n")
    return path


def plugin_script(path: Path, body: str) -> Path:
    """An executable ``/bin/sh`` script: an exec credential plugin."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def exec_user(command: Path) -> dict[str, Any]:
    """A kubeconfig user whose credentials come from ``command``."""
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(command),
            "interactiveMode": "Never",
        }
    }


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# --- the CLI as a child process -----------------------------------------------------------

# Measures the peak RSS of the command alone. A child's ru_maxrss starts at the RSS of
# the process it was forked (or vfork-ed) from, which here is the test runner; so a
# small process forks the command and reports its wait4 usage: GNU time when
# installed, else this Python launcher (whose own few MB then count).
_GNU_TIME = Path("/usr/bin/time")
_LAUNCHER = """
import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class ProcessRun:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float

    def json(self) -> dict[str, Any]:
        document = json.loads(self.stdout)
        assert isinstance(document, dict)
        return document


def _measuring(argv: list[str], report: Path) -> list[str]:
    if _GNU_TIME.exists():
        return [str(_GNU_TIME), "-q", "-f", "%M", "-o", str(report), *argv]
    return [sys.executable, "-S", "-c", _LAUNCHER, str(report), *argv]


def measured_run(
    argv: list[str], *, limit: float = 60.0, env: dict[str, str] | None = None
) -> ProcessRun:
    """Run ``argv``: its exit, output, wall time and peak RSS; killed after ``limit`` s."""
    with tempfile.TemporaryDirectory(prefix="probe-run-") as scratch:
        report = Path(scratch) / "peak-kb"
        out, err = Path(scratch) / "out", Path(scratch) / "err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            started = time.monotonic()
            child = subprocess.Popen(
                _measuring(argv, report),
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
                process_group=0,
            )
            # A blocking wait ends when the child does; ``wait(timeout)`` would poll
            # with sleeps of up to 50 ms and add them to the measured time.
            killer = threading.Timer(limit, os.killpg, (child.pid, signal.SIGKILL))
            killer.start()
            try:
                code = child.wait()
            finally:
                killer.cancel()
            seconds = time.monotonic() - started
        words = report.read_text().split() if report.exists() else []
        peak_kb = int(words[-1]) if words and words[-1].isdigit() else 0
        return ProcessRun(code, out.read_text(), err.read_text(), seconds, peak_kb / 1024)


def run_probe_process(
    *args: str, limit: float = 60.0, env: dict[str, str] | None = None
) -> ProcessRun:
    """``python -m mqtt_tls_probe ARGS`` in a child process, measured."""
    return measured_run([sys.executable, "-m", "mqtt_tls_probe", *args], limit=limit, env=env)

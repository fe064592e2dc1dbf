"""Fleet speed: ``probe scan`` next to ``xargs -P16 mosquitto_pub``, on 4 local TLS listeners.

    uv run python bench/bench_scan.py [--runs 5] [--concurrency 32]

Makes a PKI with ``probe certs init`` and starts 4 mosquitto processes, each
with one TLS listener on 127.0.0.1 (``set_tcp_nodelay true``,
``max_connections -1``; mosquitto 2.0 listens with a backlog of 100, above
the 32 connections a scan has in flight). Then, in the same run:

- ``probe scan`` of 400 targets (100 per listener: TCP, TLS with full
  verification, MQTT CONNECT/CONNACK, DISCONNECT) and of 1 target, ``--runs``
  times each; probes/s = 399 / (median 400-target time - median 1-target
  time), so that the process start is not counted; client CPU per probe the
  same way, from the scan process's rusage (user + system);
- ``xargs -P16`` running 400 ``mosquitto_pub --cafile CA -h 127.0.0.1 -p PORT
  -t bench -m x -V mqttv5`` (connect, publish at QoS 0, disconnect), ``--runs``
  times; probes/s = 400 / median time, CPU from xargs's rusage (its children
  included);
- peak RSS of the 400-target scan process, and an in-process run of the scan
  orchestrator: VmRSS after 400 probes and after 3000;
- the floor, for reference: the same 400 connections made with nothing but
  the ssl module in ``--concurrency`` threads (one shared context, full
  verification, a raw CONNECT, CONNACK, DISCONNECT), timed in its process.

Targets: scan >= 2.5 x xargs in probes/s; client CPU <= 1.5 ms per probe;
peak RSS <= 50 MB; RSS after 3000 probes within 10% of RSS after 400.
Results go to bench/results/scan.json as well.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from timing import BIN, compile_bytecode, write_results

LISTENERS = 4
TARGETS = 400
LONG_RUN = 3000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def listeners(certs: Path, count: int) -> Iterator[list[int]]:
    """``count`` mosquitto processes with one TLS listener each; yields their ports."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        sys.exit("bench: mosquitto is needed (apt-get install mosquitto mosquitto-clients)")
    processes, ports = [], []
    try:
        for index in range(count):
            port = free_port()
            config = certs / f"mosquitto-{index}.conf"
            config.write_text(
                f"user root\nlistener {port} 127.0.0.1\ncertfile {certs / 'server.crt'}\n"
                f"keyfile {certs / 'server.key'}\nallow_anonymous true\nset_tcp_nodelay true\n"
                "max_connections -1\npersistence false\nlog_dest none\n"
            )
            processes.append(
                subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
            )
            ports.append(port)
        for port in ports:
            _wait_listening(port)
        yield ports
    finally:
        for process in processes:
            process.terminate()
            process.wait(5)


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    sys.exit(f"bench: mosquitto on port {port} did not start")


def run_measured(command: Sequence[str], stdin: Path | None = None) -> dict[str, float]:
    """Wall time (s), CPU time (s, user + system, children included), peak RSS (MB).

    The peak is VmHWM read from /proc while the process runs: rusage's
    ru_maxrss would also count the memory of this (forking) process.
    """
    with contextlib.ExitStack() as files:
        source = files.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        errors = files.enter_context(tempfile.TemporaryFile())
        started = time.perf_counter()
        process = subprocess.Popen(command, stdin=source, stdout=subprocess.DEVNULL, stderr=errors)
        peak = [0.0]
        watcher = threading.Thread(target=_watch_peak, args=(process.pid, peak), daemon=True)
        watcher.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        watcher.join(5)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            sys.exit(f"bench: {' '.join(command)} failed:\n{errors.read().decode()[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": peak[0]}


def _watch_peak(pid: int, peak: list[float]) -> None:
    """The process's VmHWM (MB), polled until the process is gone (a zombie has none)."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            found = _field(status.read_text(), "VmHWM")
        except (OSError, KeyError):
            return
        peak[0] = max(peak[0], found)
        time.sleep(0.01)


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def repeated(command: Sequence[str], runs: int, stdin: Path | None = None) -> dict[str, float]:
    run_measured(command, stdin)  # a warm-up: page cache, bytecode
    return medians([run_measured(command, stdin) for _ in range(runs)])


# --- the in-process run, for RSS over many probes ------------------------------------------


def rss_child(ca_file: str, ports: list[int], concurrency: int) -> None:
    """Scan 400 targets, then 2600 more, in one process; print VmRSS after each (MB)."""
    from mqtt_tls_probe.config import ConnectInputs
    from mqtt_tls_probe.orchestrators.scan import run_scan
    from mqtt_tls_probe.scan_config import build_scan_plan

    def scan(count: int) -> None:
        targets = [f"127.0.0.1:{ports[i % len(ports)]}" for i in range(count)]
        plan = build_scan_plan(
            ConnectInputs(ca_file=Path(ca_file)), targets, concurrency=concurrency
        )
        report = run_scan(plan, keep=False)
        if report.exit_code != 0:
            sys.exit(f"bench: the in-process scan failed: {report.summary}")

    scan(TARGETS)
    after_first = _status("VmRSS")
    scan(LONG_RUN - TARGETS)
    print(json.dumps({"rss_400": after_first, "rss_3000": _status("VmRSS")}))


def _status(field: str) -> float:
    return _field(Path("/proc/self/status").read_text(), field)


def _field(status: str, field: str) -> float:
    """A memory field of /proc/PID/status, in MB."""
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


# --- the floor: the ssl module alone ---------------------------------------------------------

_CONNECT = bytes.fromhex("101700044d5154540402000a000b70726f62652d736e696666")  # MQTT 3.1.1


def raw_child(ca_file: str, ports: list[int], concurrency: int) -> None:
    """400 verified TLS connections with a raw CONNECT/CONNACK; print probes/s and CPU ms."""
    import ssl

    context = ssl.create_default_context(cafile=ca_file)
    jobs = iter(range(TARGETS))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(jobs, None)
            if index is None:
                return
            address = ("127.0.0.1", ports[index % len(ports)])
            with socket.create_connection(address, timeout=10) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                    tls.sendall(_CONNECT)
                    if tls.recv(4)[:1] != b"\x20":
                        sys.exit("bench: no CONNACK")
                    tls.sendall(b"\xe0\x00")

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"probes_per_s": TARGETS / wall, "cpu_ms": cpu / TARGETS * 1000}))


# --- the benchmark ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command")
    parser.add_argument("--concurrency", type=int, default=32, help="probe scan --concurrency")
    parser.add_argument("--rss-child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--raw-child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for child, run in ((args.rss_child, rss_child), (args.raw_child, raw_child)):
        if child:
            ca_file, *ports = child
            run(ca_file, [int(p) for p in ports], args.concurrency)
            return
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as scratch:
        certs = Path(scratch)
        init = [str(BIN / "probe"), "certs", "init", str(certs), "--force"]
        subprocess.run(init, check=True, capture_output=True)
        ca = str(certs / "ca.crt")
        with listeners(certs, LISTENERS) as ports:
            results = measure(certs, ca, ports, args.runs, args.concurrency)
    print_table(results)
    write_results("scan", args.runs, {"scan": results})


def measure(
    certs: Path, ca: str, ports: list[int], runs: int, concurrency: int
) -> dict[str, float]:
    many = certs / "targets-400.txt"
    many.write_text("".join(f"127.0.0.1:{ports[i % len(ports)]}\n" for i in range(TARGETS)))
    one = certs / "targets-1.txt"
    one.write_text(f"127.0.0.1:{ports[0]}\n")
    scan = [str(BIN / "probe"), "scan", "--ca-file", ca, "--concurrency", str(concurrency)]
    scan_many = repeated([*scan, "--targets-file", str(many)], runs)
    scan_one = repeated([*scan, "--targets-file", str(one)], runs)
    publish_ports = certs / "ports-400.txt"
    publish_ports.write_text("".join(f"{ports[i % len(ports)]}\n" for i in range(TARGETS)))
    publish = ["mosquitto_pub", "--cafile", ca, "-h", "127.0.0.1", "-p", "{}", "-t", "bench"]
    xargs = ["xargs", "-P16", "-I{}", *publish, "-m", "x", "-V", "mqttv5"]
    fleet = repeated(xargs, runs, stdin=publish_ports)
    long_run = _child("--rss-child", ca, ports, concurrency)
    floor = medians([_child("--raw-child", ca, ports, concurrency) for _ in range(runs)])
    seconds = scan_many["wall"] - scan_one["wall"]
    return {
        "scan_probes_per_s": round((TARGETS - 1) / seconds, 1),
        "xargs_probes_per_s": round(TARGETS / fleet["wall"], 1),
        "scan_cpu_ms_per_probe": round(
            (scan_many["cpu"] - scan_one["cpu"]) / (TARGETS - 1) * 1000, 2
        ),
        "xargs_cpu_ms_per_probe": round(fleet["cpu"] / TARGETS * 1000, 2),
        "scan_400_wall_s": round(scan_many["wall"], 3),
        "scan_1_wall_s": round(scan_one["wall"], 3),
        "xargs_400_wall_s": round(fleet["wall"], 3),
        "scan_peak_rss_mb": round(scan_many["rss_mb"], 1),
        "rss_after_400_mb": round(long_run["rss_400"], 1),
        "rss_after_3000_mb": round(long_run["rss_3000"], 1),
        "raw_ssl_probes_per_s": round(floor["probes_per_s"], 1),
        "raw_ssl_cpu_ms_per_probe": round(floor["cpu_ms"], 2),
        "concurrency": concurrency,
    }


def _child(mode: str, ca: str, ports: list[int], concurrency: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--concurrency", str(concurrency), mode, ca]
    done = subprocess.run(
        [*command, *map(str, ports)], capture_output=True, text=True, check=True, timeout=600
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def print_table(r: dict[str, float]) -> None:
    ratio = r["scan_probes_per_s"] / r["xargs_probes_per_s"]
    growth = (r["rss_after_3000_mb"] / r["rss_after_400_mb"] - 1) * 100
    raw_ratio = r["raw_ssl_probes_per_s"] / r["xargs_probes_per_s"]
    rows = [
        ("probes/s", f"{r['scan_probes_per_s']:.0f}", f"{r['xargs_probes_per_s']:.0f}",
         f"{r['raw_ssl_probes_per_s']:.0f}",
         f"scan {ratio:.2f} x xargs, raw ssl {raw_ratio:.2f} x (target >= 2.5)"),
        ("client CPU ms/probe", f"{r['scan_cpu_ms_per_probe']:.2f}",
         f"{r['xargs_cpu_ms_per_probe']:.2f}", f"{r['raw_ssl_cpu_ms_per_probe']:.2f}",
         "target <= 1.5"),
        ("peak RSS MB", f"{r['scan_peak_rss_mb']:.1f}", "-", "-", "target <= 50"),
        ("RSS MB after 400 / 3000 probes",
         f"{r['rss_after_400_mb']:.1f} / {r['rss_after_3000_mb']:.1f}", "-", "-",
         f"{growth:+.1f}% (target within 10%)"),
    ]  # fmt: skip
    print(f"| measure | probe scan (--concurrency {r['concurrency']:.0f}) | xargs -P16 "
          "mosquitto_pub | floor: raw ssl threads | |")  # fmt: skip
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

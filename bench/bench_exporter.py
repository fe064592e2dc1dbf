"""``probe exporter``: what /probe adds to the probe's own time, and whether RSS stays flat.

    uv run python bench/bench_exporter.py [--requests 2000]

Makes a PKI with ``probe certs init``, starts mosquitto with a TLS listener
on 127.0.0.1 (as bench_connect.py does), starts the real ``probe exporter``
command on an ephemeral port, and sends ``--requests`` sequential
``GET /probe?target=...`` requests for that one good target. For each it
compares the request's wall time with the page's ``probe_duration_seconds``
(the probe's own time): the difference is what the exporter adds (HTTP,
rendering, exposition); the goal is under 50 ms. The exporter's resident
memory (VmRSS of /proc/PID/status) is read after 200 requests and at the
end; the goal is under 10 % growth. Results go to bench/results/exporter.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_connect import mosquitto
from timing import BIN, RESULTS, compile_bytecode

WARMUP = 200  # requests before the first RSS reading: imports, caches and pools settle
OVERHEAD_GOAL_MS = 50.0
RSS_GROWTH_GOAL = 0.10


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS line")


def probe_once(url: str) -> tuple[float, float]:
    """(request wall time, probe_duration_seconds) in ms; the probe must succeed."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (http://127.0.0.1)
        body = response.read().decode()
    wall = (time.perf_counter() - started) * 1000
    values = {}
    for line in body.splitlines():
        if line and not line.startswith("#") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    if values.get("probe_success") != 1.0:
        sys.exit(f"bench: the probe failed:\n{body}")
    return wall, values["probe_duration_seconds"] * 1000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    requests = int(parser.parse_args().requests)
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as scratch:
        certs = Path(scratch)
        init = [str(BIN / "probe"), "certs", "init", str(certs), "--force"]
        subprocess.run(init, check=True, capture_output=True)
        with mosquitto(certs) as port:
            command = [
                str(BIN / "probe"), "exporter", "--listen", "127.0.0.1:0",
                "--ca-file", str(certs / "ca.crt"), "--output", "json",
            ]  # fmt: skip
            exporter = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            try:
                first_line = exporter.stdout.readline() if exporter.stdout else ""
                if not first_line:
                    sys.exit("bench: probe exporter did not start")
                started = json.loads(first_line)
                url = f"{started['url']}/probe?target=127.0.0.1:{port}"
                walls, probes, rss = [], [], {}
                for index in range(1, requests + 1):
                    wall, own = probe_once(url)
                    walls.append(wall)
                    probes.append(own)
                    if index in (WARMUP, requests // 2, requests):
                        rss[index] = vm_rss_kib(exporter.pid)
            finally:
                exporter.terminate()
                exporter.wait(10)
    overheads = [w - p for w, p in zip(walls, probes, strict=True)]
    overhead_p99 = percentile(overheads, 0.99)
    growth = rss[requests] / rss[WARMUP] - 1
    result = {
        "requests": requests,
        "probe_ms_median": round(statistics.median(probes), 2),
        "request_ms_median": round(statistics.median(walls), 2),
        "overhead_ms_median": round(statistics.median(overheads), 2),
        "overhead_ms_p99": round(overhead_p99, 2),
        "overhead_ms_max": round(max(overheads), 2),
        "rss_kib": {str(k): v for k, v in rss.items()},
        "rss_growth_after_warmup": round(growth, 4),
        "python": sys.version.split()[0],
    }
    print(
        f"/probe over {requests} requests: probe median {result['probe_ms_median']} ms, "
        f"request median {result['request_ms_median']} ms\n"
        f"exporter overhead (request - probe_duration_seconds): median "
        f"{result['overhead_ms_median']} ms, p99 {result['overhead_ms_p99']} ms, "
        f"max {result['overhead_ms_max']} ms (goal < {OVERHEAD_GOAL_MS:.0f} ms)\n"
        f"VmRSS: "
        + ", ".join(f"{v / 1024:.1f} MiB after {k}" for k, v in rss.items())
        + f"; growth after the warm-up {growth:+.1%} (goal within {RSS_GROWTH_GOAL:.0%})"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "exporter.json").write_text(json.dumps(result, indent=2) + "\n")
    if overhead_p99 > OVERHEAD_GOAL_MS or growth > RSS_GROWTH_GOAL:
        sys.exit(1)


if __name__ == "__main__":
    main()

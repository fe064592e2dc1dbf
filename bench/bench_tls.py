"""``probe tls`` next to sslyze's equivalent scan, on one local mosquitto TLS listener.

    uv run python bench/bench_tls.py [--runs 20]

Makes a PKI with ``probe certs init``, starts mosquitto with a TLS listener on
127.0.0.1 (TLS 1.2 and 1.3, OpenSSL's default suites), then runs each command
``--runs`` times after two warm-ups and prints the median, p90 and minimum wall time:

- ``probe tls 127.0.0.1:PORT`` (the full scan: versions, every TLS 1.2 suite, the
  server's order, the TLS 1.3 suite, ALPN, client certificates, resumption, chain);
- ``sslyze --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 127.0.0.1:PORT`` (protocol versions
  and the suites of each), installed by this script into its own virtual environment
  under bench/.cache/sslyze (``uv venv`` + ``uv pip install sslyze``); when that
  install fails, sslyze is reported as skipped.

The target: ``probe tls`` completes its scan in under 1 s (median). Results go to
bench/results/tls.json as well.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_connect import mosquitto
from timing import BIN, CACHE, compile_bytecode, measure_all, runs_from_argv, write_results

SSLYZE = "sslyze (versions + suites)"
PROBE = "probe tls (full scan)"
TARGET_MS = 1000.0


def sslyze() -> Path | None:
    """sslyze in its own virtual environment under bench/.cache, installed on first use."""
    venv = CACHE / "sslyze"
    binary = venv / "bin" / "sslyze"
    if binary.exists():
        return binary
    uv = shutil.which("uv")
    if uv is None:
        print("bench: uv is not on PATH: sslyze cannot be installed", file=sys.stderr)
        return None
    print("bench: installing sslyze with uv into bench/.cache/sslyze (once)...", file=sys.stderr)
    steps = [
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "sslyze"],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            print(f"bench: {' '.join(step[:3])} failed:\n{result.stderr[-2000:]}", file=sys.stderr)
            return None
    return binary if binary.exists() else None


def main() -> None:
    runs = runs_from_argv(__doc__.splitlines()[0])
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as scratch:
        certs = Path(scratch)
        init = [str(BIN / "probe"), "certs", "init", str(certs), "--force"]
        subprocess.run(init, check=True, capture_output=True)
        scanner = sslyze()
        with mosquitto(certs) as port:
            target = f"127.0.0.1:{port}"
            commands = {PROBE: f"{BIN / 'probe'} tls {target} --output json"}
            if scanner is not None:
                commands[SSLYZE] = f"{scanner} --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 {target}"
            else:
                print(f"{SSLYZE:<30} (install failed, skipped)")
            results = measure_all(commands, runs)
    median = results[PROBE]["median_ms"]
    verdict = "met" if median < TARGET_MS else "MISSED"
    print(f"probe tls median {median:.0f} ms: target under {TARGET_MS:.0f} ms {verdict}")
    if SSLYZE in results:
        print(f"sslyze / probe tls: {results[SSLYZE]['median_ms'] / median:.2f}")
    write_results("tls", runs, results)


if __name__ == "__main__":
    main()

"""What both benchmarks share: compiled bytecode, timed runs, a table, a results file."""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
WARMUPS = 2


def runs_from_argv(description: str) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command")
    return int(parser.parse_args().runs)


def compile_bytecode() -> None:
    """As ``pip install`` does: with PYTHONDONTWRITEBYTECODE set, nothing else would."""
    compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=2)
    compileall.compile_dir(ROOT / "src", quiet=2)


def measure(command: list[str], runs: int) -> dict[str, float]:
    """Median, p90 and minimum wall time of ``command`` in ms, after warm-ups; it must exit 0."""
    times = []
    for index in range(runs + WARMUPS):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, check=False, timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        if result.returncode != 0:
            output = result.stdout.decode() + result.stderr.decode()
            sys.exit(f"bench: {' '.join(command)} failed:\n{output}")
        if index >= WARMUPS:  # warm-ups fill the page cache
            times.append(elapsed)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(times[int(len(times) * 0.9) - 1], 1),
        "min_ms": round(times[0], 1),
    }


def measure_all(commands: dict[str, str], runs: int) -> dict[str, dict[str, float]]:
    """Time each command line (skipping tools that are not installed) and print a table."""
    width = max(len(name) for name in commands) + 2
    results = {}
    for name, line in commands.items():
        command = shlex.split(line)
        if shutil.which(command[0]) is None and not Path(command[0]).exists():
            print(f"{name:<{width}} (not installed, skipped)")
            continue
        results[name] = r = measure(command, runs)
        print(
            f"{name:<{width}} median {r['median_ms']:7.1f} ms   "
            f"p90 {r['p90_ms']:7.1f}   min {r['min_ms']:7.1f}"
        )
    return results


def write_results(name: str, runs: int, results: dict[str, dict[str, float]]) -> None:
    document = {
        "runs": runs,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")

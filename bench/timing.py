"""What both benchmarks share: compiled bytecode, timed runs, a table, a results file."""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shlex
import shutil
import statistics
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
WARMUPS = 2

sys.path.insert(0, str(ROOT))  # for tests.hostile_kube


def runs_from_argv(description: str) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command")
    return int(parser.parse_args().runs)


def compile_bytecode() -> None:
    """As ``pip install`` does: with PYTHONDONTWRITEBYTECODE set, nothing else would."""
    compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=2)
    compileall.compile_dir(ROOT / "src", quiet=2)


def run_once(argv: list[str]) -> tuple[float, float]:
    """One run's wall time (ms) and peak RSS (MB); the command must exit 0.

    ``measured_run`` forks the command from a small launcher, so the benchmark's
    own memory does not count (about 1 ms of fork in every run).
    """
    # Imported here: a benchmark's child processes (bench_scan's in-process scan, whose
    # RSS is measured) import this module too, and must not carry the test helpers.
    from tests.hostile_kube import measured_run

    run = measured_run(argv)
    if run.exit_code != 0:
        sys.exit(f"bench: {shlex.join(argv)} failed:\n{run.stdout}{run.stderr}")
    return run.seconds * 1000, run.peak_rss_mb


def measure_all(commands: dict[str, str], runs: int) -> dict[str, dict[str, float]]:
    """Median, p90, minimum (ms) and peak RSS (MB) of each command line, and a table.

    The commands are interleaved run by run, after ``WARMUPS`` rounds that fill
    the page cache, so that a noisy machine slows all of them alike: compare
    ratios, not milliseconds. Tools that are not installed are skipped.
    """
    argvs = {}
    for name, line in commands.items():
        argv = shlex.split(line)
        if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
            print(f"{name} (not installed, skipped)")
            continue
        argvs[name] = argv
    times: dict[str, list[float]] = {name: [] for name in argvs}
    peaks: dict[str, list[float]] = {name: [] for name in argvs}
    for index in range(runs + WARMUPS):
        for name, argv in argvs.items():
            elapsed, peak = run_once(argv)
            if index >= WARMUPS:
                times[name].append(elapsed)
                peaks[name].append(peak)
    width = max(map(len, argvs)) + 2
    results = {}
    for name in argvs:
        ordered = sorted(times[name])
        results[name] = r = {
            "median_ms": round(statistics.median(ordered), 1),
            "p90_ms": round(ordered[max(int(len(ordered) * 0.9) - 1, 0)], 1),
            "min_ms": round(ordered[0], 1),
            "peak_rss_mb": round(max(peaks[name]), 1),
        }
        print(
            f"{name:<{width}} median {r['median_ms']:7.1f} ms   p90 {r['p90_ms']:7.1f}   "
            f"min {r['min_ms']:7.1f}   peak RSS {r['peak_rss_mb']:5.1f} MB"
        )
    return results


def check_ratio(
    results: dict[str, dict[str, float]], name: str, base: str, target: float
) -> dict[str, float] | None:
    """Print ``name``'s median over ``base``'s against ``target``; the figures, for the file."""
    if name not in results or base not in results:
        return None
    ratio = results[name]["median_ms"] / results[base]["median_ms"]
    verdict = "met" if ratio <= target else "MISSED"
    print(f"{name} / {base}: {ratio:.2f} (target: {target} or less, {verdict})")
    return {"ratio": round(ratio, 3), "target": target}


def check_rss(results: dict[str, dict[str, float]], name: str, target_mb: float) -> None:
    if name in results:
        peak = results[name]["peak_rss_mb"]
        verdict = "met" if peak <= target_mb else "MISSED"
        print(f"{name} peak RSS: {peak:.1f} MB (target: {target_mb} or less, {verdict})")


def write_results(
    name: str, runs: int, results: dict[str, dict[str, float]], **extra: object
) -> None:
    document = {
        "runs": runs,
        **extra,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")

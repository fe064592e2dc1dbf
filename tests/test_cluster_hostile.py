"""Hostile clusters: API servers that drip, flood or lie, and kubeconfigs that attack the loader.

Every case ends within the stage's --timeout (plus a margin for a loaded
machine), the memory cases stay under 100 MB in a child process, and the
answer is an error of the trust stage (or a check's error), never a traceback.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.aio import CA_ISSUER, CA_SECRET, NAMESPACE, TRUST_BUNDLE_CONFIGMAP
from mqtt_tls_probe.dev.pki import PkiFiles

from .helpers import probe, probe_json, stage
from .hostile_kube import (
    alias_bomb,
    alive,
    drip_body,
    drip_headers,
    endless_chunked,
    exec_user,
    huge_declared,
    plugin_script,
    posing_as,
    run_probe_process,
)
from .kube_api import TOKEN, FakeApiServer
from .servers import Handler, free_port

MARGIN = 1.5  # seconds past --timeout a run may take on a busy two-core machine
MEMORY_LIMIT_MB = 100
BUNDLE_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{TRUST_BUNDLE_CONFIGMAP}"
SECRET_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets/{CA_SECRET}"
ISSUER_PATH = f"/apis/cert-manager.io/v1/namespaces/{NAMESPACE}/issuers/{CA_ISSUER}"


@pytest.fixture
def api(tmp_path: Path, pki: PkiFiles) -> Iterator[FakeApiServer]:
    with FakeApiServer(tmp_path / "apiserver") as server:
        server.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": pki.ca_cert.read_text()})
        yield server


def timed(*args: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    code, doc = probe_json(*args)
    return code, doc, time.monotonic() - started


# --- API servers that take their time -----------------------------------------------------


@pytest.mark.parametrize("behaviour", [drip_headers, drip_body], ids=["headers", "body"])
def test_a_dripping_api_server_ends_within_the_timeout(
    api: FakeApiServer, tmp_path: Path, behaviour: Handler
) -> None:
    with posing_as(api, behaviour) as slow:
        config = api.kubeconfig(tmp_path / "k", server=f"https://{slow.address}")
        code, doc, seconds = timed("bundle", "--kubeconfig", str(config), "--timeout", "2")
        assert code == 3
        assert doc["error"]["kind"] == "cluster_unreachable"
        assert "within 2 s" in doc["error"]["message"]
        assert 1.8 <= seconds < 2 + MARGIN  # it did hold the request: the bound did the work
        code, doc, seconds = timed("connect", "--kubeconfig", str(config), "--timeout", "2")
        assert (code, doc["error"]["stage"]) == (3, "trust")
        assert seconds < 2 + MARGIN
        code, doc, seconds = timed("cluster", "--kubeconfig", str(config), "--timeout", "2")
        assert code == 3
        assert doc["checks"][0]["status"] == "error"
        assert {c["status"] for c in doc["checks"][1:]} == {"skipped"}
        assert seconds < 2 + MARGIN


def test_the_same_server_answering_at_once_passes(api: FakeApiServer, tmp_path: Path) -> None:
    """The twin of the dripping cases: the kubeconfig and timeout are fine."""
    config = api.kubeconfig(tmp_path / "k")
    code, doc, seconds = timed("bundle", "--kubeconfig", str(config), "--timeout", "2")
    assert code == 0, doc["error"]
    assert seconds < 2


def test_a_refused_connection_is_said_at_once(api: FakeApiServer, tmp_path: Path) -> None:
    config = api.kubeconfig(tmp_path / "k", server=f"https://127.0.0.1:{free_port()}")
    code, doc, seconds = timed("bundle", "--kubeconfig", str(config), "--timeout", "5")
    assert code == 3
    assert doc["error"]["kind"] == "cluster_unreachable"
    assert "refused the connection" in doc["error"]["message"]
    assert "within" not in doc["error"]["message"]
    assert seconds < 1.5


# --- API servers that flood ---------------------------------------------------------------


def test_an_endless_chunked_body_is_cut_at_the_cap(api: FakeApiServer, tmp_path: Path) -> None:
    with posing_as(api, endless_chunked) as flood:
        config = api.kubeconfig(tmp_path / "k", server=f"https://{flood.address}")
        args = ("bundle", "--kubeconfig", str(config), "--timeout", "5", "-o", "json")
        run = run_probe_process(*args)
    assert run.exit_code == 3, run.stderr
    error = run.json()["error"]
    assert error["kind"] == "cluster_unreachable"
    assert "larger than 4 MiB" in error["message"]
    assert run.peak_rss_mb < MEMORY_LIMIT_MB
    assert run.stderr == ""


def test_a_huge_declared_length_is_refused_before_reading(
    api: FakeApiServer, tmp_path: Path
) -> None:
    with posing_as(api, huge_declared) as flood:
        config = api.kubeconfig(tmp_path / "k", server=f"https://{flood.address}")
        code, doc, seconds = timed("bundle", "--kubeconfig", str(config), "--timeout", "5")
    assert code == 3
    assert "declares 10000000000 bytes" in doc["error"]["message"]
    assert seconds < 2


# --- API servers that lie about shapes ----------------------------------------------------

_VALID = "-----BEGIN CERTIFICATE-----"  # replaced by the real CA where a test needs it


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ([1, 2], "with a list, not an object"),
        ("a string", "with a string, not an object"),
        ({"data": ["ca.crt"]}, "data is a list, not an object"),
        ({"data": "ca.crt"}, "data is a string, not an object"),
        ({"data": {"ca.crt": 5}}, "in data is a number, not a string"),
        ({"binaryData": "x"}, "binaryData is a string, not an object"),
        ({"binaryData": {"ca.crt": "not base64!"}}, "binaryData is not valid base64"),
        ({"binaryData": {"ca.crt": ["x"]}}, "in binaryData is a list, not a string"),
    ],
)
def test_a_wrong_shaped_configmap_is_an_invalid_bundle(
    api: FakeApiServer, tmp_path: Path, body: object, said: str
) -> None:
    api.raw[BUNDLE_PATH] = json.dumps(body).encode()
    config = str(api.kubeconfig(tmp_path / "k"))
    for command in ("bundle", "connect"):
        code, doc = probe_json(command, "--kubeconfig", config)
        assert code == 3, command
        assert doc["error"]["kind"] == "trust_bundle_invalid", command
        assert said in doc["error"]["message"], command
    code, doc = probe_json("cluster", "--kubeconfig", config)
    assert code == 3
    assert doc["checks"][0]["status"] == "error"
    assert said in doc["checks"][0]["message"]


def test_fields_the_bundle_does_not_read_may_have_any_shape(
    api: FakeApiServer, tmp_path: Path, pki: PkiFiles
) -> None:
    """The twin: a metadata string and odd extra fields do not spoil a good bundle."""
    body = {"metadata": "odd", "data": {"ca.crt": pki.ca_cert.read_text()}, "binaryData": None}
    api.raw[BUNDLE_PATH] = json.dumps(body).encode()
    code, doc = probe_json("bundle", "--kubeconfig", str(api.kubeconfig(tmp_path / "k")))
    assert code == 0, doc["error"]


@pytest.mark.parametrize(
    "body", [b"<html>not json</html>", b"[" * 100_000 + b"]" * 100_000], ids=["html", "deep"]
)
def test_an_answer_that_is_not_json(api: FakeApiServer, tmp_path: Path, body: bytes) -> None:
    api.raw[BUNDLE_PATH] = body
    code, doc = probe_json("bundle", "--kubeconfig", str(api.kubeconfig(tmp_path / "k")))
    assert code == 3
    assert doc["error"]["kind"] == "cluster_unreachable"
    assert "not JSON" in doc["error"]["message"]


_ISSUER_OK: dict[str, Any] = {
    "spec": {"ca": {"secretName": CA_SECRET}},
    "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KeyPairVerified"}]},
}


@pytest.mark.parametrize(
    ("path", "body", "check", "said"),
    [
        (SECRET_PATH, ["x"], "ca-secret", "Secret's metadata is a list"),
        (SECRET_PATH, {"metadata": "x"}, "ca-secret", "Secret.metadata is a string"),
        (ISSUER_PATH, "x", "issuer", "the Issuer is a string"),
        (ISSUER_PATH, {**_ISSUER_OK, "spec": "x"}, "issuer", "Issuer.spec is a string"),
        (ISSUER_PATH, {**_ISSUER_OK, "spec": {"ca": 7}}, "issuer", "Issuer.spec.ca is a number"),
        (ISSUER_PATH, {**_ISSUER_OK, "status": "x"}, "issuer", "Issuer.status is a string"),
        (
            ISSUER_PATH,
            {**_ISSUER_OK, "status": {"conditions": {"type": "Ready"}}},
            "issuer",
            "Issuer.status.conditions is an object, not a list",
        ),
        (
            ISSUER_PATH,
            {**_ISSUER_OK, "status": {"conditions": ["Ready"]}},
            "issuer",
            "Issuer.status.conditions[0] is a string, not an object",
        ),
    ],
)
def test_a_wrong_shaped_object_fails_its_check(
    api: FakeApiServer, tmp_path: Path, path: str, body: object, check: str, said: str
) -> None:
    api.add_secret(NAMESPACE, CA_SECRET)
    api.raw[ISSUER_PATH] = json.dumps(_ISSUER_OK).encode()
    api.raw[path] = json.dumps(body).encode()
    code, doc = probe_json("cluster", "--kubeconfig", str(api.kubeconfig(tmp_path / "k")))
    assert code == 3
    statuses = {c["name"]: c for c in doc["checks"]}
    assert statuses[check]["status"] == "error"
    assert said in statuses[check]["message"]
    assert statuses["trust-bundle"]["status"] == "ok"  # one bad object spoils one check only


def test_well_shaped_raw_objects_pass_their_checks(api: FakeApiServer, tmp_path: Path) -> None:
    """The twin: the same raw route with the shapes Kubernetes writes."""
    api.add_secret(NAMESPACE, CA_SECRET)
    api.raw[ISSUER_PATH] = json.dumps(_ISSUER_OK).encode()
    code, doc = probe_json("cluster", "--kubeconfig", str(api.kubeconfig(tmp_path / "k")))
    assert {c["name"]: c["status"] for c in doc["checks"]}["issuer"] == "ok"
    assert code == 0


def test_strings_from_the_cluster_are_clipped_not_escaped(
    api: FakeApiServer, tmp_path: Path
) -> None:
    api.add_secret(NAMESPACE, CA_SECRET)
    said = "\x1b[31mred\x1b[0m " + "blah " * 2000
    issuer = {
        **_ISSUER_OK,
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "R" * 5000, "message": said}
            ]
        },
    }
    api.raw[ISSUER_PATH] = json.dumps(issuer).encode()
    code, doc = probe_json("cluster", "--kubeconfig", str(api.kubeconfig(tmp_path / "k")))
    assert code == 3
    message = next(c["message"] for c in doc["checks"] if c["name"] == "issuer")
    assert "\x1b[31mred" in message  # data for the renderer to escape, not pre-escaped here
    assert len(message) < 800


# --- hostile kubeconfigs -----------------------------------------------------------------


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    bomb = alias_bomb(tmp_path / "bomb.yaml")
    assert bomb.stat().st_size < 1024
    run = run_probe_process("bundle", "--kubeconfig", str(bomb), "-o", "json", limit=30)
    assert run.exit_code == 3, run.stderr
    error = run.json()["error"]
    assert error["kind"] == "kubeconfig_invalid"
    assert "YAML alias" in error["message"]
    assert run.peak_rss_mb < MEMORY_LIMIT_MB
    assert run.seconds < 10


def test_anchors_without_aliases_are_fine(api: FakeApiServer, tmp_path: Path) -> None:
    """The twin: YAML with an anchor (but no alias) is an ordinary kubeconfig."""
    config = api.kubeconfig(tmp_path / "k")
    document = json.loads(config.read_text())
    text = json.dumps(document).replace('"kind": "Config"', '"kind": &kind "Config"')
    config.write_text(text)
    code, doc = probe_json("bundle", "--kubeconfig", str(config))
    assert code == 0, doc["error"]


def test_a_fifo_kubeconfig_is_refused_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "kubeconfig.fifo"
    os.mkfifo(fifo)
    code, doc, seconds = timed("bundle", "--kubeconfig", str(fifo), "--timeout", "2")
    assert code == 3
    assert doc["error"]["kind"] == "kubeconfig_invalid"
    assert "is a FIFO (named pipe), not a regular file" in doc["error"]["message"]
    assert seconds < 1
    monkeypatch.setenv("KUBECONFIG", str(fifo))  # the same through $KUBECONFIG
    code, doc = probe_json("cluster")
    assert "FIFO" in doc["checks"][0]["message"]


def test_a_device_as_token_file_is_refused(api: FakeApiServer, tmp_path: Path) -> None:
    config = api.kubeconfig(tmp_path / "k", user={"tokenFile": "/dev/zero"})
    code, doc, seconds = timed("bundle", "--kubeconfig", str(config))
    assert code == 3
    assert doc["error"]["kind"] == "kubeconfig_invalid"
    assert "tokenFile" in doc["error"]["message"]
    assert "character device" in doc["error"]["message"]
    assert seconds < 2
    # The twin: a token file that is a file (relative to the kubeconfig) is read.
    (tmp_path / "token").write_text(TOKEN)
    config = api.kubeconfig(tmp_path / "k", user={"tokenFile": "token"})
    code, doc = probe_json("bundle", "--kubeconfig", str(config))
    assert code == 0, doc["error"]


def test_an_oversized_kubeconfig_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_text("# padding\n" * 120_000)
    code, doc = probe_json("bundle", "--kubeconfig", str(big))
    assert (code, doc["error"]["kind"]) == (3, "kubeconfig_invalid")
    assert "larger than 1024 KiB" in doc["error"]["message"]
    assert "--minify --flatten" in doc["error"]["hint"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[1, 2]", "not a mapping"),
        ("a: [" * 100 + "]" * 100, "nests deeper than 64 levels"),
        ("\xff\xfe", "not UTF-8"),
        ("", "is empty"),
        ("contexts: [{name: aio, context: {cluster: c, user: u}}]\ncurrent-context: aio\n",
         "cannot be used"),
    ],
)  # fmt: skip
def test_malformed_kubeconfigs(tmp_path: Path, text: str, said: str) -> None:
    config = tmp_path / "k"
    config.write_bytes(text.encode("latin-1"))
    code, doc = probe_json("bundle", "--kubeconfig", str(config))
    assert code == 3
    assert doc["error"]["kind"] == "kubeconfig_invalid"
    assert said in doc["error"]["message"]


# --- exec credential plugins --------------------------------------------------------------


def _credential(token: str) -> str:
    return json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "kind": "ExecCredential",
            "status": {"token": token},
        }
    )


def test_an_exec_plugin_provides_the_token(api: FakeApiServer, tmp_path: Path) -> None:
    """The path every exec case below breaks: a plugin printing an ExecCredential."""
    plugin = plugin_script(tmp_path / "login", f"echo '{_credential(TOKEN)}'\n")
    config = api.kubeconfig(tmp_path / "k", user=exec_user(plugin))
    code, doc = probe_json("bundle", "--kubeconfig", str(config))
    assert code == 0, doc["error"]
    assert all(r.authorized for r in api.requests)


def test_an_exec_plugin_that_never_exits_is_killed_at_the_deadline(
    api: FakeApiServer, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    plugin = plugin_script(tmp_path / "login", f'sleep 600 &\necho "$$ $!" > {pids}\nwait\n')
    config = api.kubeconfig(tmp_path / "k", user=exec_user(plugin))
    code, doc, seconds = timed("connect", "--kubeconfig", str(config), "--timeout", "2")
    assert (code, doc["error"]["kind"]) == (3, "kubeconfig_invalid")
    assert "did not finish within 2 s" in doc["error"]["message"]
    assert "kubectl" in doc["error"]["hint"]
    assert stage(doc, "trust")["ok"] is False
    assert 1.8 <= seconds < 2 + MARGIN
    shell, child = (int(p) for p in pids.read_text().split())
    deadline = time.monotonic() + 2
    while (alive(shell) or alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(shell)
    assert not alive(child)  # the plugin's own child too: its process group was killed


def test_an_exec_plugin_printing_garbage_is_one_line_and_no_log(
    api: FakeApiServer, tmp_path: Path
) -> None:
    plugin = plugin_script(tmp_path / "login", "echo 'this is not an ExecCredential'\n")
    config = api.kubeconfig(tmp_path / "k", user=exec_user(plugin))
    for output in ("json", "text"):
        run = run_probe_process("bundle", "--kubeconfig", str(config), "-o", output)
        assert run.exit_code == 3
        assert "ERROR:root" not in run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        if output == "json":
            assert run.stderr == ""
            error = run.json()["error"]
            assert error["kind"] == "kubeconfig_invalid"
            assert "failed to decode process output" in error["message"]
            assert "\n" not in error["message"]


def test_an_exec_plugin_that_fails_says_its_stderr(api: FakeApiServer, tmp_path: Path) -> None:
    plugin = plugin_script(tmp_path / "login", "echo 'token expired: run login' >&2\nexit 4\n")
    config = api.kubeconfig(tmp_path / "k", user=exec_user(plugin))
    code, doc = probe_json("bundle", "--kubeconfig", str(config))
    assert (code, doc["error"]["kind"]) == (3, "kubeconfig_invalid")
    assert "process returned 4. token expired: run login" in doc["error"]["message"]


def test_an_exec_plugin_flooding_its_output_is_stopped(api: FakeApiServer, tmp_path: Path) -> None:
    plugin = plugin_script(tmp_path / "login", "exec cat /dev/zero\n")
    config = api.kubeconfig(tmp_path / "k", user=exec_user(plugin))
    run = run_probe_process("bundle", "--kubeconfig", str(config), "-o", "json", "--timeout", "5")
    assert run.exit_code == 3, run.stderr
    assert "printed more than 1024 KiB" in run.json()["error"]["message"]
    assert run.peak_rss_mb < MEMORY_LIMIT_MB
    assert run.seconds < 5 + MARGIN + 1  # a child process starts slower


# --- OIDC: the OAuth stack is imported when a refresh needs it ------------------------------


def _jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT the loader accepts (no "=", a payload length it allows)."""
    payload = json.dumps(claims)
    while len(base64.urlsafe_b64encode(payload.encode()).rstrip(b"=")) % 4 == 1:
        payload += " "

    def part(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    return f"{part('{}')}.{part(payload)}.{part('sig')}"


def test_an_expired_oidc_token_is_refreshed_through_the_real_client(
    api: FakeApiServer, tmp_path: Path
) -> None:
    provider = {
        "name": "oidc",
        "config": {
            "id-token": _jwt({"exp": 1}),
            "idp-issuer-url": f"https://127.0.0.1:{free_port()}",
            "client-id": "probe",
            "client-secret": "s",
            "refresh-token": "r",
        },
    }
    config = api.kubeconfig(tmp_path / "k", user={"auth-provider": provider})
    result = probe("bundle", "--kubeconfig", str(config), "-o", "json")
    doc = json.loads(result.stdout)
    assert doc["error"]["kind"] == "kubeconfig_invalid"
    # The refresh reached the network through the real ApiClient: the stand-in resolved.
    assert "Connection refused" in doc["error"]["message"]

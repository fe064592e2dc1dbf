"""The cluster path's imports: what ``probe bundle`` loads, and the upstream lines it leans on.

``adapters/kube_modules.py`` imports the official client's loader without
``ApiClient`` and the OAuth stack, ``adapters/kube_loader.py`` bounds the
loader's subprocesses and catches its log lines, ``adapters/kube_http.py``
watches urllib3's sockets. Each leans on how client 37 and urllib3 2 are
written; these tests fail when an upgrade moves what they lean on.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from mqtt_tls_probe.aio import NAMESPACE, TRUST_BUNDLE_CONFIGMAP
from mqtt_tls_probe.dev.pki import PkiFiles

from .kube_api import FakeApiServer

# What one kubeconfig load and one authenticated GET must not drag in.
HEAVY = (
    "pydantic",
    "requests",
    "requests_oauthlib",
    "oauthlib",
    "dateutil",
    "aiohttp",
    "kubernetes.client.api_client",
    "kubernetes.client.models",
    "kubernetes.client.api",
    "kubernetes.utils.create_from_yaml",
    "kubernetes.watch",
    "kubernetes.stream",
    "multiprocessing.pool",
)

_RUN_AND_LIST = """
import json, sys
from mqtt_tls_probe.cli import main
refresh = "--then-refresh" in sys.argv
sys.argv = ["probe", *(a for a in sys.argv[1:] if a != "--then-refresh")]
try:
    main()
except SystemExit as exited:
    code = exited.code
heavy = sorted(n for n in sys.modules if n in HEAVY or n.split(".")[0] in HEAVY)
loader = "kubernetes.config.kube_config" in sys.modules
after = []
if refresh:  # what an OIDC refresh would reach for
    from kubernetes.config import kube_config
    kube_config.OAuth2Session(client_id="probe")
    kube_config.oauthlib.oauth2.rfc6749.errors.InvalidClientIdError
    after = sorted(n for n in HEAVY if n in sys.modules)
print(json.dumps({"code": code, "heavy": heavy, "loader": loader, "after": after}), file=sys.stderr)
"""


def _bundle_in_a_child(*args: str) -> dict[str, object]:
    script = f"HEAVY = {HEAVY!r}\n" + _RUN_AND_LIST
    result = subprocess.run(
        [sys.executable, "-c", script, "bundle", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report: dict[str, object] = json.loads(result.stderr.strip().splitlines()[-1])
    return report


def test_bundle_imports_neither_api_client_nor_the_oauth_stack(
    tmp_path: Path, pki: PkiFiles
) -> None:
    with FakeApiServer(tmp_path / "api") as api:
        api.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": pki.ca_cert.read_text()})
        config = str(api.kubeconfig(tmp_path / "kubeconfig"))
        report = _bundle_in_a_child("--kubeconfig", config, "--then-refresh")
    assert report["code"] == 0
    assert report["loader"] is True  # the official loader did the reading
    assert report["heavy"] == []
    # The twin: the stand-ins import the real modules once an OIDC refresh uses them.
    after = report["after"]
    assert isinstance(after, list)
    assert {"requests_oauthlib", "oauthlib", "requests"} <= set(after)


def test_the_client_version_is_the_one_these_lines_were_read_in() -> None:
    assert version("kubernetes").split(".")[0] == "37"
    assert version("urllib3").split(".")[0] == "2"


def test_kube_config_imports_what_the_stand_ins_replace() -> None:
    """kube_modules stands in for these module-level imports, and only these."""
    from mqtt_tls_probe.adapters.kube_modules import client_modules

    modules = client_modules()
    source = inspect.getsource(modules.kube_config)
    assert "\nimport oauthlib.oauth2\n" in source
    assert "\nfrom requests_oauthlib import OAuth2Session\n" in source
    assert "\nfrom kubernetes.client import ApiClient, Configuration\n" in source
    # ...used only where the probe never goes without an OIDC refresh.
    lines = source.splitlines()
    uses = [line for line in lines if "OAuth2Session(" in line or "ApiClient(" in line]
    assert len(uses) == 4  # _refresh_oidc (2) and new_client_from_config(_dict) (2)
    assert callable(modules.kube_config.load_kube_config)
    assert callable(modules.incluster_config.InClusterConfigLoader)


def test_the_loader_runs_plugins_and_logs_the_way_kube_loader_bounds() -> None:
    from mqtt_tls_probe.adapters.kube_modules import client_modules

    modules = client_modules()
    run = inspect.getsource(modules.exec_provider.ExecProvider.run)
    assert "subprocess.Popen(" in run
    assert "process.communicate()" in run
    source = inspect.getsource(modules.kube_config)
    # kube_config.logging is pointed at a Logger: only Logger methods may be used on it.
    assert {line.strip().split("(")[0] for line in source.splitlines() if "logging." in line} == {
        "logging.error"
    }
    assert "subprocess.Popen(" in inspect.getsource(modules.kube_config.CommandTokenSource)


def test_configuration_and_rest_have_what_the_transport_uses() -> None:
    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection

    from mqtt_tls_probe.adapters.kube_modules import client_modules

    modules = client_modules()
    configuration = type.__call__(modules.configuration.Configuration)
    configuration.api_key["BearerToken"] = "Bearer t"
    assert configuration.auth_settings()["BearerToken"] == {
        "type": "api_key",
        "in": "header",
        "key": "authorization",
        "value": "Bearer t",
    }
    rest = modules.rest.RESTClientObject(configuration)
    assert isinstance(rest.pool_manager, urllib3.PoolManager)
    assert set(rest.pool_manager.pool_classes_by_scheme) == {"http", "https"}
    pools: list[Any] = list(rest.pool_manager.pool_classes_by_scheme.values())
    assert all(issubclass(pool.ConnectionCls, HTTPConnection) for pool in pools)
    # Every new socket comes from _new_conn, before any TLS: the watchdog sees it.
    assert "_new_conn" in vars(HTTPConnection)
    for connection in (HTTPConnection, HTTPSConnection):
        assert "self._new_conn()" in inspect.getsource(connection.connect)

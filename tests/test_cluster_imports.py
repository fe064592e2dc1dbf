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

import pytest

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
    "multiprocessing",  # Configuration's cpu_count() (kube_modules)
    "typing_extensions",  # NotRequired and Self, typing's own on 3.11 (kube_modules)
    "importlib.metadata",  # urllib3.http2's __init__ (kube_modules)
)

_RUN_AND_LIST = """
import json, sys
from mqtt_tls_probe.cli import main
refresh = "--then-refresh" in sys.argv
stood_in = "--then-stood-in" in sys.argv
sys.argv = ["probe", *(a for a in sys.argv[1:] if not a.startswith("--then-"))]
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
if stood_in:  # what any other importer of the deferred and stood-in modules gets
    import multiprocessing, typing_extensions, urllib3
    from kubernetes.client import configuration
    after = [
        callable(urllib3.http2.inject_into_urllib3),
        "importlib.metadata" in sys.modules,
        hasattr(typing_extensions, "TypeIs"),
        configuration.multiprocessing.cpu_count() == multiprocessing.cpu_count(),
        type(sys.modules["multiprocessing"]).__name__,
    ]
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


def test_deferred_and_stood_in_modules_are_the_real_ones_for_anyone_else(
    tmp_path: Path, pki: PkiFiles
) -> None:
    with FakeApiServer(tmp_path / "api") as api:
        api.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": pki.ca_cert.read_text()})
        config = str(api.kubeconfig(tmp_path / "kubeconfig"))
        report = _bundle_in_a_child("--kubeconfig", config, "--then-stood-in")
    assert report["code"] == 0
    assert report["heavy"] == []
    # urllib3.http2's __init__ ran on first use; typing_extensions and multiprocessing are real.
    assert report["after"] == [True, True, True, True, "module"]


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


def test_the_stood_in_imports_are_the_ones_upstream_makes() -> None:
    """kube_modules stands in for typing_extensions and multiprocessing during these imports."""
    import typing

    import typing_extensions

    from mqtt_tls_probe.adapters.kube_modules import client_modules, new_configuration

    modules = client_modules()
    configuration_source = inspect.getsource(modules.configuration)
    assert "\nfrom typing_extensions import NotRequired, Self\n" in configuration_source
    exceptions = sys.modules["kubernetes.client.exceptions"]
    assert "\nfrom typing_extensions import Self\n" in inspect.getsource(exceptions)
    # ...which on this Python are typing's own objects.
    assert typing_extensions.NotRequired is typing.NotRequired
    assert typing_extensions.Self is typing.Self
    # multiprocessing: only cpu_count(), only when no pool size is given.
    uses = [
        line.strip() for line in configuration_source.splitlines() if "multiprocessing." in line
    ]
    assert uses == [
        "self.connection_pool_maxsize = connection_pool_maxsize if connection_pool_maxsize is "
        "not None else multiprocessing.cpu_count() * 5"
    ]
    stock = type.__call__(modules.configuration.Configuration)
    assert new_configuration(modules.configuration).connection_pool_maxsize == (
        stock.connection_pool_maxsize
    )


def test_urllib3_http2_init_is_what_imports_importlib_metadata() -> None:
    import urllib3.http2

    source = inspect.getsource(urllib3.http2)
    assert "\nfrom importlib.metadata import version\n" in source
    assert callable(urllib3.http2.inject_into_urllib3)
    # urllib3.connection needs only the probe submodule.
    connection = inspect.getsource(sys.modules["urllib3.connection"])
    assert "\nfrom .http2 import probe as http2_probe\n" in connection


def test_the_loader_parses_kubeconfigs_with_libyaml_while_a_load_runs(
    tmp_path: Path, pki: PkiFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from mqtt_tls_probe.adapters.kube_loader import load_cluster
    from mqtt_tls_probe.adapters.kube_modules import client_modules
    from mqtt_tls_probe.config import ClusterOptions

    source = inspect.getsource(client_modules().kube_config)
    uses = {
        line.strip().split("(")[0].split()[-1] for line in source.splitlines() if "yaml." in line
    }
    assert uses == {"yaml.safe_load", "yaml.safe_dump"}  # the load reads, persist_config writes

    class PurePython(yaml.SafeLoader):
        def __init__(self, _stream: object) -> None:
            raise AssertionError("the pure-Python loader parsed a kubeconfig")

    monkeypatch.setattr(yaml, "SafeLoader", PurePython)  # what yaml.safe_load uses
    with FakeApiServer(tmp_path / "api") as api:
        config = api.kubeconfig(tmp_path / "kubeconfig")
        loaded = load_cluster(ClusterOptions(kubeconfig=config), 10)
    assert loaded.configuration.host == api.url
    assert loaded.headers == {"authorization": "Bearer probe-test-token"}
    # Outside a load, the loader's yaml.safe_load is the stock one.
    with pytest.raises(AssertionError, match="pure-Python"):
        client_modules().kube_config.yaml.safe_load("a: 1")


def test_the_console_entry_leaves_no_kubeconfig_secret_behind(
    tmp_path: Path, pki: PkiFiles
) -> None:
    """``console_main`` skips teardown, not the exit handlers that delete the loader's files.

    The official loader writes a kubeconfig's inline CA, client certificate and
    client key to temporary files and removes them at exit.
    """
    import base64
    import os

    from .kube_api import TOKEN

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    inline = {
        "token": TOKEN,
        "client-certificate-data": base64.b64encode(pki.client_cert.read_bytes()).decode(),
        "client-key-data": base64.b64encode(pki.client_key.read_bytes()).decode(),
    }
    with FakeApiServer(tmp_path / "api") as api:
        api.add_configmap(NAMESPACE, TRUST_BUNDLE_CONFIGMAP, {"ca.crt": pki.ca_cert.read_text()})
        config = api.kubeconfig(tmp_path / "kubeconfig", user=inline)
        run = subprocess.run(
            [sys.executable, "-m", "mqtt_tls_probe", "bundle", "--kubeconfig", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "TMPDIR": str(scratch)},
        )
    assert run.returncode == 0, run.stderr
    assert list(scratch.iterdir()) == []

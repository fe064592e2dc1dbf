"""The official kubeconfig loader, run within the trust stage's deadline.

Rule: contexts, merging, exec credential plugins and auth providers stay the
official loader's job; this module bounds it and turns what goes wrong into
``kubeconfig_invalid`` with a one-line cause:

- the loader runs in a worker thread, abandoned at the deadline (plus
  ``GRACE``): nothing it waits for (an OIDC refresh, a token file) can hold
  the stage longer;
- an exec credential plugin runs in its own process group (so it cannot
  read from the terminal: a login that needs typing is done once with
  kubectl), may print at most ``MAX_PLUGIN_OUTPUT`` bytes, and is killed
  with its children at the deadline. The client's ``ExecProvider.run`` calls
  ``communicate()`` with no timeout (an interactive login plugin waiting for
  a person would hang the probe forever) and keeps all the output:
  https://github.com/kubernetes-client/python/blob/v37.0.2/kubernetes/base/config/exec_provider.py#L91-L101
  so ``exec_provider.subprocess`` (and ``kube_config.subprocess``, for the
  gcp ``cmd-path``) is pointed at a ``Popen`` whose ``communicate`` is
  bounded while a load runs here, and is the stock one otherwise;
- the loader reports a failing plugin through the root logger and carries on
  without credentials:
  https://github.com/kubernetes-client/python/blob/v37.0.2/kubernetes/base/config/kube_config.py#L439-L474
  and the root logger's first use prints ``ERROR:root:...`` on the user's
  terminal. ``kube_config.logging`` is pointed at a logger of ours that
  hands those records to the load running in the same thread, which then
  fails with their text;
- the loader reads each file with ``yaml.safe_load``, PyYAML's pure-Python
  parser (4 ms for a 1.5 KB kubeconfig here, tens of ms for one holding a
  client certificate and key):
  https://github.com/kubernetes-client/python/blob/v37.0.2/kubernetes/base/config/kube_config.py#L671-L673
  ``kube_config.yaml`` is pointed at a module whose ``safe_load`` uses
  libyaml's safe loader (the same constructors and resolver, in C) while a
  load runs here: ``kubeconfig_files`` has parsed the same files with it
  already, so nothing it refuses reaches the loader.

The authorization header is computed in the worker too (it may run the plugin
again, through ``refresh_api_key_hook``), once: a probe's few requests reuse it.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import yaml

from mqtt_tls_probe.adapters.kube_modules import ClientModules, client_modules, new_configuration
from mqtt_tls_probe.adapters.kubeconfig_files import (
    MAX_REFERENCED_BYTES,
    YAML_LOADER,
    KubeconfigFile,
    check_referenced_files,
    check_regular_file,
    context_names,
    current_context,
    kubeconfig_files,
)
from mqtt_tls_probe.config import ClusterOptions
from mqtt_tls_probe.errors import ErrorKind, ProbeError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Tests (and unusual pods) point the in-cluster path elsewhere with this.
SERVICE_ACCOUNT_DIR_ENV = "PROBE_SERVICE_ACCOUNT_DIR"
MAX_PLUGIN_OUTPUT = 1024 * 1024  # an ExecCredential is a few KB, with a client certificate
GRACE = 0.5  # for the loader to return after its plugin was stopped at the deadline
_READ_SIZE = 65536
_LOG = "mqtt_tls_probe.kubeconfig_loader"


class LoadedCluster(NamedTuple):  # not a dataclass: 0.6 ms less at import
    """What one GET needs: the client's ``Configuration`` and the request's auth headers."""

    configuration: Any
    headers: dict[str, str]
    origin: str  # where the credentials came from, for messages


@dataclass
class _Load:
    """One bounded load: its deadline, and what the loader and its plugins reported."""

    deadline: float
    timeout: float
    logged: list[str] = field(default_factory=list)
    plugin_stopped: str = ""  # why a credential plugin was killed, when it was
    plugin_command: str = ""
    plugins: list[subprocess.Popen[Any]] = field(default_factory=list)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


_CURRENT = threading.local()  # .load: the _Load the worker thread runs


def _current_load() -> _Load | None:
    load: _Load | None = getattr(_CURRENT, "load", None)
    return load


def _one_line(text: object, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


# --- the loader's subprocesses and log lines ------------------------------------------------


class _PluginStopped(Exception):
    """A credential plugin was killed: it outlived the deadline or printed too much."""


def _stop(process: subprocess.Popen[Any]) -> None:
    """Kill the plugin's process group (a shell script's children too) and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def _read_output(process: subprocess.Popen[Any], load: _Load) -> tuple[bytes, bytes]:
    """The plugin's stdout and stderr (when piped), read until both close, within the deadline."""
    pipes = {"out": process.stdout, "err": process.stderr}
    output = {name: bytearray() for name in pipes}
    with selectors.DefaultSelector() as selector:
        for name, pipe in pipes.items():
            if pipe is not None:
                selector.register(pipe.fileno(), selectors.EVENT_READ, name)
        while selector.get_map():
            remaining = load.remaining()
            if remaining <= 0:
                raise _PluginStopped(f"did not finish within {load.timeout:g} s")
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, _READ_SIZE)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                output[key.data] += chunk
                if len(output[key.data]) > MAX_PLUGIN_OUTPUT:
                    raise _PluginStopped(f"printed more than {MAX_PLUGIN_OUTPUT // 1024} KiB")
    try:
        process.wait(max(load.remaining(), 0))
    except subprocess.TimeoutExpired:
        raise _PluginStopped(f"did not finish within {load.timeout:g} s") from None
    return bytes(output["out"]), bytes(output["err"])


def _read_and_close(process: subprocess.Popen[Any], load: _Load) -> tuple[Any, Any]:
    """``communicate()``'s result: text when the process was opened in text mode."""
    try:
        out, err = _read_output(process, load)
    finally:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    if not getattr(process, "text_mode", False):
        return out, err
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


class _BoundedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """``Popen`` whose ``communicate`` keeps the running load's deadline and output cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        load = _current_load()
        if load is not None:
            kwargs["process_group"] = 0  # its own group: killing it reaches its children
        super().__init__(*args, **kwargs)
        if load is not None:
            load.plugins.append(self)

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        load = _current_load()
        if load is None or input is not None:
            return super().communicate(input, timeout)
        try:
            return _read_and_close(self, load)
        except _PluginStopped as stopped:
            _stop(self)
            args: Any = self.args
            command = args if isinstance(args, str) else " ".join(map(str, args))
            load.plugin_command, load.plugin_stopped = _one_line(command, 200), str(stopped)
            raise


class _SubprocessWithDeadline(ModuleType):
    """``subprocess`` as the loader's modules see it: the same, with a bounded ``Popen``."""

    Popen = _BoundedPopen

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)


class _ToTheLoad(logging.Handler):
    """Hands the loader's log records to the load running in their thread."""

    def emit(self, record: logging.LogRecord) -> None:
        load = _current_load()
        if load is not None:
            load.logged.append(_one_line(record.getMessage()))
        else:  # another user of the loader in this process: its usual destination
            logging.getLogger("kubernetes.config").handle(record)


class _YamlWithCLoader(ModuleType):
    """``yaml`` as the loader sees it: ``safe_load`` in C while a load runs here."""

    @staticmethod
    def safe_load(stream: Any) -> Any:
        if _current_load() is None:  # another user of the loader: the stock function
            return yaml.safe_load(stream)
        return yaml.load(stream, Loader=YAML_LOADER)  # noqa: S506 (a safe loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(yaml, name)


_PATCHING = threading.Lock()


def _patch_loader(modules: ClientModules) -> None:
    """Point the loader's ``subprocess`` and ``logging`` names at the bounded ones (once)."""
    with _PATCHING:
        _patch_loader_names(modules)


def _patch_loader_names(modules: ClientModules) -> None:
    logger = logging.getLogger(_LOG)
    if not logger.handlers:
        logger.addHandler(_ToTheLoad())
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
    bounded = _SubprocessWithDeadline("subprocess")
    for module in (modules.kube_config, modules.exec_provider):
        if not isinstance(vars(module)["subprocess"], _SubprocessWithDeadline):
            setattr(module, "subprocess", bounded)  # noqa: B010 (an untyped module's global)
    setattr(modules.kube_config, "logging", logger)  # noqa: B010
    if not isinstance(vars(modules.kube_config)["yaml"], _YamlWithCLoader):
        setattr(modules.kube_config, "yaml", _YamlWithCLoader("yaml"))  # noqa: B010


# --- one bounded load -----------------------------------------------------------------------


def load_cluster(options: ClusterOptions, timeout: float) -> LoadedCluster:
    """The API server's address, TLS material and credentials, as kubectl would choose them.

    Raises:
        ProbeError: ``kubeconfig_invalid``: no configuration, a bad file, an unknown
            context, a credential plugin that fails, prints too much or outlives the
            deadline, or a loader that does not finish in time.
    """
    load = _Load(time.monotonic() + timeout, timeout)
    files = kubeconfig_files(options.kubeconfig)
    in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
    if not files and not in_cluster:
        raise ProbeError(
            ErrorKind.KUBECONFIG_INVALID,
            "No kubeconfig was found ($KUBECONFIG unset or empty, no ~/.kube/config) "
            "and this is not a pod.",
            "Pass --kubeconfig PATH, or --ca-file with the CA instead of the cluster.",
        )
    modules = client_modules()
    _patch_loader(modules)
    if files:
        context = options.context or current_context(files)
        context = _check_context(files, context)
        check_referenced_files(files, context)
        paths = ", ".join(str(f.path) for f in files)
        origin = f"context {context} of {paths}"
        return _run_bounded(lambda: _from_kubeconfig(modules, files, context, origin), load)
    directory = Path(os.environ.get(SERVICE_ACCOUNT_DIR_ENV, SERVICE_ACCOUNT_DIR))
    for name in ("token", "ca.crt"):
        check_regular_file(directory / name, f"service account {name}", MAX_REFERENCED_BYTES)
    return _run_bounded(lambda: _in_cluster(modules, directory), load)


def _check_context(files: list[KubeconfigFile], context: str | None) -> str:
    """``context``, refused when None or not in the files."""
    names = context_names(files)
    if context is None:
        raise ProbeError(
            ErrorKind.KUBECONFIG_INVALID,
            f"The kubeconfig sets no current context; it has: {', '.join(names) or 'none'}.",
            "Choose one with --context NAME.",
        )
    if context not in names:
        raise ProbeError(
            ErrorKind.KUBECONFIG_INVALID,
            f"The kubeconfig has no context {context!r}; it has: {', '.join(names) or 'none'}.",
            "Pass one of those with --context, or fix --kubeconfig.",
        )
    return context


def _new_configuration(modules: ClientModules) -> Any:
    configuration = new_configuration(modules.configuration)
    configuration.retries = 0  # one attempt: --timeout bounds the stage
    return configuration


def _from_kubeconfig(
    modules: ClientModules, files: list[KubeconfigFile], context: str, origin: str
) -> LoadedCluster:
    configuration = _new_configuration(modules)
    modules.kube_config.load_kube_config(
        config_file=os.pathsep.join(str(f.path) for f in files),
        context=context,
        client_configuration=configuration,
        persist_config=False,
    )
    return LoadedCluster(configuration, _auth_headers(configuration), origin)


def _in_cluster(modules: ClientModules, directory: Path) -> LoadedCluster:
    configuration = _new_configuration(modules)
    modules.incluster_config.InClusterConfigLoader(
        token_filename=str(directory / "token"),
        cert_filename=str(directory / "ca.crt"),
    ).load_and_set(configuration)
    origin = f"the in-cluster service account ({directory})"
    return LoadedCluster(configuration, _auth_headers(configuration), origin)


def _auth_headers(configuration: Any) -> dict[str, str]:
    """The headers ``ApiClient.update_params_for_auth`` would add (a bearer token, if any)."""
    settings = configuration.auth_settings().values()
    return {s["key"]: s["value"] for s in settings if s["in"] == "header" and s["value"]}


def _run_bounded(work: Any, load: _Load) -> LoadedCluster:
    """Run ``work`` in a worker thread with ``load`` current; give up on it at the deadline."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        _CURRENT.load = load
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc
        finally:
            _CURRENT.load = None

    worker = threading.Thread(target=run, name="kubeconfig-loader", daemon=True)
    worker.start()
    worker.join(max(load.remaining(), 0) + GRACE)
    if worker.is_alive():
        for plugin in load.plugins:
            if plugin.returncode is None:
                _stop(plugin)
        if not load.plugin_stopped:
            raise ProbeError(
                ErrorKind.KUBECONFIG_INVALID,
                f"Loading the cluster configuration did not finish within {load.timeout:g} s "
                "(an OIDC refresh or a credential file that does not answer).",
                "Check the kubeconfig's user with kubectl (kubectl get ns), or raise --timeout.",
            )
    return _outcome(outcome, load)


def _outcome(outcome: dict[str, Any], load: _Load) -> LoadedCluster:
    if load.plugin_stopped:
        raise ProbeError(
            ErrorKind.KUBECONFIG_INVALID,
            f"The kubeconfig's credential plugin {load.plugin_command} {load.plugin_stopped}; "
            "it was stopped, with its child processes.",
            "An interactive login plugin waits for a person: log in once with kubectl "
            "(kubectl get ns) so the plugin caches a token, or raise --timeout.",
        )
    error = outcome.get("error")
    if isinstance(error, ProbeError):
        raise error
    if error is not None:  # ConfigException, yaml errors, shapes the loader trips on
        cause = _one_line(error) or type(error).__name__
        raise ProbeError(
            ErrorKind.KUBECONFIG_INVALID, f"The cluster configuration cannot be used: {cause}."
        ) from error
    if load.logged:
        raise ProbeError(
            ErrorKind.KUBECONFIG_INVALID,
            f"The kubeconfig's credentials cannot be obtained: {load.logged[0]}.",
            "Run the user's credential plugin by hand, or log in again (kubectl get ns shows "
            "the same failure).",
        )
    value: LoadedCluster = outcome["value"]
    return value

"""The exporter's modules: named sets of ``probe connect`` options, from flags and ``--config``.

Rule: a module is connect's inputs without a target (``ConnectInputs``), and a
probe of it is ``build_probe_config`` with the request's target, so a module
probes exactly like ``probe connect`` with the same flags, and secrets
(password and token files) are read again for every probe: projected tokens
rotate. The YAML file's keys are connect's flags with ``_`` for ``-``; a file
that does not validate is a ``UsageError`` naming the key, found at start,
together with each module's combination of options (by building it once).

    allow_targets: ["aio-broker*:*"]
    modules:
      internal:
        ca_file: /var/run/certs/ca.crt     # or cluster: {kubeconfig, context, namespace, ...}
        server_name: aio-broker
        mqtt_version: "5"
        sat_file: /var/run/secrets/tokens/broker-sat
        roundtrip: true

Relative paths are relative to the file's directory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mqtt_tls_probe.config import (
    MQTT_VERSIONS,
    TLS_VERSIONS,
    ClusterOptions,
    ConnectInputs,
    ProbeConfig,
    build_probe_config,
)
from mqtt_tls_probe.errors import UsageError

DEFAULT_MODULE = "default"
MAX_CONFIG_BYTES = 1 << 20  # a module file is a few hundred bytes; refuse to parse a flood
_MODULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_PLACEHOLDER_TARGET = "localhost"  # validation builds each module once, probing nothing


@dataclass(frozen=True)
class Module:
    """A named template of connect's inputs; ``config_for`` adds the target."""

    name: str
    inputs: ConnectInputs

    def config_for(self, target: str) -> ProbeConfig:
        """The probe of ``target`` with this module's options (reads its secret files now).

        Raises:
            UsageError: a secret file can no longer be read, or the target does not parse.
        """
        return build_probe_config(self.inputs._replace(target=target, port=None))

    def validate(self) -> None:
        """Build the module once, so that bad combinations and files fail at start."""
        self.config_for(_PLACEHOLDER_TARGET)


@dataclass(frozen=True)
class ConfigFile:
    modules: Mapping[str, Module]
    allow_targets: tuple[str, ...]


def load_config_file(path: Path) -> ConfigFile:
    """The modules and allow-list of ``--config``, checked.

    Raises:
        UsageError: unreadable, too large, not YAML, or a key that does not validate.
    """
    import yaml

    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise UsageError(f"config {path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise UsageError(f"config {path}: not valid YAML: {exc}") from exc
    return _Reader(path).config(document)


class _Reader:
    """Reads one file's document; every error names the file and the key's path."""

    def __init__(self, path: Path) -> None:
        self.file = path
        self.base = path.parent

    def fail(self, key: str, problem: str) -> UsageError:
        return UsageError(f"config {self.file}: {key}: {problem}")

    def config(self, document: object) -> ConfigFile:
        if document is None:
            document = {}
        top = self.mapping(document, "the document")
        self.known_keys(top, ("allow_targets", "modules"), "")
        allow = self.strings(top.get("allow_targets", []), "allow_targets")
        modules = {}
        for name, body in self.mapping(top.get("modules", {}), "modules").items():
            key = f"modules.{name}"
            if not isinstance(name, str) or not _MODULE_NAME.fullmatch(name):
                raise self.fail(key, "a module name is 1-63 letters, digits, '_', '.' or '-'")
            if name == DEFAULT_MODULE:
                raise self.fail(key, "the module 'default' is set by the command line's flags")
            module = Module(name, self.inputs(self.mapping(body, key), key))
            try:
                module.validate()
            except UsageError as exc:
                raise self.fail(key, str(exc)) from exc
            modules[name] = module
        return ConfigFile(modules, tuple(allow))

    def inputs(self, body: Mapping[str, Any], key: str) -> ConnectInputs:
        self.known_keys(body, (*_MODULE_KEYS, *_NOT_YET), key)
        for name, why in _NOT_YET.items():
            if name in body:
                raise self.fail(f"{key}.{name}", why)
        if "ca_file" in body and "cluster" in body:
            raise self.fail(f"{key}.cluster", "give ca_file or cluster, not both")
        values = {
            name: _MODULE_KEYS[name](self, value, f"{key}.{name}") for name, value in body.items()
        }
        return ConnectInputs(**values)

    # --- value checks -------------------------------------------------------------------

    def known_keys(self, body: Mapping[str, Any], known: tuple[str, ...], key: str) -> None:
        for name in body:
            if name not in known:
                where = f"{key}.{name}" if key else str(name)
                raise self.fail(where, f"unknown key (known: {', '.join(known)})")

    def mapping(self, value: object, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {_kind(value)}")
        return value

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {_kind(value)}")
        return value

    def strings(self, value: object, key: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of strings, got {_kind(value)}")
        return [self.string(item, f"{key}[{index}]") for index, item in enumerate(value)]

    def path(self, value: object, key: str) -> Path:
        return self.base / Path(self.string(value, key)).expanduser()

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_kind(value)}")
        return value

    def seconds(self, value: object, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self.fail(key, f"expected a number of seconds above 0, got {_kind(value)}")
        return float(value)

    def version(self, value: object, key: str, choices: tuple[str, ...]) -> str:
        # YAML reads an unquoted 5 as a number and 1.2 as a float: both mean the version.
        text = str(value) if isinstance(value, str | int | float) else ""
        if isinstance(value, bool) or text not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {_kind(value)}")
        return text

    def cluster(self, value: object, key: str) -> ClusterOptions:
        body = self.mapping(value, key)
        self.known_keys(body, tuple(_CLUSTER_KEYS), key)
        values = {
            name: _CLUSTER_KEYS[name](self, item, f"{key}.{name}") for name, item in body.items()
        }
        return ClusterOptions(**values)


def _kind(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:60])
    return "nothing" if value is None else type(value).__name__


_Check = Callable[[_Reader, object, str], Any]
# The keys of a module: each is the field of ConnectInputs of the same name.
_MODULE_KEYS: dict[str, _Check] = {
    "ca_file": _Reader.path,
    "cluster": _Reader.cluster,
    "insecure": _Reader.boolean,
    "server_name": _Reader.string,
    "cert": _Reader.path,
    "key": _Reader.path,
    "tls_min": lambda r, v, k: r.version(v, k, TLS_VERSIONS),
    "alpn": lambda r, v, k: tuple(r.strings(v, k)),
    "mqtt_version": lambda r, v, k: r.version(v, k, MQTT_VERSIONS),
    "client_id": _Reader.string,
    "username": _Reader.string,
    "password_file": _Reader.path,
    "sat_file": _Reader.path,
    "roundtrip": _Reader.boolean,
    "topic": _Reader.string,
    "timeout": _Reader.seconds,
}
_CLUSTER_KEYS: dict[str, _Check] = {
    "kubeconfig": _Reader.path,
    "context": _Reader.string,
    "namespace": _Reader.string,
    "configmap": _Reader.string,
    "configmap_key": _Reader.string,
}
# Keys of connect's flags the exporter does not take, and why: in a pod it has a
# projected token, and its RBAC grants no TokenRequest (least privilege).
_NOT_YET = {
    "sat_serviceaccount": (
        "the exporter does not mint tokens (its Role grants no serviceaccounts/token): "
        "mount a projected service account token and name it with sat_file"
    ),
    "sat_audience": (
        "the exporter does not mint tokens: the audience is set where the projected "
        "token is mounted"
    ),
}

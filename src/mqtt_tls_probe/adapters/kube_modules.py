"""The parts of the official Kubernetes client the probe uses, imported without the rest.

Rule: reading the cluster imports the kubeconfig loader (``kube_config``,
``exec_provider``, ``incluster_config``), ``Configuration`` and the ``rest``
layer, and nothing heavier: not ``ApiClient`` and its models (pydantic,
dateutil, ``multiprocessing.pool``: +73 ms), not the OAuth stack
(``requests_oauthlib``, ``oauthlib``, ``requests``: +29 ms) that only an
OIDC token refresh uses, not ``kubernetes.utils`` (``create_from_yaml``).
Three facts of client 37 make that take more than ``import``:

- the ``kubernetes`` and ``kubernetes.utils`` package ``__init__`` files
  import every subpackage (``rest`` needs only ``utils.retry`` and
  ``utils.keepalive``): ``_defer_package_init`` registers such a package
  with its real search path and runs its ``__init__`` only when something
  asks the package for an attribute it lacks, so ``import kubernetes``
  elsewhere in the process still gets the whole package;
- ``kube_config`` imports ``oauthlib.oauth2``, ``OAuth2Session`` and
  ``ApiClient`` at module level, and uses them only in ``_refresh_oidc``
  (an expired OIDC id-token) and ``new_client_from_config*``, which the
  probe never calls:
  https://github.com/kubernetes-client/python/blob/v37.0.2/kubernetes/base/config/kube_config.py#L27-L32
  and #L382-L435. ``_on_demand_imports`` lets that import bind stand-ins
  which import the real thing on first use, then takes them out of
  ``sys.modules`` again: any other importer gets the real modules. When the
  process already holds the OAuth stack, nothing is stood in for.
- ``kubernetes.client`` resolves its exports lazily through a module
  ``__getattr__``, so ``Configuration`` costs only ``configuration``.

``tests/test_cluster_imports.py`` checks that these upstream lines still look
the way this module expects, and that a run of ``probe bundle`` imports none
of the heavy modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

# What kube_config imports at module level but needs only to refresh an OIDC token.
OAUTH_MODULES = ("oauthlib", "oauthlib.oauth2", "requests_oauthlib")


@dataclass(frozen=True)
class ClientModules:
    kube_config: ModuleType
    exec_provider: ModuleType
    incluster_config: ModuleType
    configuration: ModuleType
    rest: ModuleType


_IMPORTING = threading.Lock()  # one thread at a time edits sys.modules here


def client_modules() -> ClientModules:
    """The loader, ``Configuration`` and ``rest`` modules of the official client."""
    with _IMPORTING:
        _defer_package_init("kubernetes")
        _defer_package_init("kubernetes.utils")
        if "kubernetes.config.kube_config" not in sys.modules:
            with _on_demand_imports():
                importlib.import_module("kubernetes.config.kube_config")
    modules = sys.modules
    return ClientModules(
        kube_config=modules["kubernetes.config.kube_config"],
        exec_provider=importlib.import_module("kubernetes.config.exec_provider"),
        incluster_config=importlib.import_module("kubernetes.config.incluster_config"),
        configuration=importlib.import_module("kubernetes.client.configuration"),
        rest=importlib.import_module("kubernetes.client.rest"),
    )


def _defer_package_init(name: str) -> None:
    """Register package ``name`` so its submodules import without its ``__init__`` running.

    The first attribute asked of the package that it lacks runs the real
    ``__init__`` and is then answered from it.
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:  # pragma: no cover (a declared dependency)
        raise ModuleNotFoundError(name)
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete_on_first_miss(attribute: str) -> Any:
        del package.__getattr__
        loader.exec_module(package)
        return getattr(package, attribute)

    package.__getattr__ = complete_on_first_miss  # type: ignore[method-assign]
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)


class _ImportedOnUse(ModuleType):
    """Stands in for a package during one import: any attribute imports the real submodule."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return importlib.import_module(f"{self.__name__}.{attribute}")


def _oauth2_session(*args: Any, **kwargs: Any) -> Any:
    """``requests_oauthlib.OAuth2Session(...)``, imported when an OIDC refresh needs it."""
    return importlib.import_module("requests_oauthlib").OAuth2Session(*args, **kwargs)


def _api_client(*args: Any, **kwargs: Any) -> Any:
    """``kubernetes.client.ApiClient(...)``, imported when an OIDC refresh needs it."""
    return importlib.import_module("kubernetes.client.api_client").ApiClient(*args, **kwargs)


@contextmanager
def _on_demand_imports() -> Iterator[None]:
    """While ``kube_config`` is imported, its OIDC-only imports bind the stand-ins above."""
    client = importlib.import_module("kubernetes.client")  # cheap: exports resolve lazily
    added: list[str] = []
    if not any(name in sys.modules for name in OAUTH_MODULES):
        session = ModuleType("requests_oauthlib")
        session.OAuth2Session = _oauth2_session  # type: ignore[attr-defined]
        stand_ins = {
            "oauthlib": _ImportedOnUse("oauthlib"),
            "oauthlib.oauth2": _ImportedOnUse("oauthlib.oauth2"),
            "requests_oauthlib": session,
        }
        sys.modules.update(stand_ins)
        added = list(stand_ins)
    stand_in_api_client = "ApiClient" not in vars(client)
    if stand_in_api_client:
        setattr(client, "ApiClient", _api_client)  # noqa: B010 (a lazy module's export)
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]
        if stand_in_api_client:
            delattr(client, "ApiClient")

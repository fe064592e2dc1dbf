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

Three more module-level imports are paid for and never used on this path
(measured on a 2-core machine, cold start with bytecode):

- ``urllib3/http2/__init__.py`` imports ``importlib.metadata`` (zipfile, csv,
  email: +8 ms) only for ``inject_into_urllib3``, which nothing here calls,
  while ``urllib3.connection`` imports its ``probe`` submodule:
  https://github.com/urllib3/urllib3/blob/2.8.0/src/urllib3/http2/__init__.py#L3
  ``defer_urllib3_http2`` registers that package with its ``__init__``
  deferred, as above, before urllib3 is first imported;
- ``configuration`` and ``exceptions`` import ``NotRequired`` and ``Self``
  from ``typing_extensions`` (+3 ms), which on Python 3.11 are the ``typing``
  objects themselves; a stand-in holding those two is what they import:
  https://github.com/kubernetes-client/python/blob/v37.0.2/kubernetes/client/configuration.py#L17-L23
- ``configuration`` imports ``multiprocessing`` (pickle, contexts: +5 ms)
  for ``multiprocessing.cpu_count()`` only, when ``Configuration`` is made
  without ``connection_pool_maxsize`` (#L334): it binds a module that
  imports the real one on first use, and ``new_configuration`` passes that
  size.

Every stand-in is taken out of ``sys.modules`` once ``kube_config`` is
imported: any other importer gets the real module.

``tests/test_cluster_imports.py`` checks that these upstream lines still look
the way this module expects, and that a run of ``probe bundle`` imports none
of the heavy modules.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, NamedTuple

# What the probe uses: kube_config first (it imports the others but rest).
_USED = (
    "kubernetes.config.kube_config",
    "kubernetes.config.exec_provider",
    "kubernetes.config.incluster_config",
    "kubernetes.client.configuration",
    "kubernetes.client.rest",
)
# What kube_config imports at module level but needs only to refresh an OIDC token.
OAUTH_MODULES = ("oauthlib", "oauthlib.oauth2", "requests_oauthlib")


class ClientModules(NamedTuple):  # not a dataclass: 0.6 ms less at import
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
        if any(name not in sys.modules for name in _USED):
            with _on_demand_imports(), _unused_imports_stood_in():
                for name in _USED:
                    importlib.import_module(name)
    modules = sys.modules
    return ClientModules(
        kube_config=modules["kubernetes.config.kube_config"],
        exec_provider=modules["kubernetes.config.exec_provider"],
        incluster_config=modules["kubernetes.config.incluster_config"],
        configuration=modules["kubernetes.client.configuration"],
        rest=modules["kubernetes.client.rest"],
    )


def new_configuration(configuration_module: ModuleType) -> Any:
    """A fresh ``Configuration``, as ``Configuration()`` makes it, without ``multiprocessing``."""
    # type.__call__ skips Configuration's copy of a process-wide default; the pool
    # size is upstream's default, cpu_count() * 5, counted without multiprocessing.
    return type.__call__(
        configuration_module.Configuration, connection_pool_maxsize=(os.cpu_count() or 1) * 5
    )


def defer_urllib3_http2() -> None:
    """Register ``urllib3.http2`` with its ``__init__`` deferred, unless urllib3 is imported.

    Called before the first ``import urllib3``: the package's search path comes
    from urllib3's spec without importing urllib3 (``find_spec`` of a dotted
    name would), and the attribute ``urllib3.http2`` is bound by
    ``bind_urllib3_http2`` once urllib3 is imported.
    """
    with _IMPORTING:
        if "urllib3" in sys.modules or "urllib3.http2" in sys.modules:
            return
        parent = importlib.util.find_spec("urllib3")
        locations = parent.submodule_search_locations if parent else None
        spec = importlib.machinery.PathFinder.find_spec("urllib3.http2", locations)
        if spec is None:  # pragma: no cover (urllib3 2 has it; tests/test_cluster_imports.py)
            return
        _register_deferred(spec)


def bind_urllib3_http2() -> None:
    """``urllib3.http2`` as an attribute of urllib3, as an import would have bound it."""
    urllib3 = sys.modules["urllib3"]
    if "http2" not in vars(urllib3) and "urllib3.http2" in sys.modules:
        setattr(urllib3, "http2", sys.modules["urllib3.http2"])  # noqa: B010


def _defer_package_init(name: str) -> None:
    """Register package ``name`` so its submodules import without its ``__init__`` running.

    The first attribute asked of the package that it lacks, unless it names a
    submodule, runs the real ``__init__`` and is then answered from it.
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:  # pragma: no cover (a declared dependency)
        raise ModuleNotFoundError(name)
    _register_deferred(spec)


def _register_deferred(spec: importlib.machinery.ModuleSpec) -> None:
    name = spec.name
    if spec.loader is None:  # pragma: no cover (a package on disk has one)
        raise ModuleNotFoundError(name)
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete_on_first_miss(attribute: str) -> Any:
        # "from package import submodule" asks hasattr(package, "submodule") first
        # (importlib's _handle_fromlist): that imports the submodule alone.
        if not attribute.startswith("__") and importlib.util.find_spec(f"{name}.{attribute}"):
            return importlib.import_module(f"{name}.{attribute}")
        del package.__getattr__
        loader.exec_module(package)
        return getattr(package, attribute)

    package.__getattr__ = complete_on_first_miss  # type: ignore[method-assign]
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
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


class _ImportsOnFirstUse(ModuleType):
    """Stands in for a module: the first attribute asked imports the real one and answers."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        if sys.modules.get(self.__name__) is self:  # asked while still standing in
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)


@contextmanager
def _unused_imports_stood_in() -> Iterator[None]:
    """While the client's modules are imported: ``typing_extensions`` and ``multiprocessing``."""
    typing_extensions = ModuleType("typing_extensions")
    # On 3.11 typing_extensions re-exports exactly these (its "if hasattr(typing, ...)" lines).
    typing_extensions.NotRequired = typing.NotRequired  # type: ignore[attr-defined]
    typing_extensions.Self = typing.Self  # type: ignore[attr-defined]
    stand_ins = {
        "typing_extensions": typing_extensions,
        "multiprocessing": _ImportsOnFirstUse("multiprocessing"),
    }
    added = [name for name in stand_ins if name not in sys.modules]
    sys.modules.update({name: stand_ins[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            if sys.modules.get(name) is stand_ins[name]:
                del sys.modules[name]

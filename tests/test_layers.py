"""The layers' rules, read from the sources with ``ast``: the tree says what may import what.

- ``core/`` is pure: no socket, ssl, select, paho, kubernetes, amqtt (or any
  other I/O library), no adapter, and no clock read (``now`` is a parameter).
- ``adapters/`` never import orchestrators, outputs, the CLI or the dev harness.
- ``output/`` reads reports: no adapter, orchestrator or I/O library.
- ``orchestrators/`` never import the CLI or outputs.
- ``exporter/`` (a front end like the CLI) never imports the CLI or the dev harness.
- ``adapters.cluster`` and ``adapters.trust`` do not import each other at
  module level (the cycle the layout removed).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "mqtt_tls_probe"

IO_LIBRARIES = frozenset(
    {
        "socket",
        "ssl",
        "select",
        "selectors",
        "asyncio",
        "subprocess",
        "threading",
        "http",
        "urllib",
        "urllib3",
        "requests",
        "paho",
        "kubernetes",
        "amqtt",
        "yaml",
        "prometheus_client",
        "time",
        "typer",
    }
)
CLOCK_CALLS = frozenset(
    {
        "datetime.now",
        "datetime.utcnow",
        "datetime.today",
        "date.today",
        "time.time",
        "time.monotonic",
        "time.perf_counter",
        "time.time_ns",
    }
)
# layer -> the project's packages (first component under mqtt_tls_probe) it may not import
FORBIDDEN_LAYERS = {
    "core": {"adapters", "orchestrators", "output", "cli", "dev"},
    "adapters": {"orchestrators", "output", "cli", "dev"},
    "output": {"adapters", "orchestrators", "cli", "dev"},
    "orchestrators": {"output", "cli"},
    "exporter": {"cli", "dev"},
}
OUTPUT_IO = IO_LIBRARIES - {"time"}


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """Every module a source imports, anywhere in it (lazy imports count), with its line."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return ""


def clock_calls(tree: ast.AST) -> list[tuple[str, int]]:
    """Calls such as ``datetime.now()`` or ``time.monotonic()``, however qualified."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if any(name == c or name.endswith("." + c) for c in CLOCK_CALLS):
                found.append((name, node.lineno))
    return found


def violations(source: str, layer: str) -> list[str]:
    """What in ``source`` breaks the rule of ``layer`` (empty: it keeps the rule)."""
    tree = ast.parse(source)
    problems = []
    forbidden_io = {"core": IO_LIBRARIES, "output": OUTPUT_IO}.get(layer, frozenset())
    for module, line in imported_modules(tree):
        top = module.split(".")[0]
        if top in forbidden_io:
            problems.append(f"line {line}: imports {module}")
        parts = module.split(".")
        if top == "mqtt_tls_probe" and len(parts) > 1 and parts[1] in FORBIDDEN_LAYERS[layer]:
            problems.append(f"line {line}: imports {module} ({layer} may not)")
    if layer == "core":
        problems += [f"line {line}: reads the clock ({name}())" for name, line in clock_calls(tree)]
    return problems


def _sources(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN_LAYERS))
def test_each_layer_keeps_its_rule(layer: str) -> None:
    sources = _sources(layer)
    assert sources, layer
    broken = {
        str(path.relative_to(PACKAGE)): found
        for path in sources
        if (found := violations(path.read_text(), layer))
    }
    assert broken == {}


@pytest.mark.parametrize(
    "snippet",
    [
        "import socket",
        "import ssl as tls",
        "from paho.mqtt import client",
        "def f():\n    import kubernetes.config",
        "from mqtt_tls_probe.adapters import net",
        "from datetime import datetime\nx = datetime.now()",
        "import datetime\nx = datetime.datetime.now(datetime.UTC)",
        "import time\nx = time.monotonic()",
    ],
)
def test_the_purity_check_fails_on_a_forbidden_import_or_clock_read(snippet: str) -> None:
    """The negative control: the check above would catch each of these in core/."""
    assert violations(snippet, "core")


def test_the_purity_check_accepts_what_core_does() -> None:
    allowed = "from cryptography import x509\nfrom mqtt_tls_probe.errors import ErrorInfo\n"
    assert violations(allowed + "def f(now):\n    return now.isoformat()\n", "core") == []


def test_cluster_and_trust_do_not_import_each_other() -> None:
    cluster = ast.parse((PACKAGE / "adapters" / "cluster.py").read_text())
    trust = ast.parse((PACKAGE / "adapters" / "trust.py").read_text())
    assert "mqtt_tls_probe.adapters.trust" not in {m for m, _ in imported_modules(cluster)}
    # trust reaches the cluster adapter lazily (only a cluster read pays for the client),
    # and only one way.
    top_level = {
        node.module
        for node in trust.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert "mqtt_tls_probe.adapters.cluster" not in top_level

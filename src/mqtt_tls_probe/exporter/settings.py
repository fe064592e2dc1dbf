"""What one exporter process serves: where it listens, its modules, allow-list and limits.

Rule: checked before the socket is bound; bad values are ``UsageError`` (exit 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.exporter.modules import DEFAULT_MODULE, Module
from mqtt_tls_probe.exporter.targets import DEFAULT_ALLOW_TARGETS, AllowList

DEFAULT_LISTEN = "127.0.0.1:9883"
DEFAULT_MAX_CONCURRENT = 8
DEFAULT_INTERVAL = 60.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class ExporterSettings:
    """``host`` and ``port`` to listen on; ``modules`` always hold ``default``."""

    modules: Mapping[str, Module]
    host: str = "127.0.0.1"
    port: int = 9883
    allow: AllowList = field(default_factory=lambda: AllowList.of(DEFAULT_ALLOW_TARGETS))
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    interval: float = DEFAULT_INTERVAL  # between rounds of the background loop

    def __post_init__(self) -> None:
        if DEFAULT_MODULE not in self.modules:
            raise UsageError("the exporter needs a module named 'default'")
        if self.max_concurrent < 1:
            raise UsageError("--max-concurrent must be at least 1")
        if not self.interval > 0:
            raise UsageError("--interval must be above 0")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); port 0 picks a free one.

    Raises:
        UsageError: no port, or a port out of range.
    """
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen takes HOST:PORT (e.g. {DEFAULT_LISTEN}), not {text!r}")
    return host, int(port)


def parse_interval(text: str) -> float:
    """``60s``, ``1m``, ``200ms``, ``1h`` or plain seconds -> seconds.

    Raises:
        UsageError: anything else, or zero.
    """
    match = _DURATION.fullmatch(text.strip())
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else 0.0
    if not seconds > 0:
        raise UsageError(f"--interval takes a duration such as 60s, 5m or 500ms, not {text!r}")
    return seconds

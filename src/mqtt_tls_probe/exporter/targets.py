"""Which targets ``/probe`` may connect to: ``HOST:PORT`` globs, loopback and AIO by default.

Rule: the exporter connects wherever a request says, so every target is
normalized (``parse_target``, then ``host:port`` with IPv6 in brackets and the
host in lower case, the default port filled in) and matched against the
allow-list before anything touches the network; no match is 403. Globs are
fnmatch's ``*`` and ``?``; brackets are literal, since IPv6 targets are
written ``[::1]:PORT`` (fnmatch would read ``[::1]`` as a character class).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from mqtt_tls_probe import aio
from mqtt_tls_probe.config import format_target, parse_target

DEFAULT_ALLOW_TARGETS = (
    "127.0.0.1:*",
    "[::1]:*",
    "localhost:*",
    f"{aio.BROKER_SERVICE}:*",
    f"{aio.BROKER_SERVICE}.*:*",
)


def normalize_target(target: str) -> str:
    """``target`` as the allow-list sees it: ``host:port``, lower case, port filled in.

    Raises:
        UsageError: an unparsable target.
    """
    host, port = parse_target(target, None)
    return format_target(host.lower(), port)


@dataclass(frozen=True)
class AllowList:
    """The ``--allow-target`` globs (and the config file's ``allow_targets``)."""

    globs: tuple[str, ...]

    @classmethod
    def of(cls, globs: Iterable[str]) -> AllowList:
        return cls(tuple(dict.fromkeys(g.strip().lower() for g in globs if g.strip())))

    def allows(self, normalized_target: str) -> bool:
        return any(fnmatchcase(normalized_target, _literal_brackets(g)) for g in self.globs)


def _literal_brackets(glob: str) -> str:
    # fnmatch's way to write a literal "[" is the class "[[]"; a lone "]" is literal.
    return glob.replace("[", "[[]")

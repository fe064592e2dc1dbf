"""Certificate descriptions and chain findings, computed once per certificate in a scan.

A fleet serves few distinct certificates (every frontend of a broker sends the
same chain, every chain ends at the same CA), yet describing one costs a
signature check and a walk over its extensions, and the chain's findings a
strict path validation: about a millisecond per target, for the same answer.

Rule: a memo returns exactly what ``certinfo.load_der``, ``certinfo.describe``
(and so ``certificate_findings``), ``verify.findings`` and ``verify.build_path``
return for the same arguments, ``now`` included (a probe of another ``now``
is another key). It is bounded: when full it starts over, so memory does not
grow with the number of targets. Safe to share between threads (a race only
computes an entry twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from cryptography import x509

from mqtt_tls_probe.core import certinfo, verify
from mqtt_tls_probe.model import CertInfo, Finding

_LIMIT = 512
_Table = TypeVar("_Table", bound=dict[Any, Any])

_DescribeKey = tuple[x509.Certificate, datetime, bool]
_PathKey = tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]]
_FindingsKey = tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...], str, datetime]


class CertificateMemo:
    def __init__(self, limit: int = _LIMIT) -> None:
        self._limit = limit
        self._described: dict[_DescribeKey, CertInfo] = {}
        self._findings: dict[_FindingsKey, tuple[Finding, ...]] = {}
        self._paths: dict[_PathKey, verify.ChainPath] = {}
        self._loaded: dict[bytes, certinfo.Loaded] = {}

    def load_der(self, der: bytes) -> certinfo.Loaded:
        """``certinfo.load_der``, once per DER: reading one in full walks all its extensions.

        The same object for the same bytes, so the tables below hit on identity.
        """
        found = self._loaded.get(der)
        if found is None:
            found = certinfo.load_der(der)
            _bounded(self._loaded, self._limit)[der] = found
        return found

    def describe_all(
        self, certs: Sequence[certinfo.Loaded], now: datetime, *, as_trust_anchor: bool = False
    ) -> tuple[CertInfo, ...]:
        """``certinfo.describe_all``, each loaded certificate described once."""
        described = []
        for cert in certs:
            if isinstance(cert, x509.Certificate):
                described.append(self.describe(cert, now, as_trust_anchor=as_trust_anchor))
            elif (partly := certinfo.describe_unparseable(cert, now)) is not None:
                described.append(partly)  # rare: not worth a cache entry
        return tuple(described)

    def describe(
        self, cert: x509.Certificate, now: datetime, *, as_trust_anchor: bool = False
    ) -> CertInfo:
        key = (cert, now, as_trust_anchor)
        found = self._described.get(key)
        if found is None:
            found = certinfo.describe(cert, now, as_trust_anchor=as_trust_anchor)
            _bounded(self._described, self._limit)[key] = found
        return found

    def certificate_findings(
        self, cert: x509.Certificate, now: datetime, *, as_trust_anchor: bool = False
    ) -> tuple[Finding, ...]:
        return self.describe(cert, now, as_trust_anchor=as_trust_anchor).findings

    def findings(
        self,
        chain: Sequence[x509.Certificate],
        anchors: Sequence[x509.Certificate],
        server_name: str,
        now: datetime,
    ) -> list[Finding]:
        key = (tuple(chain), tuple(anchors), server_name, now)
        found = self._findings.get(key)
        if found is None:
            found = tuple(verify.findings(chain, anchors, server_name, now))
            _bounded(self._findings, self._limit)[key] = found
        return list(found)

    def build_path(
        self, chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
    ) -> verify.ChainPath:
        key = (tuple(chain), tuple(anchors))
        found = self._paths.get(key)
        if found is None:
            found = verify.build_path(chain, anchors)
            _bounded(self._paths, self._limit)[key] = found
        return found


def _bounded(table: _Table, limit: int) -> _Table:
    if len(table) >= limit:
        table.clear()
    return table

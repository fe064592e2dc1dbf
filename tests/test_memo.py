"""The scan's certificate memo: the same answers as the functions it caches, once per input."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.serialization import Encoding

from mqtt_tls_probe.core import certinfo, verify
from mqtt_tls_probe.core.memo import CertificateMemo
from mqtt_tls_probe.dev.pki import create_root_ca, issue_server_certificate
from mqtt_tls_probe.model import Unparseable

from .odd_certs import duplicate_extension


def test_a_chain_is_read_once_and_answers_as_certinfo_does() -> None:
    root = create_root_ca()
    leaf = issue_server_certificate(root, ["localhost"])
    memo = CertificateMemo()
    der = leaf.certificate.public_bytes(Encoding.DER)
    first, again = memo.load_der(der), memo.load_der(bytes(der))  # equal bytes, another object
    assert first is again
    assert first == certinfo.load_der(der)
    now = datetime.now(UTC)
    assert not isinstance(first, Unparseable)
    chain, anchors = [first], [root.certificate]
    assert memo.findings(chain, anchors, "localhost", now) == verify.findings(
        chain, anchors, "localhost", now
    )
    assert memo.describe_all(chain, now) == certinfo.describe_all(chain, now)


def test_an_unparseable_certificate_is_remembered_as_such() -> None:
    root = create_root_ca()
    der = duplicate_extension(root)
    memo = CertificateMemo()
    loaded = memo.load_der(der)
    assert isinstance(loaded, Unparseable)
    assert memo.load_der(der) is loaded
    assert loaded == certinfo.load_der(der)


def test_the_memo_is_bounded() -> None:
    root = create_root_ca()
    memo = CertificateMemo(limit=2)
    ders = [
        issue_server_certificate(root, [f"host{i}"]).certificate.public_bytes(Encoding.DER)
        for i in range(5)
    ]
    for der in ders:
        memo.load_der(der)
    assert len(memo._loaded) <= 2

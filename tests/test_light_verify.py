"""core.light_verify: the verify stage's words for a chain OpenSSL verified, without sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.serialization import Encoding

from mqtt_tls_probe.core import light_verify
from mqtt_tls_probe.core.lightcert import LightCert, read_light
from mqtt_tls_probe.dev.pki import (
    CertAndKey,
    create_intermediate_ca,
    create_root_ca,
    issue_server_certificate,
)
from mqtt_tls_probe.model import FindingCode

NAMES = ["localhost"]


def der(item: CertAndKey) -> bytes:
    return item.certificate.public_bytes(Encoding.DER)


def light(item: CertAndKey) -> LightCert:
    read = read_light(der(item))
    assert read is not None
    return read


def later() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=1)


def test_the_path_ends_at_the_first_trusted_certificate() -> None:
    root = create_root_ca("Root CA")
    middle = create_intermediate_ca(root, "Middle CA")
    leaf = issue_server_certificate(middle, NAMES)
    sent, verified = [der(leaf), der(middle)], [der(leaf), der(middle), der(root)]
    for anchors, expected in (([middle, root], "Middle CA"), ([root], "Root CA")):
        verdict = light_verify.verify_chain(
            sent, verified, [light(a) for a in anchors], "localhost", later()
        )
        assert verdict is not None
        assert verdict.anchor.common_name == expected
        assert verdict.issued_by_anchor
        assert [c.der for c in verdict.sent] == sent


def test_the_quickstart_ca_and_an_expiring_leaf_are_reported() -> None:
    root = create_root_ca()  # the quickstart CA's name
    leaf = issue_server_certificate(root, NAMES, days=3)
    verdict = light_verify.verify_chain(
        [der(leaf)], [der(leaf), der(root)], [light(root)], "localhost", later()
    )
    assert verdict is not None
    assert [w.code for w in verdict.warnings] == [
        FindingCode.EXPIRES_SOON,
        FindingCode.QUICKSTART_CA,
    ]


def test_what_only_cryptography_can_tell_is_left_to_it() -> None:
    root = create_root_ca("Root CA")
    leaf = issue_server_certificate(root, NAMES)
    anchors = [light(root)]
    now = later()
    # the leaf itself trusted: the strict pre-check is not sure
    assert (
        light_verify.verify_chain([der(leaf)], [der(leaf)], [light(leaf)], "localhost", now) is None
    )
    # a sent certificate the light reader does not read
    assert (
        light_verify.verify_chain(
            [der(leaf), b"\x30\x00"], [der(leaf), der(root)], anchors, "localhost", now
        )
        is None
    )
    # a name the leaf does not list: the strict verifier would refuse it
    assert (
        light_verify.verify_chain([der(leaf)], [der(leaf), der(root)], anchors, "other", now)
        is None
    )
    # nothing verified is trusted
    other = create_root_ca("Other CA")
    assert (
        light_verify.verify_chain(
            [der(leaf)], [der(leaf), der(root)], [light(other)], "localhost", now
        )
        is None
    )

"""certinfo's ECDSA verification without cryptography's OpenSSL backend module."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from mqtt_tls_probe.core import certinfo
from mqtt_tls_probe.dev.pki import create_root_ca, issue_server_certificate


def test_the_verifying_ecdsa_is_ours_on_this_cryptography() -> None:
    made = certinfo.verifying_ecdsa(hashes.SHA256())
    assert type(made) is not ec.ECDSA  # else the shortcut fell back: cryptography changed
    assert isinstance(made, ec.ECDSA)
    assert isinstance(made.algorithm, hashes.SHA256)
    assert made.deterministic_signing is False


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
@pytest.mark.parametrize("digest", [hashes.SHA256(), hashes.SHA384(), hashes.SHA512()])
def test_it_answers_as_the_stock_ecdsa(
    curve: ec.EllipticCurve, digest: hashes.HashAlgorithm
) -> None:
    key = ec.generate_private_key(curve)
    data = b"to be signed"
    signature = key.sign(data, ec.ECDSA(digest))
    public = key.public_key()
    public.verify(signature, data, certinfo.verifying_ecdsa(digest))  # valid: no exception
    for wrong in (data + b"!", b""):
        with pytest.raises(InvalidSignature):
            public.verify(signature, wrong, ec.ECDSA(digest))
        with pytest.raises(InvalidSignature):
            public.verify(signature, wrong, certinfo.verifying_ecdsa(digest))


def test_self_signed_and_signed_by_still_tell_issuers_apart() -> None:
    root, other = create_root_ca(), create_root_ca("Other Root CA")
    leaf = issue_server_certificate(root, ["localhost"])
    assert certinfo.is_self_signed(root.certificate)
    assert not certinfo.is_self_signed(leaf.certificate)
    assert certinfo.signed_by(leaf.certificate, root.certificate)
    assert not certinfo.signed_by(leaf.certificate, other.certificate)


def test_describing_a_certificate_does_not_load_the_backend_module() -> None:
    script = (
        "import sys\n"
        "from cryptography import x509\n"
        "from mqtt_tls_probe.core import certinfo\n"
        "cert = x509.load_pem_x509_certificate(sys.stdin.buffer.read())\n"
        "assert certinfo.is_self_signed(cert)\n"
        "print(sorted(m for m in sys.modules if m.startswith('cryptography.hazmat.backends')))\n"
    )
    pem = create_root_ca().cert_pem()
    run = subprocess.run(
        [sys.executable, "-c", script], input=pem, capture_output=True, timeout=60, check=True
    )
    assert run.stdout.decode().strip() == "[]"

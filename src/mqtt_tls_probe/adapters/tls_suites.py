"""The TLS 1.2 cipher suites the local OpenSSL knows, for probing (never for an MQTT session).

Rule of the module: read from ``SSLContext.get_ciphers()`` with ``EVERY_SUITE``, once per
process. Imported only by what probes (``probe tls``, the diagnosis of a refused
handshake): a passing ``probe connect`` never pays for it.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass

# Everything the local OpenSSL implements, weak suites included (for probing, never MQTT).
EVERY_SUITE = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
# Suites that need a pre-shared key or SRP credentials: a client without them never
# offers them (OpenSSL drops them from the ClientHello), so they cannot be probed.
_CREDENTIAL_KEX = frozenset({"kx-psk", "kx-dhe-psk", "kx-ecdhe-psk", "kx-rsa-psk", "kx-srp"})
_CREDENTIAL_AUTH = frozenset({"auth-psk", "auth-srp"})


@dataclass(frozen=True)
class Suite:
    """A TLS 1.2 (or older) cipher suite the local OpenSSL can offer."""

    name: str  # OpenSSL's name, as --ciphers and `openssl s_client -cipher` take it
    code: int  # the IANA code point
    kex: str  # "ECDHE", "DHE", "RSA", ...
    auth: str  # "ECDSA", "RSA", "DSS", "NULL" (anonymous)
    symmetric: str | None  # "aes-128-gcm", "aes-256-cbc"...; None: no encryption (NULL)
    aead: bool


@functools.cache
def tls12_suites() -> tuple[Suite, ...]:
    """Every suite the local OpenSSL can offer in TLS 1.2 or older, in its preference order."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers(EVERY_SUITE)
    return tuple(
        Suite(
            name=cipher["name"],
            code=cipher["id"] & 0xFFFF,
            kex=_label(cipher["kea"]),
            auth=_label(cipher["auth"]),
            symmetric=cipher["symmetric"],
            aead=bool(cipher["aead"]),
        )
        for cipher in context.get_ciphers()
        if cipher["protocol"] != "TLSv1.3"
        and cipher["kea"] not in _CREDENTIAL_KEX
        and cipher["auth"] not in _CREDENTIAL_AUTH
    )


def known_tls12_suites() -> tuple[int, ...]:
    """The IANA code points of ``tls12_suites()``."""
    return tuple(suite.code for suite in tls12_suites())


@functools.cache
def _openssl_names() -> dict[int, str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers(EVERY_SUITE)
    return {cipher["id"] & 0xFFFF: cipher["name"] for cipher in context.get_ciphers()}


def openssl_suite_name(name: str) -> str:
    """OpenSSL's name for a suite a trace names the IANA way (TLS 1.3 names are the same)."""
    from mqtt_tls_probe.core.tls_messages import cipher_suite_code

    code = cipher_suite_code(name)
    return _openssl_names().get(code, name) if code is not None else name


def _label(value: str) -> str:
    # get_ciphers() says "kx-ecdhe", "auth-ecdsa", "auth-null": keep the algorithm.
    return value.split("-", 1)[-1].upper()


def offers_dss(context: ssl.SSLContext) -> bool:
    """Whether the context offers a DHE-DSS suite (what a DSA certificate needs)."""
    return any(cipher["auth"] == "auth-dss" for cipher in context.get_ciphers())

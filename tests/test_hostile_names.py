"""Host names and addresses the resolver refuses (issue 9, family 6).

``a..b``, ``.`` or a 64-character label make Python's IDNA codec raise
``UnicodeError`` inside getaddrinfo, in the lookup's thread: that printed a
thread traceback, then "did not finish within 2 s" once the join timed out.
The resolver now answers ``dns_failure`` with the reason, at once. Scoped and
link-local IPv6 addresses are dialled (or refused) without a crash.

Whether a command line catches such a name before any I/O (a usage error,
exit 2) is ``config``'s business; the resolver must hold whoever calls it.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqtt_tls_probe.adapters import net
from mqtt_tls_probe.dev.pki import PkiFiles
from mqtt_tls_probe.errors import ErrorKind, ProbeError

from .helpers import probe, probe_json
from .mqtt5_server import Behaviour, mqtt5_session
from .servers import TcpServer, ipv6_loopback, server_context, tls_handler

INVALID_NAMES = ["a..b", ".", "a" * 64 + ".example", "a" * 300]


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_the_resolver_refuses_an_invalid_name_at_once(name: str) -> None:
    started = time.monotonic()
    with pytest.raises(ProbeError) as raised:
        net.resolve(name, 18883, 2.0)
    assert time.monotonic() - started < 0.5  # not the 2 s timeout
    assert raised.value.kind is ErrorKind.DNS_FAILURE
    assert "is not a valid host name: label" in raised.value.message
    assert "did not finish" not in raised.value.message


@pytest.mark.parametrize("name", INVALID_NAMES[:3])
def test_connect_to_an_invalid_name_has_no_traceback(name: str) -> None:
    started = time.monotonic()
    result = probe("connect", name, "--insecure", "--timeout", "2", "--output", "json")
    assert time.monotonic() - started < 1.5
    assert "Traceback" not in result.stderr
    # A usage error once the command line checks host names (config), else the resolver's.
    assert result.exit_code in (2, 4), result.stdout
    if result.exit_code == 4:
        code, doc = probe_json("connect", name, "--insecure", "--timeout", "2")
        assert code == 4
        assert doc["error"]["kind"] == "dns_failure"
        assert "not a valid host name" in doc["error"]["message"]


def test_a_valid_name_that_does_not_exist_is_still_told_apart() -> None:
    """The twin: a well-formed name that does not resolve keeps its own message."""
    with pytest.raises(ProbeError) as raised:
        net.resolve("broker.invalid", 18883, 5.0)
    assert raised.value.kind is ErrorKind.DNS_FAILURE
    assert "does not resolve" in raised.value.message


# --- IPv6 literals with and without their interface ------------------------------------------


def test_a_scoped_ipv6_address_is_dialled_on_its_interface(pki: PkiFiles) -> None:
    """The adapters dial ``::1%lo`` on its interface (library callers may pass one).

    The command line refuses scoped targets with a usage error that says why
    (``test_hostile_flags.py::test_a_scoped_ipv6_target_says_why``).
    """
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    context = server_context(pki.server_cert, pki.server_key)
    with TcpServer(tls_handler(context, after=mqtt5_session(Behaviour())), host="::1") as server:
        addresses = net.resolve("::1%lo", server.port, 5.0)
        sock, address = net.connect(addresses, 5.0)
        sock.close()
    assert str(address).startswith("[::1%")


def test_an_unknown_interface_is_a_dns_failure() -> None:
    with pytest.raises(ProbeError) as raised:
        net.resolve("::1%no-such-if", 1, 1.0)
    assert raised.value.kind is ErrorKind.DNS_FAILURE
    assert "'no-such-if'" in raised.value.message


def test_a_link_local_address_without_its_interface_is_unreachable(pki: PkiFiles) -> None:
    code, doc = probe_json("connect", "[fe80::1]:1", "--ca-file", str(pki.ca_cert))
    assert code == 4
    assert doc["error"]["kind"] == "network_unreachable"


@pytest.mark.parametrize(
    "name", ["localhost", "aio-broker.azure-iot-operations", "a" * 63, "a..b", "a" * 64, "", "x."]
)
def test_the_idna_fast_path_answers_as_the_codec_does(name: str) -> None:
    from mqtt_tls_probe.core.names import idna_fast_path

    try:
        expected: bytes | None = name.encode("idna")
    except UnicodeError:
        expected = None
    fast = idna_fast_path(name)
    assert fast is None or fast == expected  # never a different answer
    assert (fast is None) is (expected is None)  # the codec's refusals stay the codec's


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=80))
def test_the_idna_fast_path_never_disagrees_with_the_codec(name: str) -> None:
    from mqtt_tls_probe.core.names import idna_fast_path

    try:
        expected: bytes | None = name.encode("idna")
    except UnicodeError:
        expected = None
    assert idna_fast_path(name) == expected

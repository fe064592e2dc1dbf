"""The ``resolve`` and ``tcp`` stages: name resolution and the TCP connection.

Failures are classified by ``core.classify`` on errno and getaddrinfo codes.
Whatever the lookup raises (getaddrinfo's errors, the IDNA codec's
``UnicodeError`` for a name such as ``a..b``) is a ``dns_failure`` with its
reason: never a traceback from the lookup's thread, never a false timeout.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from mqtt_tls_probe.core import classify
from mqtt_tls_probe.core.names import idna_fast_path
from mqtt_tls_probe.errors import ErrorInfo, ProbeError


class Address(NamedTuple):
    family: socket.AddressFamily
    sockaddr: tuple[str, int] | tuple[str, int, int, int]

    @property
    def ip(self) -> str:
        return self.sockaddr[0]

    def __str__(self) -> str:
        ip, port = self.sockaddr[0], self.sockaddr[1]
        if self.family != socket.AF_INET6:
            return f"{ip}:{port}"
        scope = self.sockaddr[3] if len(self.sockaddr) == 4 else 0
        return f"[{ip}%{scope}]:{port}" if scope else f"[{ip}]:{port}"


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(host: str, port: int, timeout: float) -> list[Address]:
    """All addresses of ``host``, in the resolver's order, within ``timeout`` seconds.

    Raises:
        ProbeError: ``dns_failure``.
    """
    if is_ip_literal(host):
        return [_literal_address(host, port)]
    outcome: list[list[Address] | Exception] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(idna_fast_path(host) or host, port, type=socket.SOCK_STREAM)
            outcome.append([Address(info[0], info[4][:4]) for info in infos])  # type: ignore[arg-type]
        except Exception as exc:  # any failure of the lookup is its answer: no thread traceback
            outcome.append(exc)

    # getaddrinfo() has no timeout of its own: bound the wait in a thread.
    worker = threading.Thread(target=lookup, name="probe-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise ProbeError.from_info(classify.dns_timeout(host, timeout))
    result = outcome[0]
    if isinstance(result, Exception):
        raise ProbeError.from_info(_lookup_error(host, result)) from result
    # getaddrinfo may list an address once per protocol; keep the first of each.
    return list(dict.fromkeys(result))


def _lookup_error(host: str, exc: Exception) -> ErrorInfo:
    if isinstance(exc, socket.gaierror):
        code = exc.args[0] if exc.args else None
        return classify.dns_error(host, code, exc.strerror)
    if isinstance(exc, UnicodeError):
        # The IDNA codec's words: "encoding with 'idna' codec failed (UnicodeError: label
        # empty or too long)"; the reason is the last part.
        reason = str(exc).rsplit("UnicodeError: ", 1)[-1].rstrip(")")
        return classify.invalid_host_name(host, reason)
    return classify.dns_error(host, None, f"{type(exc).__name__}: {exc}")


def _literal_address(host: str, port: int) -> Address:
    """An IP address written as the target; an IPv6 one may name its interface (``%lo``)."""
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv4Address):
        return Address(socket.AF_INET, (str(ip), port))
    scope = _interface_index(host, ip.scope_id) if ip.scope_id else 0
    return Address(socket.AF_INET6, (str(ipaddress.IPv6Address(int(ip))), port, 0, scope))


def _interface_index(host: str, scope: str) -> int:
    if scope.isdigit():
        return int(scope)
    try:
        return socket.if_nametoindex(scope)
    except OSError as exc:
        raise ProbeError.from_info(classify.unknown_interface(host, scope)) from exc


def connect(
    addresses: list[Address],
    timeout: float,
    on_open: Callable[[socket.socket], None] | None = None,
) -> tuple[socket.socket, Address]:
    """The first address that accepts a TCP connection, within ``timeout`` seconds overall.

    The socket comes back blocking with TCP_NODELAY set: MQTT packets are small
    and Nagle's algorithm would add tens of milliseconds to every timing.
    ``on_open`` sees each socket before it connects (a scan's deadline can cut it).
    """
    deadline = time.monotonic() + timeout
    failures: list[tuple[Address, OSError]] = []
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            sock = socket.socket(address.family, socket.SOCK_STREAM)
        except OSError as exc:  # no IPv6 on this machine (EAFNOSUPPORT)
            failures.append((address, exc))
            continue
        if on_open is not None:
            on_open(sock)
        sock.settimeout(remaining)
        try:
            sock.connect(address.sockaddr)
        except OSError as exc:
            sock.close()
            failures.append((address, exc))
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address
    raise _tcp_error(addresses, failures, timeout)


def _tcp_error(
    addresses: list[Address], failures: list[tuple[Address, OSError]], timeout: float
) -> ProbeError:
    tried = ", ".join(str(a) for a, _ in failures) or ", ".join(str(a) for a in addresses)
    info = classify.connect_error(
        tried,
        [exc.errno for _, exc in failures],
        timed_out=any(isinstance(exc, TimeoutError) for _, exc in failures),
        strerror=failures[0][1].strerror if failures else None,
        timeout=timeout,
    )
    if info is None:
        raise failures[0][1]  # unclassified: a gap in the table, reported as a bug (exit 1)
    return ProbeError.from_info(info)

"""The ``resolve`` and ``tcp`` stages: name resolution and the TCP connection.

Failures are classified by ``core.classify`` on errno and getaddrinfo codes.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mqtt_tls_probe.core import classify
from mqtt_tls_probe.errors import ProbeError


@dataclass(frozen=True)
class Address:
    family: socket.AddressFamily
    sockaddr: tuple[str, int] | tuple[str, int, int, int]

    @property
    def ip(self) -> str:
        return self.sockaddr[0]

    def __str__(self) -> str:
        ip, port = self.sockaddr[0], self.sockaddr[1]
        return f"[{ip}]:{port}" if self.family == socket.AF_INET6 else f"{ip}:{port}"


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(host: str, port: int, timeout: float) -> list[Address]:
    """All addresses of ``host``, in the resolver's order, within ``timeout`` seconds."""
    if is_ip_literal(host):
        ip = ipaddress.ip_address(host)
        if ip.version == 6:
            return [Address(socket.AF_INET6, (str(ip), port, 0, 0))]
        return [Address(socket.AF_INET, (str(ip), port))]
    outcome: list[list[Address] | socket.gaierror] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome.append([Address(info[0], info[4][:4]) for info in infos])  # type: ignore[arg-type]
        except socket.gaierror as exc:
            outcome.append(exc)

    # getaddrinfo() has no timeout of its own: bound the wait in a thread.
    worker = threading.Thread(target=lookup, name="probe-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise ProbeError.from_info(classify.dns_timeout(host, timeout))
    result = outcome[0]
    if isinstance(result, socket.gaierror):
        code = result.args[0] if result.args else None
        raise ProbeError.from_info(classify.dns_error(host, code, result.strerror))
    # getaddrinfo may list an address once per protocol; keep the first of each.
    return list(dict.fromkeys(result))


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
        sock = socket.socket(address.family, socket.SOCK_STREAM)
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

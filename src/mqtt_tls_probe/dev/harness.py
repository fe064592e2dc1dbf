"""The local test harness: an amqtt broker with a TLS listener.

One implementation serves ``probe broker`` (foreground, until a signal),
``probe demo`` and the test suite (a background thread, often on port 0).

Facts about amqtt 0.12 this module relies on:
- its config needs a listener named ``default``, and the built-in default binds
  0.0.0.0:1883, so the bind address is always given explicitly;
- it speaks MQTT 3.1.1 only (a v5 CONNECT gets return code 1);
- the listener's client-certificate mode is fixed to optional; without
  ``cafile`` it would trust the system CAs, so the harness passes its own CA;
- with port 0 the bound port is only visible on the broker's private server
  objects: ``_bound_port`` is the one place that reaches into them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mqtt_tls_probe.dev.pki import PkiFiles
from mqtt_tls_probe.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class BrokerHandle:
    """Where a running harness broker listens, and the CA a client must trust."""

    host: str
    port: int
    ca_file: Path

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def broker_config(pki: PkiFiles, host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {
            "default": {
                "type": "tcp",
                # amqtt splits on the last colon, so IPv6 hosts go in bare.
                "bind": f"{host}:{port}",
                "ssl": True,
                "certfile": str(pki.server_cert),
                "keyfile": str(pki.server_key),
                "cafile": str(pki.ca_cert),
            }
        },
        # Anonymous access and nothing else: no $SYS publisher, no packet logger.
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _bound_port(broker: Any) -> int:
    server = broker._servers["default"].instance
    return int(server.sockets[0].getsockname()[1])


def _probe_noise(record: logging.LogRecord) -> bool:
    # amqtt logs at ERROR every connection that closes before CONNECT; for a
    # probe's harness that is routine (chain reads, port checks), not an error.
    # A failed start it logs with a traceback: serve_forever says why in one line.
    message = str(record.msg)
    return not (message.startswith("No data from") or message == "Broker startup failed")


def _quiet_amqtt(verbose: bool) -> None:
    logging.getLogger("amqtt").setLevel(logging.INFO if verbose else logging.ERROR)
    broker_log = logging.getLogger("amqtt.broker")
    if not verbose and _probe_noise not in broker_log.filters:
        broker_log.addFilter(_probe_noise)
    # transitions logs every state change of every session at INFO.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def _log_quietly(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # amqtt lets a client's abrupt close escape as "Unhandled exception in
    # client_connected_cb"; probes close abruptly on purpose (refused CONNECT,
    # handshake tests), so keep those tracebacks out of the user's terminal.
    logging.getLogger("amqtt").debug("event loop: %s", context.get("message"))
    del loop


async def _start(pki: PkiFiles, host: str, port: int) -> Any:
    from amqtt.broker import Broker  # heavy (~0.4 s): only where a broker runs

    broker = Broker(broker_config(pki, host, port))
    await broker.start()
    return broker


class BackgroundBroker:
    """The harness broker on its own event loop in a daemon thread.

    >>> with BackgroundBroker(pki, port=0) as handle:
    ...     print(handle.port)
    """

    def __init__(self, pki: PkiFiles, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self._pki = pki
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = _START_TIMEOUT) -> BrokerHandle:
        _quiet_amqtt(verbose=False)
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.set_exception_handler(_log_quietly)
            try:
                self._broker = loop.run_until_complete(_start(self._pki, self._host, self._port))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="probe-harness-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"the harness broker did not start within {timeout:g} s")
        if failure:
            raise RuntimeError(f"the harness broker did not start: {failure[0]}") from failure[0]
        return BrokerHandle(self._host, _bound_port(self._broker), self._pki.ca_cert)

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        loop, thread, broker = self._loop, self._thread, self._broker
        if loop is None or thread is None:
            return
        if broker is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(timeout)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._loop = self._thread = self._broker = None

    def __enter__(self) -> BrokerHandle:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_broker(
    pki: PkiFiles, host: str = DEFAULT_HOST, port: int = 0
) -> Iterator[BrokerHandle]:
    broker = BackgroundBroker(pki, host, port)
    handle = broker.start()
    try:
        yield handle
    finally:
        broker.stop()


def serve_forever(
    pki: PkiFiles,
    host: str,
    port: int,
    on_ready: Callable[[BrokerHandle], None],
    *,
    verbose: bool = False,
) -> None:
    """Run the broker in the foreground until SIGINT or SIGTERM, then shut it down.

    Raises:
        UsageError: the broker cannot listen there (the port is taken, the host
            is no local address).
    """
    _quiet_amqtt(verbose)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_log_quietly)
        try:
            broker = await _start(pki, host, port)
        except Exception as exc:  # amqtt's BrokerError, around bind's or getaddrinfo's error
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc}; choose another --host or --port"
            ) from exc
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        on_ready(BrokerHandle(host, _bound_port(broker), pki.ca_cert))
        try:
            await stop.wait()
        finally:
            await asyncio.wait_for(broker.shutdown(), _STOP_TIMEOUT)

    asyncio.run(main())

"""``probe broker``: the local harness broker, until interrupted."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mqtt_tls_probe import aio
from mqtt_tls_probe.cli.application import app, guarded, runs_long, write_lines
from mqtt_tls_probe.cli.options import VerboseOpt, path_option

if TYPE_CHECKING:
    from mqtt_tls_probe.dev.harness import BrokerHandle


@app.command()
@guarded
def broker(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="TLS port.")
    ] = aio.BROKER_PORT,
    certs: Annotated[
        Path, path_option("--certs", "PKI directory (created when missing).", show_default=True)
    ] = Path("certs"),
    verbose: VerboseOpt = False,
) -> None:
    """Run the local harness: an amqtt MQTT 3.1.1 broker with a TLS listener, until Ctrl-C.

    Example:

    \b
    probe broker --certs certs --port 18883
    """
    runs_long()
    from mqtt_tls_probe.dev.harness import serve_forever
    from mqtt_tls_probe.dev.pki import ensure_pki

    files, created = ensure_pki(certs)
    if created:
        write_lines(f"created a development PKI in {certs}")
    serve_forever(files, host, port, _announce, verbose=verbose)
    write_lines("harness broker stopped")


def _announce(handle: "BrokerHandle") -> None:
    write_lines(
        f"harness broker (amqtt, MQTT 3.1.1) listening on mqtts://{handle.address}",
        f"clients must trust: {handle.ca_file}",
        f"try: probe connect {handle.address} --ca-file {handle.ca_file} --roundtrip",
        "stop with Ctrl-C",
    )

"""``probe tls TARGET``: what a TLS endpoint accepts."""

from typing import Annotated

import typer

from mqtt_tls_probe.cli.application import app, emit, guarded
from mqtt_tls_probe.cli.options import OutputOpt, ServerNameOpt, TimeoutOpt, VerboseOpt
from mqtt_tls_probe.output import OutputFormat


@app.command("tls")
@guarded
def tls(
    target: Annotated[str, typer.Argument(help="host:port, [ipv6]:port, or host with --port.")],
    port: Annotated[
        int | None,
        typer.Option(
            "--port", "-p", min=1, max=65535, help="Port [default: 18883].", show_default=False
        ),
    ] = None,
    server_name: ServerNameOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """What a TLS endpoint accepts: versions, TLS 1.2 suites, ALPN, client certificates.

    One short handshake per question, 8 at a time, each bounded by --timeout:
    TLS 1.0 to 1.3, every TLS 1.2 suite the local OpenSSL knows and whether the
    server imposes its order, the TLS 1.3 suite chosen, ALPN, the client
    certificate request and its CA names, session resumption, and the chain as
    sent (read, not trusted), with findings rated high, medium, low. Exit 0
    once the endpoint answered in TLS; 4 unreachable; 5 not TLS.

    Example:

    \b
    probe tls localhost:18883 --server-name aio-broker
    """
    from mqtt_tls_probe.orchestrators.tls_scan import scan_tls

    emit(scan_tls(target, server_name, timeout, port=port), output, verbose=verbose)

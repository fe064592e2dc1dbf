"""``probe inspect``: certificates from a file, or the chain a server sends."""

from typing import Annotated

import typer

from mqtt_tls_probe.cli.application import app, emit, guarded
from mqtt_tls_probe.cli.options import OutputOpt, ServerNameOpt, TimeoutOpt, TraceOpt, VerboseOpt
from mqtt_tls_probe.output import OutputFormat


@app.command()
@guarded
def inspect(
    source: Annotated[str, typer.Argument(help="Certificate file (PEM or DER), or host:port.")],
    server_name: ServerNameOpt = None,
    trace: TraceOpt = False,
    output: OutputOpt = OutputFormat.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Show certificates from a file, or the chain a server sends (without trusting it).

    Example:

    \b
    probe inspect localhost:18883 --server-name aio-broker
    """
    from mqtt_tls_probe.orchestrators.inspect import inspect_source

    emit(inspect_source(source, server_name, timeout, trace=trace), output, verbose=verbose)

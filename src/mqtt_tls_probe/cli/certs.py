"""``probe certs init``: a development PKI in the quickstart CA's profile."""

from pathlib import Path
from typing import Annotated

import typer

from mqtt_tls_probe.cli.application import certs_app, emit, guarded
from mqtt_tls_probe.cli.options import OutputOpt, VerboseOpt, local_path
from mqtt_tls_probe.output import OutputFormat


@certs_app.command("init")
@guarded
def certs_init(
    directory: Annotated[
        Path, typer.Argument(help="Where to write the files.", parser=local_path, metavar="DIR")
    ] = Path("certs"),
    days: Annotated[float, typer.Option("--days", min=0.01, help="Validity in days.")] = 30,
    san: Annotated[
        list[str] | None,
        typer.Option("--san", help="Extra server name or IP (repeatable), e.g. aio-broker."),
    ] = None,
    client: Annotated[
        bool, typer.Option("--client", help="Also make client.crt/client.key.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
    output: OutputOpt = OutputFormat.TEXT,
    verbose: VerboseOpt = False,
) -> None:
    """Create ca.crt/ca.key and server.crt/server.key in the quickstart CA's profile.

    The CA: ECDSA P-256, "CN=Azure IoT Operations Quickstart Root CA - Not for
    Production", 30 days. The server certificate lists localhost, 127.0.0.1
    and ::1, plus every --san. Keys are written with mode 0600.

    Example:

    \b
    probe certs init certs --san aio-broker --client
    """
    from mqtt_tls_probe.orchestrators.certs_init import certs_init as run

    report = run(directory, days=days, extra_sans=tuple(san or ()), client=client, force=force)
    emit(report, output, verbose=verbose)

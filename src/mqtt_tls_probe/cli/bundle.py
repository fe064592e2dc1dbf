"""``probe bundle``: the trust bundle's CA certificates."""

from pathlib import Path
from typing import Annotated

import typer

from mqtt_tls_probe import aio
from mqtt_tls_probe.cli.application import app, emit, guarded, write_stderr, write_stdout
from mqtt_tls_probe.cli.options import (
    CaFileOpt,
    ConfigMapKeyOpt,
    ConfigMapOpt,
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    OutputOpt,
    TimeoutOpt,
    VerboseOpt,
    cluster_options,
    path_option,
)
from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.output import OutputFormat


@app.command()
@guarded
def bundle(
    ca_file: CaFileOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = aio.NAMESPACE,
    configmap: ConfigMapOpt = None,
    configmap_key: ConfigMapKeyOpt = aio.TRUST_BUNDLE_KEY,
    pem: Annotated[bool, typer.Option("--pem", help="Print the bundle as PEM instead.")] = False,
    out: Annotated[
        Path | None,
        path_option("--out", "Write the bundle's PEM to this file (see --force)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Let --out replace an existing file.")
    ] = False,
    output: OutputOpt = OutputFormat.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Show the trust bundle's CA certificates (from the cluster, or --ca-file).

    Example:

    \b
    probe bundle --context aio-cluster --out ca.crt
    """
    from mqtt_tls_probe.orchestrators.bundle import bundle_report

    if pem and output is not OutputFormat.TEXT:
        raise UsageError("--pem prints PEM, not JSON: drop --output json, or drop --pem")
    cluster = cluster_options(kubeconfig, context, namespace, configmap, configmap_key)
    report = bundle_report(ca_file, cluster, timeout, out=out, force=force)
    if not pem:
        emit(report, output, verbose=verbose)
    from mqtt_tls_probe.output.text import pem_or_failure

    stdout, stderr = pem_or_failure(report)
    write_stdout(stdout)
    write_stderr(*stderr.splitlines())
    raise typer.Exit(report.exit_code)

"""``probe cluster``: the CA's health on the cluster side; ``--listeners``: the listeners."""

from typing import Annotated

import typer

from mqtt_tls_probe import aio
from mqtt_tls_probe.cli.application import app, emit, guarded
from mqtt_tls_probe.cli.options import (
    ConfigMapKeyOpt,
    ConfigMapOpt,
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    OutputOpt,
    TimeoutOpt,
    VerboseOpt,
    cluster_options,
)
from mqtt_tls_probe.output import OutputFormat


@app.command()
@guarded
def cluster(
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = aio.NAMESPACE,
    configmap: ConfigMapOpt = None,
    configmap_key: ConfigMapKeyOpt = aio.TRUST_BUNDLE_KEY,
    listeners: Annotated[
        bool,
        typer.Option(
            "--listeners",
            help="Instead: list the BrokerListener ports and how --discover would probe "
            "each (needs list brokerlisteners, brokerauthentications; get services).",
        ),
    ] = False,
    output: OutputOpt = OutputFormat.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Check the CA on the cluster side: trust bundle, CA expiry, CA Secret, Issuer.

    Reads the Secret as metadata only: the CA's private key never leaves the cluster.
    With --listeners: the broker's listener ports, as --discover sees them.

    Example:

    \b
    probe cluster --context aio-cluster --output json
    probe cluster --listeners
    """
    options = cluster_options(kubeconfig, context, namespace, configmap, configmap_key)
    if listeners:
        from mqtt_tls_probe.orchestrators.discover import listeners_report

        emit(listeners_report(options, timeout), output, verbose=verbose)
    from mqtt_tls_probe.orchestrators.cluster_checks import run_cluster_checks

    emit(run_cluster_checks(options, timeout), output, verbose=verbose)

"""``probe demo``: the one-command tour."""

from mqtt_tls_probe.cli.application import app, emit, guarded
from mqtt_tls_probe.cli.options import OutputOpt, TimeoutOpt, VerboseOpt
from mqtt_tls_probe.output import OutputFormat


@app.command()
@guarded
def demo(
    output: OutputOpt = OutputFormat.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """The one-command tour: a temporary PKI, the harness broker, connect --roundtrip, stop.

    Example:

    \b
    probe demo
    """
    from mqtt_tls_probe.dev.demo import run_demo

    emit(run_demo(timeout), output, verbose=verbose)

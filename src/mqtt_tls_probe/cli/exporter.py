"""``probe exporter``: Prometheus metrics of probes, until SIGINT or SIGTERM."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mqtt_tls_probe import aio
from mqtt_tls_probe.cli.application import app, guarded, runs_long, write_stdout
from mqtt_tls_probe.cli.options import (
    AlpnOpt,
    CaFileOpt,
    CertOpt,
    ConfigMapKeyOpt,
    ConfigMapOpt,
    ContextOpt,
    KeyOpt,
    KubeconfigOpt,
    MqttVersion,
    NamespaceOpt,
    OutputOpt,
    RoundtripOpt,
    ServerNameOpt,
    TimeoutOpt,
    TlsMinOpt,
    TopicOpt,
    VerboseOpt,
    aio_option,
    cluster_options,
)
from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.output import OutputFormat
from mqtt_tls_probe.output.escape import escape_controls

if TYPE_CHECKING:
    from mqtt_tls_probe.exporter.loop import EventLog, TargetSource
    from mqtt_tls_probe.exporter.modules import Module
    from mqtt_tls_probe.exporter.settings import ExporterSettings

_STOP_TIMEOUT = 5.0


@app.command()
@guarded
def exporter(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to serve /probe and /metrics on.")
    ] = "127.0.0.1:9883",
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file of named modules (and allow_targets); see README, Operations.",
            show_default=False,
        ),
    ] = None,
    allow_target: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-target",
            help="GLOB of HOST:PORT that /probe may connect to (repeatable) [default: "
            "127.0.0.1:*, [::1]:*, localhost:*, aio-broker:*, aio-broker.*:*].",
            show_default=False,
        ),
    ] = None,
    max_concurrent: Annotated[
        int,
        typer.Option("--max-concurrent", min=1, help="Probes at once; /probe beyond it: 503."),
    ] = 8,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="HOST:PORT the background loop probes with the default module (repeatable); "
            "results on /metrics with a target label.",
            show_default=False,
        ),
    ] = None,
    discover: Annotated[
        bool,
        typer.Option("--discover", help="Probe the broker's listeners found in the cluster."),
    ] = False,
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval",
            help="Time between rounds of the background loop: 60s, 5m, 500ms [default: 60s].",
            show_default=False,
        ),
    ] = None,
    ca_file: CaFileOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = aio.NAMESPACE,
    configmap: ConfigMapOpt = None,
    configmap_key: ConfigMapKeyOpt = aio.TRUST_BUNDLE_KEY,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure", help="Do not verify the server (probe_success says nothing of trust)."
        ),
    ] = False,
    server_name: ServerNameOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    tls_min: TlsMinOpt = None,
    alpn: AlpnOpt = None,
    mqtt_version: Annotated[
        MqttVersion | None,
        typer.Option(
            "--mqtt-version",
            help="MQTT version [default: 5, retried once as 3.1.1 if the broker refuses 5].",
            show_default=False,
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        aio_option(
            "--client-id",
            "MQTT client id [default: probe-<random>, new per probe].",
            "AIO_MQTT_CLIENT_ID",
        ),
    ] = None,
    username: Annotated[
        str | None, aio_option("--username", "MQTT user name.", "AIO_MQTT_USERNAME")
    ] = None,
    password_file: Annotated[
        Path | None,
        aio_option(
            "--password-file",
            "File holding the MQTT password, read for every probe (else $PROBE_MQTT_PASSWORD).",
            "AIO_MQTT_PASSWORD_FILE",
        ),
    ] = None,
    sat_file: Annotated[
        Path | None,
        aio_option(
            "--sat-file",
            "Kubernetes service account token (K8S-SAT), read for every probe: tokens rotate.",
            "AIO_SAT_FILE",
        ),
    ] = None,
    roundtrip: RoundtripOpt = False,
    topic: TopicOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Serve Prometheus metrics of probes: /probe?target=HOST:PORT&module=NAME, and /metrics.

    /probe runs one probe per request, the way blackbox_exporter does, with the
    options of a module: 'default' is set by this command's connect flags,
    --config adds named ones. Only targets matching --allow-target are probed
    (else 403). --target runs a background loop every --interval whose results
    are on /metrics. Log lines (start, stop, failures; every request with -v)
    go to stdout as text or, with --output json, one JSON object each. Stops
    cleanly on SIGINT or SIGTERM.

    Example:

    \b
    probe exporter --ca-file ca.crt --server-name aio-broker --sat-file token
    curl 'localhost:9883/probe?target=127.0.0.1:18883'
    """
    runs_long()
    from mqtt_tls_probe.config import ConnectInputs
    from mqtt_tls_probe.exporter.modules import DEFAULT_MODULE, Module, load_config_file
    from mqtt_tls_probe.exporter.settings import (
        DEFAULT_INTERVAL,
        ExporterSettings,
        parse_interval,
        parse_listen,
    )
    from mqtt_tls_probe.exporter.targets import DEFAULT_ALLOW_TARGETS, AllowList

    default = Module(
        DEFAULT_MODULE,
        ConnectInputs(
            ca_file=ca_file,
            insecure=insecure,
            cluster=cluster_options(kubeconfig, context, namespace, configmap, configmap_key),
            server_name=server_name,
            cert=cert,
            key=key,
            tls_min=tls_min.value if tls_min else None,
            alpn=tuple(alpn or ()),
            mqtt_version=mqtt_version.value if mqtt_version else None,
            client_id=client_id,
            username=username,
            password_file=password_file,
            sat_file=sat_file,
            roundtrip=roundtrip,
            topic=topic,
            timeout=timeout,
        ),
    )
    default.validate()
    modules, globs = {DEFAULT_MODULE: default}, list(allow_target or ())
    if config is not None:
        loaded = load_config_file(config)
        modules.update(loaded.modules)
        globs += loaded.allow_targets
    host, port = parse_listen(listen)
    if interval is not None and not (target or discover):
        raise UsageError("--interval paces the background loop: add --target or --discover")
    settings = ExporterSettings(
        modules=modules,
        host=host,
        port=port,
        allow=AllowList.of(globs or DEFAULT_ALLOW_TARGETS),
        max_concurrent=max_concurrent,
        interval=parse_interval(interval) if interval is not None else DEFAULT_INTERVAL,
    )
    source = _target_source(tuple(target or ()), default, discover=discover)
    _serve(settings, source, _event_log(output), verbose=verbose)


def _target_source(
    targets: tuple[str, ...], default: "Module", *, discover: bool
) -> "TargetSource | None":
    """What the background loop probes: the --target list, or the cluster's listeners.

    ``--discover``: a ``TargetSource`` that lists the BrokerListener resources
    (with the cluster flags) each round and returns ``(target, ProbeConfig)``
    for each port, built from the default module's inputs
    (``exporter.discovered``). Not with ``--target``: one source or the other.
    """
    from mqtt_tls_probe.exporter.loop import static_targets

    if discover:
        if targets:
            raise UsageError("--discover and --target both name what to probe: pick one")
        from mqtt_tls_probe.exporter.discovered import discovered_targets

        return discovered_targets(default)
    return static_targets(targets, default) if targets else None


def _serve(
    settings: "ExporterSettings", source: "TargetSource | None", log: "EventLog", *, verbose: bool
) -> None:
    from mqtt_tls_probe.exporter.server import start_exporter

    try:
        running = start_exporter(settings, target_source=source, log=log, verbose=verbose)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from exc
    import signal
    import threading

    stopping = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stopping.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        log(
            "listening",
            url=running.url,
            modules=",".join(sorted(settings.modules)),
            allow=",".join(settings.allow.globs),
            background=source is not None,
        )
        while not stopping.wait(1.0):
            pass
        log("stopping")
    finally:
        running.stop(_STOP_TIMEOUT)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log("stopped")


def _event_log(output: OutputFormat) -> "EventLog":
    """One line per event on stdout: ``key=value`` text, or a JSON object with --output json."""
    import json  # here, not at the top: every probe command imports this module
    import shlex
    import threading

    lock = threading.Lock()

    def log(event: str, **fields: object) -> None:
        present = {name: value for name, value in fields.items() if value is not None}
        if output is OutputFormat.JSON:
            line = json.dumps({"event": event, **present}, default=str)
        else:
            pairs = "".join(f" {name}={shlex.quote(str(v))}" for name, v in present.items())
            line = f"probe exporter: {event}{pairs}"
        with lock:  # values may come from the cluster or a broker: no raw control character
            write_stdout(escape_controls(line) + "\n")

    return log

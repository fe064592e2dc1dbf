"""``probe connect``: the staged test of one broker."""

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from mqtt_tls_probe import aio
from mqtt_tls_probe.cli.application import app, emit, guarded
from mqtt_tls_probe.cli.options import (
    AlpnOpt,
    CaFileOpt,
    CertOpt,
    CiphersOpt,
    ConfigMapKeyOpt,
    ConfigMapOpt,
    ContextOpt,
    InsecureOpt,
    IntervalOpt,
    JunitOpt,
    KeyOpt,
    KubeconfigOpt,
    MqttVersionOpt,
    NamespaceOpt,
    OutputOpt,
    PasswordFileOpt,
    RepeatOpt,
    RoundtripOpt,
    SatAudienceOpt,
    SatFileOpt,
    SatServiceAccountOpt,
    ServerNameOpt,
    TimeoutOpt,
    TlsMaxOpt,
    TlsMinOpt,
    TopicOpt,
    TraceOpt,
    UsernameOpt,
    VerboseOpt,
    aio_option,
    cluster_options,
)
from mqtt_tls_probe.output import OutputFormat


@app.command(no_args_is_help=False)
@guarded
def connect(
    target: Annotated[
        str,
        typer.Argument(
            help="host, host:port or [ipv6]:port.",
            envvar="AIO_BROKER_HOSTNAME",
            show_default="localhost",
        ),
    ] = "localhost",
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            "-p",
            min=1,
            max=65535,
            help="Broker port [default: 18883].",
            envvar="AIO_BROKER_TCP_PORT",
            show_default=False,
        ),
    ] = None,
    ca_file: CaFileOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = aio.NAMESPACE,
    configmap: ConfigMapOpt = None,
    configmap_key: ConfigMapKeyOpt = aio.TRUST_BUNDLE_KEY,
    insecure: InsecureOpt = False,
    server_name: ServerNameOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    tls_min: TlsMinOpt = None,
    tls_max: TlsMaxOpt = None,
    ciphers: CiphersOpt = None,
    alpn: AlpnOpt = None,
    trace: TraceOpt = False,
    tls_keylog: Annotated[
        Path | None,
        typer.Option(
            "--tls-keylog",
            help="Write the session's TLS secrets to this new file (NSS key log format, "
            "mode 0600) for Wireshark. It decrypts the session: delete it after use.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --tls-keylog: replace an existing file.")
    ] = False,
    mqtt_version: MqttVersionOpt = None,
    client_id: Annotated[
        str | None,
        aio_option(
            "--client-id", "MQTT client id [default: probe-<random>].", "AIO_MQTT_CLIENT_ID"
        ),
    ] = None,
    username: UsernameOpt = None,
    password_file: PasswordFileOpt = None,
    sat_file: SatFileOpt = None,
    port_forward: Annotated[
        bool,
        typer.Option(
            "--port-forward",
            help="TARGET is a Service (SERVICE[.NAMESPACE]:PORT): reach a ready pod behind it "
            "through the API server, as kubectl port-forward does.",
        ),
    ] = False,
    sat_serviceaccount: SatServiceAccountOpt = None,
    sat_audience: SatAudienceOpt = None,
    roundtrip: RoundtripOpt = False,
    topic: TopicOpt = None,
    junit: JunitOpt = None,
    repeat: RepeatOpt = None,
    interval: IntervalOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Test one broker stage by stage: trust, resolve, tcp, tls, verify, mqtt[, roundtrip].

    Without --ca-file the trust bundle comes from the cluster (the ConfigMap
    aio-ca-trust-bundle-test-only in azure-iot-operations). Flags win over the
    AIO_* environment variables of the Azure IoT Operations SDKs.

    Example:

    \b
    probe connect localhost:18883 --ca-file ca.crt --server-name aio-broker --roundtrip
    probe connect localhost:18883 --ca-file ca.crt --trace --tls-max 1.2
    """
    from mqtt_tls_probe.config import ConnectInputs, build_probe_config
    from mqtt_tls_probe.orchestrators.connect import run_probe

    config = build_probe_config(
        ConnectInputs(
            target=target,
            port=port,
            ca_file=ca_file,
            insecure=insecure,
            cluster=cluster_options(kubeconfig, context, namespace, configmap, configmap_key),
            server_name=server_name,
            cert=cert,
            key=key,
            tls_min=tls_min.value if tls_min else None,
            tls_max=tls_max.value if tls_max else None,
            ciphers=ciphers,
            alpn=tuple(alpn or ()),
            trace=trace,
            tls_keylog=tls_keylog,
            force=force,
            mqtt_version=mqtt_version.value if mqtt_version else None,
            client_id=client_id,
            username=username,
            password_file=password_file,
            sat_file=sat_file,
            sat_serviceaccount=sat_serviceaccount,
            port_forward=port_forward,
            sat_audience=sat_audience,
            roundtrip=roundtrip,
            topic=topic,
            timeout=timeout,
        )
    )
    series = repeat is not None or interval is not None
    if junit is None and not series:
        emit(run_probe(config), output, verbose=verbose)
    with contextlib.ExitStack() as files:
        junit_file = None
        if junit is not None:  # refused (exit 2) before anything is probed
            from mqtt_tls_probe.adapters.report_file import report_file

            junit_file = files.enter_context(report_file(junit))
        started = datetime.now(UTC)
        if series:
            from mqtt_tls_probe.cli.scan import emit_series

            fresh = client_id is None
            emit_series(
                config,
                repeat,
                interval,
                output,
                fresh_client_ids=fresh,
                verbose=verbose,
                junit_file=junit_file,
                started=started,
            )
        report = run_probe(config)
        if junit_file is not None:
            from mqtt_tls_probe.output import junit as junit_xml

            junit_file.write(junit_xml.render([report], started))
    emit(report, output, verbose=verbose)

"""``probe connect``: the staged test of one broker."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from mqtt_tls_probe import aio
from mqtt_tls_probe.cli.app import app, emit, guarded
from mqtt_tls_probe.cli.options import (
    CaFileOpt,
    ConfigMapKeyOpt,
    ConfigMapOpt,
    ContextOpt,
    IntervalOpt,
    JunitOpt,
    KubeconfigOpt,
    MqttVersion,
    NamespaceOpt,
    OutputOpt,
    RepeatOpt,
    ServerNameOpt,
    TimeoutOpt,
    TlsMax,
    TlsMin,
    TraceOpt,
    VerboseOpt,
    aio_option,
    aio_path_option,
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
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Do not verify the server (the report says UNVERIFIED)."),
    ] = False,
    server_name: ServerNameOpt = None,
    cert: Annotated[
        Path | None,
        aio_path_option("--cert", "Client certificate (PEM) for mutual TLS.", "AIO_TLS_CERT_FILE"),
    ] = None,
    key: Annotated[
        Path | None,
        aio_path_option("--key", "Private key (PEM) of --cert.", "AIO_TLS_KEY_FILE"),
    ] = None,
    tls_min: Annotated[
        TlsMin | None, typer.Option("--tls-min", help="Lowest TLS version to offer.")
    ] = None,
    tls_max: Annotated[
        TlsMax | None,
        typer.Option("--tls-max", help="Highest TLS version to offer (emulate a device)."),
    ] = None,
    ciphers: Annotated[
        str | None,
        typer.Option(
            "--ciphers",
            help="OpenSSL cipher list of the TLS 1.2 suites to offer, e.g. "
            "ECDHE-ECDSA-AES128-GCM-SHA256 (TLS 1.3 suites cannot be chosen).",
            show_default=False,
        ),
    ] = None,
    alpn: Annotated[
        list[str] | None, typer.Option("--alpn", help="ALPN protocol to offer (repeatable).")
    ] = None,
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
    mqtt_version: Annotated[
        MqttVersion | None,
        typer.Option(
            "--mqtt-version",
            help="MQTT version [default: 5, retried once as 3.1.1 if the broker refuses 5; "
            "an explicit 5 is never retried].",
            show_default=False,
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        aio_option(
            "--client-id", "MQTT client id [default: probe-<random>].", "AIO_MQTT_CLIENT_ID"
        ),
    ] = None,
    username: Annotated[
        str | None,
        aio_option("--username", "MQTT user name.", "AIO_MQTT_USERNAME"),
    ] = None,
    password_file: Annotated[
        Path | None,
        aio_path_option(
            "--password-file",
            "File holding the MQTT password (else $PROBE_MQTT_PASSWORD; never argv).",
            "AIO_MQTT_PASSWORD_FILE",
        ),
    ] = None,
    sat_file: Annotated[
        Path | None,
        aio_path_option(
            "--sat-file",
            "Kubernetes service account token: MQTT 5 enhanced authentication K8S-SAT.",
            "AIO_SAT_FILE",
        ),
    ] = None,
    port_forward: Annotated[
        bool,
        typer.Option(
            "--port-forward",
            help="TARGET is a Service (SERVICE[.NAMESPACE]:PORT): reach a ready pod behind it "
            "through the API server, as kubectl port-forward does.",
        ),
    ] = False,
    sat_serviceaccount: Annotated[
        str | None,
        typer.Option(
            "--sat-serviceaccount",
            help="Mint a 10-minute K8S-SAT token for this service account ([NAMESPACE/]NAME, "
            "namespace default --namespace) with the TokenRequest API; kept in memory only.",
            show_default=False,
            metavar="[NS/]NAME",
        ),
    ] = None,
    sat_audience: Annotated[
        str | None,
        typer.Option(
            "--sat-audience",
            help="With --sat-serviceaccount: the token's audience [default: aio-internal].",
            show_default=False,
        ),
    ] = None,
    roundtrip: Annotated[
        bool, typer.Option("--roundtrip", help="Subscribe, publish and receive one message.")
    ] = False,
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic",
            help="Round-trip topic (implies --roundtrip) [default: probe/<client-id>].",
            show_default=False,
        ),
    ] = None,
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
    if repeat is not None or interval is not None:
        from mqtt_tls_probe.cli.scan import emit_series

        fresh = client_id is None
        emit_series(config, repeat, interval, output, fresh_client_ids=fresh, verbose=verbose)
    if junit is None:
        emit(run_probe(config), output, verbose=verbose)
    from mqtt_tls_probe.adapters.report_file import report_file
    from mqtt_tls_probe.output import junit as junit_xml

    with report_file(junit) as junit_file:  # refused before the probe runs
        started = datetime.now(UTC)
        report = run_probe(config)
        junit_file.write(junit_xml.render([report], started))
    emit(report, output, verbose=verbose)

"""The ``probe`` command line: parse flags, call the core, print, exit.

Rule: no logic here beyond turning flags into a config. Heavy modules (the
Kubernetes client, amqtt, paho) are imported inside the commands that need
them: the CLI's cold start is measured (bench/). No ``from __future__ import
annotations`` here: typer would evaluate every annotation string again on
each start (about 15 ms).
"""

import functools
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec

import typer

from mqtt_tls_probe import aio
from mqtt_tls_probe.errors import EXIT_INTERNAL, EXIT_USAGE, ProbeError, UsageError

app = typer.Typer(
    name="probe",
    help=(
        "Can a client reach this MQTT broker over TLS, and if not, exactly why?\n\n"
        "Probes an MQTT broker (made for the Azure IoT Operations broker on port 18883) "
        "stage by stage: trust bundle, DNS, TCP, TLS, certificate verification, MQTT "
        "CONNECT and an optional publish/subscribe round trip.\n\n"
        "Examples:\n\n\b\n"
        "probe demo\n"
        "probe connect localhost:18883 --ca-file ca.crt --server-name aio-broker\n"
        "probe connect --kubeconfig ~/.kube/config --sat-file token --roundtrip\n"
        "probe cluster --context aks-aio"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
certs_app = typer.Typer(
    help="Make a development PKI that mirrors the quickstart CA.", no_args_is_help=True
)
app.add_typer(certs_app, name="certs")
P = ParamSpec("P")


class Output(StrEnum):
    TEXT = "text"
    JSON = "json"


class MqttVersion(StrEnum):
    V5 = "5"
    V311 = "3.1.1"


class TlsMin(StrEnum):
    V12 = "1.2"
    V13 = "1.3"


# --- options shared by several commands --------------------------------------


def _aio_option(flag: str, help_text: str, envvar: str) -> Any:
    """An option that the Azure IoT Operations SDKs' variable fills when the flag is absent."""
    return typer.Option(flag, help=help_text, envvar=envvar, show_default=False)


OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="Report format.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.01, help="Seconds each network stage may take.")
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show every certificate (and tracebacks of bugs).")
]
KubeconfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).",
        show_default=False,
    ),
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")]
NamespaceOpt = Annotated[
    str, typer.Option("--namespace", "-n", help="Namespace of the trust bundle ConfigMap.")
]
ConfigMapOpt = Annotated[
    str | None,
    typer.Option(
        "--configmap",
        help=f"Trust bundle ConfigMap [default: {aio.TRUST_BUNDLE_CONFIGMAP}, "
        f"then {aio.LATER_TRUST_BUNDLE_CONFIGMAP}].",
        show_default=False,
    ),
]
ConfigMapKeyOpt = Annotated[
    str, typer.Option("--configmap-key", help="Key of the CA in the ConfigMap.")
]
CaFileOpt = Annotated[
    Path | None,
    _aio_option(
        "--ca-file",
        "PEM file with the CA certificate(s) to trust, instead of the cluster's bundle.",
        "AIO_TLS_CA_FILE",
    ),
]
ServerNameOpt = Annotated[
    str | None,
    typer.Option(
        "--server-name",
        help="Name to verify in the certificate and send as SNI [default: the target host].",
        show_default=False,
    ),
]


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """Usage errors found past the parser: one line on stderr and exit 2, files untouched."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except UsageError as exc:
            sys.stderr.write(f"probe: error: {exc}\n")
            raise typer.Exit(EXIT_USAGE) from None

    return run


def _cluster_options(
    kubeconfig: Path | None, context: str | None, namespace: str, configmap: str | None, key: str
) -> Any:
    from mqtt_tls_probe.config import ClusterOptions

    return ClusterOptions(kubeconfig, context, namespace, configmap, key)


def _print_json(document: dict[str, Any]) -> None:
    import json

    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _print_lines(lines: list[str]) -> None:
    sys.stdout.write("\n".join(lines) + "\n")


# --- connect ------------------------------------------------------------------


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
        _aio_option("--cert", "Client certificate (PEM) for mutual TLS.", "AIO_TLS_CERT_FILE"),
    ] = None,
    key: Annotated[
        Path | None,
        _aio_option("--key", "Private key (PEM) of --cert.", "AIO_TLS_KEY_FILE"),
    ] = None,
    tls_min: Annotated[
        TlsMin | None, typer.Option("--tls-min", help="Lowest TLS version to offer.")
    ] = None,
    alpn: Annotated[
        list[str] | None, typer.Option("--alpn", help="ALPN protocol to offer (repeatable).")
    ] = None,
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
        _aio_option(
            "--client-id", "MQTT client id [default: probe-<random>].", "AIO_MQTT_CLIENT_ID"
        ),
    ] = None,
    username: Annotated[
        str | None,
        _aio_option("--username", "MQTT user name.", "AIO_MQTT_USERNAME"),
    ] = None,
    password_file: Annotated[
        Path | None,
        _aio_option(
            "--password-file",
            "File holding the MQTT password (else $PROBE_MQTT_PASSWORD; never argv).",
            "AIO_MQTT_PASSWORD_FILE",
        ),
    ] = None,
    sat_file: Annotated[
        Path | None,
        _aio_option(
            "--sat-file",
            "Kubernetes service account token: MQTT 5 enhanced authentication K8S-SAT.",
            "AIO_SAT_FILE",
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
    output: OutputOpt = Output.TEXT,
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
    """
    from mqtt_tls_probe.config import MqttOptions, ProbeConfig, TrustOptions, parse_target
    from mqtt_tls_probe.probe import run_probe
    from mqtt_tls_probe.sat import read_secret_file
    from mqtt_tls_probe.tls import TlsOptions, load_client_identity

    host, port_number = parse_target(target, port)
    if (cert is None) != (key is None):
        raise UsageError("--cert and --key go together: pass both, or neither")
    if sat_file is not None and mqtt_version is MqttVersion.V311:
        raise UsageError("--sat-file needs MQTT 5: MQTT 3.1.1 cannot carry the token")
    client = load_client_identity(cert, key) if cert is not None and key is not None else None
    password = None
    if password_file is not None:
        if username is None:
            raise UsageError("--password-file needs --username")
        password = read_secret_file(password_file, "password")
    elif username is not None and "PROBE_MQTT_PASSWORD" in os.environ:
        # Read only with a user name: a variable left in a CI environment must
        # not break runs that sign in some other way.
        password = os.environ["PROBE_MQTT_PASSWORD"].encode()
    token = read_secret_file(sat_file, "token") if sat_file is not None else None
    config = ProbeConfig(
        host=host,
        port=port_number,
        trust=TrustOptions(
            ca_file=ca_file,
            insecure=insecure,
            cluster=_cluster_options(kubeconfig, context, namespace, configmap, configmap_key),
        ),
        tls=TlsOptions(
            server_name=server_name or host,
            tls_min=tls_min.value if tls_min else None,
            alpn=tuple(alpn or ()),
            client=client,
        ),
        mqtt=MqttOptions(
            # os.urandom: secrets would cost 8 ms; "" asks an MQTT 5 broker to assign one.
            client_id=f"probe-{os.urandom(4).hex()}" if client_id is None else client_id,
            version=(mqtt_version or MqttVersion.V5).value,
            username=username,
            password=password,
            sat_token=token,
        ),
        version_fallback=mqtt_version is None,
        topic=topic,
        roundtrip=roundtrip or topic is not None,
        timeout=timeout,
    )
    report = run_probe(config)
    _emit_report(report, output, verbose)


def _emit_report(report: Any, output: Output, verbose: bool) -> NoReturn:
    if output is Output.JSON:
        from mqtt_tls_probe.render_json import report_json

        _print_json(report_json(report))
    else:
        from mqtt_tls_probe.render_text import render_report

        _print_lines(render_report(report, verbose=verbose))
    raise typer.Exit(report.exit_code)


# --- bundle ---------------------------------------------------------------------


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
        typer.Option("--out", help="Write the bundle's PEM to this file.", show_default=False),
    ] = None,
    output: OutputOpt = Output.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Show the trust bundle's CA certificates (from the cluster, or --ca-file).

    Example:

    \b
    probe bundle --context aio-cluster --out ca.crt
    """
    from mqtt_tls_probe.bundle import bundle_report, write_pem

    report = bundle_report(
        ca_file, _cluster_options(kubeconfig, context, namespace, configmap, configmap_key), timeout
    )
    if out is not None and report.bundle is not None:
        write_pem(out, report.bundle)
    if pem and report.bundle is not None:
        sys.stdout.write(report.bundle.pem())
    elif output is Output.JSON:
        from mqtt_tls_probe.render_json import bundle_json

        _print_json(bundle_json(report))
    else:
        from mqtt_tls_probe.render_text import render_bundle

        _print_lines(render_bundle(report, out))
    if pem and report.error is not None:
        _fail(report.error)
    raise typer.Exit(report.exit_code)


def _fail(error: ProbeError) -> None:
    sys.stderr.write(f"probe: {error.kind}: {error.message}\nhint: {error.hint}\n")


# --- inspect ----------------------------------------------------------------------


@app.command()
@guarded
def inspect(
    source: Annotated[str, typer.Argument(help="Certificate file (PEM or DER), or host:port.")],
    server_name: ServerNameOpt = None,
    output: OutputOpt = Output.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Show certificates from a file, or the chain a server sends (without trusting it).

    Example:

    \b
    probe inspect localhost:18883 --server-name aio-broker
    """
    from mqtt_tls_probe.inspection import inspect_source

    report = inspect_source(source, server_name, timeout)
    if output is Output.JSON:
        from mqtt_tls_probe.render_json import inspection_json

        _print_json(inspection_json(report))
    else:
        from mqtt_tls_probe.render_text import render_inspection

        _print_lines(render_inspection(report))
    raise typer.Exit(report.exit_code)


# --- certs init ---------------------------------------------------------------------


@certs_app.command("init")
@guarded
def certs_init(
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")] = Path("certs"),
    days: Annotated[float, typer.Option("--days", min=0.01, help="Validity in days.")] = 30,
    san: Annotated[
        list[str] | None,
        typer.Option("--san", help="Extra server name or IP (repeatable), e.g. aio-broker."),
    ] = None,
    client: Annotated[
        bool, typer.Option("--client", help="Also make client.crt/client.key.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
    output: OutputOpt = Output.TEXT,
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
    from datetime import UTC, datetime

    from mqtt_tls_probe.certinfo import describe_all, parse_certificates
    from mqtt_tls_probe.pki import init_pki

    files = init_pki(directory, days=days, extra_sans=tuple(san or ()), client=client, force=force)
    now = datetime.now(UTC)
    written = [files.ca_cert, files.ca_key, files.server_cert, files.server_key]
    if client:
        written += [files.client_cert, files.client_key]
    if output is Output.JSON:
        from mqtt_tls_probe.render_json import cert_json

        ca = describe_all(parse_certificates(files.ca_cert.read_bytes()), now)[0]
        server = describe_all(parse_certificates(files.server_cert.read_bytes()), now)[0]
        _print_json(
            {
                "ok": True,
                "directory": str(directory),
                "files": [str(p) for p in written],
                "ca": cert_json(ca),
                "server": cert_json(server),
                "exit_code": 0,
            }
        )
        return
    lines = [f"wrote {p}" + ("  (mode 0600)" if p.suffix == ".key" else "") for p in written]
    lines += [
        "",
        f"Start the harness broker:  probe broker --certs {directory}",
        f"Then probe it:             probe connect localhost:{aio.BROKER_PORT} "
        f"--ca-file {files.ca_cert}",
    ]
    _print_lines(lines)


# --- broker -----------------------------------------------------------------------


@app.command()
@guarded
def broker(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="TLS port.")
    ] = aio.BROKER_PORT,
    certs: Annotated[
        Path, typer.Option("--certs", help="PKI directory (created when missing).")
    ] = Path("certs"),
    verbose: VerboseOpt = False,
) -> None:
    """Run the local harness: an amqtt MQTT 3.1.1 broker with a TLS listener, until Ctrl-C.

    Example:

    \b
    probe broker --certs certs --port 18883
    """
    from mqtt_tls_probe.harness import BrokerHandle, serve_forever
    from mqtt_tls_probe.pki import ensure_pki

    files, created = ensure_pki(certs)
    if created:
        sys.stdout.write(f"created a development PKI in {certs}\n")

    def ready(handle: BrokerHandle) -> None:
        sys.stdout.write(
            f"harness broker (amqtt, MQTT 3.1.1) listening on mqtts://{handle.address}\n"
            f"clients must trust: {handle.ca_file}\n"
            f"try: probe connect {handle.address} --ca-file {handle.ca_file} --roundtrip\n"
            "stop with Ctrl-C\n"
        )
        sys.stdout.flush()

    serve_forever(files, host, port, ready, verbose=verbose)
    sys.stdout.write("harness broker stopped\n")


# --- cluster ------------------------------------------------------------------------


@app.command()
@guarded
def cluster(
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = aio.NAMESPACE,
    configmap: ConfigMapOpt = None,
    configmap_key: ConfigMapKeyOpt = aio.TRUST_BUNDLE_KEY,
    output: OutputOpt = Output.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Check the CA on the cluster side: trust bundle, CA expiry, CA Secret, Issuer.

    Reads the Secret as metadata only: the CA's private key never leaves the cluster.

    Example:

    \b
    probe cluster --context aio-cluster --output json
    """
    from mqtt_tls_probe.cluster_checks import run_cluster_checks

    report = run_cluster_checks(
        _cluster_options(kubeconfig, context, namespace, configmap, configmap_key), timeout
    )
    if output is Output.JSON:
        from mqtt_tls_probe.render_json import cluster_json

        _print_json(cluster_json(report))
    else:
        from mqtt_tls_probe.render_text import render_cluster

        _print_lines(render_cluster(report))
    raise typer.Exit(report.exit_code)


# --- demo ------------------------------------------------------------------------------


@app.command()
@guarded
def demo(
    output: OutputOpt = Output.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """The one-command tour: a temporary PKI, the harness broker, connect --roundtrip, stop.

    Example:

    \b
    probe demo
    """
    from mqtt_tls_probe.demo import run_demo

    report, notes = run_demo(timeout)
    if output is Output.TEXT:
        _print_lines(notes)
    _emit_report(report, output, verbose)


# --- entry point -----------------------------------------------------------------------


def main() -> None:
    """Console entry point: a bug exits 1 with one line (its traceback only with -v)."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if "-v" in sys.argv or "--verbose" in sys.argv:
            import traceback

            traceback.print_exc()
        sys.stderr.write(
            f"probe: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in probe; run again with --verbose for the traceback.\n"
        )
        sys.exit(EXIT_INTERNAL)

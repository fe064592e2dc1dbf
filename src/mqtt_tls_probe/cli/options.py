"""Options shared by several commands, and the typer types of the contract's choices."""

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mqtt_tls_probe import aio
from mqtt_tls_probe.output import OutputFormat

if TYPE_CHECKING:
    from mqtt_tls_probe.config import ClusterOptions


class MqttVersion(StrEnum):
    V5 = "5"
    V311 = "3.1.1"


class TlsMin(StrEnum):
    V12 = "1.2"
    V13 = "1.3"


class TlsMax(StrEnum):
    V12 = "1.2"
    V13 = "1.3"


def aio_option(flag: str, help_text: str, envvar: str) -> Any:
    """An option that the Azure IoT Operations SDKs' variable fills when the flag is absent."""
    return typer.Option(flag, help=help_text, envvar=envvar, show_default=False)


def local_path(value: str) -> Path:
    """A file or directory flag, as the parser reads it.

    typer's own Path type stats the value while parsing and raises ValueError
    (a bug, exit 1) on a NUL byte; this parser makes that a usage error.
    """
    if "\x00" in value:
        raise typer.BadParameter("a file name cannot hold a NUL character")
    return Path(value)


def aio_path_option(flag: str, help_text: str, envvar: str) -> Any:
    """``aio_option`` for a file: read with ``local_path``."""
    return typer.Option(
        flag,
        help=help_text,
        envvar=envvar,
        show_default=False,
        parser=local_path,
        metavar="<path>",
    )


def path_option(flag: str, help_text: str, *, show_default: bool = False) -> Any:
    """An option naming a file or directory, read with ``local_path``."""
    return typer.Option(
        flag, help=help_text, show_default=show_default, parser=local_path, metavar="<path>"
    )


def checked_timeout(seconds: float) -> float:
    """``--timeout`` as the parser reads it: config's bounds, a bad value a usage error."""
    from mqtt_tls_probe.config import check_timeout
    from mqtt_tls_probe.errors import UsageError

    try:
        return check_timeout(seconds)
    except UsageError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--timeout ")) from exc


OutputOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="Report format.")]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        callback=checked_timeout,
        help="Seconds each network stage may take (0.01 to 3600).",
    ),
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show every certificate (and tracebacks of bugs).")
]
KubeconfigOpt = Annotated[
    Path | None,
    path_option(
        "--kubeconfig",
        "Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).",
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
    aio_path_option(
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


TraceOpt = Annotated[
    bool,
    typer.Option(
        "--trace",
        help="Show the TLS handshake message by message (text: under the tls line; "
        "JSON: tls.trace).",
    ),
]


def cluster_options(
    kubeconfig: Path | None, context: str | None, namespace: str, configmap: str | None, key: str
) -> "ClusterOptions":
    from mqtt_tls_probe.config import ClusterOptions

    return ClusterOptions(kubeconfig, context, namespace, configmap, key)


RepeatOpt = Annotated[
    int | None,
    typer.Option(
        "--repeat",
        min=1,
        max=100_000,
        help="Probe N times and report each stage's p50/p90/p99/max; exit non-zero if any "
        "run failed.",
        show_default=False,
    ),
]
IntervalOpt = Annotated[
    float | None,
    typer.Option(
        "--interval",
        min=0,
        max=86_400,
        help="Seconds from the start of one --repeat run to the start of the next [default: 1].",
        show_default=False,
    ),
]


JunitOpt = Annotated[
    Path | None,
    typer.Option(
        "--junit",
        help="Also write the result as JUnit XML to this file (a suite per target, a case "
        "per stage), for CI.",
        show_default=False,
    ),
]


# --- connect's TLS and MQTT options, shared with scan and (some) the exporter --------

InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure", help="Do not verify the server's certificate (the report says UNVERIFIED)."
    ),
]

CertOpt = Annotated[
    Path | None,
    aio_path_option("--cert", "Client certificate (PEM) for mutual TLS.", "AIO_TLS_CERT_FILE"),
]

KeyOpt = Annotated[
    Path | None,
    aio_path_option("--key", "Private key (PEM) of --cert.", "AIO_TLS_KEY_FILE"),
]

TlsMinOpt = Annotated[TlsMin | None, typer.Option("--tls-min", help="Lowest TLS version to offer.")]

TlsMaxOpt = Annotated[
    TlsMax | None,
    typer.Option("--tls-max", help="Highest TLS version to offer (emulate a device)."),
]

CiphersOpt = Annotated[
    str | None,
    typer.Option(
        "--ciphers",
        help="OpenSSL cipher list of the TLS 1.2 suites to offer, e.g. "
        "ECDHE-ECDSA-AES128-GCM-SHA256 (TLS 1.3 suites cannot be chosen).",
        show_default=False,
    ),
]

AlpnOpt = Annotated[
    list[str] | None, typer.Option("--alpn", help="ALPN protocol to offer (repeatable).")
]

MqttVersionOpt = Annotated[
    MqttVersion | None,
    typer.Option(
        "--mqtt-version",
        help="MQTT version [default: 5, retried once as 3.1.1 if the broker refuses 5; "
        "an explicit 5 is never retried].",
        show_default=False,
    ),
]

UsernameOpt = Annotated[
    str | None,
    aio_option("--username", "MQTT user name.", "AIO_MQTT_USERNAME"),
]

PasswordFileOpt = Annotated[
    Path | None,
    aio_path_option(
        "--password-file",
        "File holding the MQTT password (else $PROBE_MQTT_PASSWORD; never argv).",
        "AIO_MQTT_PASSWORD_FILE",
    ),
]

SatFileOpt = Annotated[
    Path | None,
    aio_path_option(
        "--sat-file",
        "Kubernetes service account token: MQTT 5 enhanced authentication K8S-SAT.",
        "AIO_SAT_FILE",
    ),
]

SatServiceAccountOpt = Annotated[
    str | None,
    typer.Option(
        "--sat-serviceaccount",
        help="Mint a 10-minute K8S-SAT token for this service account ([NAMESPACE/]NAME, "
        "namespace default --namespace) with the TokenRequest API; kept in memory only.",
        show_default=False,
        metavar="[NS/]NAME",
    ),
]

SatAudienceOpt = Annotated[
    str | None,
    typer.Option(
        "--sat-audience",
        help="With --sat-serviceaccount: the token's audience [default: aio-internal].",
        show_default=False,
    ),
]

RoundtripOpt = Annotated[
    bool, typer.Option("--roundtrip", help="Subscribe, publish and receive one message.")
]

TopicOpt = Annotated[
    str | None,
    typer.Option(
        "--topic",
        help="Round-trip topic (implies --roundtrip) [default: probe/<client-id>].",
        show_default=False,
    ),
]

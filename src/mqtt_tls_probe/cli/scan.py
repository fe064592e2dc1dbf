"""``probe scan``: many targets, each probed as ``probe connect`` probes one.

Also the output of ``connect --repeat`` (``emit_series``), which runs the
same machinery on one target.
"""

import contextlib
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mqtt_tls_probe import aio
from mqtt_tls_probe.cli.application import app, guarded, runs_long, write_stderr, write_stdout
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
    PasswordFileOpt,
    RepeatOpt,
    RoundtripOpt,
    SatFileOpt,
    ServerNameOpt,
    TimeoutOpt,
    TlsMaxOpt,
    TlsMinOpt,
    TopicOpt,
    UsernameOpt,
    VerboseOpt,
    aio_option,
    cluster_options,
)
from mqtt_tls_probe.errors import ProbeError, UsageError
from mqtt_tls_probe.output import OutputFormat

if TYPE_CHECKING:
    from mqtt_tls_probe.adapters.report_file import ReportFile
    from mqtt_tls_probe.config import ConnectInputs, ProbeConfig
    from mqtt_tls_probe.orchestrators.scan import ScanProgress
    from mqtt_tls_probe.scan_config import RepeatOptions, ScanPlan
    from mqtt_tls_probe.scan_model import ScanReport, TargetOutcome

_PROGRESS_EVERY = 0.1  # seconds between redraws of the progress line


class ScanOutput(StrEnum):
    """scan's own choice: ``jsonl`` streams, which no other command does."""

    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"


@app.command(no_args_is_help=False)
@guarded
def scan(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="host, host:port or [ipv6]:port, as many as needed.", show_default=False
        ),
    ] = None,
    targets_file: Annotated[
        Path | None,
        typer.Option(
            "--targets-file",
            help="File with one host[:port] per line (# comments, blank lines ignored); "
            "- reads standard input.",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=1024, help="Targets probed at once.")
    ] = 32,
    target_timeout: Annotated[
        float | None,
        typer.Option(
            "--target-timeout",
            min=0.01,
            help="Seconds one target's run may take, all stages together "
            "[default: the sum of the stage timeouts].",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            "-p",
            min=1,
            max=65535,
            help="Port of the targets that name none [default: 18883].",
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
    mqtt_version: MqttVersionOpt = None,
    client_id: Annotated[
        str | None,
        aio_option(
            "--client-id",
            "MQTT client id of every probe [default: probe-<random>, new for each probe].",
            "AIO_MQTT_CLIENT_ID",
        ),
    ] = None,
    username: UsernameOpt = None,
    password_file: PasswordFileOpt = None,
    sat_file: SatFileOpt = None,
    sat_serviceaccount: Annotated[
        str | None,
        typer.Option(
            "--sat-serviceaccount",
            help="Mint a 10-minute K8S-SAT token per probe for this service account "
            "([NAMESPACE/]NAME) with the TokenRequest API; kept in memory only.",
            show_default=False,
            metavar="[NS/]NAME",
        ),
    ] = None,
    sat_audience: Annotated[
        str | None,
        typer.Option(
            "--sat-audience",
            help="With --sat-serviceaccount: the token's audience [default: the listener's "
            "BrokerAuthentication audience, else aio-internal].",
            show_default=False,
        ),
    ] = None,
    discover: Annotated[
        bool,
        typer.Option(
            "--discover",
            help="Probe every port of the broker's listeners (BrokerListener resources) "
            "instead of named targets; see probe cluster --listeners.",
        ),
    ] = False,
    require_tls: Annotated[
        bool,
        typer.Option(
            "--require-tls",
            help="With --discover: a port without TLS is probed with TLS too, and fails.",
        ),
    ] = False,
    port_forward: Annotated[
        bool,
        typer.Option(
            "--port-forward",
            help="Each target is a Service (SERVICE[.NAMESPACE]:PORT), reached through a "
            "ready pod as kubectl port-forward does.",
        ),
    ] = False,
    roundtrip: RoundtripOpt = False,
    topic: TopicOpt = None,
    repeat: RepeatOpt = None,
    interval: IntervalOpt = None,
    junit: JunitOpt = None,
    output: Annotated[
        ScanOutput,
        typer.Option(
            "--output", "-o", help="text, json (one document) or jsonl (a line per target)."
        ),
    ] = ScanOutput.TEXT,
    timeout: TimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Probe many brokers at once, each through every stage of connect; a line per target.

    Every target gets connect's trust, TLS and MQTT options; the trust bundle is
    read once. Exit 0 when every target passed, else the lowest exit code among
    the targets (the earliest stage that failed anywhere). A progress line goes
    to stderr when it is a terminal.

    Example:

    \b
    probe scan 10.0.0.5:18883 10.0.0.6:18883 --ca-file ca.crt --server-name aio-broker
    probe scan --targets-file brokers.txt --ca-file ca.crt --output jsonl
    """
    runs_long()
    from mqtt_tls_probe.config import ConnectInputs
    from mqtt_tls_probe.output import scan_json, scan_text
    from mqtt_tls_probe.scan_config import build_scan_plan, check_repeat

    inputs = ConnectInputs(
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
        mqtt_version=mqtt_version.value if mqtt_version else None,
        client_id=client_id,
        username=username,
        password_file=password_file,
        sat_file=sat_file,
        sat_serviceaccount=sat_serviceaccount,
        sat_audience=sat_audience,
        port_forward=port_forward,
        roundtrip=roundtrip,
        topic=topic,
        timeout=timeout,
    )
    if discover:
        plan = _discovered_plan(
            inputs,
            bool(targets) or targets_file is not None,
            require_tls=require_tls,
            concurrency=concurrency,
            target_timeout=target_timeout,
            repeat=check_repeat(repeat, interval),
        )
    else:
        if require_tls:
            raise UsageError("--require-tls needs --discover: named targets are always TLS")
        plan = build_scan_plan(
            inputs,
            targets or [],
            targets_file=targets_file,
            concurrency=concurrency,
            target_timeout=target_timeout,
            repeat=check_repeat(repeat, interval),
        )
    with contextlib.ExitStack() as files:
        junit_file = None
        if junit is not None:  # refused (exit 2) before any target is probed
            from mqtt_tls_probe.adapters.report_file import report_file

            junit_file = files.enter_context(report_file(junit))
        started = datetime.now(UTC)
        report = _run_and_show(plan, output, keep=junit_file is not None)
        if junit_file is not None:
            from mqtt_tls_probe.output import junit as junit_xml

            reports = [outcome.report for outcome in report.outcomes]
            junit_file.write(junit_xml.render(reports, started, name="probe scan"))
    if output is ScanOutput.JSON:
        write_stdout(scan_json.render_scan(report))
    elif output is ScanOutput.TEXT:
        write_stdout("\n" + "\n".join(scan_text.summary_lines(report)) + "\n")
    raise typer.Exit(report.exit_code)


def _run_and_show(plan: "ScanPlan", output: ScanOutput, *, keep: bool) -> "ScanReport":
    """Run the scan; text and JSONL stream a line per target as it finishes."""
    from mqtt_tls_probe.orchestrators.scan import run_scan
    from mqtt_tls_probe.output import scan_json, scan_text

    progress = _ProgressLine(enabled=sys.stderr.isatty())
    width = max(len(scan_text.endpoint(c.host, c.port)) for c in plan.targets)

    def show(outcome: "TargetOutcome") -> None:
        if output is ScanOutput.TEXT:
            progress.write_stdout("\n".join(scan_text.outcome_lines(outcome, width)) + "\n")
        elif output is ScanOutput.JSONL:
            progress.write_stdout(scan_json.jsonl_line(outcome))

    report = run_scan(
        plan,
        on_outcome=show,
        on_progress=progress.update,
        keep=keep or output is ScanOutput.JSON,
    )
    progress.clear()
    return report


def _discovered_plan(
    inputs: "ConnectInputs",
    named: bool,
    *,
    require_tls: bool,
    concurrency: int,
    target_timeout: float | None,
    repeat: "RepeatOptions | None",
) -> "ScanPlan":
    """The listener ports as targets. The cluster unreadable, or no port that can be probed:
    the error on stderr and exit 3. A port that cannot be probed is named on stderr, with
    why, and does not change the exit code."""

    from mqtt_tls_probe.adapters.discovery import discover
    from mqtt_tls_probe.config import build_probe_config
    from mqtt_tls_probe.errors import EXIT_CODES, Stage
    from mqtt_tls_probe.orchestrators.discover import probe_configs
    from mqtt_tls_probe.scan_config import discovered_plan

    if named:
        raise UsageError("--discover finds the targets: name none (no TARGET, no --targets-file)")
    if inputs.port_forward:
        raise UsageError("--discover chooses the port-forward per listener: drop --port-forward")
    build_probe_config(inputs)  # the options' usage errors, before the cluster is read
    try:
        found = discover(inputs.cluster, inputs.timeout)
    except ProbeError as exc:
        write_stderr(f"probe: {exc.kind}: {exc.message}", f"hint: {exc.hint}")
        raise typer.Exit(exc.exit_code) from exc
    probes = probe_configs(found, inputs)
    for probe in probes:
        if probe.config is None:
            info = probe.listener.listener
            write_stderr(
                f"not probed: listener {info.name} port {info.port} (Service {info.service}): "
                f"{probe.listener.problem}"
            )
    configs = [
        p.config._replace(plain=False) if require_tls else p.config
        for p in probes
        if p.config is not None
    ]
    if not configs:
        write_stderr(
            f"probe: no listener port in {found.namespace} can be probed ({found.origin})",
            "hint: see them with probe cluster --listeners",
        )
        raise typer.Exit(EXIT_CODES[Stage.TRUST])
    return discovered_plan(
        configs,
        inputs,
        concurrency=concurrency,
        target_timeout=target_timeout,
        repeat=repeat,
    )


class _ProgressLine:
    """One line on stderr, redrawn in place, only when stderr is a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.shown = ""
        self.drawn_at = 0.0

    def update(self, progress: "ScanProgress") -> None:
        if not self.enabled or time.monotonic() - self.drawn_at < _PROGRESS_EVERY:
            return
        from mqtt_tls_probe.output.scan_text import progress_line

        self.shown = progress_line(
            progress.done, progress.total, progress.failed, progress.probes, progress.elapsed
        )
        self.drawn_at = time.monotonic()
        sys.stderr.write(f"\r\x1b[2K{self.shown}")
        sys.stderr.flush()

    def write_stdout(self, text: str) -> None:
        """A result line: take the progress line away first, so the two never mix."""
        self.clear()
        write_stdout(text)  # a lost stdout ends the run quietly (OutputLost)
        if self.enabled and self.shown:
            sys.stderr.write(self.shown)
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled and self.shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def emit_series(
    config: "ProbeConfig",
    repeat: int | None,
    interval: float | None,
    output: OutputFormat,
    *,
    fresh_client_ids: bool,
    verbose: bool = False,
    junit_file: "ReportFile | None" = None,
    started: datetime | None = None,
) -> None:
    """``connect --repeat``: run the series, print it (and its last run as JUnit), exit."""
    from mqtt_tls_probe.orchestrators.scan import run_series
    from mqtt_tls_probe.output import scan_json, scan_text
    from mqtt_tls_probe.scan_config import check_repeat

    options = check_repeat(repeat, interval)
    runs_long()
    if options is None:  # pragma: no cover (called only with --repeat or --interval)
        raise typer.Exit(2)
    report = run_series(config, options, fresh_client_ids=fresh_client_ids)
    if junit_file is not None:
        from mqtt_tls_probe.output import junit as junit_xml

        junit_file.write(junit_xml.render([report.report], started or datetime.now(UTC)))
    if output is OutputFormat.JSON:
        write_stdout(scan_json.render_repeated(report))
    else:
        write_stdout(scan_text.render_repeated(report, verbose=verbose))
    raise typer.Exit(report.exit_code)

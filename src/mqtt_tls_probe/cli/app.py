"""The typer application, the error boundary of every command, and the entry point.

No ``from __future__ import annotations`` in the CLI modules: typer would
evaluate every annotation string again on each start (about 15 ms).
"""

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, ParamSpec

import typer

from mqtt_tls_probe.errors import EXIT_INTERNAL, EXIT_USAGE, UsageError
from mqtt_tls_probe.output import OutputFormat

if TYPE_CHECKING:
    from mqtt_tls_probe.model import Report

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


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """The error boundary of a command.

    A usage error found past the parser: one line on stderr and exit 2, files
    untouched. A bug: one line on stderr and exit 1, with the traceback only
    when the command's own ``--verbose`` was given.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except UsageError as exc:
            sys.stderr.write(f"probe: error: {exc}\n")
            raise typer.Exit(EXIT_USAGE) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            report_bug(exc, verbose=bool(kwargs.get("verbose")))
            raise typer.Exit(EXIT_INTERNAL) from None

    return run


def report_bug(exc: BaseException, *, verbose: bool) -> None:
    if verbose:
        import traceback

        traceback.print_exception(exc)
    sys.stderr.write(
        f"probe: internal error: {type(exc).__name__}: {exc}\n"
        "This is a bug in probe; run again with --verbose for the traceback.\n"
    )


def emit(report: "Report", output: OutputFormat, *, verbose: bool = False) -> NoReturn:
    """Print the report in the chosen format and exit with its code."""
    from mqtt_tls_probe.output import render

    sys.stdout.write(render(report, output, verbose=verbose))
    raise typer.Exit(report.exit_code)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # outside any command (the parser itself): no flags to read
        report_bug(exc, verbose=False)
        sys.exit(EXIT_INTERNAL)

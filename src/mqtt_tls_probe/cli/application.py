"""The typer application, the error boundary of every command, and the entry point.

Rules:
- every run ends with one exit code of the contract, and in JSON mode with
  exactly one JSON object on stdout: a report, or (exit 1 and 2) a failure
  object, including for the parser's own errors (an unknown flag, a bad choice);
- every line written on stderr passes through ``escape_controls``: messages
  embed flag values and file names;
- stdout that cannot be written (closed, or its reader gone) ends the run
  quietly with ``EXIT_OUTPUT_LOST``.

No ``from __future__ import annotations`` in the CLI modules: typer would
evaluate every annotation string again on each start (about 15 ms).
"""

import functools
import gc
import importlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec

import typer
from typer.core import TyperGroup

from mqtt_tls_probe.errors import EXIT_INTERNAL, EXIT_OUTPUT_LOST, EXIT_USAGE, UsageError
from mqtt_tls_probe.output import OutputFormat
from mqtt_tls_probe.output.escape import escape_controls

if TYPE_CHECKING:
    from mqtt_tls_probe.model import Report

_BUG_HINT = "This is a bug in probe; run again with --verbose for the traceback."
_INTERRUPTED = 130


class OutputLost(Exception):
    """stdout cannot be written: closed, or the reader of the pipe went away."""


class ProbeGroup(TyperGroup):
    """The top-level group: runs the parser and the command without click's standalone mode.

    Click would print its own errors and exit; here the parser's errors become
    the contract's usage error, as one JSON object when the command line asks
    for ``--output json``. ``main`` serves the console script and ``CliRunner``
    alike (both call it), so tests meet the behaviour users do.
    """

    def main(  # type: ignore[override]  # click's signature, with the same defaults
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = self._run(argv, prog_name, complete_var, **extra)
        except OutputLost:  # from the report, or from the failure object
            _silence_stdout()
            code = EXIT_OUTPUT_LOST
        if not standalone_mode:
            return code
        sys.exit(code)

    def _run(
        self, argv: list[str], prog_name: str | None, complete_var: str | None, **extra: Any
    ) -> int:
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:  # end of input at a prompt: nothing to report
            return _INTERRUPTED
        except OutputLost:
            raise
        except Exception as exc:  # the parser's (a command's own are caught by guarded)
            return _parser_failure(exc, argv)
        return result if isinstance(result, int) else 0


def _parser_failure(exc: Exception, argv: Sequence[str]) -> int:
    """Report an error raised before any command ran; returns the exit code."""
    exit_code = getattr(exc, "exit_code", None)
    show = getattr(exc, "show", None)
    json_mode = requested_output_name(argv) in JSON_OUTPUTS
    if exit_code != EXIT_USAGE or not callable(show):  # not a usage error: a bug
        verbose = "-v" in argv or "--verbose" in argv
        return report_bug(exc, verbose=verbose, json_mode=json_mode)
    message = str(exc.format_message()) if hasattr(exc, "format_message") else str(exc)
    if json_mode:
        context = getattr(exc, "ctx", None)  # the command whose flags failed, when known
        command = getattr(context, "command_path", None) or "probe COMMAND"
        hint = f"Check the command line: {command} --help lists the flags and their values."
        _write_json_failure("usage", message, hint, EXIT_USAGE)
        write_stderr(f"probe: error: {message}")
    else:
        shown = io.StringIO()
        show(file=shown)  # click's usage text, escaped like every other line
        write_stderr(*shown.getvalue().splitlines())
    return EXIT_USAGE


_FLAG_ONLY_SHORT_OPTIONS = frozenset("vh")  # -v, -h: may precede o in a group such as -vo


# The outputs whose readers parse JSON: there, a failure before any report (a usage
# error, a bug) is one JSON object on stdout too (scan's jsonl included).
JSON_OUTPUTS = frozenset({"json", "jsonl"})
_KNOWN_OUTPUTS = JSON_OUTPUTS | {"text"}


def requested_output(argv: Sequence[str]) -> OutputFormat:
    """The ``--output`` a raw command line asks for, as an ``OutputFormat`` (else text)."""
    name = requested_output_name(argv)
    return OutputFormat(name) if name in set(OutputFormat) else OutputFormat.TEXT


def requested_output_name(argv: Sequence[str]) -> str:
    """The ``--output`` value a raw command line asks for, as the parser would read it.

    For when parsing failed: ``--output json``, ``--output=json``, ``-o json``,
    ``-ojson`` and ``-vo json``; the last valid one wins; ``--`` ends the options.
    """
    wanted = str(OutputFormat.TEXT)
    remaining = iter(argv)
    for arg in remaining:
        if arg == "--":
            break
        value: str | None = None
        if arg == "--output":
            value = next(remaining, None)
        elif arg.startswith("--output="):
            value = arg.partition("=")[2]
        elif arg.startswith("-") and not arg.startswith("--"):
            flags, letter_o, attached = arg[1:].partition("o")
            if letter_o and _FLAG_ONLY_SHORT_OPTIONS.issuperset(flags):
                value = attached or next(remaining, None)
        if value in _KNOWN_OUTPUTS:  # a bad value is the parser's to report
            wanted = value
    return wanted


# The command modules, in the order ``probe --help`` lists their commands. Each
# registers its command on ``app`` when imported; a run imports the one it names.
COMMAND_MODULES = (
    "broker",
    "bundle",
    "certs",
    "cluster",
    "connect",
    "demo",
    "exporter",
    "inspect",
    "scan",
    "tls",
)


def load_commands(*modules: str) -> None:
    """Import the command modules named (default: all), registering their commands."""
    for module in modules or COMMAND_MODULES:
        importlib.import_module(f"mqtt_tls_probe.cli.{module}")
    if not modules:  # in help order, whichever module a caller imported first
        order = {module: index for index, module in enumerate(COMMAND_MODULES)}
        app.registered_commands.sort(key=lambda c: order.get(_module_of(c), len(order)))


def _module_of(info: "typer.models.CommandInfo") -> str:
    callback = info.callback
    return callback.__module__.rpartition(".")[2] if callback is not None else ""


class ProbeTyper(typer.Typer):
    """The app: every command is registered before it runs (tests and library callers)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        load_commands()
        return super().__call__(*args, **kwargs)


app = ProbeTyper(
    name="probe",
    cls=ProbeGroup,
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


def runs_long() -> None:
    """A command that may run long (a scan, a series, a server) collects garbage again.

    ``console_main`` started with the collector off. What the imports made is
    frozen first (``gc.freeze``): it stays out of every later collection. When
    the collector is on already (tests, library callers), nothing changes.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """The error boundary of a command.

    A usage error found past the parser: one line on stderr and exit 2, files
    untouched. A bug: one line on stderr and exit 1, with the traceback only
    when the command's own ``--verbose`` was given. With ``--output json``,
    either also prints its one JSON object on stdout.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        json_mode = str(kwargs.get("output")) in JSON_OUTPUTS
        try:
            command(*args, **kwargs)
        except UsageError as exc:
            if json_mode:
                name = command.__name__.replace("_", " ")
                hint = f"Check the flags: probe {name} --help lists them and their values."
                _write_json_failure("usage", str(exc), hint, EXIT_USAGE)
            write_stderr(f"probe: error: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt, OutputLost):
            raise
        except Exception as exc:
            code = report_bug(exc, verbose=bool(kwargs.get("verbose")), json_mode=json_mode)
            raise typer.Exit(code) from None

    return run


def report_bug(exc: BaseException, *, verbose: bool, json_mode: bool = False) -> int:
    """Say that ``exc`` is a bug (with its traceback when ``verbose``); returns exit code 1."""
    if verbose:
        import traceback

        traceback.print_exception(exc)
    message = f"{type(exc).__name__}: {exc}"
    if json_mode:
        _write_json_failure("internal", message, _BUG_HINT, EXIT_INTERNAL)
    write_stderr(f"probe: internal error: {message} ({_BUG_HINT})")
    return EXIT_INTERNAL


def _write_json_failure(kind: str, message: str, hint: str, exit_code: int) -> None:
    from mqtt_tls_probe.output.json_doc import render_failure

    write_stdout(render_failure(kind, message, hint, exit_code))


def write_stdout(text: str) -> None:
    """Write and flush ``text``; a stdout that cannot take it raises ``OutputLost``."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError) as exc:  # ValueError: write to a closed file
        raise OutputLost from exc


def write_lines(*lines: str) -> None:
    """Write each line on stdout, escaped (for commands that print no report)."""
    write_stdout("".join(escape_controls(line) + "\n" for line in lines))


def write_stderr(*lines: str) -> None:
    """Write each line on stderr, escaped; a stderr that cannot take them is ignored."""
    try:
        sys.stderr.write("".join(escape_controls(line) + "\n" for line in lines))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # the exit code still tells


def emit(report: "Report", output: OutputFormat, *, verbose: bool = False) -> NoReturn:
    """Print the report in the chosen format and exit with its code."""
    from mqtt_tls_probe.output import render

    write_stdout(render(report, output, verbose=verbose))
    raise typer.Exit(report.exit_code)


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file behind sys.stdout
        pass


def _tolerate_any_encoding() -> None:
    """Escape what the terminal's encoding cannot show (PYTHONIOENCODING=ascii), never crash."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _invoked(argv: Sequence[str]) -> typer.Typer:
    """The app, holding only the command ``argv`` names when it names one.

    Only that command's module is imported, and only it is turned into click's
    objects (typer does that for every registered command on each start:
    signatures, annotations, options, about 12 ms for all of them). Help, no
    command, or a name that is not a command: the whole app, so that the listing
    and click's "No such command" stay what they are. ``app`` itself is not
    trimmed (tests and library callers run it whole).
    """
    name = argv[0] if argv else ""
    if name not in COMMAND_MODULES or name == "certs":  # certs: a group of its own
        load_commands()
        return app
    load_commands(name)
    commands = [c for c in app.registered_commands if _command_name(c) == name]
    # A plain Typer with the app's settings (typer keeps them all in the instance's
    # __dict__): not a ProbeTyper, whose __call__ would load every command again.
    trimmed = typer.Typer.__new__(typer.Typer)
    trimmed.__dict__.update(app.__dict__)
    trimmed.registered_commands = commands
    trimmed.registered_groups = []
    # An app of one command and no group or callback is that command itself (typer's
    # single-command mode, which would parse "connect" as its argument): an empty
    # callback keeps it a group. typer/main.py, get_command:
    # https://github.com/fastapi/typer/blob/0.28.0/typer/main.py#L1173-L1185
    trimmed.registered_callback = typer.models.TyperInfo()
    return trimmed


def _command_name(info: "typer.models.CommandInfo") -> str:
    """The name typer gives a command: its own, else the function's, with - for _."""
    if info.name:
        return info.name
    callback = info.callback
    return callback.__name__.lower().replace("_", "-") if callback is not None else ""


def main() -> None:
    """Console entry point."""
    if sys.stdout is None:  # started with stdout closed: there is nowhere to report
        sys.exit(EXIT_OUTPUT_LOST)
    if sys.stderr is None:
        sys.stderr = Path(os.devnull).open("w")  # noqa: SIM115 (lives as long as the process)
    _tolerate_any_encoding()
    try:
        code = _invoked(sys.argv[1:])(standalone_mode=False)
    except KeyboardInterrupt:
        code = _INTERRUPTED
    sys.exit(code)


def console_main() -> NoReturn:
    """The ``probe`` script (and ``python -m mqtt_tls_probe``): ``main``, then a fast exit.

    Once the report is out there is nothing left to do, so the process ends
    without interpreter teardown (module and object finalisation costs 20-70 ms
    per run, a third of a probe's start-up). Everything the commands open is
    closed by their own ``with`` blocks before ``main`` returns; stdout and
    stderr are flushed here. Library callers and tests use ``main``.
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    # Skipping teardown must not skip the exit handlers: the Kubernetes client's
    # kubeconfig loader writes the CA, client certificate and client key of a
    # kubeconfig's inline data to temporary files, and removes them in one:
    # https://github.com/kubernetes-client/python/blob/v37.0.2/kubernetes/base/config/kube_config.py#L53-L77
    _run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            code = code or EXIT_OUTPUT_LOST
    os._exit(code)


def _run_exit_handlers() -> None:
    """What ``atexit`` would run at a normal exit (CPython's ``atexit._run_exitfuncs``)."""
    import atexit

    run = getattr(atexit, "_run_exitfuncs", None)
    if run is not None:
        run()  # a handler that raises is reported on stderr by atexit itself, and skipped

"""The command line (typer): parse flags, build the config, call an orchestrator, render, exit.

Rule: no policy here. Each command module turns its flags into inputs for
``config.py`` (or an orchestrator's arguments), calls one orchestrator and
hands the report to ``output.render``. Heavy modules are imported inside the
commands that need them, and a run imports only the command module it names
(``application._invoked``): the CLI's cold start is measured (bench/).

``app`` (the typer application with every command registered) is loaded on
first use (PEP 562), so that the ``probe`` script, which starts here, does not
import every command module.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from mqtt_tls_probe.cli.application import app as app

__all__ = ["app", "console_main", "main"]


def console_main() -> NoReturn:
    """The ``probe`` script: see ``application.console_main``.

    The cyclic garbage collector is off from here: the start-up's imports make
    hundreds of thousands of objects, and the collections they trigger find
    nothing to free (about 5% of a probe's start). A short command ends with
    ``os._exit`` before garbage matters; a long one (a scan, a series, a server)
    turns it back on (``application.runs_long``).
    """
    gc.disable()
    from mqtt_tls_probe.cli.application import console_main as run

    run()


def main() -> None:
    """Console entry point for callers that handle SystemExit themselves."""
    from mqtt_tls_probe.cli.application import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "app":
        from mqtt_tls_probe.cli.application import app, load_commands

        load_commands()  # every command, for tests and library callers
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

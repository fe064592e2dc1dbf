"""Outputs: the renderers read a report and return text; they compute nothing and print nothing.

``RENDERERS`` is the one table from ``--output`` to a renderer. A new format
is a module here with a ``render(report, ...) -> str`` and an entry in the
table (side files such as JUnit XML are written by their own module).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module at start-up: the model only when rendering
    from mqtt_tls_probe.model import Report


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _text(report: Report, verbose: bool) -> str:
    from mqtt_tls_probe.output import text

    return text.render(report, verbose=verbose)


def _json(report: Report, verbose: bool) -> str:
    del verbose  # the JSON document always holds everything
    from mqtt_tls_probe.output import json_doc

    return json_doc.render(report)


RENDERERS: dict[OutputFormat, Callable[[Report, bool], str]] = {
    OutputFormat.TEXT: _text,
    OutputFormat.JSON: _json,
}


def render(report: Report, output: OutputFormat, *, verbose: bool = False) -> str:
    """The report in the format ``--output`` names, ending with a newline."""
    return RENDERERS[output](report, verbose)

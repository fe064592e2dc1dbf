"""Helpers the test modules share: running the CLI, reading its JSON, writing PEM files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import core as hypothesis_core
from hypothesis import settings
from typer.testing import CliRunner, Result

from mqtt_tls_probe.cli import app
from mqtt_tls_probe.dev.pki import CertAndKey


def probe(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; bugs raise instead of turning into exit 1."""
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def probe_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Run the CLI with --output json; stdout must hold exactly one JSON object."""
    result = probe(*args, "--output", "json", env=env)
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    assert document["exit_code"] == result.exit_code
    return result.exit_code, document


def connect_json(address: str, ca_file: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``probe connect ADDRESS --ca-file CA_FILE ARGS... --output json``."""
    return probe_json("connect", address, "--ca-file", str(ca_file), *args)


def stage(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in document["stages"] if s["name"] == name)


def write_pem(path: Path, *pairs: CertAndKey) -> Path:
    """A PEM file holding the certificates of ``pairs``, in order (a CA file, a chain)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(pair.cert_pem() for pair in pairs))
    return path


def property_settings() -> settings:
    """The property tests' settings: 200 examples, no deadline, nothing saved on disk.

    Derandomized: every run (and CI) tries the same examples, so a failure
    reproduces by running the test again. ``--hypothesis-seed N`` draws 200
    other examples from seed N instead, again the same ones on every run.
    """
    seeded = hypothesis_core.global_force_seed is not None  # set by --hypothesis-seed
    return settings(max_examples=200, derandomize=not seeded, database=None, deadline=None)

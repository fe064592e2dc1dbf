"""What ``probe scan`` and ``--repeat`` are asked to do: the targets, the pace, the deadline.

Rules:
- every target gets connect's options: one ``build_probe_config`` checks them
  and reads the files they name (password, token, client certificate) once;
  each target then replaces only the host, the port and, unless
  ``--server-name`` names one for all, the server name;
- targets keep their input order, duplicates included (a target listed
  twice is probed twice): arguments first, then the lines of ``--targets-file``;
- a targets file holds one ``host[:port]`` per line; ``#`` starts a comment,
  blank lines are skipped, ``-`` reads standard input; it may hold at most
  ``MAX_TARGETS_FILE_BYTES``; a bad line is a ``UsageError`` naming its number;
- without ``--client-id``, every probe run gets its own random client id:
  probes of one broker running at once must not take over each other's session;
- the whole-target deadline defaults to the sum of the stage timeouts.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mqtt_tls_probe.config import (
    ConnectInputs,
    ProbeConfig,
    build_probe_config,
    forward_request,
    parse_target,
)
from mqtt_tls_probe.errors import UsageError

DEFAULT_CONCURRENCY = 32
MAX_CONCURRENCY = 1024
MAX_TARGETS_FILE_BYTES = 1 << 20
DEFAULT_INTERVAL = 1.0
MAX_REPEAT = 100_000
MAX_INTERVAL = 86_400.0
STDIN = "-"
# The stages that wait on the network, each for at most --timeout: resolve, tcp,
# tls, verify (which may dial again to fetch a rejected chain) and mqtt.
_TIMED_STAGES = 5


@dataclass(frozen=True)
class RepeatOptions:
    """``--repeat N --interval S``: N runs per target, started S seconds apart."""

    runs: int
    interval: float = DEFAULT_INTERVAL


@dataclass(frozen=True)
class ScanPlan:
    targets: tuple[ProbeConfig, ...]  # in input order, duplicates kept
    concurrency: int = DEFAULT_CONCURRENCY
    target_timeout: float | None = None  # None: the sum of the stage timeouts
    repeat: RepeatOptions | None = None
    fresh_client_ids: bool = True  # no --client-id: a new random id for every run

    @property
    def deadline(self) -> float:
        """Seconds a target's run may take, all stages together."""
        if self.target_timeout is not None:
            return self.target_timeout
        return sum_of_stage_timeouts(self.targets[0])

    @property
    def runs(self) -> int:
        return self.repeat.runs if self.repeat else 1


def sum_of_stage_timeouts(config: ProbeConfig) -> float:
    return config.timeout * (_TIMED_STAGES + (1 if config.roundtrip else 0))


def check_repeat(runs: int | None, interval: float | None) -> RepeatOptions | None:
    """``--repeat``/``--interval`` as given (None: absent).

    Raises:
        UsageError: a value out of range, or ``--interval`` without ``--repeat``.
    """
    if runs is None:
        if interval is not None:
            raise UsageError("--interval needs --repeat N")
        return None
    if not 1 <= runs <= MAX_REPEAT:
        raise UsageError(f"--repeat must be between 1 and {MAX_REPEAT}")
    chosen = DEFAULT_INTERVAL if interval is None else interval
    if not (math.isfinite(chosen) and 0 <= chosen <= MAX_INTERVAL):
        raise UsageError(f"--interval must be between 0 and {MAX_INTERVAL:g} seconds")
    return RepeatOptions(runs, chosen)


def build_scan_plan(
    inputs: ConnectInputs,
    targets: Sequence[str],
    *,
    targets_file: Path | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    target_timeout: float | None = None,
    repeat: RepeatOptions | None = None,
    environ: Mapping[str, str] | None = None,
    stdin: BinaryIO | None = None,
) -> ScanPlan:
    """The policy of ``probe scan``: every target with connect's options, checked.

    ``inputs.target`` is ignored: the targets are ``targets``, then the lines
    of ``targets_file``.

    Raises:
        UsageError: no target, a bad target or line, a bad option; nothing has
            touched the network.
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
    if target_timeout is not None and not (math.isfinite(target_timeout) and target_timeout > 0):
        raise UsageError("--target-timeout must be a positive number of seconds")
    named = [(target, f"the target {target!r}") for target in targets]
    if targets_file is not None:
        named += read_targets_file(targets_file, stdin)
    if not named:
        raise UsageError("no targets: name them as arguments or in --targets-file FILE")
    endpoints = [_endpoint(target, inputs.port, where) for target, where in named]
    host, port = endpoints[0]
    env = os.environ if environ is None else environ
    base = build_probe_config(inputs._replace(target=host, port=port), env)
    configs = tuple(
        base._replace(
            host=host,
            port=port,
            tls=base.tls._replace(server_name=inputs.server_name or host),
            port_forward=forward_request(inputs, host),  # --port-forward: each its Service
        )
        for host, port in endpoints
    )
    return ScanPlan(
        targets=configs,
        concurrency=concurrency,
        target_timeout=target_timeout,
        repeat=repeat,
        fresh_client_ids=inputs.client_id is None,
    )


def discovered_plan(
    configs: Sequence[ProbeConfig],
    inputs: ConnectInputs,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    target_timeout: float | None = None,
    repeat: RepeatOptions | None = None,
) -> ScanPlan:
    """``probe scan --discover``: the probes built for the listener ports, as a plan.

    Raises:
        UsageError: a bad ``--concurrency`` or ``--target-timeout``.
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
    if target_timeout is not None and not (math.isfinite(target_timeout) and target_timeout > 0):
        raise UsageError("--target-timeout must be a positive number of seconds")
    return ScanPlan(
        targets=tuple(configs),
        concurrency=concurrency,
        target_timeout=target_timeout,
        repeat=repeat,
        fresh_client_ids=inputs.client_id is None,
    )


def _endpoint(target: str, port: int | None, where: str) -> tuple[str, int]:
    try:
        return parse_target(target, port)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from exc


def read_targets_file(path: Path, stdin: BinaryIO | None = None) -> list[tuple[str, str]]:
    """The targets of a file (``-``: standard input), each with where it was read.

    Raises:
        UsageError: unreadable, too large, not UTF-8, or a line that is not one target.
    """
    source = "standard input" if str(path) == STDIN else str(path)
    try:
        if str(path) == STDIN:
            data = (stdin or sys.stdin.buffer).read(MAX_TARGETS_FILE_BYTES + 1)
        else:
            with path.open("rb") as file:
                data = file.read(MAX_TARGETS_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the targets file {source}: {exc.strerror}") from exc
    if len(data) > MAX_TARGETS_FILE_BYTES:
        raise UsageError(
            f"the targets file {source} is larger than {MAX_TARGETS_FILE_BYTES // 1024} KiB"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"the targets file {source} is not UTF-8 text") from exc
    return [(target, f"{source} line {number}") for number, target in parse_targets(text, source)]


def parse_targets(text: str, source: str) -> list[tuple[int, str]]:
    """(line number, target) for each line that names one; comments and blanks skipped.

    Raises:
        UsageError: a line with more than one word or with control characters.
    """
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        target = line.split("#", 1)[0].strip()
        if not target:
            continue
        if any(ch.isspace() or not ch.isprintable() for ch in target):
            raise UsageError(
                f"{source} line {number}: one host[:port] per line, "
                f"without spaces or control characters: {target!r}"
            )
        found.append((number, target))
    return found

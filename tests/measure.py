"""Run the probe as a child process and measure it: exit code, output, wall time, peak RSS.

The peak RSS of a process (``ru_maxrss``) includes what it held before its
``exec``: a child forked (or vforked) straight from pytest reports pytest's
own RSS, 100 MB and more late in a run, whatever the probe uses. So a small
launcher starts the probe and reads its peak with ``os.wait4`` (that child
alone, in KiB on Linux); the probe's figure carries only the launcher's few
MB from before its exec. The launcher runs in a session of its own, so a
probe past its time limit is killed with it, and the test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_POLL = 0.01
# argv: report file, then the command. Spawned from this small process, the
# command's peak RSS is its own; written to the report, and its exit code passed on.
_LAUNCHER = """
import os, sys
report, command = sys.argv[1], sys.argv[2:]
pid = os.posix_spawn(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mib: float


def run_probe(*args: str, limit: float = 60.0) -> Measured:
    """``python -m mqtt_tls_probe ARGS...``, killed (and failed) after ``limit`` seconds."""
    command = [sys.executable, "-m", "mqtt_tls_probe", *args]
    with (
        tempfile.TemporaryDirectory() as scratch,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        report = Path(scratch) / "max_rss_kib"
        started = time.monotonic()
        launcher = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(report), *command],
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            returncode = launcher.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(timeout=10)
            raise AssertionError(f"the probe ran longer than {limit} s: {command}") from None
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Measured(
            returncode=returncode,
            stdout=out.read().decode(),
            stderr=err.read().decode(),
            seconds=seconds,
            max_rss_mib=int(report.read_text()) / 1024,
        )
